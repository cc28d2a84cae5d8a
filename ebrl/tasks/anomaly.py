"""Anomaly scoring by energy: a scikit-learn outlier detector.

This is the one module of the core that imports scikit-learn (the ``sklearn`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.covariance import ledoit_wolf_shrinkage
from sklearn.decomposition import PCA, FactorAnalysis
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted, validate_data

from ebrl._checks import seeded_init
from ebrl.energy.analytic import GaussianEnergy
from ebrl.energy.nets import MLPEnergy
from ebrl.samplers.langevin import Langevin
from ebrl.samplers.replay import ReplayBuffer
from ebrl.tasks.energies import GaussianResidualEnergy
from ebrl.training import DSM, PCD, fit

JITTER = 1e-6
"""Added to the covariance diagonal (in standardised units) so that the Cholesky factor exists."""


def gaussian_log_likelihood(z: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """log N(z; mean, cov) for each row of ``z (n, D)``, shape ``(n,)``; -inf if cov is not positive definite."""
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return np.full(z.shape[0], -np.inf)
    diff = z - mean  # (n, D)
    maha = np.einsum("nd,nd->n", diff, np.linalg.solve(cov, diff.T).T)  # (n,)
    return -0.5 * (maha + logdet + z.shape[1] * np.log(2 * np.pi))


def shrunk_covariance(z: np.ndarray, shrinkage: str | float) -> tuple[np.ndarray, float]:
    """(1-s)·Σ + s·(tr Σ / D)·I for data ``z (n, D)``, with s from Ledoit-Wolf when ``"auto"``; returns (cov, s)."""
    d = z.shape[1]
    cov = np.atleast_2d(np.cov(z.T))  # (D, D)
    s = float(ledoit_wolf_shrinkage(z)) if shrinkage == "auto" else float(shrinkage)
    return (1 - s) * cov + s * np.trace(cov) / d * np.eye(d), s


def factor_covariance(z: np.ndarray, n_factors: int) -> np.ndarray:
    """W Wᵀ + Ψ from factor analysis with ``n_factors`` factors (deterministic LAPACK SVD), shape ``(D, D)``."""
    return FactorAnalysis(n_components=n_factors, svd_method="lapack").fit(z).get_covariance()


def ppca_covariance(z: np.ndarray, n_components: int) -> np.ndarray:
    """W Wᵀ + σ²I from probabilistic PCA (Tipping & Bishop 1999) with ``n_components`` components, ``(D, D)``."""
    return PCA(n_components=n_components, svd_solver="full").fit(z).get_covariance()


def factor_grid(n_features: int) -> list[int]:
    """The factor (or component) counts that ``covariance="auto"`` tries: 1, 2, 4, ... below ``n_features``."""
    return [2**i for i in range(n_features.bit_length()) if 2**i < n_features]


class EnergyOutlierDetector(OutlierMixin, BaseEstimator):
    """Outlier detection by the energy of a model of the inliers: high energy = anomaly.

    ``fit`` standardises the features, fits an energy to them and stores the threshold;
    ``score_samples`` returns ``-E(x)``, so, as everywhere in scikit-learn, higher means more
    normal. ``decision_function = score_samples - offset_`` is negative for outliers, and
    ``predict`` returns +1 for inliers and -1 for outliers.

    Args:
        energy: ``"mlp"`` (an ``MLPEnergy`` trained by ``objective``), ``"gaussian"`` (a
            full-covariance ``GaussianEnergy`` fitted in closed form: the Mahalanobis-distance
            detector, with the covariance estimator ``covariance``), or ``"residual"`` (a
            ``GaussianResidualEnergy``: that Gaussian plus an MLP residual trained by
            ``objective``; with DSM the Gaussian part is the σ-noisy data's, covariance + σ²I).
        standardize: scale each feature to unit variance on the training set (features that
            are constant there keep scale 1); the mean is always removed.
        objective: for ``"mlp"`` and ``"residual"``: ``"dsm"`` (denoising score matching at noise ``sigma``) or
            ``"pcd"`` (persistent contrastive divergence with Langevin negatives).
        hidden: hidden widths of the MLP.
        sigma: DSM noise level, in standardised units.
        epochs, batch_size, lr, weight_decay: training settings (Adam).
        covariance: the covariance estimator of ``"gaussian"`` and ``"residual"``: ``"shrunk"``
            (shrinkage towards a multiple of I, see ``shrinkage``), ``"factor"`` (factor
            analysis, W Wᵀ + Ψ with ``n_factors`` factors), ``"ppca"`` (probabilistic PCA,
            W Wᵀ + σ²I with ``n_factors`` components), or ``"auto"``: the one of ``"shrunk"``,
            ``"factor"`` and ``"ppca"`` with 1, 2, 4, ... factors or components that has the
            highest held-out log-likelihood in 5-fold cross-validation on the training data (on
            the features that are not constant there). The choice uses the training inliers only.
        shrinkage: for ``"shrunk"``: covariance ← (1-s)·Σ + s·(tr Σ / D)·I; ``"auto"`` takes
            the Ledoit-Wolf estimate of s from the training data (no tuning on test data).
        n_factors: for ``"factor"`` and ``"ppca"``: the number of factors or components, >= 1
            (capped at D for factors, at min(D, n_samples) - 1 for components), or ``"auto"``:
            the count among 1, 2, 4, ... with the highest cross-validated log-likelihood, as for
            ``covariance="auto"`` but within that one family.
        contamination: a float in (0, 0.5] makes that fraction of the training set outliers,
            as in ``IsolationForest`` (default 0.1, as in ``EllipticEnvelope``); ``"auto"`` puts
            the threshold at Tukey's lower fence of the training scores (Q1 - 1.5·IQR), which
            may flag no training point at all.
        random_state: seeds all training randomness (the global RNG is untouched).
        device: torch device for training and scoring.

    Attributes:
        energy_: the fitted energy (``torch.nn.Module``), over standardised features.
        offset_: the threshold on ``score_samples``.
        covariance_: the covariance estimator used, ``"shrunk"``, ``"factor:<k>"`` or ``"ppca:<k>"``
            (``"gaussian"`` and ``"residual"`` only).
        cv_log_likelihood_: when cross-validation chose the model, each candidate's mean held-out
            log-likelihood per sample (standardised units).
        shrinkage_: the shrinkage used (``"shrunk"`` only).
        mean_, scale_: the centring and scaling applied before the energy.
    """

    def __init__(
        self,
        *,
        energy: str = "mlp",
        objective: str = "dsm",
        hidden: Sequence[int] = (128, 128),
        sigma: float = 0.3,
        epochs: int = 200,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        covariance: str = "shrunk",
        shrinkage: str | float = "auto",
        n_factors: int | str = 8,
        standardize: bool = True,
        contamination: str | float = 0.1,
        random_state: int | None = None,
        device: str = "cpu",
    ) -> None:
        self.energy = energy
        self.objective = objective
        self.hidden = hidden
        self.sigma = sigma
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.covariance = covariance
        self.shrinkage = shrinkage
        self.n_factors = n_factors
        self.standardize = standardize
        self.contamination = contamination
        self.random_state = random_state
        self.device = device

    def _validate_params_local(self) -> None:
        if self.energy not in ("mlp", "gaussian", "residual"):
            raise ValueError(f"energy must be 'mlp', 'gaussian' or 'residual', got {self.energy!r}")
        if self.covariance not in ("shrunk", "factor", "ppca", "auto"):
            raise ValueError(f"covariance must be 'shrunk', 'factor', 'ppca' or 'auto', got {self.covariance!r}")
        nf = self.n_factors
        if nf != "auto" and (isinstance(nf, bool) or not isinstance(nf, (int, np.integer)) or nf < 1):
            raise ValueError(f"n_factors must be an int >= 1 or 'auto', got {nf!r}")
        if self.objective not in ("dsm", "pcd"):
            raise ValueError(f"objective must be 'dsm' or 'pcd', got {self.objective!r}")
        c = self.contamination
        if not (c == "auto" or (isinstance(c, Real) and 0.0 < c <= 0.5)):
            raise ValueError(f"contamination must be 'auto' or a float in (0, 0.5], got {c!r}")
        sh = self.shrinkage
        if not (sh == "auto" or (isinstance(sh, Real) and 0.0 <= sh <= 1.0)):
            raise ValueError(f"shrinkage must be 'auto' or a float in [0, 1], got {sh!r}")

    def _generator(self) -> torch.Generator:
        g = torch.Generator(device=self.device)
        if self.random_state is None:
            g.seed()
        else:
            g.manual_seed(int(self.random_state))
        return g

    def fit(self, X: np.ndarray, y: object = None) -> EnergyOutlierDetector:
        """Fit the energy to ``X (n_samples, n_features)``; ``y`` is ignored."""
        self._validate_params_local()
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        self.mean_ = X.mean(0)
        scale = X.std(0) if self.standardize else np.ones(X.shape[1])
        self.scale_ = np.where(scale > 1e-12, scale, 1.0)
        z64 = (X - self.mean_) / self.scale_  # (n, D), float64
        z = torch.as_tensor(z64, dtype=torch.float32, device=self.device)
        g = self._generator()
        d = z.shape[1]
        if self.energy in ("gaussian", "residual"):
            cov = self._fit_covariance(z64) + JITTER * np.eye(d)  # (D, D)
            mean = z64.mean(0)
            if self.energy == "gaussian":
                self.energy_ = GaussianEnergy(torch.as_tensor(mean), torch.as_tensor(cov)).float().to(self.device)
                self.energy_.eval()
                return self._set_offset(z)
            if self.objective == "dsm":
                cov = cov + self.sigma**2 * np.eye(d)  # the Gaussian of the σ-noisy data
            with seeded_init(g):
                self.energy_ = GaussianResidualEnergy(
                    torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(cov, dtype=torch.float32),
                    tuple(self.hidden),
                ).to(self.device)
        else:
            with seeded_init(g):
                self.energy_ = MLPEnergy(d, tuple(self.hidden), activation="silu").to(self.device)
        if self.objective == "dsm":
            objective = DSM(sigma=self.sigma)
        else:
            buffer = ReplayBuffer(max(1000, 10 * z.shape[0]), (d,), low=-3.0, high=3.0, device=self.device, generator=g)
            objective = PCD(Langevin(step_size=0.01, n_steps=30, bounds=(-6.0, 6.0)), buffer, l2=0.1)
        optimizer = torch.optim.Adam(self.energy_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        fit(
            self.energy_, z, objective, epochs=self.epochs, batch_size=min(self.batch_size, z.shape[0]),
            optimizer=optimizer, generator=g,
        )
        self.energy_.eval()
        return self._set_offset(z)

    def _fit_covariance(self, z: np.ndarray) -> np.ndarray:
        """The covariance of standardised training data ``z (n, D)`` by ``self.covariance``, ``(D, D)``."""
        d, n = z.shape[1], z.shape[0]
        if self.covariance == "shrunk":
            cov, self.shrinkage_ = shrunk_covariance(z, self.shrinkage)
            self.covariance_ = "shrunk"
            return cov
        if self.covariance == "ppca" and d < 2:
            raise ValueError(f"covariance='ppca' needs at least 2 features, got n_features = {d}")
        grid = factor_grid(d)
        ppca_grid = [k for k in grid if k < n // 2]  # every cross-validation fold keeps k < its sample count
        if self.covariance == "auto":
            candidates = ["shrunk", *(f"factor:{k}" for k in grid), *(f"ppca:{k}" for k in ppca_grid)]
        elif self.n_factors == "auto":
            candidates = [f"{self.covariance}:{k}" for k in (grid if self.covariance == "factor" else ppca_grid)]
        else:
            k = min(int(self.n_factors), d if self.covariance == "factor" else min(d, n) - 1)
            self.covariance_ = f"{self.covariance}:{k}"
            return self._candidate_covariance(self.covariance_, z)
        n_splits = min(5, n // 2)
        if n_splits < 2 or not candidates:
            raise ValueError(
                f"covariance={self.covariance!r} with n_factors={self.n_factors!r} cross-validates and needs at "
                f"least 4 samples and 2 features, got shape {z.shape}"
            )
        folds = list(KFold(n_splits, shuffle=True, random_state=0).split(z))
        # Features constant on the whole training set have an unbounded likelihood under any model that
        # learns their variance (0); every candidate is compared on the marginal of the others.
        var = z.var(0)
        keep = var > 1e-12 * max(float(var.max()), 1e-300)  # (D,)
        self.cv_log_likelihood_ = {}
        for name in candidates:
            held_out = []
            for train_idx, val_idx in folds:
                cov = self._candidate_covariance(name, z[train_idx]) + JITTER * np.eye(d)
                mean = z[train_idx].mean(0)
                held_out.append(gaussian_log_likelihood(z[val_idx][:, keep], mean[keep], cov[np.ix_(keep, keep)]))
            self.cv_log_likelihood_[name] = float(np.mean(np.concatenate(held_out)))
        best = max(candidates, key=lambda c: self.cv_log_likelihood_[c])  # the first best on ties
        if best == "shrunk":
            cov, self.shrinkage_ = shrunk_covariance(z, self.shrinkage)
        else:
            cov = self._candidate_covariance(best, z)
        self.covariance_ = best
        return cov

    def _candidate_covariance(self, name: str, z: np.ndarray) -> np.ndarray:
        """The covariance of candidate ``"shrunk"``, ``"factor:<k>"`` or ``"ppca:<k>"`` on ``z (n, D)``, ``(D, D)``."""
        if name == "shrunk":
            return shrunk_covariance(z, self.shrinkage)[0]
        kind, k = name.split(":")
        return factor_covariance(z, int(k)) if kind == "factor" else ppca_covariance(z, int(k))

    def _set_offset(self, z: torch.Tensor) -> EnergyOutlierDetector:
        train_scores = self._score(z)
        if self.contamination == "auto":
            q1, q3 = np.percentile(train_scores, [25, 75])
            self.offset_ = float(q1 - 1.5 * (q3 - q1))
        else:
            self.offset_ = float(np.percentile(train_scores, 100.0 * self.contamination))
        return self

    def _score(self, z: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return (-self.energy_(z)).double().cpu().numpy()

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """``-E(x)`` for each row, shape ``(n_samples,)``; higher means more normal."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        z = torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32, device=self.device)
        return self._score(z)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers, shape ``(n_samples,)``."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """+1 for inliers, -1 for outliers, shape ``(n_samples,)``."""
        return np.where(self.decision_function(X) < 0, -1, 1)
