"""Boltzmann machines and RBMs: partition functions, AIS, Gibbs sampling and training.

Ground truth comes from brute force over every configuration of tiny models. Statistical tests
use fixed seeds and tolerances derived from the sample size:

- Gibbs against an exact distribution over C configurations: with N independent chains the
  counts are multinomial, so Pearson's statistic is χ² with C - 1 degrees of freedom; we reject
  above its 1 - 1e-4 quantile (a false alarm once in 10,000 runs), quoted from scipy.stats.chi2.
- Moments: 5 standard errors, sqrt(var / N).
- AIS: a target of 0.05 nats, with enough chains and temperatures that the reported standard
  error is several times smaller than that.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from ebrl._checks import DivergenceError
from ebrl.boltzmann import (
    DBN,
    BernoulliRBM,
    BoltzmannMachine,
    GaussianBernoulliRBM,
    Gibbs,
    GibbsCD,
    ais,
    ais_log_partition,
    beta_schedule,
    exact_log_partition,
    log_likelihood,
    pseudo_log_likelihood,
)
from ebrl.boltzmann._utils import Uniforms
from ebrl.checkpoint import load_model, save_model
from ebrl.energy import MLPEnergy
from ebrl.samplers import ReplayBuffer
from ebrl.training import CD, PCD, fit

CUDA = torch.cuda.is_available()


def all_binary(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=dtype)  # (2**n, n)


def random_rbm(n_visible: int, n_hidden: int, *, scale: float, seed: int) -> BernoulliRBM:
    g = torch.Generator().manual_seed(seed)
    rbm = BernoulliRBM(n_visible, n_hidden, init_std=scale, generator=g)
    with torch.no_grad():
        rbm.visible_bias.copy_(scale * torch.randn(n_visible, generator=g))
        rbm.hidden_bias.copy_(scale * torch.randn(n_hidden, generator=g))
    return rbm


def chi_square(samples: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson's statistic of binary ``samples (N, n)`` against ``probs`` over all 2**n states."""
    n_units = samples.shape[1]
    weights = 2 ** torch.arange(n_units)
    idx = (samples.long() * weights).sum(1)  # state index, least significant bit first
    counts = torch.bincount(idx, minlength=2**n_units).double()
    expected = probs * samples.shape[0]
    return float(((counts - expected) ** 2 / expected).sum())


def lsb_first(n: int) -> torch.Tensor:
    """All 2**n states, row i holding the bits of i least significant first (matches chi_square)."""
    idx = torch.arange(2**n)
    return ((idx[:, None] >> torch.arange(n)) & 1).double()


def gaussian_rbm_moments(gb: GaussianBernoulliRBM) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact mean and variance ``(V,)`` of a small GB-RBM's visibles, by enumerating h.

    p(h) ∝ exp(cᵀh + Σ_i ((b + Wh)_i² - b_i²) / (2σ_i²)) and v | h ~ N(b + Wh, σ²), so
    E[v] = Σ_h p(h) (b + Wh) and Var[v] = σ² + Var_h[b + Wh].
    """
    h = all_binary(gb.n_hidden, gb.weight.dtype)
    with torch.no_grad():
        mean_h = gb.visible_mean(h)  # (2**H, V)
        log_ph = h @ gb.hidden_bias + ((mean_h.square() - gb.visible_bias.square()) / (2 * gb.variance)).sum(1)
        p = torch.softmax(log_ph, 0)[:, None]  # (2**H, 1)
        mean = (p * mean_h).sum(0)
        var = gb.variance + (p * (mean_h - mean).square()).sum(0)
    return mean, var


def synthetic_binary(n: int, seed: int) -> torch.Tensor:
    """Three 10-bit prototypes with 5% bit-flip noise: a simple multimodal distribution."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
                           [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]], dtype=torch.float32)
    x = protos[torch.randint(3, (n,), generator=g)]
    flip = torch.rand(x.shape, generator=g) < 0.05
    return torch.where(flip, 1 - x, x)


# ----------------------------------------------------------------------- exact partition functions
@pytest.mark.parametrize(("n_visible", "n_hidden"), [(6, 4), (4, 6), (5, 5)])
def test_exact_log_partition_enumerating_one_layer_matches_brute_force_over_both(n_visible, n_hidden):
    rbm = random_rbm(n_visible, n_hidden, scale=1.0, seed=n_visible)
    v, h = all_binary(n_visible, torch.float32), all_binary(n_hidden, torch.float32)
    vv = v.repeat_interleave(h.shape[0], 0)  # every (v, h) pair: (2**V * 2**H, V)
    hh = h.repeat(v.shape[0], 1)
    with torch.no_grad():
        brute = torch.logsumexp(-rbm.energy(vv, hh).double(), 0)
    assert exact_log_partition(rbm) == pytest.approx(float(brute), abs=1e-4)


