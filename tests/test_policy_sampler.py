"""The continuous Boltzmann policy and its sampler (``ebrl.rl.ActionSampler``), against exact answers.

Targets are π(a) ∝ exp(-E(a)/α) on [-1, 1]^D with E = k/2 ‖a - c‖² (a product of truncated normals, whose
moments, log-normaliser and entropy are closed-form) and a two-mode mixture with known mode weights. Draws for B
independent states are independent, so tolerances come from B: a mean within 5 standard errors, a variance ratio
within 5·√(2/B), a mode weight within 3 standard errors.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ebrl._checks import DivergenceError
from ebrl.energy import StateActionEnergy
from ebrl.rl import ActionBox, ActionSampler, ContinuousBoltzmannPolicy, SamplerWarning
from ebrl.rl import sampler as sampler_module
from ebrl.rl.continuous import VALUE_SAMPLER

torch.set_num_threads(1)

CENTER = 0.3


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def quadratic(k: float, scale: float = 1.0):
    """E(s, a) = scale · k/2 ‖a - 0.3‖², ``(B, N)``; with α·scale the target does not depend on ``scale``."""

    def energy(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return scale * k * (act - CENTER).square().sum(-1) / 2

    return energy


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def truncated_normal(mu: float, s: float) -> tuple[float, float, float, float]:
    """Mean, sd, log Z and entropy of N(mu, s²) truncated to [-1, 1] (one dimension; exp(-(a-mu)²/2s²) unnormalised)."""
    a, b = (-1 - mu) / s, (1 - mu) / s
    z = _phi(b) - _phi(a)
    pdf = lambda t: math.exp(-t * t / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    mean = mu + s * (pdf(a) - pdf(b)) / z
    var = s * s * (1 + (a * pdf(a) - b * pdf(b)) / z - ((pdf(a) - pdf(b)) / z) ** 2)
    log_z = math.log(s * math.sqrt(2 * math.pi) * z)
    entropy = math.log(math.sqrt(2 * math.pi * math.e) * s * z) + (a * pdf(a) - b * pdf(b)) / (2 * z)
    return mean, math.sqrt(var), log_z, entropy


def check_moments(a: torch.Tensor, mean: float, sd: float) -> None:
    """Per-dimension mean and variance of independent draws ``a (B, D)`` against the exact values."""
    b, d = a.shape
    a = a.double()
    m_hat, v_hat = a.mean(0), a.var(0)
    assert bool(((m_hat - mean).abs() <= 5 * sd / math.sqrt(b)).all()), (m_hat, mean)
    ratio = v_hat / sd**2
    assert bool(((ratio - 1).abs() <= 5 * math.sqrt(2 / b)).all()), (ratio, sd)
    if d > 1:  # the target's coordinates are independent: no correlation beyond sampling error
        corr = torch.corrcoef(a.T) - torch.eye(d, dtype=a.dtype)
        assert float(corr.abs().max()) <= 5 / math.sqrt(b), corr.abs().max()


# --------------------------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("dim", [1, 6, 17])
@pytest.mark.parametrize("k", [1.0, 100.0, 1e4])
def test_samples_match_the_exact_truncated_boltzmann_moments(dim, k):
    alpha, b = 0.5, 600
    mean, sd, _, _ = truncated_normal(CENTER, math.sqrt(alpha / k))
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(dim), sampler=ActionSampler(n_levels=48))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplerWarning)  # these draws must be trusted
        a = pi.sample(quadratic(k), torch.zeros(b, 1), alpha=alpha, generator=gen(dim))[:, 0]  # (B, D)
    check_moments(a, mean, sd)


@pytest.mark.parametrize("c", [1e-2, 1.0, 1e2, 1e4])
def test_scaling_q_and_alpha_together_changes_nothing(c):
    """A hard case, k = 500 in 6-D at α = 0.5, with Q and α scaled by c: the same distribution."""
    k, alpha, b = 500.0, 0.5, 500
    mean, sd, _, _ = truncated_normal(CENTER, math.sqrt(alpha / k))
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(6))
    obs = torch.zeros(b, 1, dtype=torch.float64)
    a = pi.sample(quadratic(k, scale=c), obs, alpha=alpha * c, generator=gen(1))[:, 0]
    check_moments(a, mean, sd)
    ref = pi.sample(quadratic(k), obs, alpha=alpha, generator=gen(1))[:, 0]
    same = ((a - ref).abs() <= 1e-6).all(dim=1).double().mean()
    assert float(same) >= 0.95, same  # the same draws, but for float rounding flipping a rare accept/reject


def test_two_modes_get_their_exact_weights():
    """π ∝ 0.7 N(m1, s²I) + 0.3 N(m2, s²I) in 6-D: each mode's share of the draws within 3 standard errors.

    MCMC moves cannot carry mass between such modes; tempering and resampling do, with an O(1/N) bias in the
    mode weights for N particles per state (measured: share 0.605 at N = 32, 0.683 at N = 128 with gentler
    tempering). So this checks the accurate setting, and that the default's share moves towards the exact one
    as the particles grow.
    """
    dim, s, b = 6, 0.05, 1000
    m1, m2 = torch.full((dim,), 0.4), torch.full((dim,), -0.4)

    def energy(obs, act):  # E = -α log(mixture density), α = 1
        l1 = math.log(0.7) - (act - m1).square().sum(-1) / (2 * s * s)
        l2 = math.log(0.3) - (act - m2).square().sum(-1) / (2 * s * s)
        return -torch.logaddexp(l1, l2)

    def share(sampler: ActionSampler) -> float:
        pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(dim), sampler=sampler)
        a = pi.sample(energy, torch.zeros(b, 1), alpha=1.0, generator=gen(2))[:, 0]
        return float(((a - m1).norm(dim=1) < (a - m2).norm(dim=1)).double().mean())

    accurate = share(ActionSampler(n_particles=128, n_levels=48, ess_fraction=0.8))
    assert abs(accurate - 0.7) <= 3 * math.sqrt(0.7 * 0.3 / b), accurate
    assert share(ActionSampler()) < accurate  # the default's finite-particle bias, towards equal weights


def test_a_sharp_energy_never_gives_a_silently_uniform_policy():
    """Too few levels for a sharp 17-D target: the draws are poor, and the sampler says so (once)."""
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(17), sampler=ActionSampler(n_levels=4))
    sampler_module._WARNED.clear()
    with pytest.warns(SamplerWarning, match="n_levels"):
        out = pi.run(quadratic(1e4), torch.zeros(64, 1), alpha=0.5, generator=gen())
    assert float(out.diagnostics.tempering.min()) < 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplerWarning)  # told once per setting, not on every call
        pi.run(quadratic(1e4), torch.zeros(64, 1), alpha=0.5, generator=gen())


def test_diagnostics_report_acceptance_ess_walls_and_energy_drop():
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2))
    out = pi.run(quadratic(100.0), torch.zeros(32, 1), alpha=0.5, generator=gen())
    d = out.diagnostics
    assert torch.allclose(d.tempering, torch.ones(32))
    assert 0.3 < float(d.acceptance.mean()) < 0.8  # tuned towards 0.574
    assert float(d.ess.min()) >= 0.4  # adaptive tempering keeps ~ess_fraction = 0.5
    assert float(d.at_walls.max()) == 0.0  # sd 0.07 around 0.3: nowhere near the walls
    assert float(d.energy_drop.min()) > 10  # from U ~ 100·E_uniform‖a-0.3‖²/2/α to ~ D/2
    # A mode on the wall: E = -10 a_1 pushes everything to a_1 = 1
    wall = pi.run(lambda o, a: -10 * a[..., 0], torch.zeros(8, 1), alpha=0.01, generator=gen())
    assert float(wall.diagnostics.at_walls.min()) > 0.5


@pytest.mark.parametrize("boundary", ["reflect", "clamp"])
def test_unadjusted_langevin_kernel_has_the_right_mean_and_a_bounded_variance_bias(boundary):
    """Unadjusted Langevin has no rejection, so its variance is inflated (documented: about 35% here)."""
    k, alpha, b = 100.0, 0.5, 1000
    mean, sd, _, _ = truncated_normal(CENTER, math.sqrt(alpha / k))
    cfg = ActionSampler(kernel="langevin", boundary=boundary)
    a = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), sampler=cfg).sample(
        quadratic(k), torch.zeros(b, 1), alpha=alpha, generator=gen()
    )[:, 0].double()
    assert bool(((a.mean(0) - mean).abs() <= 5 * 1.5 * sd / math.sqrt(b)).all()), a.mean(0)
    ratio = a.var(0) / sd**2
    assert bool((ratio > 1 - 5 * math.sqrt(2 / b)).all() & (ratio < 1.6).all()), ratio


# --------------------------------------------------------------------------------------- soft value, entropy


@pytest.mark.parametrize("dim", [1, 6, 17])
@pytest.mark.parametrize("k", [1.0, 100.0, 1e4])
def test_soft_value_bias_is_below_a_tenth_of_alpha_per_dimension(dim, k):
    alpha, b = 0.5, 48
    _, _, log_z1, _ = truncated_normal(CENTER, math.sqrt(alpha / k))
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(dim))
    v = pi.soft_value(quadratic(k), torch.zeros(b, 1), alpha=alpha, generator=gen(dim))  # (B,)
    bias = float(v.double().mean()) - alpha * dim * log_z1
    assert abs(bias) < 0.1 * alpha * dim, (bias, v.std())


@pytest.mark.parametrize("dim", [6, 17])
def test_soft_value_of_two_modes_is_accurate(dim):
    s, b, alpha = 0.05, 48, 1.0
    m1, m2 = torch.full((dim,), 0.4), torch.full((dim,), -0.4)

    def energy(obs, act):  # exp(-E) integrates to 1 (the modes are far from the walls): V = 0
        l1 = math.log(0.7) - (act - m1).square().sum(-1) / (2 * s * s)
        l2 = math.log(0.3) - (act - m2).square().sum(-1) / (2 * s * s)
        return -torch.logaddexp(l1, l2) + dim * math.log(s * math.sqrt(2 * math.pi))

    v = ContinuousBoltzmannPolicy(ActionBox.symmetric(dim)).soft_value(
        energy, torch.zeros(b, 1), alpha=alpha, generator=gen()
    )
    assert abs(float(v.mean())) < 0.1 * alpha * dim, v


@pytest.mark.parametrize(("dim", "k"), [(1, 1.0), (1, 100.0), (6, 100.0), (17, 1e4)])
def test_entropy_matches_the_exact_entropy(dim, k):
    alpha, b = 0.5, 48
    _, _, _, h1 = truncated_normal(CENTER, math.sqrt(alpha / k))
    h = ContinuousBoltzmannPolicy(ActionBox.symmetric(dim)).entropy(
        quadratic(k), torch.zeros(b, 1), alpha=alpha, generator=gen()
    )
    assert abs(float(h.mean()) - dim * h1) < 0.1 * dim + 3 * float(h.std()) / math.sqrt(b), (h.mean(), dim * h1)


def test_soft_value_of_a_constant_energy_is_exact():
    alpha, c = 0.3, 1.7

    def const(obs, act):
        return torch.full(act.shape[:-1], c, dtype=act.dtype)

    for cfg in (VALUE_SAMPLER, ActionSampler(n_particles=5, n_levels=1, n_moves=0)):
        pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(3), value_sampler=cfg)
        v = pi.soft_value(const, torch.zeros(2, 1, dtype=torch.float64), alpha=alpha, generator=gen())
        torch.testing.assert_close(v, torch.full((2,), -c + alpha * 3 * math.log(2), dtype=torch.float64))


def test_one_level_without_moves_is_haarnoja_uniform_importance_sampling():
    """``ActionSampler(n_particles=M, n_levels=1, n_moves=0)`` is α[logsumexp_j(-E_j/α) - log M + log vol]."""
    alpha, m, b, dim = 0.5, 16, 4, 2
    energy = quadratic(3.0)
    box = ActionBox((-1.0, 0.0), (1.0, 2.0))
    pi = ContinuousBoltzmannPolicy(box, value_sampler=ActionSampler(n_particles=m, n_levels=1, n_moves=0))
    obs = torch.zeros(b, 1, dtype=torch.float64)
    v = pi.soft_value(energy, obs, alpha=alpha, generator=gen(4))
    low, high = box.tensors(device=torch.device("cpu"), dtype=torch.float64)
    act = low + (high - low) * torch.rand((b, m, dim), generator=gen(4), dtype=torch.float64)  # the same draws
    e = energy(obs, act)
    expected = alpha * (torch.logsumexp(-e / alpha, 1) - math.log(m) + box.log_volume)
    torch.testing.assert_close(v, expected)


# ------------------------------------------------------------------------------------------------ mode


def test_mode_finds_the_known_minimum_inside_and_on_the_wall():
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2))

    def energy(obs, act):
        return ((act - obs[:, None, :]) ** 2).sum(-1) / 0.5

    obs = torch.tensor([[0.3, -0.4], [1.7, 0.2]])  # the second minimum lies outside: the wall x = 1
    a = pi.mode(energy, obs, generator=gen())
    torch.testing.assert_close(a, torch.tensor([[0.3, -0.4], [1.0, 0.2]]), atol=0.02, rtol=0)


def test_mode_picks_the_deeper_of_two_minima():
    def two_wells(obs, act):
        d1 = ((act - torch.tensor([0.6, 0.6])) ** 2).sum(-1)
        d2 = ((act - torch.tensor([-0.6, -0.6])) ** 2).sum(-1) - 0.05  # slightly deeper
        return torch.minimum(d1, d2) / 0.02  # (B, N)

    a = ContinuousBoltzmannPolicy(ActionBox.symmetric(2)).mode(two_wells, torch.zeros(2, 1), generator=gen())
    torch.testing.assert_close(a, torch.full((2, 2), -0.6), atol=0.02, rtol=0)


# ------------------------------------------------------------------------------------------- contracts


def small_net() -> StateActionEnergy:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return StateActionEnergy(3, 2, (16,))


SMALL = ActionSampler(n_particles=8, n_levels=4, n_moves=1)


def test_sampling_a_state_action_energy_equals_sampling_its_callable_form():
    net, obs = small_net(), torch.randn(4, 3, generator=gen())
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), sampler=SMALL)
    a = pi.sample(net, obs, alpha=0.5, n=3, generator=gen(5))
    torch.testing.assert_close(a, pi.sample(lambda o, act: net.forward(o, act), obs, alpha=0.5, n=3, generator=gen(5)))


def test_alpha_may_be_a_tensor_and_gives_the_float_result():
    net, obs = small_net(), torch.randn(4, 3, generator=gen())
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), sampler=SMALL)
    a = pi.sample(net, obs, alpha=0.5, generator=gen(5))
    torch.testing.assert_close(a, pi.sample(net, obs, alpha=torch.tensor(0.5), generator=gen(5)))


def test_sampling_works_under_no_grad_as_in_sb3_predict():
    net, obs = small_net(), torch.randn(4, 3, generator=gen())
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), sampler=SMALL)
    with torch.no_grad():
        inside = pi.sample(net, obs, alpha=0.5, generator=gen(3))
        mode_inside = pi.mode(net, obs, generator=gen(3))
    torch.testing.assert_close(inside, pi.sample(net, obs, alpha=0.5, generator=gen(3)))
    torch.testing.assert_close(mode_inside, pi.mode(net, obs, generator=gen(3)))


def test_policy_is_reproducible_and_leaves_global_rng_untouched():
    net, obs = small_net(), torch.randn(4, 3, generator=gen())
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), sampler=SMALL, value_sampler=SMALL)
    state = torch.get_rng_state()
    for fn in (
        lambda g: pi.sample(net, obs, alpha=0.5, n=2, generator=g),
        lambda g: pi.mode(net, obs, generator=g),
        lambda g: pi.soft_value(net, obs, alpha=0.5, generator=g),
    ):
        torch.testing.assert_close(fn(gen(11)), fn(gen(11)))
        fn(None)
    assert not torch.equal(pi.sample(net, obs, alpha=0.5, generator=gen(11)), pi.sample(net, obs, alpha=0.5,
                                                                                         generator=gen(12)))
    assert torch.equal(torch.get_rng_state(), state)


class _CountSyncs(TorchDispatchMode):
    """Counts host synchronisations: aten's scalar reads, plus ``Tensor.tolist`` (which does not dispatch)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__ in ("_local_scalar_dense.default", "is_nonzero.default", "item.default"):
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_one_sampling_call_makes_one_host_synchronisation(monkeypatch):
    net, obs = small_net(), torch.randn(4, 3, generator=gen())
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2))
    counter = _CountSyncs()
    original = torch.Tensor.tolist

    def counting_tolist(self):
        counter.count += 1
        return original(self)

    monkeypatch.setattr(torch.Tensor, "tolist", counting_tolist)
    with counter:
        pi.sample(net, obs, alpha=0.5, generator=gen())
    assert counter.count == 1, counter.count


