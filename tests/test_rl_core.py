"""Boltzmann policies and soft values of ebrl.rl, against exact answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ebrl.energy import StateActionEnergy
from ebrl.rl import ActionBox, ContinuousBoltzmannPolicy, DiscreteBoltzmannPolicy

torch.set_num_threads(1)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def small_net(obs_dim: int = 3, act_dim: int = 2) -> StateActionEnergy:
    """A StateActionEnergy with fixed initial weights (the global RNG is restored afterwards)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return StateActionEnergy(obs_dim, act_dim, (16,))


# --------------------------------------------------------------------------------------------
# Discrete


def test_discrete_probs_and_log_probs_match_manual_softmax():
    e = torch.randn(5, 4, generator=gen(), dtype=torch.float64) * 3
    alpha = 0.7
    w = np.exp(-e.numpy() / alpha)
    expected = w / w.sum(1, keepdims=True)
    pi = DiscreteBoltzmannPolicy(alpha)
    np.testing.assert_allclose(pi.probs(e).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(pi.log_probs(e).numpy(), np.log(expected), rtol=1e-12)


def test_discrete_entropy_matches_definition():
    e = torch.randn(6, 3, generator=gen(1), dtype=torch.float64)
    pi = DiscreteBoltzmannPolicy(0.3)
    p = pi.probs(e).numpy()
    np.testing.assert_allclose(pi.entropy(e).numpy(), -(p * np.log(p)).sum(1), rtol=1e-10)


def test_discrete_soft_value_matches_brute_force_and_is_stable_for_large_q():
    # E ~ 1000 with α = 0.01 would overflow exp(Q/α) computed naively; brute force in float64 after
    # shifting by the max, the textbook way.
    e = torch.randn(4, 5, generator=gen(2), dtype=torch.float64) + 1000.0
    alpha = 0.01
    q = -e.numpy()
    m = q.max(1, keepdims=True)
    brute = (m + alpha * np.log(np.exp((q - m) / alpha).sum(1, keepdims=True)))[:, 0]
    np.testing.assert_allclose(DiscreteBoltzmannPolicy(alpha).soft_value(e).numpy(), brute, rtol=1e-12)


def test_discrete_soft_value_is_expected_q_plus_alpha_entropy():
    e = torch.randn(7, 4, generator=gen(3), dtype=torch.float64)
    pi = DiscreteBoltzmannPolicy(0.5)
    expected = (pi.probs(e) * -e).sum(1) + 0.5 * pi.entropy(e)
    torch.testing.assert_close(pi.soft_value(e), expected)


def test_discrete_policy_value_is_the_soft_value_for_its_own_policy_and_smaller_for_others():
    e = torch.randn(64, 5, generator=gen(4), dtype=torch.float64)
    other = torch.randn(64, 5, generator=gen(5), dtype=torch.float64)
    pi = DiscreteBoltzmannPolicy(0.3)
    torch.testing.assert_close(pi.policy_value(e, e), pi.soft_value(e))
    manual = (pi.probs(other) * -e).sum(1) + 0.3 * pi.entropy(other)
    torch.testing.assert_close(pi.policy_value(e, other), manual)
    gap = pi.soft_value(e) - pi.policy_value(e, other)  # = α KL(π_other || π_e) >= 0
    assert bool((gap > 1e-9).all()), gap.min()


def test_discrete_policy_value_gives_masked_actions_no_weight_and_checks_shapes():
    pi = DiscreteBoltzmannPolicy(1.0)
    e = torch.tensor([[0.0, math.inf, 1.0]], dtype=torch.float64)
    v = pi.policy_value(e, e)
    assert torch.isfinite(v).all()
    torch.testing.assert_close(v, pi.soft_value(e))
    with pytest.raises(ValueError, match="policy_energies must have the shape"):
        pi.policy_value(e, torch.zeros(1, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="energies"):
        pi.policy_value(e, torch.full((1, 3), math.nan, dtype=torch.float64))


def test_discrete_soft_value_tends_to_max_q_as_alpha_shrinks():
    e = torch.tensor([[0.0, -1.0, 2.0]], dtype=torch.float64)
    v = DiscreteBoltzmannPolicy(1e-3).soft_value(e)
    assert abs(float(v) - 1.0) < 1e-6  # max Q = -min E = 1; the gap e^{-1000} is negligible


def test_discrete_samples_follow_the_softmax():
    e = torch.tensor([[0.0, 0.5, 1.0, 3.0]]).repeat(20_000, 1)  # (N, K), the same state N times
    pi = DiscreteBoltzmannPolicy(0.8)
    a = pi.sample(e, generator=gen())
    freq = torch.bincount(a, minlength=4).double() / len(a)
    p = pi.probs(e[:1])[0].double()
    # Each frequency is binomial: sd = sqrt(p(1-p)/N) <= 0.5/sqrt(20000) = 0.0035; allow 5 sd.
    sd = (p * (1 - p) / len(a)).sqrt()
    assert bool(((freq - p).abs() <= 5 * sd + 1e-12).all()), (freq, p)


def test_discrete_mode_is_the_lowest_energy_action():
    e = torch.tensor([[3.0, -1.0, 0.0], [0.0, 1.0, 2.0]])
    assert DiscreteBoltzmannPolicy(1.0).mode(e).tolist() == [1, 0]


def test_discrete_sample_is_reproducible_and_leaves_global_rng_untouched():
    e = torch.randn(100, 5, generator=gen())
    pi = DiscreteBoltzmannPolicy(1.0)
    state = torch.get_rng_state()
    a1, a2 = pi.sample(e, generator=gen(7)), pi.sample(e, generator=gen(7))
    pi.sample(e)  # generator=None: a fresh OS-seeded generator, not the global one
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a1, a2)
    assert not torch.equal(a1, pi.sample(e, generator=gen(8)))


@pytest.mark.parametrize("alpha", [0.0, -1.0, math.nan, math.inf])
def test_discrete_rejects_non_positive_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        DiscreteBoltzmannPolicy(alpha)


def test_discrete_rejects_bad_energies():
    pi = DiscreteBoltzmannPolicy(1.0)
    with pytest.raises(ValueError, match="energies"):
        pi.probs(torch.zeros(3))
    with pytest.raises(ValueError, match="energies"):
        pi.probs(torch.zeros(2, 3, 4))
    with pytest.raises(TypeError, match="energies"):
        pi.probs(torch.zeros(2, 3, dtype=torch.int64))


# --------------------------------------------------------------------------------------------
# Action box


def test_action_box_log_volume_is_d_log_2_for_the_unit_box():
    assert ActionBox.symmetric(3).log_volume == pytest.approx(3 * math.log(2))
    assert ActionBox((0.0, -1.0), (0.5, 3.0)).log_volume == pytest.approx(math.log(0.5 * 4.0))


@pytest.mark.parametrize(
    ("low", "high", "name"),
    [((-1.0, -math.inf), (1.0, 1.0), "low"), ((-1.0,), (math.inf,), "high"), ((-1.0,), (math.nan,), "high")],
)
def test_action_box_rejects_infinite_bounds(low, high, name):
    with pytest.raises(ValueError, match=f"{name} must be finite"):
        ActionBox(low, high)


def test_action_box_rejects_empty_or_inverted_or_mismatched_bounds():
    with pytest.raises(ValueError, match="low < high"):
        ActionBox((0.0, 1.0), (1.0, 1.0))
    with pytest.raises(ValueError, match="same length"):
        ActionBox((0.0,), (1.0, 1.0))
    with pytest.raises(ValueError, match="at least one"):
        ActionBox((), ())


# --------------------------------------------------------------------------------------------
# Continuous: helpers


def quadratic(scale: float):
    """E(s, a) = ‖a - s‖² / (2 scale²): the minimum at the state itself, ``(B, N)``."""

    def energy(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return ((act - obs[:, None, :]) ** 2).sum(-1) / (2 * scale**2)  # (B, N, A) -> (B, N)

    return energy


def grid_moments_1d(center: float, scale: float, alpha: float, n: int = 40_001):
    """Mean, sd and CDF (on the grid) of exp(-(a-c)²/(2 scale² α)) truncated to [-1, 1]."""
    a = np.linspace(-1.0, 1.0, n)
    w = np.exp(-((a - center) ** 2) / (2 * scale**2 * alpha))
    w /= w.sum()
    mean = (a * w).sum()
    return a, mean, math.sqrt(((a - mean) ** 2 * w).sum()), np.cumsum(w)


# --------------------------------------------------------------------------------------------
# Continuous: sampling


@pytest.mark.parametrize(
    ("method", "alpha", "step_size"),
    [("langevin", 1.0, 1e-3), ("langevin", 0.5, 1e-3), ("mala", 0.5, 4e-3)],
)
def test_continuous_samples_match_exact_truncated_boltzmann_1d(method, alpha, step_size):
    # Two states with centres 0.6 and -0.2; scale 0.3. At 0.6 the wall at +1 truncates the law.
    centers, scale, n = [0.6, -0.2], 0.3, 3000
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(1), alpha=alpha, step_size=step_size, n_steps=600,
                                   method=method)
    obs = torch.tensor(centers, dtype=torch.float64)[:, None]  # (2, 1)
    a = pi.sample(quadratic(scale), obs, n=n, generator=gen(0))[..., 0].numpy()  # (2, n)
    assert a.min() >= -1.0 and a.max() <= 1.0
    for b, c in enumerate(centers):
        grid, mean, sd, cdf = grid_moments_1d(c, scale, alpha)
        # n independent chains: the sample mean has sd = sd/sqrt(n); 5 standard errors. The ULA
        # bias at these step sizes is below 1% of sd (OU step ε/(scale²α) ≤ 0.02 shifts the
        # variance by ≈ 1%), so it is inside the tolerance.
        assert abs(a[b].mean() - mean) < 5 * sd / math.sqrt(n), (c, a[b].mean(), mean)
        assert abs(a[b].std() - sd) < 5 * sd / math.sqrt(2 * n) + 0.01 * sd, (c, a[b].std(), sd)
        # Kolmogorov-Smirnov distance; the 0.1% critical value is 1.95/sqrt(n) = 0.036.
        ks = np.abs(np.searchsorted(np.sort(a[b]), grid, side="right") / n - cdf).max()
        assert ks < 1.95 / math.sqrt(n), (c, ks)


def test_continuous_samples_match_exact_boltzmann_2d():
    # A correlated Gaussian energy centred near the corner (0.7, 0.5), truncated by the box.
    prec = torch.tensor([[8.0, 5.0], [5.0, 12.0]], dtype=torch.float64)
    center = torch.tensor([0.7, 0.5], dtype=torch.float64)

    def energy(obs, act):
        d = act - center  # (B, N, 2)
        return 0.5 * torch.einsum("bni,ij,bnj->bn", d, prec, d)  # (B, N)

    g = np.linspace(-1, 1, 801)
    x, y = np.meshgrid(g, g, indexing="ij")
    pts = torch.tensor(np.stack([x, y], -1).reshape(1, -1, 2))  # (1, G, 2)
    w = torch.exp(-energy(None, pts)[0]).numpy()
    w /= w.sum()
    flat = pts[0].numpy()
    mean = (flat * w[:, None]).sum(0)
    cov = ((flat - mean).T * w) @ (flat - mean)

    n = 4000
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), alpha=1.0, step_size=2e-3, n_steps=600)
    a = pi.sample(energy, torch.zeros(1, 1, dtype=torch.float64), n=n, generator=gen(1))[0].numpy()  # (n, 2)
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(a.mean(0) - mean) < 5 * se), (a.mean(0), mean)
    # Covariance entries: sd of a sample covariance is ≈ sqrt((σ_i²σ_j² + σ_ij²)/n); 5 of them.
    cov_se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(np.cov(a.T) - cov) < 5 * cov_se + 0.02 * np.abs(cov)), (np.cov(a.T), cov)