def test_free_energy_sums_the_hidden_units_out():
    rbm = random_rbm(5, 4, scale=1.0, seed=1)
    v, h = all_binary(5, torch.float32), all_binary(4, torch.float32)
    with torch.no_grad():
        joint = torch.stack([-rbm.energy(v, hi.expand(v.shape[0], -1)) for hi in h])  # (2**H, 2**V)
        assert torch.allclose(-rbm.free_energy(v), torch.logsumexp(joint, 0), atol=1e-5)
        assert torch.allclose(rbm(v), rbm.free_energy(v))  # the RBM is an Energy through F


def test_log_likelihood_is_normalised_over_all_visible_states():
    rbm = random_rbm(7, 5, scale=1.0, seed=2)
    ll = log_likelihood(rbm, all_binary(7), exact_log_partition(rbm))
    assert float(torch.logsumexp(ll, 0)) == pytest.approx(0.0, abs=1e-9)


def test_boltzmann_machine_exact_log_partition_matches_brute_force():
    bm = BoltzmannMachine(6, init_std=1.0, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        bm.bias.normal_(generator=torch.Generator().manual_seed(1))
        j = bm.coupling
        assert torch.equal(j, j.T) and bool((j.diagonal() == 0).all())
        s = all_binary(6, torch.float32)
        brute = torch.logsumexp(-bm(s).double(), 0)
    assert exact_log_partition(bm) == pytest.approx(float(brute), abs=1e-5)


def test_gaussian_rbm_exact_log_partition_matches_numerical_integration():
    g = torch.Generator().manual_seed(3)
    gb = GaussianBernoulliRBM(2, 3, sigma=0.8, init_std=0.7, generator=g).double()
    with torch.no_grad():
        gb.visible_bias.copy_(torch.tensor([0.3, -0.5]))
        gb.hidden_bias.copy_(torch.tensor([0.2, -0.4, 0.1]))
    # Trapezoid rule on a 1201 x 1201 grid over [-8, 8]^2: the density is smooth and
    # negligible outside (|b + Wh| < 2 and σ = 0.8, so the tails are below e^-30).
    t = torch.linspace(-8.0, 8.0, 1201, dtype=torch.float64)
    grid = torch.cartesian_prod(t, t)
    with torch.no_grad():
        dens = torch.exp(-gb.free_energy(grid)).view(1201, 1201)
    numeric = torch.trapezoid(torch.trapezoid(dens, t, dim=1), t)
    assert exact_log_partition(gb) == pytest.approx(math.log(float(numeric)), abs=1e-6)


def test_exact_log_partition_refuses_layers_too_large_to_enumerate():
    with pytest.raises(ValueError, match="ais_log_partition"):
        exact_log_partition(BernoulliRBM(40, 30), max_units=20)


# ------------------------------------------------------------------------------------------ AIS
@pytest.mark.parametrize(
    ("scale", "n_temperatures", "schedule", "use_data"),
    [(0.5, 3000, "linear", False), (0.5, 3000, "piecewise", True), (4.0, 5000, "linear", True)],
    ids=["moderate-uniform-base", "moderate-base-rate", "large-weights"],
)
def test_ais_matches_exact_log_partition_within_005_nats(scale, n_temperatures, schedule, use_data):
    rbm = random_rbm(20, 14, scale=scale, seed=4)
    exact = exact_log_partition(rbm)
    data = None
    if use_data:
        data = rbm.sample(500, n_steps=200, generator=torch.Generator().manual_seed(5))
    res = ais(rbm, 100, n_temperatures, schedule=schedule, data=data, generator=torch.Generator().manual_seed(6))
    assert abs(res.log_z - exact) < 0.05, (res.log_z, exact, res.stderr)
    assert res.stderr < 0.05
    assert 1.0 <= res.effective_sample_size <= 100.0
    assert res.log_weights.shape == (100,) and res.log_weights.dtype == torch.float64
    if scale > 1:  # the weights make this RBM hard: 100 temperatures from the uniform base are not enough
        few = ais(rbm, 100, 100, generator=torch.Generator().manual_seed(6))
        assert few.effective_sample_size < 50


def test_ais_with_a_coarse_first_step_sums_logs_and_stays_accurate():
    # A first jump 0 -> 0.1 on a large-weight RBM makes the per-step increment too large for
    # the product formula (max step x Σ_j |a_j| bound ≈ 96 > 60), so the log-sum path runs.
    rbm = random_rbm(20, 14, scale=4.0, seed=4)
    data = rbm.sample(500, n_steps=200, generator=torch.Generator().manual_seed(5))
    betas = torch.cat([torch.zeros(1, dtype=torch.float64), torch.linspace(0.1, 1.0, 3000, dtype=torch.float64)])
    res = ais(rbm, 100, 3000, schedule=betas, data=data, generator=torch.Generator().manual_seed(0))
    # The jump inflates the weights' spread (stderr ~0.035 here): allow 3 standard errors.
    assert abs(res.log_z - exact_log_partition(rbm)) < max(0.05, 3 * res.stderr)


def test_ais_gaussian_rbm_matches_exact_log_partition():
    g = torch.Generator().manual_seed(7)
    gb = GaussianBernoulliRBM(6, 10, sigma=0.7, init_std=0.4, generator=g)
    with torch.no_grad():
        gb.visible_bias.normal_(generator=g)
        gb.hidden_bias.normal_(generator=g)
    log_z, stderr = ais_log_partition(gb, 100, 3000, generator=torch.Generator().manual_seed(8))
    assert abs(log_z - exact_log_partition(gb)) < 0.05
    assert stderr < 0.05


def test_ais_is_reproducible_with_a_seed_and_accepts_a_custom_schedule():
    rbm = random_rbm(12, 8, scale=0.5, seed=9)
    betas = torch.linspace(0, 1, 501).pow(2)  # a quadratic schedule
    a = ais_log_partition(rbm, 20, 500, schedule=betas, generator=torch.Generator().manual_seed(1))
    b = ais_log_partition(rbm, 20, 500, schedule=betas, generator=torch.Generator().manual_seed(1))
    assert a == b
    assert abs(a[0] - exact_log_partition(rbm)) < 0.1


def test_ais_split_across_worker_threads_is_reproducible_and_accurate():
    rbm = random_rbm(20, 14, scale=0.5, seed=4)
    a = ais(rbm, 101, 2000, n_workers=2, generator=torch.Generator().manual_seed(0))
    b = ais(rbm, 101, 2000, n_workers=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.log_weights, b.log_weights) and a.log_weights.shape == (101,)
    assert abs(a.log_z - exact_log_partition(rbm)) < 0.05
    with pytest.raises(ValueError, match="n_workers"):
        ais(rbm, 4, 10, n_workers=5)


def test_ais_runs_on_one_intra_op_thread_and_restores_the_setting(monkeypatch):
    rbm = random_rbm(6, 4, scale=0.5, seed=5)
    seen = []
    draw = Uniforms.__call__

    def spy(self, shape):  # called inside the AIS loop
        seen.append(torch.get_num_threads())
        return draw(self, shape)

    monkeypatch.setattr(Uniforms, "__call__", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ais(rbm, 4, 10, generator=torch.Generator().manual_seed(0))
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_beta_schedule_shapes_and_piecewise_proportions():
    lin = beta_schedule(100)
    assert lin.shape == (101,) and float(lin[0]) == 0.0 and float(lin[-1]) == 1.0
    pw = beta_schedule(14_500, "piecewise")
    assert pw.shape == (14_501,) and bool((pw[1:] >= pw[:-1]).all())
    assert int((pw < 0.5).sum()) == 500 and int((pw >= 0.9).sum()) == 10_001  # S&M's 1e-3 / 1e-4 / 1e-5 steps


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"schedule": "cubic"}, "schedule"),
        ({"schedule": torch.linspace(0, 0.9, 11)}, "end at 1"),
        ({"schedule": torch.linspace(0, 1, 7)}, "n_temperatures"),
        ({"data": torch.full((3, 5), 2.0)}, "data"),
        ({"data": torch.zeros(3, 4)}, "data"),
    ],
)
def test_ais_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ais(BernoulliRBM(5, 3), 10, 10, **kwargs)


