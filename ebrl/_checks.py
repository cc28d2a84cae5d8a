"""Argument validation shared by every public entry point.

Each check raises ``ValueError`` (or ``TypeError`` for a wrong type) with a message that names
the argument and says what was expected. Checks that need the tensor's values (finiteness)
synchronise with the device, so they belong at API boundaries, never inside sampler loops.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import torch
from numpy import bool_ as np_bool
from torch import Tensor


class DivergenceError(RuntimeError):
    """A sampler chain or a training run produced non-finite values."""


class MissingExtraError(ImportError):
    """A feature needs an optional dependency that is not installed; the message names the extra to install."""


def check_tensor(name: str, x: object, *, min_dim: int = 1) -> Tensor:
    """Require a floating-point tensor with at least ``min_dim`` dimensions and a non-empty batch."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    check_has_data(name, x)
    if x.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimension(s) (batch first), "
            f"got shape {tuple(x.shape)}"
        )
    if min_dim >= 1 and x.shape[0] == 0:
        raise ValueError(f"{name} must have a non-empty batch, got shape {tuple(x.shape)}")
    return x


def check_has_data(name: str, x: Tensor) -> Tensor:
    """Reject tensors on the "meta" device: they have a shape but no values to compute with."""
    if x.device.type == "meta":
        raise ValueError(
            f"{name} is on the 'meta' device, which holds no data; expected a tensor with values "
            f"(e.g. on 'cpu' or 'cuda')"
        )
    return x


def device_mismatch(name: str, device: torch.device, expected: torch.device, *, who: str) -> ValueError | None:
    """The error for ``name`` on ``device`` where ``expected`` (the device of ``who``) is required; ``None`` if equal.

    It takes devices, not tensors, so that its logic runs on a CPU-only machine: ``torch.device("cuda")`` needs no
    GPU. :func:`check_like` raises what it returns.
    """
    if device == expected:
        return None
    return ValueError(
        f"{name} is on device '{device}', expected '{expected}' (the device of {who}); move one to "
        f"the other (e.g. {name}.to('{expected}'))"
    )


def devices_disagree(devices: dict[str, torch.device], *, what: str) -> ValueError | None:
    """The error naming each of ``devices`` (argument name -> device) when they are not all one; ``None`` if one."""
    if len(set(devices.values())) <= 1:
        return None
    listed = ", ".join(f"{name} on '{device}'" for name, device in devices.items())
    return ValueError(f"expected {what} on one device, got {listed}")


def generator_mismatch(generator_device: torch.device, device: torch.device) -> ValueError | None:
    """The error for a generator on ``generator_device`` drawing samples on ``device``; ``None`` if the types match.

    Devices, not tensors and generators, so that the logic runs on a CPU-only machine; see :func:`check_generator`.
    """
    if generator_device.type == device.type:
        return None
    return ValueError(
        f"generator is on device '{generator_device}' but the samples are on '{device}'; "
        f"create it with torch.Generator(device='{device.type}')"
    )


def check_like(name: str, x: Tensor, like: Tensor, *, who: str) -> Tensor:
    """Require ``x`` on the device and with the dtype of ``like`` (e.g. a module's parameters). Free: no sync.

    Under ``torch.autocast`` for ``x``'s device the dtype may differ (autocast casts it).
    """
    error = device_mismatch(name, x.device, like.device, who=who)
    if error is not None:
        raise error
    if x.dtype != like.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(
            f"{name} has dtype {x.dtype}, expected {like.dtype} (the dtype of {who}); convert one to the "
            f"other (e.g. {name}.to({like.dtype}))"
        )
    return x


