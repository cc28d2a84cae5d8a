"""The Boltzmann policy over a finite set of actions: an exact softmax of -E/α.

With E(s, a) = -Q(s, a) (the library's sign convention),

    π(a|s) = exp(-E(s,a)/α) / Σ_b exp(-E(s,b)/α),     V(s) = α log Σ_a exp(-E(s,a)/α) = α logsumexp(Q/α),

and V(s) = E_π[Q(s,a)] + α H(π(·|s)): the soft value is the expected value plus α times the entropy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ebrl._checks import check_positive, check_tensor, resolve_generator


def _check_energies(energies: Tensor) -> Tensor:
    """Require ``(B, K)`` energies without NaN or -inf, each row with a finite entry. One device sync.

    +inf is allowed: it gives an action probability zero (an action mask).
    """
    check_tensor("energies", energies, min_dim=2)
    if energies.dim() != 2 or energies.shape[1] == 0:
        raise ValueError(
            f"energies must have shape (B, K): one energy per state and action, got {tuple(energies.shape)}"
        )
    bad = torch.isnan(energies) | (energies == -math.inf)
    if bool(bad.any() | torch.isinf(energies).all(dim=1).any()):
        raise ValueError(
            "energies must not hold NaN or -inf, and each row needs at least one finite energy "
            "(+inf masks an action); got a row that breaks this"
        )
    return energies


def _check_alpha(alpha: float | Tensor) -> float | Tensor:
    """A float α must be > 0 (checked here); a tensor α is used as is (checking it would synchronise)."""
    if isinstance(alpha, Tensor):
        if alpha.numel() != 1:
            raise ValueError(f"alpha must be a scalar, got a tensor of shape {tuple(alpha.shape)}")
        return alpha.reshape(())
    return check_positive("alpha", alpha)


@dataclass(frozen=True)
class DiscreteBoltzmannPolicy:
    """π(a|s) ∝ exp(-E(s,a)/α) over K actions, computed exactly.

    Every method takes ``energies`` of shape ``(B, K)``: row b holds E(s_b, a) for the K actions.

    Every method that depends on the temperature takes it as ``alpha``: a float, or a scalar tensor (a learnt
    α, used without a host synchronisation). The policy object itself holds no α, so an agent's α is the
    only one there is.

    Example::

        pi = DiscreteBoltzmannPolicy()
        e = energy_net(obs)                             # (B, K)
        a = pi.sample(e, alpha=0.1, generator=g)        # (B,) int64
        v = pi.soft_value(e, alpha=0.1)                 # (B,)

    α → 0 gives the greedy policy, large α the uniform one.

    Args:
        validate: check every ``energies`` argument (no NaN or -inf, a finite entry per row), which reads one
            value on the host per call. A training loop that checks its loss once per step anyway (a NaN
            energy makes the loss NaN) passes ``validate=False`` to keep to that one host synchronisation.
    """

    validate: bool = True

    def _energies(self, energies: Tensor) -> Tensor:
        if self.validate:
            return _check_energies(energies)
        if energies.dim() != 2:
            raise ValueError(f"energies must have shape (B, K), got {tuple(energies.shape)}")
        return energies

    def logits(self, energies: Tensor, *, alpha: float | Tensor) -> Tensor:
        """Unnormalised log-probabilities -E/α, ``(B, K)``."""
        return -self._energies(energies) / _check_alpha(alpha)

    def log_probs(self, energies: Tensor, *, alpha: float | Tensor) -> Tensor:
        """log π(a|s), ``(B, K)``."""
        return torch.log_softmax(self.logits(energies, alpha=alpha), dim=1)

    def probs(self, energies: Tensor, *, alpha: float | Tensor) -> Tensor:
        """π(a|s), ``(B, K)``; each row sums to one."""
        return torch.softmax(self.logits(energies, alpha=alpha), dim=1)

    def entropy(self, energies: Tensor, *, alpha: float | Tensor) -> Tensor:
        """H(π(·|s)) = -Σ_a π log π, ``(B,)``."""
        log_p = self.log_probs(energies, alpha=alpha)  # (B, K)
        return -(log_p.exp() * log_p).sum(dim=1)

    def log_alpha_newton_step(
        self,
        energies: Tensor,
        *,
        log_alpha: Tensor,
        target_entropy: float,
        max_step: float = 0.5,
    ) -> Tensor:
        """One Newton step on log α towards the α whose mean entropy over the batch is ``target_entropy``.

        The mean entropy H̄(u) = mean_b H(π_α(·|s_b)) with u = log α increases with u, and its derivative is
        exact: dH/du = Var_π(E/α), the variance of the scaled energies under π. The step
        u ← u - (H̄(u) - target) / mean_b Var_π(E/α) is clipped to ±``max_step`` (a factor e^0.5 by default),
        which also handles the flat ends (a uniform or a deterministic policy, where the variance vanishes).

        The result depends on the energies only through E/α, so scaling E and α together changes nothing
        (scale invariance), and it needs no learning rate. No host synchronisation.

        Args:
            energies: ``(B, K)``, treated as constants.
            log_alpha: ``()``, the current log α.
            target_entropy: the target mean entropy in nats, in (0, log K).
            max_step: the largest change of log α in one step, > 0.

        Returns:
            The new log α, ``()``, detached.
        """
        check_positive("max_step", max_step)
        log_k = math.log(energies.shape[-1]) if energies.dim() == 2 else math.nan
        if not (0.0 < float(target_entropy) < log_k):
            raise ValueError(
                f"target_entropy must lie in (0, log K) = (0, {log_k:.4g}) nats for K = {energies.shape[-1]} "
                f"actions, got {target_entropy!r}"
            )
        u = log_alpha.detach().reshape(())
        log_p = self.log_probs(energies.detach(), alpha=u.exp())  # (B, K)
        p = log_p.exp()
        scaled = torch.where(p > 0, energies.detach() / u.exp(), torch.zeros_like(log_p))  # E/α, masked → 0
        mean = (p * scaled).sum(dim=1, keepdim=True)  # (B, 1)
        var = (p * (scaled - mean).square()).sum(dim=1)  # (B,)  dH/du per state
        entropy = -(p * torch.where(p > 0, log_p, torch.zeros_like(log_p))).sum(dim=1)  # (B,)
        gap = entropy.mean() - target_entropy
        slope = var.mean().clamp_min(torch.finfo(var.dtype).tiny)
        step = (gap / slope).clamp(-max_step, max_step)
        return (u - step).detach()

    def soft_value(self, energies: Tensor, *, alpha: float | Tensor) -> Tensor:
        """V(s) = α logsumexp(-E/α) = α logsumexp(Q/α), exactly, ``(B,)``."""
        return alpha * torch.logsumexp(self.logits(energies, alpha=alpha), dim=1)

    def policy_value(self, energies: Tensor, policy_energies: Tensor, *, alpha: float | Tensor) -> Tensor:
        """The entropy-regularised value of another Boltzmann policy under ``energies``, ``(B,)``.

        With π' = softmax(-``policy_energies``/α): Σ_a π'(a) Q(a) + α H(π'), where Q = -``energies``.
        It equals :meth:`soft_value` when ``policy_energies`` is ``energies`` and is smaller for any
        other π' (the soft value is the maximum over policies). Soft double Q-learning uses it with the
        online network choosing π' and the target network giving Q, which curbs overestimation.
        """
        energies = self._energies(energies)
        log_p = self.log_probs(policy_energies, alpha=alpha)  # (B, K); checks policy_energies
        if log_p.shape != energies.shape:
            raise ValueError(
                f"policy_energies must have the shape of energies {tuple(energies.shape)}, got {tuple(log_p.shape)}"
            )
        terms = log_p.exp() * (-energies - alpha * log_p)  # (B, K)
        return torch.where(log_p > -math.inf, terms, torch.zeros_like(terms)).sum(dim=1)  # masked actions add 0

    def mode(self, energies: Tensor) -> Tensor:
        """The most probable (lowest-energy) action, ``(B,)`` int64."""
        return self._energies(energies).argmin(dim=1)

    def sample(
        self, energies: Tensor, *, alpha: float | Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """One action per state drawn from π, ``(B,)`` int64, by the Gumbel-max trick.

        ``argmax_a (-E/α + G_a)`` with G_a ~ Gumbel(0, 1) is distributed as π. Randomness comes
        only from ``generator`` (a fresh OS-seeded one when ``None``).
        """
        logits = self.logits(energies, alpha=alpha)  # (B, K)
        gen = resolve_generator(generator, logits.device)
        u = torch.rand(logits.shape, generator=gen, device=logits.device, dtype=logits.dtype)
        gumbel = -torch.log(-torch.log(u.clamp_min(torch.finfo(u.dtype).tiny)))  # (B, K)
        return (logits + gumbel).argmax(dim=1)
