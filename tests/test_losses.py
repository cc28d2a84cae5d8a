"""The losses: each formula against a direct computation, the statistical properties they promise
(score matching recovers a Gaussian score, NCE self-normalises, InfoNCE ranks positives first),
and the errors promised for bad input.

Tolerances: where a quantity is a sample mean, its standard error is estimated from the sample
(or from the known variance) and we allow 5 standard errors. Where a network is trained, the
tolerance is stated next to the measured error and the value that a wrong objective would give.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ebrl.energy import Energy, GaussianEnergy, MLPEnergy, StateActionEnergy, UniformBox
from ebrl.losses import (
    contrastive_divergence,
    denoising_score_matching,
    info_nce,
    nce,
    sliced_score_matching,
)
from ebrl.training import DSM, NCE, SSM, InfoNCE, fit

MU = torch.tensor([1.0, -0.5])
COV = torch.tensor([[1.0, 0.6], [0.6, 0.5]])  # eigenvalues ≈ 1.37 and 0.13: strongly correlated


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def seeded(factory, seed: int):
    """Build a module with initial weights fixed by ``seed``, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def rel_error(s_hat: torch.Tensor, s: torch.Tensor) -> float:
    """Relative RMS error sqrt(E‖ŝ - s‖² / E‖s‖²) over the rows."""
    return float(((s_hat - s).square().sum(1).mean() / s.square().sum(1).mean()).sqrt())


# --- formulas -------------------------------------------------------------------------------


def test_contrastive_divergence_matches_igebm_formula():
    g = gen(0)
    e_pos, e_neg = torch.randn(7, generator=g), torch.randn(11, generator=g)
    expected = e_pos.mean() - e_neg.mean() + 0.3 * (e_pos.square().mean() + e_neg.square().mean())
    torch.testing.assert_close(contrastive_divergence(e_pos, e_neg, l2=0.3), expected)
    torch.testing.assert_close(contrastive_divergence(e_pos, e_neg), e_pos.mean() - e_neg.mean())


def test_contrastive_divergence_gradient_lowers_data_energy_and_raises_negative_energy():
    e_pos = torch.zeros(4, requires_grad=True)
    e_neg = torch.zeros(8, requires_grad=True)
    contrastive_divergence(e_pos, e_neg).backward()
    # Gradient descent moves e_pos down (gradient +1/B) and e_neg up (gradient -1/M).
    torch.testing.assert_close(e_pos.grad, torch.full((4,), 0.25))
    torch.testing.assert_close(e_neg.grad, torch.full((8,), -0.125))


def test_nce_with_equal_counts_is_logistic_regression_on_the_log_ratio():
    g = gen(1)
    e_x, e_y, lq_x, lq_y = (torch.randn(16, generator=g) for _ in range(4))
    # ν = 1: the loss is the binary cross-entropy of classifying data (1) vs noise (0) with
    # logit -E - log q, summed over the two classes' means.
    bce = F.binary_cross_entropy_with_logits
    expected = bce(-e_x - lq_x, torch.ones(16)) + bce(-e_y - lq_y, torch.zeros(16))
    torch.testing.assert_close(nce(e_x, e_y, lq_x, lq_y), expected)


def test_nce_weights_noise_by_the_ratio():
    g = gen(2)
    e_x, lq_x = torch.randn(5, generator=g), torch.randn(5, generator=g)
    e_y, lq_y = torch.randn(15, generator=g), torch.randn(15, generator=g)
    nu = 3.0
    g_x, g_y = -e_x - lq_x - math.log(nu), -e_y - lq_y - math.log(nu)
    expected = -F.logsigmoid(g_x).mean() - nu * torch.log1p(-torch.sigmoid(g_y)).mean()
    torch.testing.assert_close(nce(e_x, e_y, lq_x, lq_y), expected)


def test_nce_is_stable_for_extreme_energies():
    big = torch.tensor([1e4, -1e4])
    loss = nce(big, -big, torch.zeros(2), torch.zeros(2))
    assert torch.isfinite(loss)


def test_info_nce_is_cross_entropy_with_the_positive_first():
    g = gen(3)
    e_pos, e_neg = torch.randn(6, generator=g), torch.randn(6, 9, generator=g)
    logits = -torch.cat([e_pos[:, None], e_neg], 1) / 0.5
    expected = -torch.log_softmax(logits, dim=1)[:, 0].mean()
    torch.testing.assert_close(info_nce(e_pos, e_neg, temperature=0.5), expected)
    # Lowering the positive's energy lowers the loss.
    assert info_nce(e_pos - 1.0, e_neg) < info_nce(e_pos, e_neg)


