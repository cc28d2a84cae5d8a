"""A scale-free, self-diagnosing sampler for Boltzmann policies over a box of actions.

For a state s, an energy E(s, a) = -Q(s, a) and a temperature α, the target is

    π(a|s) = exp(-U(a)) / Z(s),   U(a) = E(s, a)/α,   Z(s) = ∫_box exp(-U(a)) da.

Everything below reads the energy only through U = E/α, so scaling Q and α by the same c gives the same
draws for the same generator (up to float rounding): the sampler has no step size in energy units.

**Algorithm: sequential Monte Carlo with adaptive tempering** (Del Moral, Doucet & Jasra 2006; the adaptive
choice of temperatures by effective sample size follows Jasra et al. 2011). For each state, ``n_particles``
particles start from a reference distribution ρ (uniform on the box, or a proposal with a tractable density,
e.g. an amortised sampler network). They then travel through the bridge π_β ∝ ρ · exp(-β U) from β = 0 to
β = 1 in at most ``n_levels`` levels. Each level

1. picks the next β per state: the largest step whose incremental weights exp(-Δβ·U) keep an effective sample
   size of ``ess_fraction`` of the particles (searched on a log grid, batched, no host synchronisation); the
   last level always reaches β = 1, whatever the effective sample size it leaves (and the diagnostics say so);
2. reweights and resamples the particles (systematic resampling), accumulating log Z;
3. moves every particle by ``n_moves`` steps of Metropolis-adjusted Langevin (MALA) that leave π_β invariant,
   preconditioned per state and per action dimension by the particles' spread, with the step scale tuned per
   state towards the acceptance rate ``target_accept``. Preconditioning by the spread is what makes the step
   scale-free: a target 100× sharper shrinks the cloud, hence the step, by 10×.

With a proposal ρ, the first level jumps straight to β = 1 with importance weights exp(-U)/ρ(a) (importance
resampling), and the remaining levels only move the particles at the target.

Why this design rather than a step size in temperature units or a step tuned from the gradient alone: a fixed
step of any kind is unstable on sharp energies and frozen on flat ones, and the sharpness of a Q-function is
not known before sampling; tempering finds it, and it also puts the right mass in each of several modes (MCMC
moves alone keep whatever mass the start gave each mode), and gives Z, hence the soft value
V(s) = α log Z(s) and the entropy H(s) = E_π[U] + log Z(s), as by-products.

Known limits, measured in tests/test_policy_sampler.py: mode weights carry an O(1/N) bias towards equal
weights (a 0.7/0.3 mixture of two sharp 6-D modes gives 0.605 for N = 32 particles and 0.683 for N = 128 with
``ess_fraction=0.8``), and log Z is biased low by about half its variance; both shrink with more particles.

What a call reports (``PolicySample.diagnostics``): the smallest effective sample size over the levels, the
MALA acceptance rate at β = 1, the β reached by adaptive tempering before the last level forced β = 1, the
fraction of particles at the walls, and the drop of the mean U from the reference to π. A call whose states
cannot be trusted (a tiny effective sample size or frozen chains) warns once, naming the setting to raise.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

import torch
from torch import Tensor

from ebrl._checks import DivergenceError, check_int, check_positive, grad_leaf, resolve_generator
from ebrl.rl.box import ActionBox

Kernel = Literal["mala", "langevin"]
Boundary = Literal["reject", "reflect", "clamp"]

_GRID = torch.logspace(-12, 0, 97, dtype=torch.float64)  # candidate fractions of the remaining Δβ (ratio 1.33)
MIN_JUDGED_MOVES = 64  # proposals per state at the target below which the acceptance rate is not judged
_WALL = 1e-3  # a particle within this fraction of the box's width from a wall is "at the wall"


class SamplerWarning(UserWarning):
    """A sampling call produced draws that cannot be trusted (see ``SamplerDiagnostics``)."""


class SamplerDiagnostics(NamedTuple):
    """What one sampling call measured, one value per state (all ``(B,)``).

    Attributes:
        ess: the smallest effective sample size over the levels, as a fraction of ``n_particles`` in (0, 1].
        acceptance: the MALA acceptance rate of the moves at β = 1 (for ``kernel="langevin"``, the rate a
            Metropolis test would have given: the unadjusted chain's bias grows as it falls).
        tempering: the β that adaptive tempering reached before the last level forced β = 1 (1 when it
            reached the target by itself; with a proposal it is always 1).
        at_walls: the fraction of the final particles within 1e-3 box widths of a wall.
        energy_drop: mean U over the reference draws minus mean U over the final particles (units of α).
    """

    ess: Tensor
    acceptance: Tensor
    tempering: Tensor
    at_walls: Tensor
    energy_drop: Tensor


class PolicySample(NamedTuple):
    """The result of ``ActionSampler.run``.

    Attributes:
        actions: ``(B, n, A)``, draws from π(·|s).
        log_z: ``(B,)``, log Z(s) = log ∫_box exp(-E(s,a)/α) da (the SMC estimate, unbiased for Z).
        mean_u: ``(B,)``, E_π[U] estimated on the final particles (self-normalised importance weights when
            the last level makes no move).
        diagnostics: a ``SamplerDiagnostics``.
        diverged: ``()`` bool, whether the energy was NaN or -inf (or its gradient NaN) at a particle; only
            needed with ``check=False``, since a checked run raises instead.
        summary: the diagnostics' means over the states as floats, read in the checked run's one host
            synchronisation (``None`` with ``check=False``): what an agent logs.
    """

    actions: Tensor
    log_z: Tensor
    mean_u: Tensor
    diagnostics: SamplerDiagnostics
    diverged: Tensor
    summary: dict[str, float] | None = None

    @property
    def entropy(self) -> Tensor:
        """H(π(·|s)) = E_π[U] + log Z, ``(B,)``, in nats, for the box the actions live in."""
        return self.mean_u + self.log_z


class Proposal(Protocol):
    """A reference distribution with a tractable density, e.g. an amortised sampler network.

    ``sample(obs (B, O), n, generator) -> (actions (B, n, A) inside the box, log density (B, n))``.
    """

    def sample(self, obs: Tensor, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]: ...


EnergyOnActions = Callable[[Tensor], Tensor]
"""``act (B, N, A) -> E (B, N)`` for fixed states: what the sampler evaluates."""


@dataclass(frozen=True)
class ActionSampler:
    """How a continuous Boltzmann policy draws actions: tempered SMC with preconditioned MALA moves.

    The one place where these settings and their defaults live: ``SoftQ``, ``SoftQPolicy``, ``EnergyPolicy``
    and IBC's Langevin inference all take an ``ActionSampler``. See the module docstring for the algorithm.

    Example::

        sampler = ActionSampler(n_particles=32, n_levels=16)
        out = sampler.run(lambda a: critic(obs, a), box, batch=obs.shape[0], n=4, alpha=0.1, generator=g)
        out.actions      # (B, 4, A)
        out.log_z        # (B,): soft value V = α log Z

    Args:
        n_particles: particles per state, >= 2. More particles give a better log Z and mode weights.
        n_levels: the most tempering levels from the reference to π, >= 1. ``n_levels=1`` with ``n_moves=0`` is
            plain importance resampling from the reference (uniform: the soft-value estimator of Haarnoja
            et al. 2017). Sharp energies in many action dimensions need more levels: the diagnostics say when.
        n_moves: MCMC moves per level, >= 0.
        kernel: ``"mala"`` (Metropolis-adjusted: exact for the target restricted to the box) or ``"langevin"``
            (unadjusted, no rejection: its bias grows as its ``acceptance`` diagnostic falls).
        boundary: ``"reject"`` (MALA: proposals outside the box are rejected), or for ``"langevin"``
            ``"reflect"`` or ``"clamp"`` at the walls.
        grad_clip: bound on each coordinate of the drift, in units of the particles' spread in that
            coordinate (a scale-free clip); ``None`` = off. MALA stays exact with a clipped drift, since the
            Metropolis test uses the same drift both ways.
        ess_fraction: the effective sample size that adaptive tempering keeps at each level, in (0, 1).
        target_accept: the acceptance rate the step scale is tuned to; ``None`` = 0.574 for MALA (its optimum)
            and 0.9 for unadjusted Langevin (a step tuned to 0.574 makes it unstable on a Gaussian; at 0.9 its
            variance on a 2-D Gaussian is inflated by about 35%, the price of no rejection).
        min_ess: a state whose smallest effective sample size falls below this fraction is untrusted.
        min_accept: a state whose acceptance rate at β = 1 falls below this is untrusted (frozen chains); judged
            only when the last level makes at least 64 proposals per state (``n_particles · n_moves``), since
            fewer cannot tell a frozen chain from bad luck (16 proposals at a true rate of 0.3 are all
            rejected once in 300 calls).
    """

    n_particles: int = 32
    n_levels: int = 16
    n_moves: int = 2
    kernel: Kernel = "mala"
    boundary: Boundary = "reject"
    grad_clip: float | None = None
    ess_fraction: float = 0.5
    target_accept: float | None = None
    min_ess: float = 0.05
    min_accept: float = 0.05

    def __post_init__(self) -> None:
        check_int("n_particles", self.n_particles, minimum=2)
        check_int("n_levels", self.n_levels)
        check_int("n_moves", self.n_moves, minimum=0)
        if self.kernel not in ("mala", "langevin"):
            raise ValueError(f"kernel must be 'mala' or 'langevin', got {self.kernel!r}")
        if self.boundary not in ("reject", "reflect", "clamp"):
            raise ValueError(f"boundary must be 'reject', 'reflect' or 'clamp', got {self.boundary!r}")
        if (self.kernel == "mala") != (self.boundary == "reject"):
            raise ValueError(
                f"kernel={self.kernel!r} does not go with boundary={self.boundary!r}: MALA rejects proposals "
                f"outside the box (boundary='reject'); unadjusted Langevin reflects or clamps them"
            )
        if self.grad_clip is not None:
            check_positive("grad_clip", self.grad_clip)
        for name in ("ess_fraction", "target_accept"):
            if name == "target_accept" and self.target_accept is None:
                continue
            value = check_positive(name, getattr(self, name))
            if value >= 1:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        for name in ("min_ess", "min_accept"):
            value = check_positive(name, getattr(self, name), allow_zero=True)
            if value >= 1:
                raise ValueError(f"{name} must be in [0, 1), got {value}")

    # ------------------------------------------------------------------------------------------ public

    def run(
        self,
        energy: EnergyOnActions,
        box: ActionBox,
        *,
        batch: int,
        alpha: float | Tensor,
        n: int = 1,
        device: torch.device,
        dtype: torch.dtype,
        proposal: Callable[[int, torch.Generator], tuple[Tensor, Tensor]] | None = None,
        checks: Sequence[tuple[str, Tensor]] = (),
        check: bool = True,
        generator: torch.Generator | None = None,
    ) -> PolicySample:
        """Sample π ∝ exp(-E/α) for ``batch`` states and return draws, log Z and diagnostics.

        Args:
            energy: ``act (B, N, A) -> E (B, N)``, the energies of N actions for each of the B states.
            box: the action box.
            batch: B.
            alpha: α > 0, a float or a scalar tensor (e.g. a learnt temperature; no host synchronisation).
            n: draws returned per state, 1 <= n <= ``n_particles`` (drawn without replacement from the
                final particles).
            device, dtype: of the actions.
            proposal: ``(N, generator) -> (actions (B, N, A), log density (B, N))``, the reference; ``None``
                = uniform on the box.
            checks: ``(name, tensor)`` inputs that must be finite, checked in the same synchronisation
                (``ValueError`` naming the first that is not).
            check: make the one host synchronisation that raises on divergence or bad ``checks`` and warns
                on untrusted draws. ``False`` makes none: the caller folds ``diverged`` and the diagnostics
                into its own synchronisation (as ``SoftQ.train`` does).
            generator: the only source of randomness (a fresh OS-seeded one when ``None``).

        Returns:
            a ``PolicySample``. Raises ``DivergenceError`` if the energy (or its gradient) was NaN or -inf
            at any particle. Makes one host synchronisation, at the end.
        """
        check_int("n", n)
        if n > self.n_particles:
            raise ValueError(f"n ({n}) must not exceed n_particles ({self.n_particles})")
        gen = resolve_generator(generator, torch.device(device))
        out = _run(self, energy, box, batch, alpha, n, torch.device(device), dtype, proposal, gen)
        if check:
            out = out._replace(summary=_check(self, out, checks))
        return out

    @property
    def accept_rate(self) -> float:
        """The acceptance rate the step is tuned to (``target_accept`` or the kernel's default)."""
        if self.target_accept is not None:
            return self.target_accept
        return 0.574 if self.kernel == "mala" else 0.9

    def trusted(self, diagnostics: SamplerDiagnostics) -> Tensor:
        """Per-state mask ``(B,)`` of the states whose draws can be trusted."""
        ok = diagnostics.ess >= self.min_ess
        if self.n_moves * self.n_particles >= MIN_JUDGED_MOVES:
            ok = ok & (diagnostics.acceptance >= self.min_accept)
        return ok


# ---------------------------------------------------------------------------------------------- kernels


def _u_and_grad(energy: EnergyOnActions, x: Tensor, alpha: Tensor, need_grad: bool) -> tuple[Tensor, Tensor | None]:
    """U = E/α ``(B, N)`` and ∇_a U ``(B, N, A)`` (or ``None``), without a graph on the results."""
    if not need_grad:
        with torch.no_grad():
            return energy(x) / alpha, None
    with torch.enable_grad():
        leaf = grad_leaf(x)
        u = energy(leaf) / alpha  # (B, N)
        if not u.requires_grad:  # an energy that does not depend on the action
            return u.detach(), torch.zeros_like(x)
        (grad,) = torch.autograd.grad(u.sum(), leaf)
    return u.detach(), grad


def _bad(u: Tensor, grad: Tensor | None) -> Tensor:
    """``()`` bool: any NaN or -inf energy, or a NaN gradient where the energy is finite."""
    bad = (torch.isnan(u) | (u == -math.inf)).any()
    if grad is not None:
        bad = bad | (torch.isnan(grad).any(-1) & torch.isfinite(u)).any()
    return bad


def _next_delta(u: Tensor, remaining: Tensor, rho: float, force: bool) -> Tensor:
    """The tempering increment per state ``(B,)``: the largest Δ <= ``remaining`` on a log grid whose weights
    exp(-Δ·U) keep ESS >= ρ·N; ``remaining`` itself when ``force``."""
    if force:
        return remaining
    grid = remaining[:, None] * _GRID.to(device=u.device, dtype=u.dtype)  # (B, G)
    shifted = u - u.min(dim=1, keepdim=True).values  # (B, N), >= 0
    lw = -grid[:, :, None] * shifted[:, None, :]  # (B, G, N)
    log_ess = 2 * torch.logsumexp(lw, dim=2) - torch.logsumexp(2 * lw, dim=2)  # (B, G)
    ok = log_ess >= math.log(rho * u.shape[1])  # (B, G), true for a prefix of the grid (ESS falls with Δ)
    k = ok.sum(dim=1).clamp_min(1) - 1  # (B,) index of the largest admissible grid point
    return grid.gather(1, k[:, None]).squeeze(1)


def _systematic(w: Tensor, gen: torch.Generator) -> Tensor:
    """Systematic resampling: ``(B, N)`` ancestor indices drawn ∝ the normalised weights ``w (B, N)`` per row."""
    b, n = w.shape
    cdf = w.cumsum(dim=1)  # (B, N)
    u0 = torch.rand((b, 1), generator=gen, device=w.device, dtype=w.dtype)
    points = (torch.arange(n, device=w.device, dtype=w.dtype)[None, :] + u0) / n  # (B, N)
    idx = torch.searchsorted(cdf.contiguous(), (points * cdf[:, -1:]).contiguous())
    return idx.clamp_max(n - 1)


def _gather(t: Tensor, idx: Tensor) -> Tensor:
    """Rows of ``t (B, N, ...)`` picked by ``idx (B, N)``."""
    if t.dim() == 2:
        return t.gather(1, idx)
    return t.gather(1, idx[:, :, None].expand(-1, -1, t.shape[2]))


def _spread(x: Tensor, w: Tensor, floor: Tensor) -> Tensor:
    """Standard deviation per state and dimension ``(B, 1, A)`` under the normalised weights ``w (B, N)``.

    At least ``floor (A,)`` and 1e-3 of the unweighted spread: when the weights fall on one particle, the
    weighted spread is 0 and would freeze the moves; the step-size adaptation then shrinks the step from there.
    """
    w = w[:, :, None]  # (B, N) -> (B, N, 1)
    mean = (w * x).sum(dim=1, keepdim=True)  # (B, 1, A)
    var = (w * (x - mean).square()).sum(dim=1, keepdim=True)  # (B, 1, A)
    cloud = x.std(dim=1, keepdim=True)  # (B, 1, A), unweighted
    return var.sqrt().maximum(1e-3 * cloud).maximum(floor)


def _run(
    cfg: ActionSampler,
    energy: EnergyOnActions,
    box: ActionBox,
    b: int,
    alpha: float | Tensor,
    n_out: int,
    device: torch.device,
    dtype: torch.dtype,
    proposal: Callable[[int, torch.Generator], tuple[Tensor, Tensor]] | None,
    gen: torch.Generator,
) -> PolicySample:
    n, a_dim = cfg.n_particles, box.dim
    alpha_t = torch.as_tensor(alpha, device=device, dtype=dtype)
    low, high = box.tensors(device=device, dtype=dtype)  # (A,), (A,)
    width = high - low
    floor = max(1e-7, 100 * torch.finfo(dtype).eps) * width  # finer steps drown in the rounding of x
    need_grad = cfg.n_moves > 0
    sentinels: list[Tensor] = []

    if proposal is None:
        x = low + width * torch.rand((b, n, a_dim), generator=gen, device=device, dtype=dtype)  # (B, N, A)
        log_ref = None
    else:
        x, log_ref = proposal(n, gen)  # (B, N, A), (B, N)
    u, grad = _u_and_grad(energy, x, alpha_t, need_grad)  # (B, N), (B, N, A)
    sentinels.append(_bad(u, grad))
    u_start = u.mean(dim=1)  # (B,)

    log_z = torch.full((b,), box.log_volume, device=device, dtype=dtype) if proposal is None else None
    beta = torch.zeros(b, device=device, dtype=dtype)
    beta_before_last = beta
    min_ess = torch.ones(b, device=device, dtype=dtype)
    log_eps = torch.full((b,), math.log(1.36) - math.log(a_dim) / 3, device=device, dtype=dtype)  # MALA scaling
    accepted = torch.zeros(b, device=device, dtype=dtype)
    tries = 0
    log_n = math.log(n)

    for level in range(cfg.n_levels):
        last = level == cfg.n_levels - 1
        if level == 0 and log_ref is not None:
            lw = -u - log_ref  # importance weights of the proposal: straight to β = 1
            log_z = torch.logsumexp(lw, dim=1) - log_n
            delta = 1 - beta
        elif log_ref is not None:  # at the target already: the remaining levels only move the particles
            delta = torch.zeros_like(beta)
            lw = torch.zeros_like(u)
        else:
            delta = _next_delta(u, 1 - beta, cfg.ess_fraction, force=last)  # (B,)
            lw = -delta[:, None] * u  # (B, N)
            assert log_z is not None
            log_z = log_z + torch.logsumexp(lw, dim=1) - log_n
        if last:
            beta_before_last = beta
        w = torch.softmax(lw, dim=1)  # (B, N), the normalised weights, used four ways below
        ess = 1 / (n * w.square().sum(dim=1))  # (B,), as a fraction of the particles
        if last and cfg.n_moves == 0:  # E_π[U] by self-normalised weights: less noisy than after resampling
            mean_u = (w * u).sum(dim=1)
        min_ess = torch.minimum(min_ess, ess)
        scale = _spread(x, w, floor)  # (B, 1, A), the spread of π at the new β
        idx = _systematic(w, gen)  # (B, N)
        idx = torch.where((delta > 0)[:, None], idx, torch.arange(n, device=device)[None, :])
        x, u = _gather(x, idx), _gather(u, idx)
        grad = _gather(grad, idx) if grad is not None else None
        beta = beta + delta
        if last:  # the acceptance diagnostic covers the moves at the target only
            accepted, tries = torch.zeros_like(accepted), 0
        for _ in range(cfg.n_moves):
            assert grad is not None
            x, u, grad, acc, bad = _move(cfg, energy, x, u, grad, beta, scale, log_eps, alpha_t, (low, high), gen)
            sentinels.append(bad)
            rate = acc.to(dtype).mean(dim=1)  # (B,)
            log_eps = log_eps + 1.5 * (rate - cfg.accept_rate)
            accepted, tries = accepted + rate, tries + 1

    acceptance = accepted / tries if tries else torch.ones_like(accepted)
    assert log_z is not None
    keep = torch.rand((b, n), generator=gen, device=device, dtype=dtype).argsort(dim=1)[:, :n_out]  # (B, n)
    actions = _gather(x, keep)  # (B, n, A)
    near = ((x - low) < _WALL * width) | ((high - x) < _WALL * width)  # (B, N, A)
    diagnostics = SamplerDiagnostics(
        ess=min_ess,
        acceptance=acceptance,
        tempering=torch.ones_like(beta) if proposal is not None else beta_before_last,
        at_walls=near.any(dim=2).to(dtype).mean(dim=1),
        energy_drop=u_start - u.mean(dim=1),
    )
    if cfg.n_moves > 0:
        mean_u = u.mean(dim=1)
    return PolicySample(actions, log_z, mean_u, diagnostics, torch.stack(sentinels).any())


def _move(
    cfg: ActionSampler,
    energy: EnergyOnActions,
    x: Tensor,
    u: Tensor,
    grad: Tensor,
    beta: Tensor,
    scale: Tensor,
    log_eps: Tensor,
    alpha: Tensor,
    lohi: tuple[Tensor, Tensor],
    gen: torch.Generator,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One preconditioned MALA (or unadjusted Langevin) move targeting exp(-β U) on the box.

    With M = diag(scale²) and step ε per state: y = x - ε M β ∇U(x) + √(2ε) M^½ ξ. Returns the new states,
    their U and ∇U, the per-particle acceptance ``(B, N)`` and the divergence sentinel ``()``.
    """
    low, high = lohi
    eps = log_eps.exp()[:, None, None]  # (B, 1, 1)
    bb = beta[:, None, None]  # (B, 1, 1)

    def drift(g: Tensor) -> Tensor:
        d = -eps * scale.square() * bb * g  # (B, N, A)
        if cfg.grad_clip is not None:
            d = torch.maximum(torch.minimum(d, cfg.grad_clip * scale), -cfg.grad_clip * scale)
        return d

    noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)  # (B, N, A)
    sd = (2 * eps).sqrt() * scale  # (B, 1, A)
    y = x + drift(grad) + sd * noise
    if cfg.boundary == "clamp":
        y = torch.maximum(torch.minimum(y, high), low)
    elif cfg.boundary == "reflect":
        w = high - low
        y = low + w - (torch.remainder(y - low, 2 * w) - w).abs()
    u_y, grad_y = _u_and_grad(energy, y, alpha, True)
    assert grad_y is not None
    inside = ((y >= low) & (y <= high)).all(dim=2)  # (B, N)
    bad = _bad(torch.where(inside, u_y, torch.zeros_like(u_y)), torch.where(inside[:, :, None], grad_y, 0.0))
    log_q_fwd = -0.5 * ((y - x - drift(grad)) / sd).square().sum(dim=2)  # (B, N)
    log_q_bwd = -0.5 * ((x - y - drift(grad_y)) / sd).square().sum(dim=2)
    log_a = beta[:, None] * (u - u_y) + log_q_bwd - log_q_fwd  # (B, N)
    log_unif = torch.rand(u.shape, generator=gen, device=x.device, dtype=x.dtype).log()
    acc = (log_unif < log_a) & inside & torch.isfinite(u_y)  # NaN compares false: rejected, and flagged above
    # unadjusted Langevin takes every finite move; its Metropolis test above only measures the bias
    move = torch.isfinite(u_y) if cfg.kernel == "langevin" else acc
    x = torch.where(move[:, :, None], y, x)
    u = torch.where(move, u_y, u)
    grad = torch.where(move[:, :, None], grad_y, grad)
    return x, u, grad, acc, bad


# --------------------------------------------------------------------------------------------- checking

_WARNED: set[tuple[ActionSampler, str]] = set()


def _check(cfg: ActionSampler, out: PolicySample, checks: Sequence[tuple[str, Tensor]]) -> dict[str, float]:
    """The one host synchronisation: raise on bad inputs or divergence, warn once per setting if untrusted;
    return the diagnostics' means."""
    d = out.diagnostics
    trusted = cfg.trusted(d)
    finite = torch.isfinite(out.actions).all() & torch.isfinite(out.log_z).all()
    inputs = [torch.isfinite(t).all() for _, t in checks]
    means = [getattr(d, name).mean() for name in SamplerDiagnostics._fields]
    flags = torch.stack(
        [t.to(d.ess.dtype) for t in (out.diverged, ~finite, (~trusted).any(), (d.ess < cfg.min_ess).any(), *inputs)]
        + means
    ).tolist()
    summary = dict(zip(SamplerDiagnostics._fields, flags[len(flags) - len(means) :], strict=True))
    flags = [bool(f) for f in flags[: len(flags) - len(means)]]
    for (name, _), ok in zip(checks, flags[4:], strict=True):
        if not ok:
            raise ValueError(f"{name} must be finite, got NaN or inf values")
    if flags[0] or flags[1]:
        raise DivergenceError(
            "ActionSampler: the energy returned NaN or -inf (or a NaN gradient) at a sampled action, or the "
            "draws are not finite; check the energy (the critic) for NaN weights or inputs. No action is returned"
        )
    if not flags[2]:
        return summary
    kind = "ess" if flags[3] else "accept"
    if (cfg, kind) in _WARNED:
        return summary
    _WARNED.add((cfg, kind))
    n_bad = int((~trusted).sum())
    if kind == "ess":
        advice = (
            f"the effective sample size fell to {float(d.ess.min()):.3g} of the particles (min_ess={cfg.min_ess}); "
            f"adaptive tempering reached β={float(d.tempering.min()):.3g} of 1 within n_levels={cfg.n_levels}, "
            f"so the last level jumped. Raise n_levels (or n_particles)"
        )
    else:
        advice = (
            f"the acceptance rate fell to {float(d.acceptance.min()):.3g} (min_accept={cfg.min_accept}): the "
            f"chains are frozen. Raise n_levels or n_moves, or set grad_clip"
        )
    warnings.warn(
        f"ActionSampler: draws for {n_bad} of {len(trusted)} states cannot be trusted: {advice}. "
        f"(Told once per sampler setting.)",
        SamplerWarning,
        stacklevel=4,
    )
    return summary
