"""What every MCMC sampler shares: the call contract, the trace, bounds and divergence checks.

Loop rules, kept by every sampler here:

- no host synchronisation inside the loop: no ``.item()``, no ``bool(tensor)``, no Python
  branching on tensor values. Divergence is detected from the energy sums that the gradient
  computation produces anyway; they are stacked and checked once, after the loop;
- no per-chain Python loop: chains are the batch dimension;
- randomness only from the keyword-only ``generator`` (a fresh OS-seeded one when ``None``), so
  the global RNG is never touched.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from ebrl._checks import (
    DivergenceError,
    as_float_tensor,
    check_energy_output,
    check_finite,
    check_tensor,
    grad_leaf,
    require,
    resolve_generator,
)
from ebrl.energy.base import EnergyFn, unchecked

Bounds = tuple[float | Sequence[float] | Tensor, float | Sequence[float] | Tensor]
Boundary = Literal["clamp", "reflect"]


class SamplerTrace(NamedTuple):
    """Diagnostics of one sampler run.

    Attributes:
        samples: final chain states, ``(B, *event)``.
        energies: energy of every chain state, from x0 to the final state, ``(n_steps + 1, B)``.
        acceptance_rate: fraction of accepted proposals per chain, ``(B,)``; all ones for
            unadjusted Langevin, which accepts every move.
    """

    samples: Tensor
    energies: Tensor
    acceptance_rate: Tensor


class Sampler(abc.ABC):
    """Base of the samplers. Subclasses are frozen dataclasses and implement ``_run``.

    ``sampler(energy, x0, generator=g)`` returns samples shaped like ``x0``, on its device and
    dtype; ``sampler.trace(...)`` runs the same chain and also returns diagnostics. Both work
    under ``torch.no_grad()`` (e.g. inside SB3's ``predict``): gradients are enabled locally.
    """

    def __call__(
        self, energy: EnergyFn, x0: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Run the chains from ``x0 (B, *event)`` and return the final states ``(B, *event)``."""
        x, _, _ = self._run(energy, x0, generator=generator, record=False)
        return x

    def trace(
        self, energy: EnergyFn, x0: Tensor, *, generator: torch.Generator | None = None
    ) -> SamplerTrace:
        """Run the chains like ``__call__`` and return a ``SamplerTrace``."""
        x, energies, accepted = self._run(energy, x0, generator=generator, record=True)
        assert energies is not None and accepted is not None
        return SamplerTrace(x, torch.stack(energies), accepted)

    @abc.abstractmethod
    def _run(
        self,
        energy: EnergyFn,
        x0: Tensor,
        *,
        generator: torch.Generator | None,
        record: bool,
    ) -> tuple[Tensor, list[Tensor] | None, Tensor | None]:
        """Return final states, per-step energies ``[(B,)] * (n_steps + 1)`` and acceptance."""


def prepare(
    energy: EnergyFn, x0: Tensor, generator: torch.Generator | None
) -> tuple[EnergyFn, Tensor, torch.Generator]:
    """Validate the inputs once, before the loop (one device synchronisation, for x0)."""
    if not callable(energy):
        raise TypeError(f"energy must be callable (an Energy or a function), got {type(energy).__name__}")
    check_tensor("x0", x0, min_dim=1)
    check_finite("x0", x0)
    return unchecked(energy, x0), x0.detach(), resolve_generator(generator, x0.device)


def energy_and_grad(fn: EnergyFn, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """E(x) ``(B,)``, its sum ``()`` and ∇_x E ``(B, *event)``, without a graph on the result.

    The sum is the divergence sentinel: it is NaN or inf as soon as any chain's energy is.
    """
    with torch.enable_grad():
        x = grad_leaf(x)
        e = fn(x)
        check_energy_output(e, x.shape[:1], who="energy", input_shape=x.shape)
        total = e.sum()
        if not total.requires_grad:  # an energy that does not depend on x (flat): zero gradient
            return e.detach(), total.detach(), torch.zeros_like(x)
        (grad,) = torch.autograd.grad(total, x)
    return e.detach(), total.detach(), grad


def per_chain(t: Tensor) -> Tensor:
    """Sum over event dimensions: ``(B, *event) -> (B,)``."""
    return t.flatten(1).sum(1)


def bounds_tensors(bounds: Bounds | None, like: Tensor) -> tuple[Tensor, Tensor] | None:
    """Broadcastable ``(low, high)`` on ``like``'s device and dtype, or ``None``.

    Raises ``ValueError`` if they do not broadcast against one state ``like.shape[1:]`` (free: shapes only).
    """
    if bounds is None:
        return None
    low = torch.as_tensor(bounds[0], device=like.device, dtype=like.dtype)
    high = torch.as_tensor(bounds[1], device=like.device, dtype=like.dtype)
    event = like.shape[1:]
    for t in (low, high):
        try:
            fits = torch.broadcast_shapes(t.shape, event) == event
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(
                f"bounds of shape {tuple(t.shape)} do not fit states of shape {tuple(event)} (x0 is "
                f"{tuple(like.shape)}); give floats or per-dimension values that broadcast to {tuple(event)}"
            )
    return low, high


def check_bounds(bounds: Bounds | None) -> None:
    """Validate bounds at construction: numbers of broadcastable shapes, finite, low < high everywhere."""
    if bounds is None:
        return
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError(f"bounds must be a pair (low, high), got {bounds!r}")
    low = as_float_tensor("bounds low", bounds[0], dtype=torch.float64)
    high = as_float_tensor("bounds high", bounds[1], dtype=torch.float64)
    try:
        torch.broadcast_shapes(low.shape, high.shape)
    except RuntimeError as exc:
        raise ValueError(
            f"bounds low and high must have broadcastable shapes, got {tuple(low.shape)} and {tuple(high.shape)}"
        ) from exc
    if not (bool(torch.isfinite(low).all()) and bool(torch.isfinite(high).all())):
        raise ValueError(f"bounds must be finite, got low={low.tolist()}, high={high.tolist()}")
    if bool((high <= low).any()):
        raise ValueError(f"bounds must have low < high, got low={low.tolist()}, high={high.tolist()}")


def apply_bounds(x: Tensor, lohi: tuple[Tensor, Tensor] | None, boundary: Boundary) -> Tensor:
    """Keep ``x`` in the box by clamping or by reflecting at the walls (any number of times)."""
    if lohi is None:
        return x
    low, high = lohi
    if boundary == "clamp":
        return torch.maximum(torch.minimum(x, high), low)
    width = high - low
    u = torch.remainder(x - low, 2 * width)  # position along the unfolded, 2w-periodic line
    return low + width - (u - width).abs()


def in_bounds(x: Tensor, lohi: tuple[Tensor, Tensor] | None) -> Tensor | None:
    """Per-chain mask ``(B,)`` of states inside the box, or ``None`` without bounds."""
    if lohi is None:
        return None
    low, high = lohi
    return ((x >= low) & (x <= high)).flatten(1).all(1)


def raise_if_diverged(
    name: str,
    sentinels: list[Tensor],
    *,
    n_steps: int,
    final: Tensor | None,
    allow_pos_inf: bool,
    hint: str,
) -> None:
    """Check the per-step energy sums once, after the loop; raise naming the first bad step.

    ``sentinels[k]`` is the energy sum after ``k`` updates (index 0 is x0). For Metropolis
    samplers, index ``k >= 1`` is the sum over the step-``k`` proposals, where +inf (zero
    density, rejected) is allowed but NaN and -inf are divergence.
    """
    s = torch.stack(sentinels)  # (n_steps + 1,)
    bad = torch.isnan(s) | (s == -math.inf)
    if not allow_pos_inf:
        bad = bad | torch.isinf(s)
    bad[0] = ~torch.isfinite(s[0])
    if final is not None:
        bad = torch.cat([bad, ~torch.isfinite(final).all().reshape(1)])

    def error() -> BaseException:
        step = int(bad.to(torch.int8).argmax())
        if step == 0:
            return ValueError(f"{name}: the energy is not finite at x0; start the chains where E(x0) is finite")
        step = min(step, n_steps)
        return DivergenceError(
            f"{name} diverged at step {step} of {n_steps}: a chain reached a non-finite energy or "
            f"state (NaN or inf). {hint}"
        )

    require(~bad.any(), error)  # the only synchronisation of the whole run (deferred inside fit's steps)
