"""Analytic energies with known normalisers, means and covariances, plus exact samplers.

They are the ground truth for the statistical sampler tests and serve as demo landscapes and as
noise distributions for NCE. Every one is normalised in the sense that ``log_prob(x) =
-E(x) - log_partition`` integrates to one. Each ``sample`` is exact (no MCMC).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from ebrl._checks import as_float_tensor, check_finite, check_int, check_positive, check_tensor, resolve_generator
from ebrl.energy.base import Energy


@runtime_checkable
class Distribution(Protocol):
    """A distribution with exact sampling and a normalised log-density (NCE noise, tests)."""

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor: ...

    def log_prob(self, x: Tensor) -> Tensor: ...


def _as_tensor(name: str, value: Sequence[Any] | Tensor, *, dim: int) -> Tensor:
    t = as_float_tensor(name, value)
    if t.dim() != dim:
        raise ValueError(f"{name} must have {dim} dimension(s), got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(t.shape)}")
    return check_finite(name, t)


def _cholesky(name: str, cov: Tensor) -> Tensor:
    if cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"{name} must be square, got shape {tuple(cov.shape)}")
    if not torch.allclose(cov, cov.transpose(-1, -2), atol=1e-6):
        raise ValueError(f"{name} must be symmetric")
    chol, info = torch.linalg.cholesky_ex(cov.double())
    if bool((info != 0).any()):
        raise ValueError(f"{name} must be positive definite")
    return chol.to(cov.dtype)


class GaussianEnergy(Energy):
    """E(x) = ½ (x-μ)ᵀ Σ⁻¹ (x-μ), a Gaussian with full covariance; log Z = ½ log det(2πΣ).

    Args:
        mean: μ, shape ``(D,)``.
        covariance: Σ, shape ``(D, D)``, symmetric positive definite.
    """

    def __init__(self, mean: Sequence[float] | Tensor, covariance: Sequence[Any] | Tensor) -> None:
        super().__init__()
        mu = _as_tensor("mean", mean, dim=1)
        cov = _as_tensor("covariance", covariance, dim=2)
        if cov.shape != (mu.shape[0], mu.shape[0]):
            raise ValueError(
                f"covariance must have shape ({mu.shape[0]}, {mu.shape[0]}) to match mean, "
                f"got {tuple(cov.shape)}"
            )
        self.event_shape = (mu.shape[0],)
        self.register_buffer("loc", mu)
        self.register_buffer("scale_tril", _cholesky("covariance", cov))

    @property
    def dim(self) -> int:
        return self.loc.shape[0]

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def covariance(self) -> Tensor:
        return self.scale_tril @ self.scale_tril.T

    @property
    def log_partition(self) -> Tensor:
        """log Z = ½ D log 2π + Σ log diag(L)."""
        return 0.5 * self.dim * math.log(2 * math.pi) + self.scale_tril.diagonal().log().sum()

    def forward(self, x: Tensor) -> Tensor:
        diff = (x - self.loc).unsqueeze(-1)  # (B, D, 1)
        z = torch.linalg.solve_triangular(self.scale_tril, diff, upper=False)  # (B, D, 1)
        return 0.5 * z.squeeze(-1).pow(2).sum(-1)  # (B,)

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) ``(B,)``; checks ``x`` like ``__call__`` does."""
        return -self(x) - self.log_partition

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        check_int("n", n)
        g = resolve_generator(generator, self.loc.device)
        z = torch.randn(n, self.dim, generator=g, device=self.loc.device, dtype=self.loc.dtype)
        return self.loc + z @ self.scale_tril.T  # (n, D)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.loc.tolist(), "covariance": self.covariance.tolist()}


