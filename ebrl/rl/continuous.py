"""The Boltzmann policy over a box of continuous actions.

With E(s, a) = -Q(s, a) (the library's sign convention), the policy is

    π(a|s) ∝ exp(-E(s,a)/α)   on a box [low, high]^A,

its soft value is V(s) = α log ∫_box exp(-E(s,a)/α) da and its entropy H(s) = E_π[E/α] + V(s)/α. All three
come from one run of ``ebrl.rl.ActionSampler`` (tempered sequential Monte Carlo with MALA moves), which reads
the energy only through E/α: scaling Q and α together changes nothing. The temperature α is an argument of
every call, not a field, so that an agent's learnt α is the only one there is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

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
from ebrl.rl.sampler import ActionSampler, PolicySample, Proposal
from ebrl.samplers.base import energy_and_grad

StateActionEnergyFn = Callable[[Tensor, Tensor], Tensor]
"""``energy(obs (B, O), act (B, N, A)) -> (B, N)``: a ``StateActionEnergy`` or any module or function
with that contract (e.g. the maximum of twin critics' energies)."""

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


def _check_obs_shape(obs: Tensor) -> Tensor:
    """Require observations ``(B, O)``; free (finiteness is checked with the sampler's one synchronisation)."""
    check_tensor("obs", obs, min_dim=2)
    if obs.dim() != 2:
        raise ValueError(f"obs must have shape (B, O), got {tuple(obs.shape)}")
    return obs


def _check_obs(obs: Tensor) -> Tensor:
    """Require finite observations ``(B, O)`` (one device synchronisation)."""
    return check_finite("obs", _check_obs_shape(obs))


ACT_SAMPLER = ActionSampler()
"""The default sampler of ``sample`` and ``run``."""

VALUE_SAMPLER = ActionSampler(n_particles=64, n_levels=64, n_moves=2, ess_fraction=0.8)
"""The default sampler of ``soft_value`` and ``entropy``: more particles and gentler tempering than acting needs,
because log Z is biased low by about half its variance. Its bias stays below 0.1 nats per action dimension on
quadratic energies of curvature 1 to 10^4 in 1 to 17 dimensions (see tests/test_policy_sampler.py)."""


@dataclass(frozen=True)
class ContinuousBoltzmannPolicy:
    """π(a|s) ∝ exp(-E(s,a)/α) on an action box: draws, soft value, entropy and mode.

    Draws come from ``sampler`` (an ``ActionSampler``: tempered SMC with MALA moves, batched over states and
    particles, scale-free). ``soft_value`` and ``entropy`` use ``value_sampler``, tuned for an accurate
    log-normaliser. Sampling works under ``torch.no_grad()`` (inside SB3's ``predict``): gradients with
    respect to the actions are enabled locally.

    Example::

        box = ActionBox.symmetric(2)
        pi = ContinuousBoltzmannPolicy(box)
        a = pi.sample(critic, obs, alpha=0.1, n=4, generator=g)     # (B, 4, 2)
        v = pi.soft_value(critic, obs, alpha=0.1, generator=g)      # (B,)
        out = pi.run(critic, obs, alpha=0.1, generator=g)           # draws, log Z, entropy, diagnostics
        a_star = pi.mode(critic, obs)                               # (B, 2)

    Args:
        box: the action box; its bounds must be finite.
        sampler: how ``sample`` and ``run`` draw actions.
        value_sampler: how ``soft_value`` and ``entropy`` estimate log Z (``VALUE_SAMPLER`` by default).
        mode_candidates: uniform candidates per state scored by ``mode`` (one batched evaluation).
        mode_starts: the lowest-energy candidates that ``mode`` refines by gradient descent.
        mode_steps: descent steps for ``mode``.
        mode_step_init, mode_step_final: the first and last descent step, as fractions of the box
            width; the step decays geometrically in between.
    """

    box: ActionBox
    sampler: ActionSampler = ACT_SAMPLER
    value_sampler: ActionSampler = VALUE_SAMPLER
    mode_candidates: int = 256
    mode_starts: int = 4
    mode_steps: int = 30
    mode_step_init: float = 0.1
    mode_step_final: float = 1e-3

    def __post_init__(self) -> None:
        if not isinstance(self.box, ActionBox):
            raise TypeError(f"box must be an ActionBox, got {type(self.box).__name__}")
        for name in ("sampler", "value_sampler"):
            if not isinstance(getattr(self, name), ActionSampler):
                raise TypeError(f"{name} must be an ebrl.rl.ActionSampler, got {type(getattr(self, name)).__name__}")
        check_int("mode_candidates", self.mode_candidates)
        check_int("mode_starts", self.mode_starts)
        if self.mode_starts > self.mode_candidates:
            raise ValueError(
                f"mode_starts ({self.mode_starts}) must not exceed mode_candidates ({self.mode_candidates})"
            )
        check_int("mode_steps", self.mode_steps)
        check_positive("mode_step_init", self.mode_step_init)
        check_positive("mode_step_final", self.mode_step_final)

    def run(
        self,
        energy: StateActionEnergyFn,
        obs: Tensor,
        *,
        alpha: float | Tensor,
        n: int = 1,
        sampler: ActionSampler | None = None,
        proposal: Proposal | None = None,
        check: bool = True,
        generator: torch.Generator | None = None,
    ) -> PolicySample:
        """One sampler run: ``n`` draws per state ``(B, n, A)``, log Z ``(B,)``, entropy and diagnostics.

        Args:
            energy: E(s, a), see ``StateActionEnergyFn``.
            obs: states, ``(B, O)``.
            alpha: the temperature α > 0: a float, or a scalar tensor (a learnt α, read without a host sync).
            n: draws per state, at most the sampler's ``n_particles``.
            sampler: overrides ``self.sampler`` for this call.
            proposal: a reference distribution with a density (e.g. an amortised sampler); ``None`` = uniform.
            check: see ``ActionSampler.run`` (``False``: no synchronisation; the caller checks ``diverged``).
            generator: the only source of randomness (a fresh OS-seeded one when ``None``).

        One host synchronisation per call. Raises ``DivergenceError`` (never returns NaN actions) if the energy
        is NaN at a sampled action, and warns once (``SamplerWarning``) when draws cannot be trusted.
        """
        obs = _check_obs_shape(obs)
        checks = [("obs", obs)]
        if isinstance(alpha, Tensor):
            if alpha.numel() != 1:
                raise ValueError(f"alpha must be a scalar, got a tensor of shape {tuple(alpha.shape)}")
            a = alpha.detach().reshape(1)
            checks.append(("alpha (a temperature > 0)", torch.where(a > 0, a, math.nan)))
            alpha = alpha.detach().reshape(())
        else:
            check_positive("alpha", alpha)
        cfg = self.sampler if sampler is None else sampler
        b = obs.shape[0]

        def on_actions(act: Tensor) -> Tensor:
            return _evaluate(energy, obs, act)  # (B, N, A) -> (B, N)

        draw = None
        if proposal is not None:
            def draw(k: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
                return proposal.sample(obs, k, gen)

        return cfg.run(
            on_actions, self.box, batch=b, alpha=alpha, n=n, device=obs.device, dtype=obs.dtype,
            proposal=draw, checks=checks, check=check, generator=generator,
        )

    def sample(
        self,
        energy: StateActionEnergyFn,
        obs: Tensor,
        *,
        alpha: float | Tensor,
        n: int = 1,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw ``n`` actions per state from π(·|s), shape ``(B, n, A)`` (see ``run``)."""
        return self.run(energy, obs, alpha=alpha, n=n, generator=generator).actions

    def soft_value(
        self,
        energy: StateActionEnergyFn,
        obs: Tensor,
        *,
        alpha: float | Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """V(s) = α log ∫_box exp(-E(s,a)/α) da, ``(B,)``, estimated with ``value_sampler``.

        The estimate of Z is unbiased; log Z, hence V, is biased low by about half the variance of log Z.
        """
        out = self.run(energy, obs, alpha=alpha, sampler=self.value_sampler, generator=generator)
        return _as_alpha(alpha, out.log_z) * out.log_z

    def entropy(
        self,
        energy: StateActionEnergyFn,
        obs: Tensor,
        *,
        alpha: float | Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """H(π(·|s)) = E_π[E/α] + log Z in nats, ``(B,)``, estimated with ``value_sampler``."""
        return self.run(energy, obs, alpha=alpha, sampler=self.value_sampler, generator=generator).entropy

    def mode(
        self, energy: StateActionEnergyFn, obs: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """The most probable (lowest-energy) action per state, ``(B, A)``; independent of α.

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


def _as_alpha(alpha: float | Tensor, like: Tensor) -> Tensor | float:
    return alpha.to(like.dtype) if isinstance(alpha, Tensor) else alpha
