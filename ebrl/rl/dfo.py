"""The derivative-free optimiser of implicit behavioural cloning (Florence et al. 2021).

For a state-action energy E(s, a) on an action box, it finds low-energy actions without gradients,
by iterated importance resampling with shrinking noise. For iterations k = 0 .. K-1, with N
candidates per state drawn uniformly from the box at the start::

    w_j   = softmax_j(-E(s, a_j) / T)                  (B, N)
    a_j  <- a_{i_j},  i_j ~ Categorical(w)             resample, with replacement
    a_j  <- clip(a_j + σ_k ξ_j, low, high),  ξ ~ N(0, I),   σ_k = σ_0 · shrink^k · (high - low)

and at the end the candidates are scored once more: ``minimize`` returns the lowest-energy one per
state, ``sample`` draws one ∝ exp(-E/T) from them (so several modes survive; after K resampling
rounds the population is sharpened, roughly ∝ exp(-(K+1)E/T) near each mode, so ``sample`` is a
heuristic multimodal draw, not an exact Boltzmann sample: use Langevin or MALA for that). Everything is batched over
states and candidates, all randomness comes from the generator, and the loop makes no host
synchronisation (categorical draws use inverse-CDF search, not ``torch.multinomial``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ebrl._checks import check_finite, check_int, check_positive, resolve_generator
from ebrl.rl.box import ActionBox
from ebrl.rl.continuous import StateActionEnergyFn, _check_obs, _evaluate


def _categorical(logits: Tensor, n: int, gen: torch.Generator) -> Tensor:
    """``n`` indices per row drawn ∝ softmax(logits), ``(B, n)``, by inverse-CDF search (no sync)."""
    cdf = torch.softmax(logits, dim=1).cumsum(dim=1)  # (B, N)
    u = torch.rand((logits.shape[0], n), generator=gen, device=logits.device, dtype=logits.dtype)
    u = u * cdf[:, -1:]  # (B, n): scale to the last cdf entry, so rounding never runs past the end
    idx = torch.searchsorted(cdf.contiguous(), u.contiguous())  # (B, n)
    return idx.clamp_max(logits.shape[1] - 1)


@dataclass(frozen=True)
class DerivativeFreeOptimizer:
    """IBC's derivative-free optimiser: iterated resampling with shrinking Gaussian noise.

    Example::

        dfo = DerivativeFreeOptimizer(ActionBox((0.0, 0.0), (1.0, 1.0)), n_samples=1024)
        a_star = dfo.minimize(energy, obs, generator=g)   # (B, A)
        a = dfo.sample(energy, obs, generator=g)          # (B, A), one Boltzmann draw per state

    Args:
        box: the action box; candidates start uniform in it and are clipped to it.
        n_samples: N candidates per state (the paper uses 2^14 at inference).
        n_iters: K resampling iterations (the paper uses 3).
        noise_scale: σ_0, the first noise standard deviation as a fraction of the box width.
        noise_shrink: the factor by which σ shrinks each iteration, in (0, 1].
        temperature: T of the resampling weights softmax(-E/T).
    """

    box: ActionBox
    n_samples: int = 1024
    n_iters: int = 3
    noise_scale: float = 0.33
    noise_shrink: float = 0.5
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.box, ActionBox):
            raise TypeError(f"box must be an ActionBox, got {type(self.box).__name__}")
        check_int("n_samples", self.n_samples)
        check_int("n_iters", self.n_iters, minimum=0)
        check_positive("noise_scale", self.noise_scale)
        check_positive("noise_shrink", self.noise_shrink)
        if self.noise_shrink > 1.0:
            raise ValueError(f"noise_shrink must be in (0, 1], got {self.noise_shrink}")
        check_positive("temperature", self.temperature)

    def population(
        self, energy: StateActionEnergyFn, obs: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """The final candidates ``(B, N, A)`` and their energies ``(B, N)`` (checked finite)."""
        _check_obs(obs)
        gen = resolve_generator(generator, obs.device)
        b, n = obs.shape[0], self.n_samples
        low, high = self.box.tensors(device=obs.device, dtype=obs.dtype)
        rows = torch.arange(b, device=obs.device).unsqueeze(1)  # (B, 1)
        with torch.no_grad():
            act = self.box.uniform((b, n), device=obs.device, dtype=obs.dtype, generator=gen)  # (B, N, A)
            sigma = self.noise_scale * (high - low)  # (A,)
            for _ in range(self.n_iters):
                logits = -_evaluate(energy, obs, act) / self.temperature  # (B, N)
                idx = _categorical(logits, n, gen)  # (B, N)
                act = act[rows, idx]  # (B, N, A): gather the resampled candidates
                noise = torch.randn(act.shape, generator=gen, device=obs.device, dtype=obs.dtype)
                act = torch.maximum(torch.minimum(act + sigma * noise, high), low)
                sigma = sigma * self.noise_shrink
            e = _evaluate(energy, obs, act)  # (B, N)
        check_finite("energy at the DFO candidates", e)
        return act, e

    def minimize(
        self, energy: StateActionEnergyFn, obs: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """The lowest-energy final candidate per state, ``(B, A)``."""
        act, e = self.population(energy, obs, generator=generator)
        best = e.argmin(dim=1)  # (B,)
        return act[torch.arange(act.shape[0], device=act.device), best]  # (B, A)

    def sample(
        self, energy: StateActionEnergyFn, obs: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """One final candidate per state drawn ∝ exp(-E/T), ``(B, A)``: keeps modes, sharpened (see module)."""
        _check_obs(obs)
        gen = resolve_generator(generator, obs.device)
        act, e = self.population(energy, obs, generator=gen)
        pick = _categorical(-e / self.temperature, 1, gen)[:, 0]  # (B,)
        return act[torch.arange(act.shape[0], device=act.device), pick]  # (B, A)