class GaussianMixtureEnergy(Energy):
    """E(x) = -log Σ_k w_k N(x; μ_k, Σ_k): a normalised Gaussian mixture, so log Z = 0.

    Args:
        means: μ_k, shape ``(K, D)``.
        covariances: Σ_k, shape ``(K, D, D)``; or give ``stds`` (shape ``(K,)``) for isotropic
            components Σ_k = std_k² I.
        weights: mixture weights, shape ``(K,)``, positive; normalised to sum to one.
    """

    def __init__(
        self,
        means: Sequence[Any] | Tensor,
        *,
        covariances: Sequence[Any] | Tensor | None = None,
        stds: Sequence[float] | Tensor | None = None,
        weights: Sequence[float] | Tensor | None = None,
    ) -> None:
        super().__init__()
        mu = _as_tensor("means", means, dim=2)
        k, d = mu.shape
        if (covariances is None) == (stds is None):
            raise ValueError("give exactly one of covariances (K, D, D) or stds (K,)")
        if stds is not None:
            s = _as_tensor("stds", stds, dim=1)
            if s.shape != (k,) or bool((s <= 0).any()):
                raise ValueError(f"stds must be {k} positive numbers, got {s.tolist()}")
            cov = s.pow(2)[:, None, None] * torch.eye(d)  # (K, D, D)
        else:
            cov = _as_tensor("covariances", covariances, dim=3)
            if cov.shape != (k, d, d):
                raise ValueError(f"covariances must have shape ({k}, {d}, {d}), got {tuple(cov.shape)}")
        w = torch.full((k,), 1.0 / k) if weights is None else _as_tensor("weights", weights, dim=1)
        if w.shape != (k,) or bool((w <= 0).any()):
            raise ValueError(f"weights must be {k} positive numbers, got {w.tolist()}")
        self.event_shape = (d,)
        self.register_buffer("means", mu)
        self.register_buffer("scale_trils", _cholesky("covariances", cov))
        self.register_buffer("weights", w / w.sum())

    @property
    def mean(self) -> Tensor:
        return self.weights @ self.means  # (D,)

    @property
    def covariance(self) -> Tensor:
        covs = self.scale_trils @ self.scale_trils.transpose(-1, -2)  # (K, D, D)
        second = covs + self.means[:, :, None] * self.means[:, None, :]  # (K, D, D)
        m = self.mean
        return torch.einsum("k,kij->ij", self.weights, second) - torch.outer(m, m)

    @property
    def log_partition(self) -> Tensor:
        return torch.zeros((), device=self.means.device, dtype=self.means.dtype)

    def component_log_prob(self, x: Tensor) -> Tensor:
        """log w_k + log N(x; μ_k, Σ_k), shape ``(B, K)``."""
        self.check_input(x)
        d = self.means.shape[1]
        diff = (x[:, None, :] - self.means).unsqueeze(-1)  # (B, K, D, 1)
        z = torch.linalg.solve_triangular(self.scale_trils, diff, upper=False).squeeze(-1)
        log_det = self.scale_trils.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # (K,)
        log_n = -0.5 * z.pow(2).sum(-1) - log_det - 0.5 * d * math.log(2 * math.pi)  # (B, K)
        return log_n + self.weights.log()

    def forward(self, x: Tensor) -> Tensor:
        return -torch.logsumexp(self.component_log_prob(x), dim=-1)  # (B,)

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) ``(B,)``; checks ``x`` like ``__call__`` does."""
        return -self(x)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        check_int("n", n)
        dev, dt = self.means.device, self.means.dtype
        g = resolve_generator(generator, dev)
        comp = torch.multinomial(self.weights, n, replacement=True, generator=g)  # (n,)
        z = torch.randn(n, self.means.shape[1], generator=g, device=dev, dtype=dt)
        return self.means[comp] + torch.einsum("nij,nj->ni", self.scale_trils[comp], z)

    def get_config(self) -> dict[str, Any]:
        covs = self.scale_trils @ self.scale_trils.transpose(-1, -2)
        return {
            "means": self.means.tolist(),
            "covariances": covs.tolist(),
            "weights": self.weights.tolist(),
        }


class RingEnergy(Energy):
    """A 2-D ring: E(x) = (‖x‖ - R)² / (2σ²), a multimodal-in-angle landscape.

    The normaliser has the closed form
    Z = 2π [σ² exp(-R²/2σ²) + R σ √(2π) Φ(R/σ)], the mean is 0 and the covariance is
    ½ E[‖x‖²] I. Sampling is exact: a uniform angle and a radius by inverse CDF on a fine grid.

    Args:
        radius: R > 0.
        width: σ > 0.
    """

    def __init__(self, radius: float = 2.0, width: float = 0.25) -> None:
        super().__init__()
        self.radius = check_positive("radius", radius)
        self.width = check_positive("width", width)
        self.event_shape = (2,)
        r, s = self.radius, self.width
        e_r = math.exp(-(r**2) / (2 * s**2))
        phi = 0.5 * (1 + math.erf(r / (s * math.sqrt(2))))
        i0 = s * math.sqrt(2 * math.pi) * phi  # ∫_{-R}^∞ exp(-u²/2σ²) du
        i1 = s**2 * e_r
        i2 = s**2 * i0 - s**2 * r * e_r
        i3 = s**2 * r**2 * e_r + 2 * s**4 * e_r
        z = 2 * math.pi * (i1 + r * i0)
        second = 2 * math.pi * (i3 + 3 * r * i2 + 3 * r**2 * i1 + r**3 * i0) / z  # E‖x‖²
        self._log_z = math.log(z)
        self._second_moment = second
        self.register_buffer("_anchor", torch.zeros(()))  # follows .to(device) for sampling

    @property
    def mean(self) -> Tensor:
        return torch.zeros(2, device=self._anchor.device, dtype=self._anchor.dtype)

    @property
    def covariance(self) -> Tensor:
        eye = torch.eye(2, device=self._anchor.device, dtype=self._anchor.dtype)
        return 0.5 * self._second_moment * eye

    @property
    def log_partition(self) -> Tensor:
        return torch.tensor(self._log_z, device=self._anchor.device, dtype=self._anchor.dtype)

    def forward(self, x: Tensor) -> Tensor:
        return (x.norm(dim=-1) - self.radius).pow(2) / (2 * self.width**2)

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) ``(B,)``; checks ``x`` like ``__call__`` does."""
        return -self(x) - self._log_z

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        check_int("n", n)
        dev, dt = self._anchor.device, self._anchor.dtype
        g = resolve_generator(generator, dev)
        lo = max(0.0, self.radius - 12 * self.width)
        grid = torch.linspace(lo, self.radius + 12 * self.width, 20001, dtype=torch.float64)
        dens = grid * torch.exp(-((grid - self.radius) ** 2) / (2 * self.width**2))
        cdf = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(
            0.5 * (dens[1:] + dens[:-1]) * (grid[1:] - grid[:-1]), 0)])
        cdf = (cdf / cdf[-1]).to(dev)
        grid = grid.to(dev)
        u = torch.rand(n, generator=g, device=dev, dtype=torch.float64)
        idx = torch.searchsorted(cdf, u).clamp(1, grid.numel() - 1)  # (n,)
        c0, c1 = cdf[idx - 1], cdf[idx]
        frac = (u - c0) / (c1 - c0).clamp_min(1e-300)
        radius = grid[idx - 1] + frac * (grid[idx] - grid[idx - 1])  # (n,)
        theta = 2 * math.pi * torch.rand(n, generator=g, device=dev, dtype=torch.float64)
        return torch.stack([radius * theta.cos(), radius * theta.sin()], dim=-1).to(dt)

    def get_config(self) -> dict[str, Any]:
        return {"radius": self.radius, "width": self.width}