def denormal(x: torch.Tensor) -> bool:
    """Whether ``x`` holds a denormal (subnormal) float: nonzero and below the smallest normal number."""
    a = x.abs()
    return bool(((a > 0) & (a < torch.finfo(x.dtype).tiny)).any())


def test_info_nce_and_nce_settled_terms_give_no_denormal_gradients_and_the_same_loss():
    """Counter-examples far above the best energy (here up to 300 nats) would have softmax weights, hence gradients,
    below float32's smallest normal number: denormals, on which CPU arithmetic is many times slower. The losses cut
    the gradient of terms settled beyond e^-50; the loss and every gradient that matters stay the plain formula's."""
    gaps = torch.linspace(0.0, 300.0, 64)  # (N,)
    e_pos = torch.zeros(4, requires_grad=True)
    e_neg = (gaps.repeat(4, 1) + torch.arange(4.0)[:, None]).requires_grad_(True)  # (B, N)
    plain_pos, plain_neg = e_pos.detach().clone().requires_grad_(True), e_neg.detach().clone().requires_grad_(True)
    plain = -torch.log_softmax(-torch.cat([plain_pos[:, None], plain_neg], 1), dim=1)[:, 0].mean()
    plain.backward()
    assert denormal(plain_neg.grad), "the plain formula must underflow here, or this test checks nothing"
    loss = info_nce(e_pos, e_neg)
    loss.backward()
    torch.testing.assert_close(loss, plain.detach())
    assert not denormal(e_neg.grad) and not denormal(e_pos.grad)
    torch.testing.assert_close(e_pos.grad, plain_pos.grad)
    torch.testing.assert_close(e_neg.grad, plain_neg.grad, atol=1e-22, rtol=1e-6)  # cut terms were below e^-50 / B
    # A positive far worse than its counter-examples keeps its whole gradient (p - 1 ≈ -1 per row, / B).
    worse = torch.full((4,), 300.0, requires_grad=True)
    info_nce(worse, torch.zeros(4, 8)).backward()
    torch.testing.assert_close(worse.grad, torch.full((4,), 0.25))
    # NCE: data and noise classified with a margin of up to 300 nats.
    e_data = (-gaps).requires_grad_(True)
    e_noise = gaps.clone().requires_grad_(True)
    zeros = torch.zeros(64)
    plain_data = e_data.detach().clone().requires_grad_(True)
    plain_noise = e_noise.detach().clone().requires_grad_(True)
    plain = F.softplus(plain_data).mean() + F.softplus(-plain_noise).mean()  # ν = 1, log q = 0: G = -E
    plain.backward()
    assert denormal(plain_data.grad)
    loss = nce(e_data, e_noise, zeros, zeros)
    loss.backward()
    torch.testing.assert_close(loss, plain.detach())
    assert not denormal(e_data.grad) and not denormal(e_noise.grad)
    torch.testing.assert_close(e_data.grad, plain_data.grad, atol=1e-22, rtol=1e-6)
    torch.testing.assert_close(e_noise.grad, plain_noise.grad, atol=1e-22, rtol=1e-6)


def test_denoising_score_matching_matches_formula_with_the_same_noise():
    target = GaussianEnergy(MU, COV)
    x = target.sample(64, generator=gen(4))
    sigma = 0.3
    loss = denoising_score_matching(target, x, sigma=sigma, generator=gen(5))
    eps = torch.randn(x.shape, generator=gen(5))  # the loss draws ε first from its generator
    grad = (x + sigma * eps - MU) @ torch.linalg.inv(COV)  # ∇E of a Gaussian (Σ⁻¹ is symmetric)
    expected = 0.5 * (eps - sigma * grad).square().sum(1).mean()
    torch.testing.assert_close(loss, expected)


def test_score_matching_losses_reach_the_parameters_and_leave_global_rng_alone():
    energy = MLPEnergy(2, (16,))
    x = torch.randn(32, 2, generator=gen(6))
    state = torch.get_rng_state()
    for loss in (
        denoising_score_matching(energy, x, sigma=0.2, generator=gen(7)),
        sliced_score_matching(energy, x, generator=gen(7)),
        sliced_score_matching(energy, x, variance_reduction=False, n_projections=3),
    ):
        energy.zero_grad()
        loss.backward()
        grads = dict(energy.named_parameters())
        # Every weight gets a gradient; the output bias cannot (a constant has no score).
        assert all(float(p.grad.abs().sum()) > 0 for name, p in grads.items() if name.endswith("weight"))
        assert grads["net.2.bias"].grad is None
    assert torch.equal(state, torch.get_rng_state())


