"""Persistent chains in a replay buffer, as in IGEBM (Du & Mordatch 2019) and JEM (Grathwohl et al. 2020)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ebrl._checks import (
    check_finite,
    check_int,
    check_number,
    check_probability,
    check_tensor,
    checks_deferred,
    non_finite_error,
    require,
    resolve_generator,
)

NoiseFn = Callable[[int, torch.Generator], Tensor]
"""``noise(n, generator) -> (n, *event)``: where restarted chains begin."""


class ReplayBuffer:
    """A fixed pool of persistent chain states for PCD.

    The pool starts as noise. ``sample(n)`` draws ``n`` states at random from it and restarts
    each from fresh noise with probability ``reinit_prob`` (5% in IGEBM and JEM, which keeps
    the chains from collapsing onto a few modes). After running a sampler from those states,
    ``update(idx, x)`` writes the new states back in place. Memory is bounded by ``capacity``.

    Example::

        buf = ReplayBuffer(10_000, (2,), generator=g)
        x0, idx = buf.sample(128, generator=g)
        x = Langevin(step_size=0.01, n_steps=20)(energy, x0, generator=g)
        buf.update(idx, x)

    Args:
        capacity: number of stored states, >= 1.
        event_shape: shape of one state.
        reinit_prob: probability that a sampled state restarts from noise.
        low, high: bounds of the default uniform noise.
        noise: a custom ``noise(n, generator)``; overrides ``low``/``high``.
        device, dtype: where the pool lives.
        generator: draws the initial pool (a fresh OS-seeded generator when ``None``).
    """

    def __init__(
        self,
        capacity: int,
        event_shape: Sequence[int],
        *,
        reinit_prob: float = 0.05,
        low: float = -1.0,
        high: float = 1.0,
        noise: NoiseFn | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.capacity = check_int("capacity", capacity)
        if isinstance(event_shape, (str, bytes)) or not isinstance(event_shape, Sequence):
            raise TypeError(f"event_shape must be a sequence of ints, e.g. (2,), got {event_shape!r}")
        self.event_shape = tuple(check_int("event_shape[i]", d) for d in event_shape)
        self.reinit_prob = check_probability("reinit_prob", reinit_prob)
        self.low, self.high = check_number("low", low), check_number("high", high)
        if not self.high > self.low:
            raise ValueError(f"high must be greater than low, got low={low}, high={high}")
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating-point torch.dtype (e.g. torch.float32), got {dtype!r}")
        if noise is not None and not callable(noise):
            raise TypeError(f"noise must be a callable noise(n, generator) -> (n, *event_shape), got {noise!r}")
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype or torch.get_default_dtype()
        self._noise = noise
        self.buffer = check_finite("noise(capacity, generator)", self.noise(self.capacity, resolve_generator(
            generator, self.device)))

    def noise(self, n: int, generator: torch.Generator) -> Tensor:
        """Fresh starting states ``(n, *event_shape)``."""
        if self._noise is not None:
            x = self._noise(n, generator)
            if not isinstance(x, Tensor) or not torch.is_floating_point(x):
                raise TypeError(f"noise(n, generator) must return a floating-point tensor, got {x!r:.80}")
            if tuple(x.shape) != (n, *self.event_shape):
                raise ValueError(
                    f"noise(n, generator) must return shape {(n, *self.event_shape)}, got {tuple(x.shape)}"
                )
            return x.to(self.device, self.dtype)
        u = torch.rand((n, *self.event_shape), generator=generator, device=self.device, dtype=self.dtype)
        return self.low + (self.high - self.low) * u

    def __len__(self) -> int:
        return self.capacity

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` starting states ``(n, *event_shape)`` and their pool indices ``(n,)``."""
        check_int("n", n)
        g = resolve_generator(generator, self.device)
        idx = torch.randint(self.capacity, (n,), generator=g, device=self.device)  # (n,)
        x = self.buffer[idx]  # (n, *event)
        restart = torch.rand(n, generator=g, device=self.device) < self.reinit_prob  # (n,)
        mask = restart.view(-1, *([1] * len(self.event_shape)))  # (n, 1, ..., 1)
        return torch.where(mask, self.noise(n, g), x), idx

    def update(self, idx: Tensor, x: Tensor) -> None:
        """Write states ``x (n, *event_shape)`` back to pool slots ``idx (n,)``."""
        check_tensor("x", x)
        if not isinstance(idx, Tensor) or idx.dtype != torch.int64:
            kind = f"dtype {idx.dtype}" if isinstance(idx, Tensor) else type(idx).__name__
            raise TypeError(f"idx must be an int64 tensor of pool indices (as returned by sample), got {kind}")
        if tuple(x.shape[1:]) != self.event_shape or idx.shape != x.shape[:1]:
            raise ValueError(
                f"update expects idx (n,) and x (n, {', '.join(map(str, self.event_shape))}), "
                f"got idx {tuple(idx.shape)} and x {tuple(x.shape)}"
            )
        finite = torch.isfinite(x.detach()).reshape(x.shape[0], -1).all(1)  # (n,)
        require(finite.all(), lambda: non_finite_error("x", x))  # never store a diverged chain
        require(((idx >= 0) & (idx < self.capacity)).all(),
                lambda: ValueError(f"idx must hold pool indices in [0, {self.capacity}), got {idx.tolist()}"))
        idx = idx.to(self.device)
        x = x.detach().to(self.device, self.dtype)
        if checks_deferred():  # the checks above are read later: keep the diverged chains out meanwhile
            keep = finite.to(self.device).view(-1, *([1] * len(self.event_shape)))  # (n, 1, ..., 1)
            x = torch.where(keep, x, self.buffer[idx])
        self.buffer[idx] = x

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict from state_dict(), got {type(state).__name__}")
        buf = state.get("buffer")
        if isinstance(buf, Tensor) and not torch.is_floating_point(buf):
            raise TypeError(f"replay buffer state must hold a floating-point buffer, got dtype {buf.dtype}")
        if not isinstance(buf, Tensor) or tuple(buf.shape) != (self.capacity, *self.event_shape):
            raise ValueError(
                f"replay buffer state must hold a tensor of shape {(self.capacity, *self.event_shape)}, "
                f"got {None if buf is None else tuple(buf.shape)}"
            )
        self.buffer = check_finite("buffer", buf).to(self.device, self.dtype)