class UniformBox:
    """The uniform distribution on a box [low, high]^D, a ``Distribution`` for NCE and InfoNCE.

    Args:
        low: lower corner, shape ``(D,)`` (or a float with ``dim``).
        high: upper corner, same shape, each entry > low.
        dim: D, when ``low`` and ``high`` are floats.
    """

    def __init__(
        self,
        low: float | Sequence[float] | Tensor,
        high: float | Sequence[float] | Tensor,
        *,
        dim: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        lo = as_float_tensor("low", low, device=device)
        hi = as_float_tensor("high", high, device=device)
        if lo.dim() == 0 or hi.dim() == 0:
            if dim is None:
                raise ValueError("dim is required when low and high are scalars")
            dim = check_int("dim", dim)
            lo = lo.expand(dim).clone() if lo.dim() == 0 else lo
            hi = hi.expand(dim).clone() if hi.dim() == 0 else hi
        if lo.shape != hi.shape or lo.dim() != 1 or lo.numel() == 0:
            raise ValueError(
                f"low and high must be non-empty vectors of one shape, got {tuple(lo.shape)} and {tuple(hi.shape)}"
            )
        check_finite("low", lo)
        check_finite("high", hi)
        if bool((hi <= lo).any()):
            raise ValueError("high must be greater than low in every dimension")
        self.low, self.high = lo, hi
        self.log_volume = (hi - lo).log().sum()

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        check_int("n", n)
        g = resolve_generator(generator, self.low.device)
        u = torch.rand(n, self.low.shape[0], generator=g, device=self.low.device, dtype=self.low.dtype)
        return self.low + u * (self.high - self.low)  # (n, D)

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) ``(B,)`` for ``x (B, D)``: -log volume inside the box, -inf outside. Checks ``x`` (one sync)."""
        check_finite("x", check_tensor("x", x, min_dim=2))
        if x.dim() != 2 or x.shape[1] != self.low.shape[0]:
            raise ValueError(f"x must have shape (B, {self.low.shape[0]}), got {tuple(x.shape)}")
        if x.device != self.low.device:
            raise ValueError(f"x is on device '{x.device}' but the box is on '{self.low.device}'")
        inside = ((x >= self.low) & (x <= self.high)).all(dim=-1)  # (B,)
        return torch.where(inside, -self.log_volume, torch.full_like(x[:, 0], -math.inf))