def test_nan_observations_are_refused_naming_obs():
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), sampler=SMALL)
    obs = torch.zeros(2, 3)
    obs[1, 0] = math.nan
    with pytest.raises(ValueError, match="obs"):
        pi.sample(small_net(), obs, alpha=0.5, generator=gen())


def test_nan_energy_raises_and_returns_no_action():
    def energy(obs, act):
        return torch.where(act[..., 0] > 0.9, torch.full(act.shape[:-1], math.nan), act.square().sum(-1))

    with pytest.raises(DivergenceError, match="energy"):
        ContinuousBoltzmannPolicy(ActionBox.symmetric(2)).sample(energy, torch.zeros(64, 1), alpha=1.0,
                                                                 generator=gen())


def test_samples_follow_the_device_and_dtype_of_the_observations():
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), sampler=SMALL)
    out = pi.run(quadratic(10.0), torch.zeros(3, 1, dtype=torch.float64), alpha=0.5, n=2, generator=gen())
    assert out.actions.shape == (3, 2, 2) and out.actions.dtype == torch.float64
    assert out.log_z.shape == (3,) and np.isfinite(out.entropy.numpy()).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA; the CPU versions above always run")
@pytest.mark.parametrize("c", [1e-2, 1e4])
def test_cuda_samples_match_the_exact_moments_at_any_scale(c):
    k, alpha, b = 500.0, 0.5, 1000
    mean, sd, log_z1, _ = truncated_normal(CENTER, math.sqrt(alpha / k))
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(6))
    cuda = torch.device("cuda")
    g = torch.Generator(device=cuda).manual_seed(0)
    out = pi.run(quadratic(k, scale=c), torch.zeros(b, 1, device=cuda), alpha=alpha * c, generator=g)
    assert out.actions.device.type == "cuda"
    check_moments(out.actions[:, 0].cpu(), mean, sd)
    v = pi.soft_value(quadratic(k, scale=c), torch.zeros(48, 1, device=cuda), alpha=alpha * c, generator=g)
    assert abs(float(v.mean()) / c - alpha * 6 * log_z1) < 0.1 * alpha * 6
