"""The action box on which continuous Boltzmann policies live."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ebrl._checks import check_int, check_positive, resolve_generator


def _as_floats(name: str, value: float | Sequence[float] | Tensor) -> tuple[float, ...]:
    try:
        t = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"{name} must be a number or a sequence of numbers, got {type(value).__name__}") from exc
    if t.numel() == 0:
        raise ValueError(f"{name} must name at least one action dimension, got an empty sequence")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(
            f"{name} must be finite, got {t.tolist()}; a Boltzmann policy over an unbounded action space "
            f"is not normalisable with a uniform proposal: give finite action bounds"
        )
    return tuple(t.tolist())


@dataclass(frozen=True)
class ActionBox:
    """An axis-aligned box ``[low, high]`` of actions, ``A`` dimensions.

    Args:
        low: lower bounds, a float (one dimension) or a sequence of ``A`` floats; finite.
        high: upper bounds, same length as ``low``, with ``low < high`` everywhere; finite.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        low, high = _as_floats("low", self.low), _as_floats("high", self.high)
        if len(low) != len(high):
            raise ValueError(f"low and high must have the same length, got {len(low)} and {len(high)}")
        bad = [i for i, (lo, hi) in enumerate(zip(low, high, strict=True)) if not lo < hi]
        if bad:
            raise ValueError(f"low < high must hold in every dimension, fails at dimension(s) {bad}: {low=} {high=}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @classmethod
    def symmetric(cls, dim: int, bound: float = 1.0) -> ActionBox:
        """The box ``[-bound, bound]^dim``; ``[-1, 1]^dim`` is SB3's scaled action space."""
        check_int("dim", dim)
        check_positive("bound", bound)
        return cls((-bound,) * dim, (bound,) * dim)

    @property
    def dim(self) -> int:
        """The number of action dimensions A."""
        return len(self.low)

    @property
    def log_volume(self) -> float:
        """log Π_d (high_d - low_d); D·log 2 for ``[-1, 1]^D``."""
        return sum(math.log(hi - lo) for lo, hi in zip(self.low, self.high, strict=True))

    def tensors(self, *, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """``(low, high)`` as tensors of shape ``(A,)``."""
        low = torch.tensor(self.low, device=device, dtype=dtype)
        high = torch.tensor(self.high, device=device, dtype=dtype)
        return low, high

    def uniform(
        self,
        batch_shape: Sequence[int],
        *,
        device: torch.device,
        dtype: torch.dtype,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Actions drawn uniformly from the box, shape ``(*batch_shape, A)``."""
        batch_shape = tuple(check_int("batch_shape[i]", n, minimum=0) for n in batch_shape)
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        gen = resolve_generator(generator, torch.device(device))
        low, high = self.tensors(device=device, dtype=dtype)
        u = torch.rand((*batch_shape, self.dim), generator=gen, device=device, dtype=dtype)
        return low + (high - low) * u