def as_float_tensor(
    name: str, value: object, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> Tensor:
    """``value`` (a number, a nested sequence of numbers or a tensor) as a real floating tensor.

    Raises ``TypeError`` naming ``name`` for anything else (strings, None, ragged lists, complex).
    """
    if isinstance(value, (str, bytes)) or value is None or (isinstance(value, Tensor) and value.is_complex()):
        raise TypeError(f"{name} must be a number, a sequence of numbers or a real tensor, got {value!r}")
    try:
        t = torch.as_tensor(value, dtype=dtype or torch.get_default_dtype(), device=device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(
            f"{name} must be a number, a sequence of numbers or a real tensor, got {type(value).__name__} "
            f"that cannot be read as one ({exc})"
        ) from exc
    return check_has_data(name, t)


PendingCheck = tuple[Tensor, Callable[[], BaseException]]
"""A value check not read yet: a boolean scalar tensor (true = passed) and the error to raise if it failed."""

_PENDING: ContextVar[list[PendingCheck] | None] = ContextVar("ebrl_pending_checks", default=None)


@contextlib.contextmanager
def deferred_checks() -> Iterator[list[PendingCheck]]:
    """Collect the value checks made inside the block (``require``) instead of reading each one.

    A check of tensor values (finiteness, a diverged sampler) must read the device: one host
    synchronisation each. Inside this block ``require`` records ``(ok, error)`` in the yielded
    list and returns at once; the caller reads every ``ok`` in one synchronisation and raises the
    ``error()`` of the first that failed, in the order they were made. ``ebrl.training.fit`` runs
    each step's objective this way, so a step costs one synchronisation however many checks the
    objective, its sampler and its losses make. Code inside the block must not rely on a check
    having stopped it: it runs on with NaN until the caller reads the checks.
    """
    pending: list[PendingCheck] = []
    token = _PENDING.set(pending)
    try:
        yield pending
    finally:
        _PENDING.reset(token)


def checks_deferred() -> bool:
    """Whether ``require`` records checks instead of reading them (inside ``deferred_checks``)."""
    return _PENDING.get() is not None


def require(ok: Tensor, error: Callable[[], BaseException]) -> None:
    """Raise ``error()`` unless ``ok`` (a boolean scalar tensor) is true: one host synchronisation.

    Inside ``deferred_checks`` the check is recorded instead, and read later with the others.
    ``error`` is called only on failure, so it may read the device to say what went wrong.
    """
    pending = _PENDING.get()
    if pending is None:
        if not bool(ok):
            raise error()
    else:
        pending.append((ok.reshape(()), error))


def non_finite_error(name: str, x: Tensor) -> ValueError:
    """The ``ValueError`` for a tensor ``x`` with NaN or inf entries, counting them (reads the device)."""
    n_bad = int((~torch.isfinite(x)).sum())
    return ValueError(
        f"{name} contains {n_bad} non-finite value(s) (NaN or inf) in a tensor of shape "
        f"{tuple(x.shape)}; expected only finite values"
    )


def first_non_finite_error(named: Sequence[tuple[str, Tensor]]) -> ValueError:
    """The ``non_finite_error`` of the first ``(name, tensor)`` that is not finite (the last if all are)."""
    for name, t in named[:-1]:
        if not bool(torch.isfinite(t).all()):
            return non_finite_error(name, t)
    return non_finite_error(*named[-1])


def check_finite(name: str, x: Tensor) -> Tensor:
    """Require every element of ``x`` to be finite (``require``: one synchronisation, or deferred)."""
    check_has_data(name, x)
    require(torch.isfinite(x).all(), lambda: non_finite_error(name, x))
    return x


def _require_real(name: str, value: Any) -> None:
    if isinstance(value, (bool, np_bool)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Require a finite real number > 0 (or >= 0 with ``allow_zero``)."""
    _require_real(name, value)
    ok = value >= 0 if allow_zero else value > 0
    if not math.isfinite(value) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return float(value)


def check_number(name: str, value: float) -> float:
    """Require a finite real number (any sign); returns it as a Python float."""
    _require_real(name, value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return float(value)


def check_int(name: str, value: int, *, minimum: int = 1) -> int:
    """Require an integer >= ``minimum`` (a Python or NumPy integer, not a bool); returns a Python int."""
    if isinstance(value, (bool, np_bool)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def check_probability(name: str, value: float) -> float:
    """Require a number in [0, 1]."""
    _require_real(name, value)
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
    if not torch.is_floating_point(out):
        raise TypeError(f"{who} must return floating-point energies, got dtype {out.dtype}")
    if tuple(out.shape) != tuple(batch_shape):
        raise ValueError(
            f"{who} returned shape {tuple(out.shape)} for input of shape {tuple(input_shape)}; "
            f"expected energies of shape {tuple(batch_shape)} (one scalar per batch element)"
        )
    return out


def check_device(name: str, device: torch.device | str) -> torch.device:
    """``device`` as a ``torch.device`` (``"auto"``: CUDA when available, else the CPU), or ``ValueError`` naming
    ``name`` for a string that is not a device or a CUDA device on a machine without CUDA."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"{name} must be 'cpu', 'cuda', 'cuda:N', 'auto' or a torch.device, got {device!r}") from e
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}={device!r}, but CUDA is not available on this machine; use 'cpu' or 'auto'")
    return target


def check_generator(generator: torch.Generator | None, device: torch.device) -> None:
    """Require ``generator`` (if given) to live on the same device type as the samples."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    error = generator_mismatch(generator.device, device)
    if error is not None:
        raise error


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


def grad_leaf(x: Tensor) -> Tensor:
    """``x`` detached as a leaf that requires grad, for ∇_x; copies a tensor made under ``torch.inference_mode``
    (autograd cannot record inference tensors outside that mode)."""
    x = x.detach()
    if x.is_inference() and not torch.is_inference_mode_enabled():
        x = x.clone()
    return x.requires_grad_(True)


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