# ---------------------------------------------------------------------------------------- Gibbs
def test_gibbs_on_a_tiny_rbm_matches_its_exact_visible_distribution():
    rbm = random_rbm(4, 3, scale=1.0, seed=10)
    states = lsb_first(4)
    probs = torch.exp(log_likelihood(rbm, states, exact_log_partition(rbm)))  # (16,)
    g = torch.Generator().manual_seed(11)
    v = Gibbs(n_steps=100)(rbm, torch.zeros(20_000, 4), generator=g)
    # 20,000 independent chains after 100 sweeps (the chain mixes in a few): χ²(15), 1e-4 quantile 44.3.
    assert chi_square(v, probs) < 44.3


def test_gibbs_on_a_boltzmann_machine_matches_its_exact_distribution():
    g = torch.Generator().manual_seed(12)
    bm = BoltzmannMachine(5, init_std=1.0, generator=g)
    with torch.no_grad():
        bm.bias.normal_(generator=g)
    states = lsb_first(5)
    probs = torch.exp(log_likelihood(bm, states, exact_log_partition(bm)))  # (32,)
    v = Gibbs(n_steps=100)(bm, torch.zeros(20_000, 5), generator=g)
    assert chi_square(v, probs) < 69.1  # χ²(31) at 1 - 1e-4


