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
from sklearn.utils.validation import check_is_fitted, validate_data

from ebrl._checks import seeded_init
from ebrl.energy.analytic import GaussianEnergy
from ebrl.energy.nets import MLPEnergy
from ebrl.samplers.langevin import Langevin
from ebrl.samplers.replay import ReplayBuffer
from ebrl.training import DSM, PCD, fit


class EnergyOutlierDetector(OutlierMixin, BaseEstimator):
    """Outlier detection by the energy of a model of the inliers: high energy = anomaly.

    ``fit`` standardises the features, fits an energy to them and stores the threshold;
    ``score_samples`` returns ``-E(x)``, so, as everywhere in scikit-learn, higher means more
    normal. ``decision_function = score_samples - offset_`` is negative for outliers, and
    ``predict`` returns +1 for inliers and -1 for outliers.

    Args:
        energy: ``"mlp"`` (an ``MLPEnergy`` trained by ``objective``) or ``"gaussian"``
            (a full-covariance ``GaussianEnergy`` fitted in closed form with ``shrinkage``:
            the Mahalanobis-distance detector).
        standardize: scale each feature to unit variance on the training set (features that
            are constant there keep scale 1); the mean is always removed.
        objective: for ``"mlp"``: ``"dsm"`` (denoising score matching at noise ``sigma``) or
            ``"pcd"`` (persistent contrastive divergence with Langevin negatives).
        hidden: hidden widths of the MLP.
        sigma: DSM noise level, in standardised units.
        epochs, batch_size, lr, weight_decay: training settings (Adam).
        shrinkage: for ``"gaussian"``: covariance ← (1-s)·Σ + s·(tr Σ / D)·I; ``"auto"`` takes
            the Ledoit-Wolf estimate of s from the training data (no tuning on test data).
        contamination: a float in (0, 0.5] makes that fraction of the training set outliers,
            as in ``IsolationForest`` (default 0.1, as in ``EllipticEnvelope``); ``"auto"`` puts
            the threshold at Tukey's lower fence of the training scores (Q1 - 1.5·IQR), which
            may flag no training point at all.
        random_state: seeds all training randomness (the global RNG is untouched).
        device: torch device for training and scoring.

    Attributes:
        energy_: the fitted energy (``torch.nn.Module``), over standardised features.
        offset_: the threshold on ``score_samples``.
        shrinkage_: the shrinkage used (``"gaussian"`` only).
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
        shrinkage: str | float = "auto",
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
        self.shrinkage = shrinkage
        self.standardize = standardize
        self.contamination = contamination
        self.random_state = random_state
        self.device = device

    def _validate_params_local(self) -> None:
        if self.energy not in ("mlp", "gaussian"):
            raise ValueError(f"energy must be 'mlp' or 'gaussian', got {self.energy!r}")
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
        z = torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32, device=self.device)
        g = self._generator()
        d = z.shape[1]
        if self.energy == "gaussian":
            cov = torch.cov(z.T).reshape(d, d).double()
            target = torch.trace(cov) / d * torch.eye(d, dtype=cov.dtype)
            sh = ledoit_wolf_shrinkage(z.double().cpu().numpy()) if self.shrinkage == "auto" else self.shrinkage
            self.shrinkage_ = float(sh)
            cov = (1 - sh) * cov + sh * target + 1e-6 * torch.eye(d, dtype=cov.dtype)
            self.energy_ = GaussianEnergy(z.mean(0), cov.float()).to(self.device)
        else:
            with seeded_init(g):
                self.energy_ = MLPEnergy(d, tuple(self.hidden), activation="silu").to(self.device)
            if self.objective == "dsm":
                objective = DSM(sigma=self.sigma)
            else:
                buffer = ReplayBuffer(
                    max(1000, 10 * z.shape[0]), (d,), low=-3.0, high=3.0, device=self.device, generator=g
                )
                objective = PCD(Langevin(step_size=0.01, n_steps=30, bounds=(-6.0, 6.0)), buffer, l2=0.1)
            optimizer = torch.optim.Adam(self.energy_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            fit(
                self.energy_, z, objective, epochs=self.epochs, batch_size=min(self.batch_size, z.shape[0]),
                optimizer=optimizer, generator=g,
            )
        self.energy_.eval()
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