def test_score_matching_same_generator_seed_gives_same_loss():
    energy = MLPEnergy(2, (16,))
    x = torch.randn(32, 2, generator=gen(8))
    for fn in (
        lambda g: denoising_score_matching(energy, x, sigma=0.2, generator=g),
        lambda g: sliced_score_matching(energy, x, n_projections=2, generator=g),
    ):
        assert torch.equal(fn(gen(9)), fn(gen(9)))
        assert not torch.equal(fn(gen(9)), fn(gen(10)))


def test_sliced_score_matching_estimates_hyvarinen_objective_of_a_gaussian_model():
    # Model E = ½(x-μ_m)ᵀA(x-μ_m) (score s = -A(x-μ_m)) on data x ~ N(μ_d, Σ_d). Hyvärinen's
    # objective E[tr ∇s + ½‖s‖²] is exactly -tr A + ½ tr(A² (Σ_d + δδᵀ)), δ = μ_d - μ_m.
    model_cov = torch.tensor([[0.8, 0.2], [0.2, 0.6]])
    model = GaussianEnergy([0.5, 0.0], model_cov)
    a = torch.linalg.inv(model_cov)
    delta = (MU - model.mean)[:, None]
    exact = float(-a.trace() + 0.5 * (a @ a @ (COV + delta @ delta.T)).trace())
    data = GaussianEnergy(MU, COV)
    g = gen(11)
    k = 20  # independent chunks; the spread of chunk means gives the standard error
    chunks = {True: [], False: []}
    for _ in range(k):
        x = data.sample(500, generator=g)
        for vr in (True, False):
            loss = sliced_score_matching(model, x, n_projections=2, variance_reduction=vr, generator=g)
            chunks[vr].append(float(loss.detach()))
    for vr in (True, False):
        values = torch.tensor(chunks[vr])
        se = float(values.std()) / math.sqrt(k)
        # 5 standard errors; with 19 degrees of freedom a false alarm has probability < 1e-4.
        assert abs(float(values.mean()) - exact) < 5 * se, (vr, float(values.mean()), exact, se)


# --- training recovers what each loss promises ----------------------------------------------


@pytest.mark.slow
def test_dsm_trained_mlp_score_matches_the_noise_convolved_gaussian_score():
    sigma = 0.3
    target = GaussianEnergy(MU, COV)
    g = gen(0)
    train, test = target.sample(4096, generator=g), target.sample(1000, generator=g)
    energy = seeded(lambda: MLPEnergy(2, (64, 64)), 0)
    fit(energy, train, DSM(sigma), epochs=30, batch_size=256, lr=3e-3, generator=g)
    fit(energy, train, DSM(sigma), epochs=15, batch_size=256, lr=3e-4, generator=g)  # anneal: less SGD noise
    s_hat = energy.score(test)
    # DSM's minimiser is the score of p * N(0, σ²I) = N(μ, Σ + σ²I), so that is the reference.
    s_noisy = -(test - MU) @ torch.linalg.inv(COV + sigma**2 * torch.eye(2))
    s_clean = -(test - MU) @ torch.linalg.inv(COV)
    # With N = 4096 points the parametric error of a 2-D precision is ≈ sqrt(3/N)·few ≈ 3-5%;
    # the network fit and SGD noise add to it. Measured 4-7% over four seeds; we allow 15%.
    # Ignoring the convolution (the clean score) is off by ≈ 46%, far outside the tolerance.
    assert rel_error(s_hat, s_noisy) < 0.15
    assert rel_error(s_hat, s_clean) > 0.3


@pytest.mark.slow
def test_ssm_trained_mlp_recovers_the_gaussian_score():
    target = GaussianEnergy(MU, COV)
    g = gen(1)
    train, test = target.sample(4096, generator=g), target.sample(1000, generator=g)
    energy = seeded(lambda: MLPEnergy(2, (64, 64)), 0)
    fit(energy, train, SSM(n_projections=1), epochs=30, batch_size=256, lr=3e-3, generator=g)
    fit(energy, train, SSM(n_projections=1), epochs=15, batch_size=256, lr=3e-4, generator=g)
    s_true = -(test - MU) @ torch.linalg.inv(COV)
    # SSM targets the data score itself. Its estimator is noisier than DSM's (a trace estimate
    # of second derivatives); measured 5-10% over four seeds; we allow 20% (a zero score is 100%).
    assert rel_error(energy.score(test), s_true) < 0.2