def test_gibbs_on_a_gaussian_rbm_recovers_the_exact_visible_mean():
    g = torch.Generator().manual_seed(13)
    gb = GaussianBernoulliRBM(3, 4, sigma=0.5, init_std=0.8, generator=g).double()
    with torch.no_grad():
        gb.hidden_bias.normal_(generator=g)
    exact_mean, _ = gaussian_rbm_moments(gb)
    v = Gibbs(n_steps=200)(gb, torch.zeros(20_000, 3, dtype=torch.float64), generator=g)
    se = v.std(0) / math.sqrt(v.shape[0])
    assert bool(((v.mean(0) - exact_mean).abs() < 5 * se).all())


def test_gibbs_trace_records_free_energies_and_full_acceptance():
    rbm = random_rbm(6, 4, scale=1.0, seed=14)
    tr = Gibbs(n_steps=7).trace(rbm, torch.zeros(9, 6), generator=torch.Generator().manual_seed(0))
    assert tr.samples.shape == (9, 6) and tr.energies.shape == (8, 9)
    assert torch.allclose(tr.energies[-1], rbm.free_energy(tr.samples))
    assert bool((tr.acceptance_rate == 1).all())


def test_gibbs_rejects_other_energies_and_wrong_shapes():
    with pytest.raises(TypeError, match="BoltzmannModel"):
        Gibbs(n_steps=2)(lambda x: x.sum(1), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"expects x of shape \(B, 6\)"):
        Gibbs(n_steps=2)(BernoulliRBM(6, 2), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="n_steps"):
        Gibbs(n_steps=0)


# ------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("method", ["pcd", "cd"])
def test_training_on_a_synthetic_binary_distribution_increases_exact_log_likelihood(method):
    x = synthetic_binary(600, seed=15)
    g = torch.Generator().manual_seed(16)
    rbm = BernoulliRBM(10, 8, generator=g)
    before = float(log_likelihood(rbm, x, exact_log_partition(rbm)).mean())
    # PCD oscillates with few chains and a constant large step (the chains lag the model);
    # 100 chains and a decaying rate are the usual remedy.
    rbm.fit(x, method=method, epochs=30, batch_size=20, learning_rate=0.1, n_chains=100, momentum=0.5,
            lr_schedule="linear", generator=g)
    after = float(log_likelihood(rbm, x, exact_log_partition(rbm)).mean())
    # Before: ~ -10 log 2 = -6.9 nats (uniform). The data's entropy is 3 protos x 5% noise:
    # log 3 + 10 H(0.05) = 3.08 nats, so a good fit is near -3.1; require most of the way.
    assert before == pytest.approx(-10 * math.log(2), abs=0.1)
    assert after > -4.0, after


@pytest.mark.parametrize("method", ["pcd", "cd"])
def test_the_generic_fit_trains_an_rbm_by_gibbs_cd_and_pcd_objectives(method):
    """RBMs also train through ``ebrl.training.fit``: CD or PCD with a Gibbs sampler, SGD with momentum.

    Same data and bar as the test above; ``BoltzmannModel.fit`` remains the fast path (closed-form
    gradients, one check per epoch) that scikit-learn's settings are measured with.
    """
    x = synthetic_binary(600, seed=15)
    g = torch.Generator().manual_seed(16)
    rbm = BernoulliRBM(10, 8, generator=g)
    if method == "cd":
        objective = CD(Gibbs(n_steps=1))
    else:  # 100 persistent chains started from random binary states, never restarted (Tieleman's PCD)
        chains = ReplayBuffer(100, (10,), reinit_prob=0.0, noise=lambda n, gen: rbm.random_visible(n, generator=gen),
                              generator=g)
        objective = PCD(Gibbs(n_steps=1), chains)
    optimizer = torch.optim.SGD(rbm.parameters(), lr=0.1, momentum=0.5)
    history = fit(rbm, x, objective, epochs=30, batch_size=20, optimizer=optimizer, generator=g)
    after = float(log_likelihood(rbm, x, exact_log_partition(rbm)).mean())
    assert history.steps == 30 * 30
    assert after > -4.0, after