def test_resampled_starts_put_the_right_mass_in_each_mode():
    # Two modes at ±0.5 with masses 0.7 and 0.3. Chains that start uniformly fall into the nearer
    # basin (≈ 50/50) and a few Langevin steps cannot cross the barrier; importance-resampled
    # starts recover the true masses.
    s, w_right = 0.08, 0.7

    def energy(obs, act):
        a = act[..., 0]
        lr = torch.stack([math.log(w_right) - (a - 0.5) ** 2 / (2 * s**2),
                          math.log(1 - w_right) - (a + 0.5) ** 2 / (2 * s**2)])
        return -torch.logsumexp(lr, dim=0)  # (B, N)

    n = 4000
    obs = torch.zeros(1, 1, dtype=torch.float64)
    common = dict(alpha=1.0, step_size=5e-4, n_steps=20)
    uniform = ContinuousBoltzmannPolicy(ActionBox.symmetric(1), **common)
    resampled = ContinuousBoltzmannPolicy(ActionBox.symmetric(1), n_proposals=64, **common)
    frac_u = float((uniform.sample(energy, obs, n=n, generator=gen(2)) > 0).double().mean())
    frac_r = float((resampled.sample(energy, obs, n=n, generator=gen(2)) > 0).double().mean())
    # Binomial sd at n = 4000 is ≤ 0.008; self-normalised resampling with K = 64 has O(1/K) bias in
    # the mode masses, ≈ 0.01 here, so 5 sd + 0.02.
    assert abs(frac_r - w_right) < 5 * 0.008 + 0.02, frac_r
    assert abs(frac_u - 0.5) < 5 * 0.008, frac_u


