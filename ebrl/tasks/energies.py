"""Two energies built from data, for the tasks: a Gaussian with a learned residual, and a kernel density.

- ``GaussianResidualEnergy``: E(x) = ½ (x-μ)ᵀ Σ⁻¹ (x-μ) + f_θ(x), a Gaussian fitted in closed form
  plus a trainable MLP. The MLP only has to learn the non-Gaussian part of the data. A plain
  ``MLPEnergy`` trained by denoising score matching on 64-pixel digits stays on a plateau near
  the Wiener filter's loss, because a smooth network has to build the steep quadratic itself;
  with the quadratic given, the same MLP leaves that plateau.
- ``KernelDensityEnergy``: the energy of a Gaussian kernel density estimate, normalised. Its
  σ-smoothed version is again a kernel density (bandwidth √(h² + σ²)), so ``tweedie_denoise`` on
  ``kde.smoothed(σ)`` is the exact posterior mean under the KDE prior: nonparametric empirical
  Bayes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ebrl._checks import as_float_tensor, check_finite, check_positive, check_tensor
from ebrl.energy.analytic import GaussianEnergy
from ebrl.energy.base import Energy
from ebrl.energy.nets import MLPEnergy


class GaussianResidualEnergy(Energy):
    """E(x) = ½ (x-μ)ᵀ Σ⁻¹ (x-μ) + f_θ(x): a fixed Gaussian energy plus a trainable MLP residual.

    The Gaussian part holds buffers only, so an optimizer over ``parameters()`` trains the MLP
    alone. ``from_data`` fits μ and Σ to a dataset.

    Args:
        mean: μ, shape ``(D,)``.
        covariance: Σ, shape ``(D, D)``, symmetric positive definite.
        hidden: hidden widths of the residual MLP.
        activation: the MLP's activation (see ``ebrl.energy.ACTIVATIONS``).
        spectral_norm: spectral normalisation on the MLP's layers.
    """

    def __init__(
        self,
        mean: Sequence[float] | Tensor,
        covariance: Sequence[Any] | Tensor,
        hidden: Sequence[int] = (256, 256),
        *,
        activation: str = "silu",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.gaussian = GaussianEnergy(mean, covariance)
        d = self.gaussian.dim
        self.residual = MLPEnergy(d, hidden, activation=activation, spectral_norm=spectral_norm)
        self.event_shape = (d,)

    @classmethod
    def from_data(
        cls,
        x: Tensor,
        hidden: Sequence[int] = (256, 256),
        *,
        ridge: float = 0.0,
        activation: str = "silu",
        spectral_norm: bool = False,
    ) -> GaussianResidualEnergy:
        """Fit the Gaussian part to data ``x (N, D)``: μ = mean, Σ = sample covariance + ridge·I.

        With ``ridge = σ²`` the Gaussian part is the exact Gaussian model of the σ-noisy data,
        the right start for ``DSM(sigma=σ)``. A ridge > 0 is needed when some feature is
        constant (e.g. a blank image border).
        """
        x = check_finite("x", check_tensor("x", x, min_dim=2))
        if x.dim() != 2 or x.shape[0] < 2:
            raise ValueError(f"x must have shape (N, D) with N >= 2, got {tuple(x.shape)}")
        check_positive("ridge", ridge, allow_zero=True)
        d = x.shape[1]
        cov = torch.cov(x.T.double()).reshape(d, d) + ridge * torch.eye(d, dtype=torch.float64)  # (D, D)
        if bool(torch.linalg.cholesky_ex(cov).info != 0):
            raise ValueError(
                f"the sample covariance of x (+ ridge={ridge}) is not positive definite: x has a constant or "
                f"collinear feature, or too few rows; pass ridge > 0"
            )
        return cls(
            x.mean(0), cov.to(x.dtype), hidden, activation=activation, spectral_norm=spectral_norm
        ).to(x.device)

    def forward(self, x: Tensor) -> Tensor:
        return self.gaussian.forward(x) + self.residual.forward(x)  # (B,)

    def get_config(self) -> dict[str, Any]:
        return {
            "mean": self.gaussian.loc.tolist(),
            "covariance": self.gaussian.covariance.tolist(),
            "hidden": list(self.residual.hidden),
            "activation": self.residual.activation,
            "spectral_norm": self.residual.spectral_norm,
        }


class KernelDensityEnergy(Energy):
    """E(x) = -log (1/N) Σ_i N(x; c_i, h² I): a Gaussian kernel density estimate, normalised.

    Each call costs O(B · N · D) (one matrix product), so it suits N up to tens of thousands.

    Args:
        centers: the kernel centres c_i (the data), shape ``(N, *event)``, N >= 1.
        bandwidth: h > 0, in data units.
    """

    def __init__(self, centers: Sequence[Any] | Tensor, bandwidth: float) -> None:
        super().__init__()
        if not isinstance(centers, Tensor):
            centers = as_float_tensor("centers", centers)
        centers = check_finite("centers", check_tensor("centers", centers, min_dim=2))
        self.bandwidth = check_positive("bandwidth", bandwidth)
        self.event_shape = tuple(centers.shape[1:])
        flat = centers.detach().flatten(1)  # (N, *event) -> (N, D)
        self.register_buffer("centers", flat)
        self.register_buffer("_sq_norms", flat.square().sum(1))  # (N,)

    @property
    def dim(self) -> int:
        return self.centers.shape[1]

    def smoothed(self, sigma: float) -> KernelDensityEnergy:
        """The energy of x + σε, ε ~ N(0, I): the same centres with bandwidth √(h² + σ²)."""
        check_positive("sigma", sigma)
        out = KernelDensityEnergy(self.centers.reshape(-1, *self.event_shape), math.hypot(self.bandwidth, sigma))
        return out.to(self.centers.device)

    def forward(self, x: Tensor) -> Tensor:
        flat = x.flatten(1)  # (B, *event) -> (B, D)
        sq = flat.square().sum(1, keepdim=True) - 2 * flat @ self.centers.T + self._sq_norms  # (B, N)
        h2 = self.bandwidth**2
        log_norm = math.log(self.centers.shape[0]) + 0.5 * self.dim * math.log(2 * math.pi * h2)
        return log_norm - torch.logsumexp(-sq.clamp_min(0.0) / (2 * h2), dim=1)  # (B,)

    def get_config(self) -> dict[str, Any]:
        return {"centers": self.centers.reshape(-1, *self.event_shape).tolist(), "bandwidth": self.bandwidth}