@pytest.mark.parametrize("method", ["pcd", "cd"])
def test_gibbs_cd_objective_trains_an_rbm_through_fit_with_sgd_and_a_scheduler(method):
    """``GibbsCD`` writes the closed-form CD/PCD gradient itself (no autograd): same data and bar as above."""
    x = synthetic_binary(600, seed=15)
    g = torch.Generator().manual_seed(16)
    rbm = BernoulliRBM(10, 8, generator=g)
    objective = GibbsCD(1, persistent=method == "pcd", n_chains=100)
    optimizer = torch.optim.SGD(rbm.parameters(), lr=0.1, momentum=0.5)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / 900)
    epochs_seen = []
    history = fit(rbm, x, objective, epochs=30, batch_size=20, optimizer=optimizer, scheduler=scheduler,
                  generator=g, callback=lambda epoch, model: epochs_seen.append(epoch))
    after = float(log_likelihood(rbm, x, exact_log_partition(rbm)).mean())
    assert history.steps == 30 * 30 and epochs_seen == list(range(30))
    assert after > -4.0, after
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # the linear decay ran to its end
    assert (objective.chains is not None) == (method == "pcd")


@pytest.mark.parametrize("model", ["rbm", "bm", "gaussian"])
def test_gibbs_cd_gradients_match_autograd_of_the_free_energy_gap(model):
    """The closed form (RBM) and the autograd default (BM, Gaussian RBM) give d/dθ [mean F(x) - mean F(v_neg)]."""
    g = torch.Generator().manual_seed(40)
    if model == "rbm":
        m = random_rbm(6, 4, scale=1.0, seed=41).float()
        x = (torch.rand(12, 6, generator=g) < 0.5).float()
    elif model == "bm":
        m = BoltzmannMachine(6, init_std=0.5, generator=g)
        x = (torch.rand(12, 6, generator=g) < 0.5).float()
    else:
        m = GaussianBernoulliRBM(3, 2, learn_sigma=True, init_std=0.5, generator=g)
        x = torch.randn(12, 3, generator=g)
    chains = m.chain_start(x[:8], generator=torch.Generator().manual_seed(42))  # 8 chains, 12 data rows
    objective = GibbsCD(2, persistent=True)
    objective.chains = chains.clone()
    loss, _ = objective(m, x, generator=torch.Generator().manual_seed(43))
    # Replay the same chains with the same seed to get v_neg, then differentiate F by autograd.
    gen = torch.Generator().manual_seed(43)
    with torch.no_grad():
        if model == "rbm":  # hidden-state chains: v ~ p(v | h), h ~ p(h | v), twice; the last v is v_neg
            h = m.sample_hidden(m.sample_visible(chains, generator=gen), generator=gen)
            # The last sweep draws one (M, V + H) block of uniforms: v_neg uses its first V columns.
            u = torch.rand((h.shape[0], m.n_visible + m.n_hidden), generator=gen)
            v_neg = (u[:, : m.n_visible] < m.visible_mean(h)).float()
        else:
            v_neg = chains
            for _ in range(2):
                v_neg = m.gibbs_step(v_neg, generator=gen)
    params = [p for p in m.parameters() if p.requires_grad]
    gap = m(x).mean() - m(v_neg).mean()
    expected = torch.autograd.grad(gap, params)
    for p, e in zip(params, expected, strict=True):
        torch.testing.assert_close(p.grad, e, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss, gap.detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [1, 3])
def test_rbm_cd_k_closed_form_matches_autograd(k):
    """CD-k (chains restart at the batch) in closed form: the gradient of mean F(x) - mean F(v_neg), and that gap."""
    m = random_rbm(6, 4, scale=1.0, seed=44).float()
    x = (torch.rand(12, 6, generator=torch.Generator().manual_seed(45)) < 0.5).float()
    loss, _ = GibbsCD(k, persistent=False)(m, x, generator=torch.Generator().manual_seed(46))
    gen = torch.Generator().manual_seed(46)  # replay: h ~ p(h | x), k - 1 full sweeps, then the last one
    with torch.no_grad():
        h = m.sample_hidden(x, generator=gen)
        for _ in range(k - 1):
            h = m.sample_hidden(m.sample_visible(h, generator=gen), generator=gen)
        u = torch.rand((h.shape[0], m.n_visible + m.n_hidden), generator=gen)
        v_neg = (u[:, : m.n_visible] < m.visible_mean(h)).float()
    gap = m(x).mean() - m(v_neg).mean()
    expected = torch.autograd.grad(gap, list(m.parameters()))
    for p, e in zip(m.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, e, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss, gap.detach(), rtol=1e-5, atol=1e-5)


