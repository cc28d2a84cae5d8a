"""Argument validation shared by every public entry point.

Each check raises ``ValueError`` (or ``TypeError`` for a wrong type) with a message that names
the argument and says what was expected. Checks that need the tensor's values (finiteness)
synchronise with the device, so they belong at API boundaries, never inside sampler loops.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor


class DivergenceError(RuntimeError):
    """A sampler chain or a training run produced non-finite values."""


def check_tensor(name: str, x: object, *, min_dim: int = 1) -> Tensor:
    """Require a floating-point tensor with at least ``min_dim`` dimensions and a non-empty batch."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimension(s) (batch first), "
            f"got shape {tuple(x.shape)}"
        )
    if min_dim >= 1 and x.shape[0] == 0:
        raise ValueError(f"{name} must have a non-empty batch, got shape {tuple(x.shape)}")
    return x


def check_finite(name: str, x: Tensor) -> Tensor:
    """Require every element of ``x`` to be finite. Synchronises with the device."""
    if not bool(torch.isfinite(x).all()):
        n_bad = int((~torch.isfinite(x)).sum())
        raise ValueError(
            f"{name} contains {n_bad} non-finite value(s) (NaN or inf) in a tensor of shape "
            f"{tuple(x.shape)}; expected only finite values"
        )
    return x


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Require a finite real number > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    ok = value >= 0 if allow_zero else value > 0
    if not math.isfinite(value) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return float(value)


def check_int(name: str, value: int, *, minimum: int = 1) -> int:
    """Require an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return value


def check_probability(name: str, value: float) -> float:
    """Require a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def check_energy_output(
    out: object, batch_shape: Sequence[int], *, who: str, input_shape: Sequence[int]
) -> Tensor:
    """Require an energy's output to be a tensor of shape ``batch_shape``.

    Shape checks are free (no device synchronisation); finiteness is checked separately.
    """
    if not isinstance(out, Tensor):
        raise TypeError(f"{who} must return a torch.Tensor, got {type(out).__name__}")
    if tuple(out.shape) != tuple(batch_shape):
        raise ValueError(
            f"{who} returned shape {tuple(out.shape)} for input of shape {tuple(input_shape)}; "
            f"expected energies of shape {tuple(batch_shape)} (one scalar per batch element)"
        )
    return out


def check_generator(generator: torch.Generator | None, device: torch.device) -> None:
    """Require ``generator`` (if given) to live on the same device type as the samples."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if generator.device.type != device.type:
        raise ValueError(
            f"generator is on device '{generator.device}' but the samples are on '{device}'; "
            f"create it with torch.Generator(device='{device.type}')"
        )


def resolve_generator(generator: torch.Generator | None, device: torch.device) -> torch.Generator:
    """Return ``generator``, or a fresh one seeded from OS entropy.

    A fresh generator keeps the global RNG untouched, which is the library-wide contract;
    pass your own generator for reproducible draws.
    """
    check_generator(generator, device)
    if generator is not None:
        return generator
    fresh = torch.Generator(device=device)
    fresh.seed()
    return fresh


@contextlib.contextmanager
def seeded_init(generator: torch.Generator) -> Iterator[None]:
    """Build modules with weights drawn from ``generator``, leaving the global RNG as it was.

    ``torch.nn`` layers initialise from the global RNG; inside this block it is seeded from
    ``generator`` and restored on exit (``torch.random.fork_rng``).
    """
    seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