class QuadraticEnergy(Energy):
    """E(x) = ½((x - m)/s)² + c over 1-D x ``(B, 1) -> (B,)``; normalised iff c = log(s√(2π))."""

    event_shape = (1,)

    def __init__(self) -> None:
        super().__init__()
        self.m = nn.Parameter(torch.zeros(()))
        self.log_s = nn.Parameter(torch.zeros(()))
        self.c = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((x[:, 0] - self.m) / self.log_s.exp()).square() + self.c  # (B,)


@pytest.mark.slow
def test_nce_learns_a_normalised_gaussian():
    n, m_true, s_true = 10_000, 1.5, 0.7
    g = gen(2)
    data = m_true + s_true * torch.randn(n, 1, generator=g)
    noise = GaussianEnergy([0.5], [[4.0]])  # N(0.5, 2²): covers the data, easy to tell apart
    energy = QuadraticEnergy()
    fit(energy, data, NCE(noise, ratio=4), epochs=20, batch_size=500, lr=3e-2, generator=g)
    fit(energy, data, NCE(noise, ratio=4), epochs=10, batch_size=500, lr=3e-3, generator=g)
    m_hat, s_hat, c_hat = float(energy.m.detach()), float(energy.log_s.detach().exp()), float(energy.c.detach())
    # Maximum-likelihood standard errors: m: s/√N = 0.007, s: s/√(2N) = 0.005, log s (hence c):
    # 1/√(2N) = 0.007. NCE with ν = 4 is somewhat less efficient than ML; allow 5 ML errors.
    assert abs(m_hat - m_true) < 5 * s_true / math.sqrt(n)
    assert abs(s_hat - s_true) < 5 * s_true / math.sqrt(2 * n)
    log_z = math.log(s_true * math.sqrt(2 * math.pi))  # self-normalisation: c = log Z
    assert abs(c_hat - log_z) < 5 / math.sqrt(2 * n) + 5 / math.sqrt(n)


def expert_action(obs: torch.Tensor) -> torch.Tensor:
    """A smooth deterministic policy on [-1, 1]²: ``(B, 2) -> (B, 2)``."""
    return torch.stack([0.8 * torch.tanh(2 * obs[:, 0] - obs[:, 1]), 0.5 * obs[:, 1] + 0.3 * obs[:, 0]], 1)


@pytest.mark.slow
def test_info_nce_trained_state_action_energy_ranks_held_out_positives_first():
    g = gen(0)
    obs = 2 * torch.rand(2000, 2, generator=g) - 1
    data = torch.cat([obs, expert_action(obs)], 1)  # rows [obs, act]: (N, 4)
    energy = seeded(lambda: StateActionEnergy(2, 2, (64, 64)), 0)
    noise = UniformBox(-1.0, 1.0, dim=2)
    fit(energy, data, InfoNCE(noise, n_negatives=64), epochs=20, batch_size=128, lr=3e-3, generator=g)
    test_obs = 2 * torch.rand(1000, 2, generator=g) - 1
    negatives = noise.sample(1000 * 31, generator=g).reshape(1000, 31, 2)  # (B*31, 2) -> (B, 31, 2)
    candidates = torch.cat([expert_action(test_obs)[:, None], negatives], 1)  # (B, 32, 2), positive first
    with torch.no_grad():
        energies = energy(test_obs, candidates)  # (B, 32)
    frac_first = float((energies.argmin(1) == 0).float().mean())
    # Chance is 1/32. Measured 0.97-0.99 over seeds 0-2 (binomial s.e. at 1000 groups ≈ 0.005);
    # we require 0.90.
    assert frac_first >= 0.90


# --- bad input -------------------------------------------------------------------------------

E4 = torch.zeros(4)
NAN4 = torch.tensor([0.0, float("nan"), 0.0, 0.0])
ENERGY = MLPEnergy(2, (8,))
X = torch.zeros(4, 2)


class WrongShapeEnergy(Energy):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(1, keepdim=True)  # (B, 1), not (B,)