def test_continuous_bounds_are_respected_under_a_strong_push():
    def push(obs, act):
        return -50.0 * act.sum(-1)  # the energy falls toward the upper walls

    box = ActionBox((-0.5, 0.0), (0.25, 1.0))
    obs = torch.zeros(3, 1)
    policies = {
        "reflect": ContinuousBoltzmannPolicy(box, step_size=0.5, n_steps=30),
        "clamp": ContinuousBoltzmannPolicy(box, step_size=0.5, n_steps=30, boundary="clamp"),
        "mala": ContinuousBoltzmannPolicy(box, step_size=1e-3, n_steps=30, method="mala"),
    }
    for name, pi in policies.items():
        a = pi.sample(push, obs, n=64, generator=gen())
        assert bool((a[..., 0] >= -0.5).all() and (a[..., 0] <= 0.25).all()), name
        assert bool((a[..., 1] >= 0.0).all() and (a[..., 1] <= 1.0).all()), name
        if name != "reflect":  # reflecting steps much longer than the box scatter the chains
            assert float(a[..., 1].mean()) > 0.8, name  # the push is felt


def test_warm_start_continues_from_the_given_actions():
    # One Langevin step of size 1e-6 barely moves the chains: the result sits at init.
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), step_size=1e-6, n_steps=1)
    init = torch.rand(3, 5, 2, generator=gen()) * 2 - 1
    out = pi.sample(quadratic(0.3), torch.zeros(3, 2), n=5, init=init, generator=gen())
    assert (out - init).abs().max() < 1e-2


