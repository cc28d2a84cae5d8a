"""Noise-conditional energies, multi-level DSM, annealed Langevin, class-conditional sampling, inpainting.

The sampler is tested on the exact noise-conditional energy of an isotropic Gaussian mixture
(``SmoothedGaussianMixture``), whose smoothed densities p_σ are known at every level. Tolerances
come from the sample size: with N independent chains, a mode weight w has standard error
sqrt(w(1 - w)/N) and we allow 3 of them; a mean has standard error s/sqrt(N) and we allow 5.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ebrl.checkpoint import load_model, save_model
from ebrl.energy import (
    ConvNoiseEnergy,
    GaussianMixtureEnergy,
    MLPNoiseEnergy,
    NoiseConditionalEnergy,
    SmoothedGaussianMixture,
    geometric_sigmas,
)
from ebrl.losses import multilevel_denoising_score_matching
from ebrl.samplers import MALA, AnnealedLangevin, DivergenceError, Langevin
from ebrl.tasks import inpaint
from ebrl.training import MultiLevelDSM, fit, labelled_rows

MEANS = [[-4.0, 0.0], [4.0, 0.0], [0.0, 5.0]]
WEIGHTS = [0.2, 0.3, 0.5]
STD = 0.5
SIGMAS = geometric_sigmas(8.0, 0.1, 12)
SAMPLER = AnnealedLangevin(SIGMAS, n_steps_each=60, step_size=2e-3, denoise=False)


def mixture() -> SmoothedGaussianMixture:
    return SmoothedGaussianMixture(MEANS, [STD] * 3, WEIGHTS)


def nearest_mode(x: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x, torch.tensor(MEANS)).argmin(1)  # (N,)


def assert_weights(x: torch.Tensor, weights: list[float], *, n_se: float = 3.0, n_data: int | None = None) -> None:
    """Mode weights within ``n_se`` standard errors; with ``n_data``, the error of a model fitted to that many
    data points (whose own mode frequencies are off by sqrt(w(1 - w)/n_data)) is added in quadrature."""
    n = x.shape[0]
    counts = torch.bincount(nearest_mode(x), minlength=len(weights)).double() / n
    w = torch.tensor(weights, dtype=torch.float64)
    tol = n_se * (w * (1 - w) * (1 / n + (0 if n_data is None else 1 / n_data))).sqrt()
    assert ((counts - w).abs() <= tol).all(), (counts.tolist(), weights, tol.tolist())


class SyncCounter(TorchDispatchMode):
    """Counts device-to-host reads (``.item()``, ``bool(tensor)``, ``int(tensor)``, ``.tolist()``)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


# --- the annealed sampler on an exact target -------------------------------------------------


def test_annealed_langevin_recovers_gaussian_mixture_mode_weights_and_means():
    target = mixture()
    g = torch.Generator().manual_seed(0)
    n = 3000
    x0 = SIGMAS[0] * torch.randn(n, 2, generator=g)
    x = SAMPLER(target, x0, generator=g)
    assert_weights(x, WEIGHTS)
    modes = nearest_mode(x)
    for k, mean in enumerate(MEANS):
        xk = x[modes == k]
        se = math.sqrt(STD**2 + SIGMAS[-1] ** 2) / math.sqrt(len(xk))
        assert (xk.mean(0) - torch.tensor(mean)).abs().max() <= 5 * se + 0.01  # + ULA bias at the last step
        assert abs(float(xk.std(0).mean()) - math.hypot(STD, SIGMAS[-1])) < 0.05


