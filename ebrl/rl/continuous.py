"""The Boltzmann policy over a box of continuous actions, sampled by Langevin dynamics or MALA.

With E(s, a) = -Q(s, a) (the library's sign convention), the policy is

    π(a|s) ∝ exp(-E(s,a)/α)   on a box [low, high]^A,

and its soft value is V(s) = α log ∫_box exp(-E(s,a)/α) da. The integral is estimated by
importance sampling with a uniform proposal, as in the code of Haarnoja et al. (2017), *Reinforcement
Learning with Deep Energy-Based Policies*: with a_j ~ U(box), j = 1..M,

    V(s) ≈ α [logsumexp_j(-E(s,a_j)/α) - log M] + α log vol(box),

which for the box [-1, 1]^D is α[logsumexp_j Q(s,a_j)/α - log M + D log 2].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ebrl._checks import (
    check_energy_output,
    check_finite,
    check_int,
    check_positive,
    check_tensor,
    resolve_generator,
)
from ebrl.energy.base import EnergyFn
from ebrl.energy.nets import StateActionEnergy
from ebrl.rl.box import ActionBox
from ebrl.samplers import MALA, Langevin
from ebrl.samplers.base import energy_and_grad

StateActionEnergyFn = Callable[[Tensor, Tensor], Tensor]
"""``energy(obs (B, O), act (B, N, A)) -> (B, N)``: a ``StateActionEnergy`` or any module or function
with that contract (e.g. the maximum of twin critics' energies)."""

Method = Literal["langevin", "mala"]


def _conditioned(energy: StateActionEnergyFn, obs: Tensor, n: int) -> EnergyFn:
    """``a (B*N, A) -> E(obs, a) (B*N,)`` for a sampler; row ``b*N + j`` is candidate j of state b."""
    if isinstance(energy, StateActionEnergy):
        return energy.at(obs, n)
    _check_energy_fn(energy)
    b = obs.shape[0]

    def fn(act: Tensor) -> Tensor:
        act = act.reshape(b, n, -1)  # (B*N, A) -> (B, N, A)
        out = check_energy_output(energy(obs, act), (b, n), who="energy", input_shape=act.shape)  # (B, N)
        return out.reshape(b * n)  # (B, N) -> (B*N,)

    return fn


def _check_energy_fn(energy: object) -> None:
    if not callable(energy):
        raise TypeError(
            f"energy must be a StateActionEnergy or a callable (obs, act) -> E, got {type(energy).__name__}"
        )


def _evaluate(energy: StateActionEnergyFn, obs: Tensor, act: Tensor) -> Tensor:
    """E(obs, act) for ``act (B, N, A)`` -> ``(B, N)``, without the per-call finiteness sync.

    Checks the shapes (free): inputs against a ``StateActionEnergy``, the output of any energy.
    """
    if isinstance(energy, StateActionEnergy):
        energy.check_inputs(obs, act)
        out = energy.forward(obs, act)
    else:
        _check_energy_fn(energy)
        out = energy(obs, act)
    return check_energy_output(out, act.shape[:-1], who="energy", input_shape=act.shape)


def _check_obs(obs: Tensor) -> Tensor:
    """Require finite observations ``(B, O)`` (one device synchronisation)."""
    check_tensor("obs", obs, min_dim=2)
    if obs.dim() != 2:
        raise ValueError(f"obs must have shape (B, O), got {tuple(obs.shape)}")
    return check_finite("obs", obs)


@dataclass(frozen=True)
class ContinuousBoltzmannPolicy:
    """π(a|s) ∝ exp(-E(s,a)/α) on an action box, sampled by Langevin dynamics (or MALA).

    Chains run batched over states × chains: a ``(B, N, A)`` block of actions is flattened to
    ``(B*N, A)`` for the sampler, which conditions on the states by closing over them (see
    ``StateActionEnergy.at``). The sampler's temperature is α and its bounds are the box, so the
    chains target exactly this policy (MALA), or approximately with an O(step_size) bias
    (unadjusted Langevin). Sampling works under ``torch.no_grad()`` (inside SB3's ``predict``):
    the samplers enable gradients locally.

    Example::

        box = ActionBox.symmetric(2)
        pi = ContinuousBoltzmannPolicy(box, alpha=0.1, step_size=0.002, n_steps=10, n_proposals=32)
        a = pi.sample(critic, obs, n=4, generator=g)       # (B, 4, 2)
        a_star = pi.mode(critic, obs)                      # (B, 2)
        v = pi.soft_value(critic, obs, n_samples=32)       # (B,)

    Args:
        box: the action box; its bounds must be finite.
        alpha: the temperature α > 0.
        step_size: the step size of ``ebrl.samplers.Langevin`` (or ``MALA``), run at temperature α.
        n_steps: sampler steps per call.
        method: ``"langevin"`` (unadjusted, cheap) or ``"mala"`` (Metropolis-adjusted: exact
            for the truncated target, proposals outside the box are rejected).
        boundary: for ``"langevin"``, ``"reflect"`` at the box walls (keeps the density near the
            walls right as ε → 0) or ``"clamp"`` (piles mass on the walls).
        grad_clip: for ``"langevin"``, clamp each element of ∇_a E to [-c, c]; ``None`` = off.
        compile: for ``"langevin"``, run the loop through ``torch.compile`` (``Langevin(compile=True)``):
            worth it for few chains on a GPU, where the eager loop is bound by kernel launches.
        n_proposals: where ``sample`` starts its chains when no ``init`` is given. ``0``: uniformly
            in the box. ``K > 0``: by importance resampling, each chain starts at one of K uniform
            candidates drawn with probability ∝ exp(-E/α) (one batched energy evaluation, no
            gradient), so the chains start near the target, across all its modes, and need
            fewer Langevin steps.
        mode_candidates: uniform candidates per state scored by ``mode`` (one batched evaluation).
        mode_starts: the lowest-energy candidates that ``mode`` refines by gradient descent.
        mode_steps: descent steps for ``mode``.
        mode_step_init, mode_step_final: the first and last descent step, as fractions of the box
            width; the step decays geometrically in between.
    """

    box: ActionBox
    alpha: float = 1.0
    step_size: float = 0.01
    n_steps: int = 20
    method: Method = "langevin"
    boundary: Literal["reflect", "clamp"] = "reflect"
    grad_clip: float | None = None
    compile: bool = False
    n_proposals: int = 0
    mode_candidates: int = 256
    mode_starts: int = 4
    mode_steps: int = 30
    mode_step_init: float = 0.1
    mode_step_final: float = 1e-3

    def __post_init__(self) -> None:
        if not isinstance(self.box, ActionBox):
            raise TypeError(f"box must be an ActionBox, got {type(self.box).__name__}")
        check_positive("alpha", self.alpha)
        check_positive("step_size", self.step_size)
        check_int("n_steps", self.n_steps)
        if self.method not in ("langevin", "mala"):
            raise ValueError(f"method must be 'langevin' or 'mala', got '{self.method}'")
        if self.boundary not in ("reflect", "clamp"):
            raise ValueError(f"boundary must be 'reflect' or 'clamp', got '{self.boundary}'")
        if self.grad_clip is not None:
            check_positive("grad_clip", self.grad_clip)
            if self.method == "mala":
                raise ValueError("grad_clip applies to method='langevin' only; MALA must use the exact gradient")
        if self.compile and self.method == "mala":
            raise ValueError("compile applies to method='langevin' only")
        check_int("n_proposals", self.n_proposals, minimum=0)
        check_int("mode_candidates", self.mode_candidates)
        check_int("mode_starts", self.mode_starts)
        if self.mode_starts > self.mode_candidates:
            raise ValueError(
                f"mode_starts ({self.mode_starts}) must not exceed mode_candidates ({self.mode_candidates})"
            )
        check_int("mode_steps", self.mode_steps)
        check_positive("mode_step_init", self.mode_step_init)
        check_positive("mode_step_final", self.mode_step_final)

    def sampler(self) -> Langevin | MALA:
        """The sampler that ``sample`` runs: temperature α, bounds the box."""
        bounds = (self.box.low, self.box.high)
        if self.method == "mala":
            return MALA(step_size=self.step_size, n_steps=self.n_steps, temperature=self.alpha, bounds=bounds)
        return Langevin(
            step_size=self.step_size,
            n_steps=self.n_steps,
            temperature=self.alpha,
            grad_clip=self.grad_clip,
            bounds=bounds,
            boundary=self.boundary,
            compile=self.compile,
        )

    def sample(
        self,
        energy: StateActionEnergyFn,
        obs: Tensor,
        *,
        n: int = 1,
        init: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw ``n`` actions per state from π(·|s), shape ``(B, n, A)``.

        Args:
            energy: E(s, a), see ``StateActionEnergyFn``.
            obs: states, ``(B, O)``.
            n: chains per state.
            init: where the chains start, ``(B, n, A)`` inside the box (persistent chains: pass
                the previous call's result); ``None`` starts them as ``n_proposals`` says.
            generator: the only source of randomness (a fresh OS-seeded one when ``None``).
        """
        _check_obs(obs)
        check_int("n", n)
        b, a_dim = obs.shape[0], self.box.dim
        gen = resolve_generator(generator, obs.device)
        if init is None and self.n_proposals == 0:
            a0 = self.box.uniform((b, n), device=obs.device, dtype=obs.dtype, generator=gen)  # (B, N, A)
        elif init is None:
            a0 = self._resample(energy, obs, n, gen)  # (B, N, A)
        else:
            a0 = self._check_init(init, (b, n, a_dim))
        x = self.sampler()(_conditioned(energy, obs, n), a0.reshape(b * n, a_dim), generator=gen)  # (B*N, A)
        return x.reshape(b, n, a_dim)  # (B*N, A) -> (B, N, A)

    def mode(
        self, energy: StateActionEnergyFn, obs: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """The most probable (lowest-energy) action per state, ``(B, A)``.

        Scores ``mode_candidates`` uniform actions per state in one batched evaluation, refines the
        ``mode_starts`` lowest-energy ones by projected sign-gradient descent (each coordinate
        moves against its gradient by a step that decays geometrically from ``mode_step_init`` to
        ``mode_step_final`` box widths, clamped to the box, so the result does not depend on the
        energy's scale and minima on a wall are reached) and returns the lowest-energy end point.
        The generator only draws the candidates: pass one with a fixed seed for a deterministic
        result.
        """
        _check_obs(obs)
        b, s, c, a_dim = obs.shape[0], self.mode_starts, self.mode_candidates, self.box.dim
        gen = resolve_generator(generator, obs.device)
        cand = self.box.uniform((b, c), device=obs.device, dtype=obs.dtype, generator=gen)  # (B, C, A)
        with torch.no_grad():
            e_cand = _evaluate(energy, obs, cand)  # (B, C)
        idx = e_cand.topk(s, dim=1, largest=False).indices  # (B, S)
        x = torch.gather(cand, 1, idx.unsqueeze(-1).expand(b, s, a_dim)).reshape(b * s, a_dim)  # (B*S, A)
        low, high = self.box.tensors(device=obs.device, dtype=obs.dtype)
        fn, ratio = _conditioned(energy, obs, s), self.mode_step_final / self.mode_step_init
        for t in range(self.mode_steps):
            step = self.mode_step_init * ratio ** (t / max(self.mode_steps - 1, 1))
            _, _, grad = energy_and_grad(fn, x)  # (B*S, A)
            x = torch.maximum(torch.minimum(x - step * (high - low) * grad.sign(), high), low)
        x = x.reshape(b, s, a_dim)  # (B*S, A) -> (B, S, A)
        with torch.no_grad():
            e = _evaluate(energy, obs, x)  # (B, S)
        check_finite("energy at the mode candidates", e)
        best = e.argmin(dim=1)  # (B,)
        return x[torch.arange(b, device=x.device), best]  # (B, A)

    def soft_value(
        self,
        energy: StateActionEnergyFn,
        obs: Tensor,
        *,
        n_samples: int = 16,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The importance-sampled soft value V(s), ``(B,)``.

        V(s) ≈ α [logsumexp_j(-E(s,a_j)/α) - log M] + α log vol(box), a_j ~ U(box), M =
        ``n_samples``. Consistent as M → ∞; for finite M it is biased low (Jensen) by about
        the variance of the importance weights over 2M. Differentiable in the energy's parameters.
        """
        _check_obs(obs)
        check_int("n_samples", n_samples)
        b = obs.shape[0]
        gen = resolve_generator(generator, obs.device)
        act = self.box.uniform((b, n_samples), device=obs.device, dtype=obs.dtype, generator=gen)  # (B, M, A)
        e = _evaluate(energy, obs, act)  # (B, M)
        log_mean_w = torch.logsumexp(-e / self.alpha, dim=1) - math.log(n_samples)  # (B,)
        return self.alpha * (log_mean_w + self.box.log_volume)

    def _resample(self, energy: StateActionEnergyFn, obs: Tensor, n: int, gen: torch.Generator) -> Tensor:
        """Chain starts ``(B, N, A)``: for each chain, one of K uniform candidates drawn ∝ exp(-E/α)."""
        b, k, a_dim = obs.shape[0], self.n_proposals, self.box.dim
        cand = self.box.uniform((b, n * k), device=obs.device, dtype=obs.dtype, generator=gen)  # (B, N*K, A)
        with torch.no_grad():
            logits = -_evaluate(energy, obs, cand).reshape(b, n, k) / self.alpha  # (B, N*K) -> (B, N, K)
        u = torch.rand(logits.shape, generator=gen, device=obs.device, dtype=obs.dtype)
        gumbel = -torch.log(-torch.log(u.clamp_min(torch.finfo(u.dtype).tiny)))  # (B, N, K)
        pick = (logits + gumbel).argmax(dim=2)  # (B, N): Gumbel-max draw of a candidate index
        cand = cand.reshape(b, n, k, a_dim)  # (B, N*K, A) -> (B, N, K, A)
        return torch.gather(cand, 2, pick[:, :, None, None].expand(b, n, 1, a_dim)).squeeze(2)  # (B, N, A)

    def _check_init(self, init: Tensor, shape: tuple[int, int, int]) -> Tensor:
        check_tensor("init", init, min_dim=3)
        if tuple(init.shape) != shape:
            raise ValueError(f"init must have shape (B, n, A) = {shape}, got {tuple(init.shape)}")
        check_finite("init", init)
        low, high = self.box.tensors(device=init.device, dtype=init.dtype)
        if not bool(((init >= low) & (init <= high)).all()):
            raise ValueError(f"init must lie inside the action box [{self.box.low}, {self.box.high}]")
        return init.detach()