def test_sampling_state_action_energy_equals_sampling_its_callable_form():
    net = small_net()
    obs = torch.randn(4, 3, generator=gen())
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), alpha=0.5, n_steps=5, n_proposals=8)
    a = pi.sample(net, obs, n=3, generator=gen(5))  # uses StateActionEnergy.at

    def as_callable(o, act):
        return net.forward(o, act)

    torch.testing.assert_close(a, pi.sample(as_callable, obs, n=3, generator=gen(5)))


def test_sampling_works_under_no_grad_as_in_sb3_predict():
    net = small_net()
    obs = torch.randn(4, 3, generator=gen())
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), n_steps=5)
    with torch.no_grad():
        inside = pi.sample(net, obs, generator=gen(3))
        mode_inside = pi.mode(net, obs, generator=gen(3))
    torch.testing.assert_close(inside, pi.sample(net, obs, generator=gen(3)))
    torch.testing.assert_close(mode_inside, pi.mode(net, obs, generator=gen(3)))


def test_continuous_policy_is_reproducible_and_leaves_global_rng_untouched():
    net = small_net()
    obs = torch.randn(4, 3, generator=gen())
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), n_steps=5, n_proposals=4)
    state = torch.get_rng_state()
    for fn in (
        lambda g: pi.sample(net, obs, n=2, generator=g),
        lambda g: pi.mode(net, obs, generator=g),
        lambda g: pi.soft_value(net, obs, generator=g),
    ):
        torch.testing.assert_close(fn(gen(11)), fn(gen(11)))
        fn(None)
    # The random ones differ across seeds (a mode may legitimately not).
    assert not torch.equal(pi.sample(net, obs, generator=gen(11)), pi.sample(net, obs, generator=gen(12)))
    assert not torch.equal(pi.soft_value(net, obs, generator=gen(11)), pi.soft_value(net, obs, generator=gen(12)))
    assert torch.equal(torch.get_rng_state(), state)