def test_gibbs_cd_checks_its_arguments_and_state():
    with pytest.raises(ValueError, match="k"):
        GibbsCD(0)
    with pytest.raises(TypeError, match="persistent"):
        GibbsCD(persistent="yes")
    with pytest.raises(ValueError, match="weight_decay"):
        GibbsCD(weight_decay=-1.0)
    with pytest.raises(TypeError, match="BoltzmannModel"):
        GibbsCD()(MLPEnergy(3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"expects x of shape \(B, 4\)"):
        GibbsCD()(BernoulliRBM(4, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="chains"):
        GibbsCD().load_state_dict({"chains": torch.zeros(3)})


def test_momentum_weight_decay_and_schedules_train_and_weight_decay_shrinks_weights():
    x = synthetic_binary(400, seed=17)
    norms = {}
    for wd in (0.0, 0.05):
        g = torch.Generator().manual_seed(18)
        rbm = BernoulliRBM(10, 8, generator=g).fit(
            x, epochs=10, batch_size=20, learning_rate=0.1, momentum=0.9, weight_decay=wd,
            lr_schedule="linear", generator=g,
        )
        norms[wd] = float(rbm.weight.detach().norm())
        assert float(log_likelihood(rbm, x, exact_log_partition(rbm)).mean()) > -6.0
    assert norms[0.05] < 0.8 * norms[0.0]
    rbm = BernoulliRBM(10, 8).fit(x, epochs=2, lr_schedule=lambda p: 1.0 - p, generator=torch.Generator())
    with pytest.raises(ValueError, match="lr_schedule"):
        rbm.fit(x, epochs=1, lr_schedule=lambda p: -1.0)


def test_fit_reports_progress_and_calls_back_after_each_epoch(capsys):
    pytest.importorskip("tqdm")
    epochs = []
    BernoulliRBM(10, 4).fit(synthetic_binary(40, seed=0), epochs=3, progress_bar=True,
                            callback=lambda e, m: epochs.append(e), generator=torch.Generator().manual_seed(0))
    assert epochs == [0, 1, 2]
    assert "BernoulliRBM" in capsys.readouterr().err  # the tqdm bar, on stderr


def test_boltzmann_machine_training_increases_exact_log_likelihood():
    x = synthetic_binary(400, seed=19)
    g = torch.Generator().manual_seed(20)
    bm = BoltzmannMachine(10, generator=g)
    before = float(log_likelihood(bm, x, exact_log_partition(bm)).mean())
    bm.fit(x, method="pcd", epochs=20, batch_size=20, learning_rate=0.05, k=1, generator=g)
    after = float(log_likelihood(bm, x, exact_log_partition(bm)).mean())
    assert after > before + 2.0, (before, after)


def test_gaussian_rbm_with_learned_sigma_matches_the_data_mean_and_spread():
    g = torch.Generator().manual_seed(21)
    x = 3.0 + 2.0 * torch.randn(2000, 2, generator=g)
    gb = GaussianBernoulliRBM(2, 2, learn_sigma=True, generator=g)
    gb.fit(x, method="cd", epochs=15, batch_size=100, learning_rate=0.05, generator=g)
    mean, var = gaussian_rbm_moments(gb.double())
    # The model may split the mean between b and the hidden units, so compare its exact
    # marginal moments with the data's (mean 3, sd 2). 2000 samples give standard errors of
    # 0.045 (mean) and 0.03 (sd); SGD noise at this step size adds more, hence 0.3.
    assert torch.allclose(mean, torch.full((2,), 3.0, dtype=torch.float64), atol=0.3)
    assert torch.allclose(var.sqrt(), torch.full((2,), 2.0, dtype=torch.float64), atol=0.3)
    assert not torch.allclose(gb.log_sigma.exp(), torch.ones(2, dtype=torch.float64))  # σ was learned


def test_partial_fit_continues_persistent_chains():
    x = synthetic_binary(100, seed=22)
    g = torch.Generator().manual_seed(23)
    rbm = BernoulliRBM(10, 6, generator=g)
    rbm.partial_fit(x[:20], learning_rate=0.1, generator=g)
    chains = rbm._train_state.chains
    assert chains is not None and chains.shape == (20, 6)
    rbm.partial_fit(x[20:40], learning_rate=0.1, generator=g)
    assert rbm._train_state.chains.shape == (20, 6)


def test_fit_raises_divergence_error_naming_the_epoch():
    rbm = BernoulliRBM(10, 4)
    with torch.no_grad():
        rbm.weight[0, 0] = float("nan")
    with pytest.raises(DivergenceError, match="epoch 1 of 3"):
        rbm.fit(synthetic_binary(50, seed=0), epochs=3, generator=torch.Generator().manual_seed(0))


def test_dbn_stacks_rbms_greedily_and_samples_from_the_top():
    x = synthetic_binary(300, seed=24)
    g = torch.Generator().manual_seed(25)
    dbn = DBN([10, 8, 4], generator=g).fit(
        x, epochs=30, batch_size=20, learning_rate=0.1, n_chains=100, lr_schedule="linear", generator=g
    )
    assert dbn.transform(x).shape == (300, 4)
    s = dbn.sample(50, n_steps=20, generator=g)
    assert s.shape == (50, 10) and bool(((s == 0) | (s == 1)).all())
    m = dbn.sample(50, n_steps=20, means=True, generator=g)
    assert bool(((m > 0) & (m < 1)).all())
    # The first RBM alone is a generative model of x: it should beat the uniform distribution.
    rbm = dbn.rbms[0]
    assert float(log_likelihood(rbm, x, exact_log_partition(rbm)).mean()) > -10 * math.log(2) + 1.0


def test_dbn_fit_forwards_boltzmann_fit_options_and_names_unknown_ones():
    x = synthetic_binary(40, seed=3)
    dbn = DBN([10, 6, 3], generator=torch.Generator().manual_seed(4))
    before = [p.clone() for p in dbn.parameters()]
    with pytest.raises(TypeError, match=r"unknown option\(s\) 'lr', 'n_iter'; .*learning_rate"):
        dbn.fit(x, lr=0.1, n_iter=3)
    with pytest.raises(ValueError, match="momentum"):  # validated by the first layer's fit, before any update
        dbn.fit(x, momentum=1.5)
    assert all(torch.equal(p, q) for p, q in zip(before, dbn.parameters(), strict=True))
    seen: list[tuple[int, int]] = []
    dbn.fit(x, epochs=2, batch_size=10, shuffle=False, callback=lambda epoch, rbm: seen.append((rbm.n_visible, epoch)),
            generator=torch.Generator().manual_seed(5))
    assert seen == [(10, 0), (10, 1), (6, 0), (6, 1)]  # each layer in turn, every epoch


# ----------------------------------------------------------------------------- pseudo-likelihood
def test_pseudo_log_likelihood_sums_exact_conditionals():
    rbm = random_rbm(5, 3, scale=1.0, seed=26)
    states = all_binary(5)
    ll = log_likelihood(rbm, states, exact_log_partition(rbm))  # (32,)
    pl = pseudo_log_likelihood(rbm, states)
    # log p(x_i | x_-i) = log p(x) - log(p(x) + p(x with bit i flipped)), from the joint table.
    index = {tuple(s.tolist()): i for i, s in enumerate(states)}
    expected = []
    for s in states:
        terms = []
        for i in range(5):
            f = s.clone()
            f[i] = 1 - f[i]
            a, b = ll[index[tuple(s.tolist())]], ll[index[tuple(f.tolist())]]
            terms.append(a - torch.logaddexp(a, b))
        expected.append(sum(terms))
    assert torch.allclose(pl, torch.stack(expected), atol=1e-9)


# ----------------------------------------------------------------- reproducibility and contracts
def test_same_seed_gives_identical_training_sampling_and_ais():
    x = synthetic_binary(100, seed=27)

    def run(seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
        g = torch.Generator().manual_seed(seed)
        rbm = BernoulliRBM(10, 5, generator=g).fit(x, epochs=3, generator=g)
        samples = rbm.sample(10, n_steps=5, generator=g)
        return rbm.weight.detach().clone(), samples, ais_log_partition(rbm, 10, 50, generator=g)[0]

    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    assert not torch.equal(a[0], c[0])


def test_global_rng_is_untouched():
    x = synthetic_binary(50, seed=28)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    rbm = BernoulliRBM(10, 4).fit(x, epochs=2)
    Gibbs(n_steps=3)(rbm, x)
    ais(rbm, 5, 20, data=x)
    BoltzmannMachine(4).sample(3, n_steps=2)
    GaussianBernoulliRBM(3, 2).sample(3, n_steps=2)
    DBN([10, 4, 3]).fit(x, epochs=1).sample(2, n_steps=2)
    assert torch.equal(torch.get_rng_state(), state)


def test_models_round_trip_through_checkpoints(tmp_path):
    g = torch.Generator().manual_seed(29)
    models = [BernoulliRBM(6, 3, generator=g), GaussianBernoulliRBM(4, 2, learn_sigma=True, generator=g),
              BoltzmannMachine(5, generator=g), DBN([6, 4, 2], generator=g)]
    for i, m in enumerate(models):
        save_model(m, tmp_path / f"m{i}.pt")
        loaded = load_model(tmp_path / f"m{i}.pt")
        assert type(loaded) is type(m) and loaded.get_config() == m.get_config()
        for (name, p), q in zip(m.state_dict().items(), loaded.state_dict().values(), strict=True):
            assert torch.equal(p, q), name


@pytest.mark.parametrize(
    ("model", "x", "match"),
    [
        (BernoulliRBM(4, 2), torch.full((3, 4), 0.5), "binary"),
        (BernoulliRBM(4, 2), torch.zeros(3, 5), r"shape \(N, 4\)"),
        (BernoulliRBM(4, 2), torch.tensor([[0.0, 1.0, float("nan"), 0.0]]), "NaN"),
        (BoltzmannMachine(3), torch.full((2, 3), 2.0), "binary"),
        (GaussianBernoulliRBM(3, 2), torch.tensor([[0.0, float("inf"), 1.0]]), "non-finite"),
        (GaussianBernoulliRBM(3, 2), torch.zeros(2, 2), r"shape \(N, 3\)"),
    ],
)
def test_bad_training_data_raises_value_error_naming_x(model, x, match):
    with pytest.raises(ValueError, match=match) as info:
        model.fit(x, epochs=1)
    assert "X" in str(info.value)


def test_bad_arguments_raise_clear_errors():
    rbm = BernoulliRBM(4, 2)
    x = torch.zeros(5, 4)
    with pytest.raises(ValueError, match="method"):
        rbm.fit(x, method="sgd")
    with pytest.raises(ValueError, match="momentum"):
        rbm.fit(x, momentum=1.0)
    with pytest.raises(ValueError, match="soft=True"):
        GaussianBernoulliRBM(4, 2).fit(x, soft=True)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        rbm.fit(x + 2, soft=True)
    with pytest.raises(ValueError, match="binary"):
        log_likelihood(rbm, torch.full((2, 4), 0.3), 1.0)
    with pytest.raises(ValueError, match="log_z"):
        log_likelihood(rbm, x, float("nan"))
    with pytest.raises(ValueError, match=r"expects x of shape \(B, 4\)"):
        rbm.free_energy(torch.zeros(3, 3))
    with pytest.raises(TypeError, match="binary units"):
        pseudo_log_likelihood(GaussianBernoulliRBM(4, 2), x)
    rbm.fit(np.zeros((5, 4)), epochs=1)  # NumPy arrays are accepted


def test_soft_data_trains_a_bernoulli_rbm():
    x = synthetic_binary(200, seed=30) * 0.8 + 0.1  # probabilities, not bits
    g = torch.Generator().manual_seed(31)
    rbm = BernoulliRBM(10, 6, generator=g).fit(
        x, epochs=100, batch_size=20, n_chains=100, lr_schedule="linear", soft=True, generator=g
    )
    bits = (x > 0.5).float()
    # Uniform: -6.93 nats; the binarised data's entropy is about 3.1 (see the training test).
    assert float(log_likelihood(rbm, bits, exact_log_partition(rbm)).mean()) > -5.0


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_training_ais_and_gibbs_run_on_cuda():
    x = synthetic_binary(300, seed=32).cuda()
    g = torch.Generator(device="cuda").manual_seed(33)
    rbm = BernoulliRBM(10, 8, generator=torch.Generator().manual_seed(0)).cuda()
    rbm.fit(x, epochs=10, batch_size=20, generator=g)
    assert rbm.weight.device.type == "cuda"
    exact = exact_log_partition(rbm)
    log_z, _ = ais_log_partition(rbm, 100, 2000, data=x, generator=g)
    assert abs(log_z - exact) < 0.05
    v = Gibbs(n_steps=5)(rbm, x[:16], generator=g)
    assert v.device.type == "cuda" and v.shape == (16, 10)