BAD_INPUTS = [
    ("cd_2d_e_pos", lambda: contrastive_divergence(torch.zeros(4, 1), E4), ValueError, r"e_pos must have shape \(B,\)"),
    ("cd_empty", lambda: contrastive_divergence(torch.zeros(0), E4), ValueError, "e_pos must have a non-empty"),
    ("cd_nan", lambda: contrastive_divergence(NAN4, E4), ValueError, "e_pos contains 1 non-finite"),
    ("cd_inf_neg", lambda: contrastive_divergence(E4, torch.full((4,), math.inf)), ValueError, "e_neg contains"),
    ("cd_negative_l2", lambda: contrastive_divergence(E4, E4, l2=-0.1), ValueError, "l2 must be"),
    ("cd_int", lambda: contrastive_divergence(torch.zeros(4, dtype=torch.long), E4), TypeError, "floating-point"),
    ("nce_mismatch", lambda: nce(E4, E4, torch.zeros(5), E4),
     ValueError, r"e_data has shape \(4,\) but log_q_data has shape \(5,\)"),
    ("nce_noise_mismatch", lambda: nce(E4, torch.zeros(6), E4, E4),
     ValueError, r"e_noise has shape \(6,\) but log_q_noise"),
    ("nce_log_q_inf", lambda: nce(E4, E4, torch.full((4,), -math.inf), E4), ValueError, "log_q_data contains"),
    ("nce_nan", lambda: nce(E4, NAN4, E4, E4), ValueError, "e_noise contains"),
    ("info_nce_batch", lambda: info_nce(E4, torch.zeros(5, 3)),
     ValueError, r"e_pos has shape \(4,\) but e_neg has shape \(5, 3\)"),
    ("info_nce_1d_neg", lambda: info_nce(E4, E4), ValueError, r"e_neg must have shape \(B, N\)"),
    ("info_nce_no_neg", lambda: info_nce(E4, torch.zeros(4, 0)), ValueError, "e_neg must be non-empty"),
    ("info_nce_temperature", lambda: info_nce(E4, torch.zeros(4, 2), temperature=0.0), ValueError, "temperature"),
    ("info_nce_nan", lambda: info_nce(E4, torch.full((4, 2), math.nan)), ValueError, "e_neg contains"),
    ("dsm_sigma_zero", lambda: denoising_score_matching(ENERGY, X, sigma=0.0), ValueError, "sigma must be"),
    ("dsm_sigma_negative", lambda: denoising_score_matching(ENERGY, X, sigma=-1.0), ValueError, "sigma must be"),
    ("dsm_sigma_nan", lambda: denoising_score_matching(ENERGY, X, sigma=math.nan), ValueError, "sigma must be"),
    ("dsm_nan_x", lambda: denoising_score_matching(ENERGY, X + math.nan, sigma=0.1), ValueError, "x contains"),
    ("dsm_1d_x", lambda: denoising_score_matching(ENERGY, E4, sigma=0.1), ValueError, "x must have at least 2"),
    ("dsm_empty_x", lambda: denoising_score_matching(ENERGY, torch.zeros(0, 2), sigma=0.1), ValueError, "non-empty"),
    ("dsm_energy_size", lambda: denoising_score_matching(ENERGY, torch.zeros(4, 3), sigma=0.1),
     ValueError, r"expects x of shape \(B, 2\)"),
    ("dsm_energy_output", lambda: denoising_score_matching(WrongShapeEnergy(), X, sigma=0.1),
     ValueError, r"returned shape \(4, 1\)"),
    ("dsm_not_callable", lambda: denoising_score_matching("energy", X, sigma=0.1),
     TypeError, "energy must be callable"),
    ("dsm_bad_generator", lambda: denoising_score_matching(ENERGY, X, sigma=0.1, generator=1), TypeError, "generator"),
    ("ssm_projections", lambda: sliced_score_matching(ENERGY, X, n_projections=0), ValueError, "n_projections"),
    ("ssm_vr_type", lambda: sliced_score_matching(ENERGY, X, variance_reduction=1), TypeError, "variance_reduction"),
    ("ssm_nan_x", lambda: sliced_score_matching(ENERGY, X + math.inf), ValueError, "x contains"),
    ("ssm_energy_size", lambda: sliced_score_matching(ENERGY, torch.zeros(4, 5)), ValueError, r"got \(4, 5\)"),
]


@pytest.mark.parametrize(("call", "error", "match"), [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_loss_inputs_raise_the_promised_error(call, error, match):
    with pytest.raises(error, match=match):
        call()