# --------------------------------------------------------------------------------------------
# Continuous: mode


def test_mode_finds_the_known_minimum_inside_and_on_the_wall():
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), alpha=0.1, step_size=0.01)
    obs = torch.tensor([[0.3, -0.4], [1.7, 0.2]])  # the second minimum lies outside: the wall x = 1
    a = pi.mode(quadratic(0.5), obs, generator=gen())
    torch.testing.assert_close(a, torch.tensor([[0.3, -0.4], [1.0, 0.2]]), atol=0.02, rtol=0)


def test_mode_picks_the_deeper_of_two_minima():
    def two_wells(obs, act):
        d1 = ((act - torch.tensor([0.6, 0.6])) ** 2).sum(-1)
        d2 = ((act - torch.tensor([-0.6, -0.6])) ** 2).sum(-1) - 0.05  # slightly deeper
        return torch.minimum(d1, d2) / 0.02  # (B, N)

    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), alpha=1.0, step_size=1e-3)
    a = pi.mode(two_wells, torch.zeros(2, 1), generator=gen())
    torch.testing.assert_close(a, torch.full((2, 2), -0.6), atol=0.02, rtol=0)


# --------------------------------------------------------------------------------------------
# Continuous: soft value


def test_soft_value_of_a_constant_energy_is_exact_for_any_sample_count():
    # ∫_{[-1,1]^D} exp(-c/α) da = 2^D exp(-c/α), so V = -c + α D log 2 whatever the M samples.
    alpha, c = 0.3, 1.7
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(3), alpha=alpha)

    def const(obs, act):
        return torch.full(act.shape[:-1], c, dtype=act.dtype)

    v = pi.soft_value(const, torch.zeros(2, 1, dtype=torch.float64), n_samples=5, generator=gen())
    torch.testing.assert_close(v, torch.full((2,), -c + alpha * 3 * math.log(2), dtype=torch.float64))


def test_soft_value_is_haarnoja_formula_on_the_same_samples():
    # V = α[logsumexp_j Q(s,a_j)/α − log M + D log 2] with the uniform a_j the estimator drew.
    net = small_net().double()
    obs = torch.randn(4, 3, generator=gen(), dtype=torch.float64)
    alpha, m = 0.4, 32
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), alpha=alpha)
    v = pi.soft_value(net, obs, n_samples=m, generator=gen(9))
    a = ActionBox.symmetric(2).uniform((4, m), device=obs.device, dtype=obs.dtype, generator=gen(9))
    q = -net(obs, a)  # (4, m)
    manual = alpha * (torch.logsumexp(q / alpha, dim=1) - math.log(m) + 2 * math.log(2))
    torch.testing.assert_close(v, manual)