def test_single_long_langevin_chain_gets_the_mode_weights_wrong_where_annealing_does_not():
    # The reason for annealing: Langevin on the data energy alone, from the same broad start, keeps
    # whatever split the start happened to give (the modes are separated by a barrier of ~30 nats).
    target = mixture()
    g = torch.Generator().manual_seed(1)
    x0 = SIGMAS[0] * torch.randn(3000, 2, generator=g)
    x = Langevin(step_size=2e-3, n_steps=SAMPLER.n_steps)(target.at(SIGMAS[-1]), x0, generator=g)
    counts = torch.bincount(nearest_mode(x), minlength=3).double() / 3000
    assert (counts - torch.tensor(WEIGHTS, dtype=torch.float64)).abs().max() > 0.08


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA; the CPU version of this test always runs")
def test_annealed_langevin_on_cuda_recovers_mode_weights_and_inpaints_on_the_device():
    target = mixture().to("cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    x = SAMPLER(target, SIGMAS[0] * torch.randn(3000, 2, generator=g, device="cuda"), generator=g)
    assert x.device.type == "cuda"
    assert_weights(x.cpu(), WEIGHTS)
    model = ConvNoiseEnergy(1, (8, 8), (4, 8, 8), hidden=16, n_classes=3).to("cuda")
    images = torch.rand(4, 1, 8, 8, device="cuda")
    mask = torch.zeros(1, 8, 8, dtype=torch.bool, device="cuda")
    mask[..., :4] = True
    out = inpaint(model, images, mask, sampler=AnnealedLangevin((1.0, 0.1), n_steps_each=3, step_size=1e-4),
                  generator=g)
    assert out.device.type == "cuda" and torch.equal(out[..., 4:], images[..., 4:])


def test_annealed_langevin_class_conditional_samples_the_requested_component():
    target = mixture()
    g = torch.Generator().manual_seed(2)
    labels = torch.arange(1500) % 3
    x = SAMPLER(target.given(labels), SIGMAS[0] * torch.randn(1500, 2, generator=g), generator=g)
    assert (nearest_mode(x) == labels).all()
    for k, mean in enumerate(MEANS):
        xk = x[labels == k]
        assert (xk.mean(0) - torch.tensor(mean)).abs().max() <= 5 * STD / math.sqrt(len(xk)) + 0.01


def test_guidance_zero_ignores_the_label_and_samples_the_marginal():
    target = mixture()
    g = torch.Generator().manual_seed(3)
    labels = torch.zeros(3000, dtype=torch.long)
    x = SAMPLER(target.given(labels, guidance=0.0), SIGMAS[0] * torch.randn(3000, 2, generator=g), generator=g)
    assert_weights(x, WEIGHTS)


def test_tweedie_denoise_step_shrinks_each_mode_towards_its_mean():
    target = mixture()
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    x0 = SIGMAS[0] * torch.randn(2000, 2, generator=torch.Generator().manual_seed(5))
    raw = SAMPLER(target, x0, generator=g1)
    den = AnnealedLangevin(SIGMAS, n_steps_each=60, step_size=2e-3, denoise=True)(target, x0, generator=g2)
    # the same chains, then x - σ_L² ∇E(x, σ_L): the posterior mean shrinks by s² / (s² + σ_L²) within a mode
    shrink = STD**2 / (STD**2 + SIGMAS[-1] ** 2)
    mean = torch.tensor(MEANS)[nearest_mode(raw)]
    torch.testing.assert_close(den - mean, shrink * (raw - mean), atol=1e-3, rtol=1e-3)


def test_annealed_langevin_same_generator_seed_is_reproducible_and_global_rng_untouched():
    target = mixture()
    x0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    state = torch.random.get_rng_state()
    a = SAMPLER(target, x0, generator=torch.Generator().manual_seed(7))
    b = SAMPLER(target, x0, generator=torch.Generator().manual_seed(7))
    c = SAMPLER(target, x0, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(state, torch.random.get_rng_state())


def test_annealed_langevin_makes_one_host_synchronisation_per_call():
    target = mixture()
    x0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    sampler = AnnealedLangevin(SIGMAS, n_steps_each=5, step_size=2e-3)
    g = torch.Generator().manual_seed(0)
    with SyncCounter() as counter:
        sampler(target.forward, x0, generator=g)  # a plain function: no checked energy call
    base = counter.count
    with SyncCounter() as counter:
        AnnealedLangevin(SIGMAS, n_steps_each=20, step_size=2e-3)(target.forward, x0, generator=g)
    assert counter.count == base <= 2  # x0's finiteness check and the divergence check; not per step


def test_annealed_langevin_trace_records_every_step():
    target = mixture()
    sampler = AnnealedLangevin(SIGMAS[:3], n_steps_each=4, step_size=1e-2)
    tr = sampler.trace(target, torch.zeros(8, 2), generator=torch.Generator().manual_seed(0))
    assert tr.samples.shape == (8, 2)
    assert tr.energies.shape == (sampler.n_steps + 1, 8)
    assert torch.equal(tr.acceptance_rate, torch.ones(8))


def test_annealed_langevin_divergence_names_the_step_and_level():
    def explosive(x, sigma):  # E = -|x|^4: the drift grows without bound
        return -(x**4).sum(1)

    sampler = AnnealedLangevin((2.0, 1.0, 0.5), n_steps_each=10, step_size=0.5)
    with pytest.raises(DivergenceError, match=r"diverged at step \d+ of 30 \(noise level \d of 3"):
        sampler(explosive, torch.full((4, 2), 3.0), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    "sigmas", [(1.0, 1.0), (0.1, 1.0), (1.0, 0.0), (1.0, -0.5), (), (1.0, math.nan)],
    ids=["equal", "increasing", "zero", "negative", "empty", "nan"],
)
def test_noise_schedule_must_be_positive_and_strictly_decreasing(sigmas):
    with pytest.raises(ValueError, match="sigmas"):
        AnnealedLangevin(sigmas)
    with pytest.raises(ValueError, match="sigmas"):
        MultiLevelDSM(sigmas)


def test_annealed_langevin_rejects_bad_energy_and_x0():
    with pytest.raises(TypeError, match="energy"):
        SAMPLER("not an energy", torch.zeros(2, 2))
    with pytest.raises(ValueError, match="x0"):
        SAMPLER(mixture(), torch.full((2, 2), math.nan))
    with pytest.raises(ValueError, match=r"expects x of shape \(B, 2\)"):
        SAMPLER(mixture(), torch.zeros(2, 3))


# --- the energy modules ------------------------------------------------------------------------


def test_conv_noise_energy_contract_shapes_levels_and_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = ConvNoiseEnergy(1, (8, 8), (4, 8, 8), hidden=16, n_classes=3)
    x = torch.rand(5, 1, 8, 8)
    assert model(x, 0.5).shape == (5,)
    assert model(x, torch.full((5,), 0.5)).shape == (5,)
    assert model.logits(x, 0.5).shape == (5, 3)
    torch.testing.assert_close(model(x, 0.5), model.at(0.5)(x))
    torch.testing.assert_close(model(x, 0.5), -torch.logsumexp(model.logits(x, 0.5), 1))
    labels = torch.tensor([0, 1, 2, 0, 1])
    conditional = model.given(labels)(x, torch.full((5,), 0.5))
    torch.testing.assert_close(conditional, -model.logits(x, 0.5)[torch.arange(5), labels])
    path = tmp_path / "model.pt"
    save_model(model, path)
    torch.testing.assert_close(load_model(path)(x, 0.5), model(x, 0.5))
    y = Langevin(step_size=1e-3, n_steps=3)(model.at(0.5), x, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape


def test_noise_conditional_energy_rejects_bad_inputs():
    model = ConvNoiseEnergy(1, (8, 8), (4, 8, 8), hidden=16, n_classes=3)
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"expects x of shape \(B, 1, 8, 8\)"):
        model(torch.rand(2, 1, 7, 8), 0.5)
    with pytest.raises(ValueError, match="sigma"):
        model(x, 0.0)
    with pytest.raises(ValueError, match="sigma"):
        model(x, torch.tensor([0.5, -1.0]))
    with pytest.raises(ValueError, match="sigma"):
        model(x, torch.ones(3))
    with pytest.raises(ValueError, match="unknown class"):
        model.given(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="unknown class"):
        model.given(torch.tensor([-1, 0]))
    with pytest.raises(TypeError, match="labels"):
        model.given(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="n_classes=None"):
        ConvNoiseEnergy(1, (8, 8), (4,), hidden=8).given(torch.tensor([0]))
    with pytest.raises(ValueError, match="one label per chain"):
        model.given(torch.tensor([0, 1, 2]))(x, torch.ones(2))
    with pytest.raises(ValueError, match="image_size"):
        ConvNoiseEnergy(1, (8,), (4,))


# --- multi-level DSM --------------------------------------------------------------------------


class GaussianFamily(NoiseConditionalEnergy):
    """E(x, σ) = ½ (x - m)ᵀ (C + σ² I)⁻¹ (x - m), C = L Lᵀ: the exact smoothed family of a Gaussian."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.input_shape = (dim,)
        self.m = torch.nn.Parameter(torch.zeros(dim))
        self.raw = torch.nn.Parameter(torch.eye(dim))

    def cov(self, sigma: torch.Tensor) -> torch.Tensor:
        tril = torch.tril(self.raw)
        eye = torch.eye(self.m.shape[0])
        return tril @ tril.T + sigma.square()[:, None, None] * eye  # (B, D, D)

    def forward_logits(self, x, sigma):
        diff = (x - self.m).unsqueeze(-1)  # (B, D, 1)
        return -0.5 * (diff.transpose(1, 2) @ torch.linalg.solve(self.cov(sigma), diff)).reshape(-1, 1)


def test_multilevel_dsm_recovers_the_scores_of_a_gaussian_at_every_level():
    g = torch.Generator().manual_seed(0)
    mean = torch.tensor([1.0, -2.0])
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.8]])
    n = 8000
    data = mean + torch.randn(n, 2, generator=g) @ torch.linalg.cholesky(cov).T
    model = GaussianFamily(2)
    sigmas = (2.0, 0.5, 0.1)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    fit(model, data, MultiLevelDSM(sigmas), epochs=15, batch_size=256, optimizer=opt, generator=g)
    for group in opt.param_groups:
        group["lr"] = 0.003
    fit(model, data, MultiLevelDSM(sigmas), epochs=15, batch_size=256, optimizer=opt, generator=g)
    # The sample mean and covariance have relative errors ~ 1/sqrt(n) ≈ 0.011; DSM's estimator is noisier
    # (its noise ε is drawn afresh), so allow 8 / sqrt(n) ≈ 0.09 on the relative score error.
    probe = mean + torch.randn(2000, 2, generator=g) @ torch.linalg.cholesky(cov).T
    for sigma in sigmas:
        smoothed = cov + sigma**2 * torch.eye(2)
        true_score = -(probe - mean) @ torch.linalg.inv(smoothed)  # (N, 2)
        z = probe.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(model(z, sigma).sum(), z)
        score = -grad
        rel = (score - true_score).norm() / true_score.norm()
        assert rel < 8 / math.sqrt(n), (sigma, float(rel))


def test_model_records_its_noise_levels_for_training_and_checkpoints(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = mixture().sample(64, generator=g)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MLPNoiseEnergy(2, (8,), sigmas=SIGMAS)
        bare = MLPNoiseEnergy(2, (8,))
    assert model.sigmas == SIGMAS and bare.sigmas is None
    explicit = MultiLevelDSM(SIGMAS)(model, x, generator=torch.Generator().manual_seed(1))[0]
    implicit = MultiLevelDSM()(model, x, generator=torch.Generator().manual_seed(1))[0]
    torch.testing.assert_close(explicit, implicit)  # without levels, the objective trains at the model's
    with pytest.raises(ValueError, match="no noise levels"):
        MultiLevelDSM()(bare, x)
    save_model(model, tmp_path / "m.pt")
    assert load_model(tmp_path / "m.pt").sigmas == SIGMAS
    with pytest.raises(ValueError, match="strictly decreasing"):
        MLPNoiseEnergy(2, sigmas=(0.1, 1.0))


def test_ebrl_sample_draws_a_noise_conditional_model_by_annealed_langevin(tmp_path, capsys):
    from ebrl.cli import main

    with torch.random.fork_rng():
        torch.manual_seed(0)
        save_model(ConvNoiseEnergy(1, (8, 8), (4, 8, 8), hidden=16, sigmas=(1.0, 0.3, 0.1)), tmp_path / "ncsn.pt")
        save_model(ConvNoiseEnergy(1, (8, 8), (4, 8, 8), hidden=16), tmp_path / "bare.pt")
    out = tmp_path / "samples.png"
    assert main(["sample", "--model", str(tmp_path / "ncsn.pt"), "--n", "16", "--steps", "9", "--out", str(out)]) == 0
    assert "annealed Langevin, 3 noise levels x 3 steps" in capsys.readouterr().out
    assert out.stat().st_size > 0
    assert main(["sample", "--model", str(tmp_path / "bare.pt"), "--out", str(out)]) == 2
    assert "records no noise levels" in capsys.readouterr().err


def test_multilevel_dsm_with_one_level_equals_single_level_dsm():
    from ebrl.losses import denoising_score_matching

    target = mixture()
    x = target.sample(256, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    multi = multilevel_denoising_score_matching(target.forward, x, sigmas=[0.3], generator=gen)
    # the same ε: multilevel draws the level index first, then ε
    gen = torch.Generator().manual_seed(1)
    torch.randint(1, (256,), generator=gen)
    single = denoising_score_matching(target.at(0.3), x, sigma=0.3, generator=gen)
    torch.testing.assert_close(multi, single)


def test_multilevel_dsm_is_smallest_at_the_true_smoothed_energy():
    # The exact family of p_σ minimises the loss; a mixture with wrong weights scores worse.
    target = mixture()
    wrong = SmoothedGaussianMixture(MEANS, [STD] * 3, [0.5, 0.3, 0.2])
    x = target.sample(20000, generator=torch.Generator().manual_seed(0))
    losses = []
    for energy in (target, wrong):
        gen = torch.Generator().manual_seed(1)
        loss = multilevel_denoising_score_matching(energy.forward, x, sigmas=SIGMAS, generator=gen)
        losses.append(float(loss.detach()))
    assert losses[0] < losses[1]


def test_labelled_multilevel_dsm_trains_the_classifier_and_rejects_bad_labels():
    g = torch.Generator().manual_seed(0)
    target = mixture()
    labels = torch.multinomial(target.weights, 600, replacement=True, generator=g)
    x = target.means[labels] + STD * torch.randn(600, 2, generator=g)
    torch.manual_seed(0)
    model = MLPNoiseEnergy(2, (32, 32), n_classes=3)
    history = fit(model, labelled_rows(x, labels), MultiLevelDSM(SIGMAS, labelled=True), epochs=30, batch_size=100,
                  lr=3e-3, generator=g)
    assert {"dsm", "cross_entropy", "accuracy"} <= set(history.metrics)
    assert sum(history.metrics["accuracy"][-6:]) / 6 > 0.6  # above chance (1/3) although most levels are noisy
    objective = MultiLevelDSM(SIGMAS, labelled=True)
    rows = labelled_rows(x[:4], labels[:4])
    rows[0, -1] = 3.0
    with pytest.raises(ValueError, match="label column"):
        objective(model, rows)
    with pytest.raises(ValueError, match=r"rows \[x flattened, label\]"):
        objective(model, x[:4])
    with pytest.raises(ValueError, match="n_classes=None"):
        objective(MLPNoiseEnergy(2, (8,)), labelled_rows(x[:4], labels[:4]))
    with pytest.raises(TypeError, match="NoiseConditionalEnergy"):
        MultiLevelDSM(SIGMAS)(torch.nn.Linear(2, 1), x)


@pytest.mark.slow
def test_learned_noise_energy_with_annealed_langevin_recovers_mode_weights():
    g = torch.Generator().manual_seed(0)
    target = mixture()
    data = target.sample(4000, generator=g)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MLPNoiseEnergy(2, (64, 64), data_scale=3.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    fit(model, data, MultiLevelDSM(SIGMAS), epochs=40, batch_size=200, optimizer=opt, generator=g)
    for group in opt.param_groups:
        group["lr"] = 5e-4
    fit(model, data, MultiLevelDSM(SIGMAS), epochs=20, batch_size=200, optimizer=opt, generator=g)
    x = SAMPLER(model, SIGMAS[0] * torch.randn(3000, 2, generator=g), generator=g).detach()
    assert_weights(x, WEIGHTS, n_data=len(data))


# --- inpainting ------------------------------------------------------------------------------


def test_inpaint_with_annealed_langevin_samples_the_conditional_and_keeps_the_visible_entries():
    # Modes at (-3, -3) and (3, 3): seeing x_0 = 2.8 leaves x_1 ~ N(3, s²) (the other mode has posterior
    # weight ~ exp(-67)).
    target = SmoothedGaussianMixture([[-3.0, -3.0], [3.0, 3.0]], [STD, STD])
    g = torch.Generator().manual_seed(0)
    n = 2000
    images = torch.tensor([[2.8, 123.0]]).repeat(n, 1)  # the hidden value is ignored
    mask = torch.tensor([False, True])
    x = inpaint(target, images, mask, sampler=SAMPLER, generator=g)
    assert torch.equal(x[:, 0], images[:, 0])
    hidden = x[:, 1]
    assert abs(float(hidden.mean()) - 3.0) < 5 * STD / math.sqrt(n) + 0.01
    assert abs(float(hidden.std()) - math.hypot(STD, SIGMAS[-1])) < 5 * STD / math.sqrt(2 * n) + 0.01


def test_inpaint_with_mala_samples_the_exact_conditional_of_a_mixture():
    # x_0 = 0 sits between two modes at (±2, ±2) of weights 0.3 / 0.7: x_1 | x_0 = 0 is bimodal with the same
    # weights. Chains start at zero and MALA mixes (the barrier in x_1 is low with s = 1).
    target = GaussianMixtureEnergy([[-2.0, -2.0], [2.0, 2.0]], stds=[1.0, 1.0], weights=[0.3, 0.7])
    g = torch.Generator().manual_seed(1)
    n = 3000
    images = torch.zeros(n, 2)
    mask = torch.tensor([[False, True]]).expand(n, 2)
    x = inpaint(target, images, mask, sampler=MALA(step_size=0.5, n_steps=400), generator=g)
    assert torch.equal(x[:, 0], images[:, 0])
    # E[x_1 | x_0 = 0] = 0.3 · (-2) + 0.7 · 2 = 0.8; Var = 1 + 4 - 0.64
    var = 1 + 4 - 0.8**2
    assert abs(float(x[:, 1].mean()) - 0.8) < 5 * math.sqrt(var / n) + 0.02


def test_inpaint_rejects_bad_masks_and_samplers():
    target = mixture()
    images = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="mask must have the shape"):
        inpaint(target, images, torch.zeros(3, dtype=torch.bool), sampler=SAMPLER)
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        inpaint(target, images, torch.zeros(4, 2), sampler=SAMPLER)
    with pytest.raises(TypeError, match="AnnealedLangevin"):
        inpaint(target, images, torch.zeros(2, dtype=torch.bool), sampler=Langevin())
    with pytest.raises(TypeError, match="sampler"):
        inpaint(target, images, torch.zeros(2, dtype=torch.bool), sampler="langevin")
    with pytest.raises(ValueError, match="images"):
        inpaint(target, torch.full((4, 2), math.nan), torch.zeros(2, dtype=torch.bool), sampler=SAMPLER)
