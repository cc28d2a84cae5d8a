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
     {"energy": "mlp", "objective": "pcd", "epochs": 20, "hidden": (32, 32)}],
    ids=["gaussian", "dsm", "pcd"],
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