def test_soft_value_converges_to_the_exact_integral():
    # E = ‖a - s‖²/(2·0.4²) on [-1, 1]², α = 0.5: V = α log ∫ exp(-E/α) da, a product of 1-D
    # Gaussian integrals (erf).
    alpha, scale, m = 0.5, 0.4, 200_000
    obs = torch.tensor([[0.0, 0.0], [0.8, -0.5]], dtype=torch.float64)
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(2), alpha=alpha)
    v = pi.soft_value(quadratic(scale), obs, n_samples=m, generator=gen()).numpy()
    s = scale * math.sqrt(alpha)  # sd of exp(-E/α)
    for b, c in enumerate(obs.numpy()):
        z = np.prod([s * math.sqrt(math.pi / 2) * (math.erf((1 - ci) / (s * math.sqrt(2)))
                                                   + math.erf((1 + ci) / (s * math.sqrt(2)))) for ci in c])
        exact = alpha * math.log(z)
        # log of a mean of M iid weights: sd ≈ cv(w)/sqrt(M) with cv(w) = sqrt(vol·∫w²/(∫w)² − 1);
        # ∫w² = ∫ exp(-2E/α) ≤ π s², so cv ≤ sqrt(4 π s²/z² · z... ) — bounded by sqrt(4/(π s²)) ≈ 4
        # here: sd ≤ 4/sqrt(2e5) ≈ 0.009 in log units. Allow 5 sd, times α.
        assert abs(v[b] - exact) < alpha * 5 * 0.009, (v[b], exact)


# --------------------------------------------------------------------------------------------
# Continuous: validation


def test_continuous_policy_rejects_bad_arguments():
    box = ActionBox.symmetric(1)
    with pytest.raises(ValueError, match="alpha"):
        ContinuousBoltzmannPolicy(box, alpha=0.0)
    with pytest.raises(ValueError, match="alpha"):
        ContinuousBoltzmannPolicy(box, alpha=-0.1)
    with pytest.raises(TypeError, match="box"):
        ContinuousBoltzmannPolicy((-1.0, 1.0), alpha=1.0)
    with pytest.raises(ValueError, match="method"):
        ContinuousBoltzmannPolicy(box, method="hmc")
    with pytest.raises(ValueError, match="grad_clip"):
        ContinuousBoltzmannPolicy(box, method="mala", grad_clip=1.0)
    with pytest.raises(ValueError, match="mode_starts"):
        ContinuousBoltzmannPolicy(box, mode_starts=10, mode_candidates=5)
    with pytest.raises(ValueError, match="n_proposals"):
        ContinuousBoltzmannPolicy(box, n_proposals=-1)
    with pytest.raises(ValueError, match="compile"):
        ContinuousBoltzmannPolicy(box, method="mala", compile=True)


def test_continuous_policy_rejects_bad_obs_and_init():
    pi = ContinuousBoltzmannPolicy(ActionBox.symmetric(1))
    energy = quadratic(0.5)
    with pytest.raises(ValueError, match="obs"):
        pi.sample(energy, torch.zeros(3))
    with pytest.raises(ValueError, match="init"):
        pi.sample(energy, torch.zeros(2, 1), n=3, init=torch.zeros(2, 2, 1))
    with pytest.raises(ValueError, match="init"):
        pi.sample(energy, torch.zeros(2, 1), n=1, init=torch.full((2, 1, 1), 1.5))
    with pytest.raises(ValueError, match="init"):
        pi.sample(energy, torch.zeros(2, 1), n=1, init=torch.full((2, 1, 1), math.nan))
