"""Denoising and anomaly scoring: exact answers on Gaussians, the scikit-learn contract, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ebrl.energy import GaussianEnergy
from ebrl.tasks import map_denoise, posterior_mean_denoise, psnr, tweedie_denoise

MU = torch.tensor([0.5, -0.2, 0.1])
COV = torch.tensor([[0.3, 0.1, 0.0], [0.1, 0.2, 0.05], [0.0, 0.05, 0.1]])
SIGMA = 0.3


def exact_posterior_mean(y: torch.Tensor) -> torch.Tensor:
    """For x ~ N(μ, Σ), y = x + σε: E[x|y] = μ + Σ(Σ + σ²I)⁻¹(y - μ)."""
    gain = COV @ torch.linalg.inv(COV + SIGMA**2 * torch.eye(3))
    return MU + (y - MU) @ gain.T


def noisy_observations(n: int = 200) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = GaussianEnergy(MU, COV).sample(n, generator=g)
    return x + SIGMA * torch.randn(n, 3, generator=g)


def test_tweedie_with_the_noisy_data_energy_is_the_exact_posterior_mean():
    y = noisy_observations()
    noisy_energy = GaussianEnergy(MU, COV + SIGMA**2 * torch.eye(3))
    assert torch.allclose(tweedie_denoise(noisy_energy, y, sigma=SIGMA), exact_posterior_mean(y), atol=1e-5)


def test_map_with_a_gaussian_prior_is_the_posterior_mean():
    # For a Gaussian prior the posterior is Gaussian, so its mode equals its mean.
    y = noisy_observations()
    x = map_denoise(GaussianEnergy(MU, COV), y, sigma=SIGMA, n_steps=400)
    assert torch.allclose(x, exact_posterior_mean(y), atol=1e-4)


def test_posterior_mean_by_langevin_matches_the_exact_posterior_mean():
    y = noisy_observations(50)
    x = posterior_mean_denoise(
        GaussianEnergy(MU, COV), y, sigma=SIGMA, n_chains=400, n_steps=300, generator=torch.Generator().manual_seed(1)
    )
    # Posterior variance ≤ σ² = 0.09 per coordinate: the average of 400 chains has standard error
    # ≤ 0.3/20 = 0.015; allow 5 of them plus ULA's O(ε) bias at ε = σ²/10.
    assert (x - exact_posterior_mean(y)).abs().max() < 5 * 0.015 + 0.01


def test_psnr_of_known_error():
    ref = torch.zeros(2, 1, 4, 4)
    x = ref + 0.1
    assert torch.allclose(psnr(x, ref), torch.full((2,), 20.0))
    with pytest.raises(ValueError, match="one shape"):
        psnr(x, torch.zeros(2, 16))


@pytest.mark.parametrize("fn", [tweedie_denoise, map_denoise, posterior_mean_denoise])
def test_denoisers_reject_bad_sigma_and_nan(fn):
    e = GaussianEnergy(MU, COV)
    with pytest.raises(ValueError, match="sigma"):
        fn(e, torch.zeros(2, 3), sigma=0.0)
    with pytest.raises(ValueError, match="sigma"):
        fn(e, torch.zeros(2, 3), sigma=-0.1)
    with pytest.raises(ValueError, match="y contains"):
        fn(e, torch.tensor([[math.nan, 0.0, 0.0]]), sigma=0.1)


def test_denoising_images_of_the_wrong_shape_raises():
    from ebrl.energy import ConvEnergy

    with pytest.raises(ValueError, match="expects images of shape"):
        tweedie_denoise(ConvEnergy(1, (4,)), torch.zeros(2, 64), sigma=0.1)


sklearn = pytest.importorskip("sklearn")


def blobs(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inliers = rng.normal(size=(n, 4))
    outliers = rng.uniform(-8, 8, size=(n // 4, 4))
    outliers = outliers[np.linalg.norm(outliers, axis=1) > 5]
    return inliers, outliers


@pytest.mark.parametrize(
    "params",
    [{"energy": "gaussian"}, {"energy": "mlp", "objective": "dsm", "epochs": 30, "hidden": (32, 32)},
     {"energy": "mlp", "objective": "pcd", "epochs": 20, "hidden": (32, 32)},
     {"energy": "gaussian", "covariance": "auto"},
     {"energy": "residual", "objective": "dsm", "epochs": 10, "hidden": (16,)}],
    ids=["gaussian", "dsm", "pcd", "gaussian-auto", "residual-dsm"],
)
def test_outlier_detector_separates_far_points_and_follows_sklearn_conventions(params):
    from sklearn.metrics import roc_auc_score

    from ebrl.tasks import EnergyOutlierDetector

    inliers, outliers = blobs()
    det = EnergyOutlierDetector(random_state=0, **params).fit(inliers[:150])
    test = np.r_[inliers[150:], outliers]
    scores = det.score_samples(test)
    labels = np.r_[np.ones(50), np.zeros(len(outliers))]
    assert roc_auc_score(labels, scores) > 0.95  # higher = more normal, as in scikit-learn
    assert np.allclose(det.decision_function(test), scores - det.offset_)
    pred = det.predict(test)
    assert set(np.unique(pred)) <= {-1, 1}
    assert (pred == np.where(det.decision_function(test) < 0, -1, 1)).all()


def test_contamination_sets_the_training_outlier_fraction():
    from ebrl.tasks import EnergyOutlierDetector

    inliers, _ = blobs(400)
    det = EnergyOutlierDetector(energy="gaussian", contamination=0.1, random_state=0).fit(inliers)
    frac = float((det.predict(inliers) == -1).mean())
    assert abs(frac - 0.1) <= 1 / 400 + 1e-9  # a percentile threshold: exact up to one sample


def test_same_random_state_gives_the_same_detector():
    from ebrl.tasks import EnergyOutlierDetector

    inliers, outliers = blobs()
    kw = {"energy": "mlp", "epochs": 5, "hidden": (16,), "random_state": 3}
    a = EnergyOutlierDetector(**kw).fit(inliers).score_samples(outliers)
    b = EnergyOutlierDetector(**kw).fit(inliers).score_samples(outliers)
    assert np.array_equal(a, b)


def test_detector_bad_input_raises_sklearn_errors():
    from sklearn.exceptions import NotFittedError

    from ebrl.tasks import EnergyOutlierDetector

    with pytest.raises(NotFittedError):
        EnergyOutlierDetector().predict(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        EnergyOutlierDetector(energy="gaussian").fit(np.array([[0.0, np.nan], [1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="contamination"):
        EnergyOutlierDetector(contamination=0.9).fit(np.zeros((5, 2)))
    det = EnergyOutlierDetector(energy="gaussian").fit(np.random.default_rng(0).normal(size=(20, 3)))
    with pytest.raises(ValueError, match="features"):
        det.predict(np.zeros((2, 4)))


@pytest.mark.slow
def test_detector_passes_sklearn_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator

    from ebrl.tasks import EnergyOutlierDetector

    check_estimator(EnergyOutlierDetector(energy="mlp", epochs=2, hidden=(8,), random_state=0))
    check_estimator(EnergyOutlierDetector(energy="gaussian", random_state=0))


# --- Energies built from data, walk-jump sampling, covariance selection -----------------------------------------


def test_kernel_density_energy_is_normalised_and_smooths_by_adding_variances():
    from ebrl.tasks import KernelDensityEnergy

    centers = torch.tensor([[-1.0], [0.5], [2.0]])
    kde = KernelDensityEnergy(centers, 0.4)
    grid = torch.linspace(-6, 8, 14001).unsqueeze(1)  # (G, 1), spacing 1e-3
    mass = torch.exp(-kde(grid)).sum() * 1e-3
    assert abs(float(mass) - 1.0) < 1e-4  # Riemann sum of a smooth density with negligible tails
    smooth = kde.smoothed(0.3)
    assert math.isclose(smooth.bandwidth, 0.5)  # √(0.4² + 0.3²)
    log_norm = math.log(3 * math.sqrt(2 * math.pi * 0.25))
    direct = log_norm - torch.logsumexp(-(grid - centers.T).square() / (2 * 0.25), 1)  # (G,)
    assert torch.allclose(smooth(grid), direct, atol=1e-4)


def test_tweedie_on_the_smoothed_kde_is_the_empirical_bayes_posterior_mean():
    from ebrl.tasks import KernelDensityEnergy

    g = torch.Generator().manual_seed(0)
    centers, h, sigma = torch.randn(20, 3, generator=g), 0.3, 0.5
    y = torch.randn(7, 3, generator=g) * 1.5
    # Posterior under the prior (1/N) Σ N(c_i, h²I): weights softmax(-‖y-c_i‖²/2s²), s² = h² + σ², and the
    # posterior mean within component i is c_i + h²/s² (y - c_i).
    s2 = h**2 + sigma**2
    w = torch.softmax(-torch.cdist(y, centers).square() / (2 * s2), dim=1)  # (7, 20)
    exact = w @ centers + h**2 / s2 * (y - w @ centers)
    est = tweedie_denoise(KernelDensityEnergy(centers, h).smoothed(sigma), y, sigma=sigma)
    assert torch.allclose(est, exact, atol=1e-5)


@pytest.mark.slow
def test_langevin_posterior_mean_under_a_kde_prior_matches_its_exact_value():
    from ebrl.tasks import KernelDensityEnergy

    g = torch.Generator().manual_seed(0)
    centers, h, sigma, n_chains = torch.randn(10, 2, generator=g), 0.8, 0.4, 400
    kde = KernelDensityEnergy(centers, h)
    y = torch.randn(8, 2, generator=g)
    est = posterior_mean_denoise(kde, y, sigma=sigma, n_chains=n_chains, n_steps=200, step_size=0.01, generator=g)
    # The posterior is the mixture Σ_i w_i N(c_i + h²/s²(y - c_i), h²σ²/s² I), s² = h² + σ²: its mean is
    # Tweedie's on the smoothed KDE and its variance is known, so the chain average has standard error
    # std/√n_chains per coordinate; allow 4 of them plus ULA's O(ε) bias at ε = 0.01.
    s2 = h**2 + sigma**2
    w = torch.softmax(-torch.cdist(y, centers).square() / (2 * s2), dim=1)  # (8, 10)
    means = centers + h**2 / s2 * (y[:, None, :] - centers)  # (8, 10, 2)
    exact = tweedie_denoise(kde.smoothed(sigma), y, sigma=sigma)
    var = h**2 * sigma**2 / s2 + torch.einsum("bk,bkd->bd", w, means.square()) - exact.square()  # (8, 2)
    assert ((est - exact).abs() < 4 * var.sqrt() / math.sqrt(n_chains) + 0.02).all()


def test_gaussian_residual_energy_is_the_gaussian_plus_a_trainable_mlp():
    from ebrl.tasks import GaussianResidualEnergy

    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 3, generator=g) @ torch.tensor([[1.0, 0.3, 0.0], [0.0, 0.5, 0.2], [0.0, 0.0, 0.4]])
    energy = GaussianResidualEnergy.from_data(x, (8,), ridge=0.1)
    assert torch.allclose(energy.gaussian.mean, x.mean(0))
    assert torch.allclose(energy.gaussian.covariance, torch.cov(x.T) + 0.1 * torch.eye(3), atol=1e-5)
    trainable = {name for name, p in energy.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith("residual.") for name in trainable)
    with torch.no_grad():
        for p in energy.residual.parameters():
            p.zero_()
    assert torch.allclose(energy(x[:10]), energy.gaussian(x[:10]))
    with pytest.raises(ValueError, match="ridge"):
        GaussianResidualEnergy.from_data(x, ridge=-1.0)


def test_gaussian_residual_energy_checkpoint_round_trip(tmp_path):
    from ebrl import load_model, save_model
    from ebrl.tasks import GaussianResidualEnergy

    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    energy = GaussianResidualEnergy.from_data(x, (8, 8), ridge=0.01)
    save_model(energy, tmp_path / "e.pt")
    loaded = load_model(tmp_path / "e.pt")
    assert isinstance(loaded, GaussianResidualEnergy)
    assert torch.allclose(loaded(x), energy(x))


@pytest.mark.slow
def test_walk_jump_on_a_smoothed_gaussian_gives_the_posterior_mean_distribution():
    from ebrl.samplers import Langevin
    from ebrl.tasks import walk_jump_sample

    sigma = 0.5
    smoothed = GaussianEnergy(MU, COV + sigma**2 * torch.eye(3))
    g = torch.Generator().manual_seed(0)
    x = walk_jump_sample(
        smoothed, torch.zeros(4000, 3), sigma=sigma, sampler=Langevin(step_size=0.02, n_steps=400), generator=g
    )
    # The walk samples y ~ N(μ, Σ + σ²I); the jump maps y to μ + Σ(Σ + σ²I)⁻¹(y - μ), whose covariance is
    # Σ(Σ + σ²I)⁻¹Σ. Entries are <= 0.3; with 4000 samples the covariance's standard error is about
    # 0.3·√(2/4000) ≈ 0.007: allow 4 of them plus ULA's O(ε) bias.
    expected = COV @ torch.linalg.inv(COV + sigma**2 * torch.eye(3)) @ COV
    assert (torch.cov(x.T) - expected).abs().max() < 0.04
    assert (x.mean(0) - MU).abs().max() < 0.03
    with pytest.raises(TypeError, match="Sampler"):
        walk_jump_sample(smoothed, torch.zeros(2, 3), sigma=sigma, sampler=lambda e, x: x)
    with pytest.raises(ValueError, match="sigma"):
        walk_jump_sample(smoothed, torch.zeros(2, 3), sigma=0.0, sampler=Langevin())


def test_auto_covariance_picks_the_factor_model_that_generated_the_data():
    from ebrl.tasks import EnergyOutlierDetector

    rng = np.random.default_rng(0)
    loadings = rng.normal(size=(10, 2)) * 2.0  # two strong factors in 10 dimensions
    x = rng.normal(size=(600, 2)) @ loadings.T + rng.normal(size=(600, 10)) * rng.uniform(0.2, 1.0, size=10)
    det = EnergyOutlierDetector(energy="gaussian", covariance="auto", standardize=False).fit(x)
    assert det.covariance_ == "factor:2"
    assert max(det.cv_log_likelihood_, key=det.cv_log_likelihood_.get) == "factor:2"
    explicit = EnergyOutlierDetector(energy="gaussian", covariance="factor", n_factors=2, standardize=False).fit(x)
    assert np.allclose(explicit.score_samples(x[:20]), det.score_samples(x[:20]))


def test_ppca_rank_by_cross_validation_recovers_the_generating_rank():
    from sklearn.decomposition import PCA

    from ebrl.tasks import EnergyOutlierDetector

    rng = np.random.default_rng(1)
    loadings = rng.normal(size=(12, 4)) * 2.0
    x = rng.normal(size=(500, 4)) @ loadings.T + 0.5 * rng.normal(size=(500, 12))  # PPCA: isotropic noise
    det = EnergyOutlierDetector(energy="gaussian", covariance="ppca", n_factors="auto", standardize=False).fit(x)
    assert det.covariance_ == "ppca:4"
    assert set(det.cv_log_likelihood_) == {"ppca:1", "ppca:2", "ppca:4", "ppca:8"}
    # The energy is the PPCA negative log-likelihood up to a constant: same ranking as sklearn's PCA.score_samples.
    ref = PCA(4).fit(x).score_samples(x[:50])
    assert np.allclose(det.score_samples(x[:50]) - ref, (det.score_samples(x[:50]) - ref).mean(), atol=1e-3)


def test_detector_rejects_bad_covariance_settings():
    from ebrl.tasks import EnergyOutlierDetector

    x = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="covariance"):
        EnergyOutlierDetector(energy="gaussian", covariance="oracle").fit(x)
    with pytest.raises(ValueError, match="n_factors"):
        EnergyOutlierDetector(energy="gaussian", covariance="factor", n_factors=0).fit(x)
    with pytest.raises(ValueError, match="at least 4 samples"):
        EnergyOutlierDetector(energy="gaussian", covariance="auto").fit(x[:3])


def test_posterior_mean_averaging_along_chains_matches_the_exact_posterior_mean():
    y = noisy_observations(50)
    x = posterior_mean_denoise(
        GaussianEnergy(MU, COV), y, sigma=SIGMA, n_chains=40, n_steps=400, n_snapshots=10,
        generator=torch.Generator().manual_seed(1),
    )
    # 40 chains x 10 states 20 steps apart: the states of one chain are correlated, so count the 40 chains
    # only: standard error <= 0.3/√40 ≈ 0.047 per coordinate; allow 3 of them plus ULA's O(ε) bias.
    assert (x - exact_posterior_mean(y)).abs().max() < 3 * 0.047 + 0.01
    with pytest.raises(ValueError, match="n_snapshots"):
        posterior_mean_denoise(GaussianEnergy(MU, COV), y, sigma=SIGMA, n_steps=10, n_snapshots=6)
