"""Score-matching losses: fit the model score s(x) = -∇_x E(x) without sampling the model.

``multilevel_denoising_score_matching`` trains a noise-conditional energy E(x, σ) at many noise
levels at once (see ``ebrl.energy.noise_conditional``).

Both losses differentiate the energy in x with ``create_graph=True``, so the loss has a graph
into the parameters. They enable gradients locally and therefore also work under
``torch.no_grad()`` (for evaluation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ebrl._checks import (
    check_energy_output,
    check_finite,
    check_int,
    check_positive,
    check_tensor,
    resolve_generator,
)
from ebrl.energy.base import EnergyFn


def _check_energy_and_x(energy: EnergyFn, x: object) -> Tensor:
    if not callable(energy):
        raise TypeError(f"energy must be callable (an Energy or a function), got {type(energy).__name__}")
    x = check_tensor("x", x, min_dim=2)
    return check_finite("x", x).detach()


def _energy_grad(energy: EnergyFn, x: Tensor) -> Tensor:
    """∇_x E(x) with a graph (``create_graph=True``): ``(B, *event)``; ``x`` must require grad.

    An energy that does not depend on x (constant in x) has gradient zero.
    """
    e = energy(x)
    check_energy_output(e, x.shape[:1], who="energy", input_shape=x.shape)
    return _grad(e.sum(), x)


def _grad(total: Tensor, x: Tensor) -> Tensor:
    """∇_x total with a graph; zeros where ``total`` does not depend on ``x`` (e.g. a linear energy's Hessian)."""
    if not total.requires_grad:
        return torch.zeros_like(x)
    (grad,) = torch.autograd.grad(total, x, create_graph=True, allow_unused=True, materialize_grads=True)
    return grad


def denoising_score_matching(
    energy: EnergyFn,
    x: Tensor,
    *,
    sigma: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Denoising score matching (Vincent 2011) at one noise level σ.

    Perturb x̃ = x + σε with ε ~ N(0, I). The score of the perturbation kernel is
    ∇ log q(x̃ | x) = -ε/σ, and with weighting λ(σ) = σ² the loss is::

        L = ½ mean_b ‖σ s(x̃_b) + ε_b‖² = ½ mean_b ‖ε_b - σ ∇E(x̃_b)‖²,   s = -∇E.

    Its minimiser is the score of the *noise-convolved* data density p_σ = p * N(0, σ²I), so
    with small σ the model score approaches the data score.

    Args:
        energy: maps ``(B, *event) -> (B,)``; called once on x̃.
        x: data, shape ``(B, *event)``, finite.
        sigma: noise scale σ > 0.
        generator: draws ε (a fresh OS-seeded generator when ``None``).

    Returns:
        The scalar loss, shape ``()``.
    """
    x = _check_energy_and_x(energy, x)
    sigma = check_positive("sigma", sigma)
    gen = resolve_generator(generator, x.device)
    eps = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)  # (B, *event)
    with torch.enable_grad():
        x_noisy = (x + sigma * eps).requires_grad_(True)  # (B, *event)
        grad = _energy_grad(energy, x_noisy)  # (B, *event)
        residual = (eps - sigma * grad).flatten(1)  # (B, D)
        return 0.5 * residual.square().sum(1).mean()


def sliced_score_matching(
    energy: EnergyFn,
    x: Tensor,
    *,
    n_projections: int = 1,
    variance_reduction: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sliced score matching (Song et al. 2019) with Gaussian projections v ~ N(0, I).

    With s = -∇E, Hyvärinen's objective tr(∇_x s) + ½‖s‖² is estimated by projecting on
    random directions::

        L = mean_{b, v} [ vᵀ (∇_x s) v + ½ (vᵀ s)² ]            (variance_reduction=False)
        L = mean_{b, v} [ vᵀ (∇_x s) v ] + ½ mean_b ‖s‖²       (variance_reduction=True)

    The two agree in expectation over v (E[vvᵀ] = I); the second replaces the projected norm
    by its exact value. vᵀ(∇_x s)v is computed as vᵀ ∇_x(vᵀ s), a second backward pass.

    Args:
        energy: maps ``(B, *event) -> (B,)``; called once on ``n_projections`` copies of x.
        x: data, shape ``(B, *event)``, finite.
        n_projections: number of directions v per sample, >= 1.
        variance_reduction: use the exact ½‖s‖² term.
        generator: draws v (a fresh OS-seeded generator when ``None``).

    Returns:
        The scalar loss, shape ``()``.
    """
    x = _check_energy_and_x(energy, x)
    n_projections = check_int("n_projections", n_projections)
    if not isinstance(variance_reduction, bool):
        raise TypeError(f"variance_reduction must be a bool, got {type(variance_reduction).__name__}")
    gen = resolve_generator(generator, x.device)
    batch = x.shape[0]
    x_rep = x.repeat(n_projections, *([1] * (x.dim() - 1)))  # (P*B, *event): projection-major copies
    v = torch.randn(x_rep.shape, generator=gen, device=x.device, dtype=x.dtype)  # (P*B, *event)
    with torch.enable_grad():
        x_rep.requires_grad_(True)
        score = -_energy_grad(energy, x_rep)  # (P*B, *event)
        proj = (score * v).flatten(1).sum(1)  # vᵀs: (P*B,)
        grad_proj = _grad(proj.sum(), x_rep)  # ∇_x(vᵀs): (P*B, *event)
        jacobian_term = (grad_proj * v).flatten(1).sum(1)  # vᵀ(∇_x s)v: (P*B,)
        # ½‖s‖² once per sample (B,) with variance reduction, else ½(vᵀs)² (P*B,)
        norm_term = 0.5 * (score[:batch].flatten(1).square().sum(1) if variance_reduction else proj.square())
        return jacobian_term.mean() + norm_term.mean()


def multilevel_denoising_score_matching(
    energy: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    *,
    sigmas: Sequence[float],
    generator: torch.Generator | None = None,
) -> Tensor:
    """Denoising score matching at many noise levels at once, for a noise-conditional energy E(x, σ).

    Each row b draws a level σ_b uniformly from ``sigmas`` and noise ε_b ~ N(0, I), and with the
    weighting λ(σ) = σ² of Song & Ermon (2019), which gives every level the same scale::

        x̃_b = x_b + σ_b ε_b,     L = ½ mean_b ‖ε_b - σ_b ∇_x E(x̃_b, σ_b)‖².

    At each σ the minimiser is the score of the noise-convolved data p_σ = p * N(0, σ²I), as for
    single-level ``denoising_score_matching``, which this equals when ``sigmas`` has one level.

    Args:
        energy: maps ``(x (B, *event), sigma (B,)) -> (B,)``, e.g. ``NoiseConditionalEnergy.forward`` or
            a class-conditional closure; called once on x̃.
        x: data, shape ``(B, *event)``, finite.
        sigmas: the noise levels, each > 0 (any order).
        generator: draws the levels and ε (a fresh OS-seeded generator when ``None``).

    Returns:
        The scalar loss, shape ``()``.
    """
    if not callable(energy):
        raise TypeError(f"energy must be callable as energy(x, sigma), got {type(energy).__name__}")
    x = check_finite("x", check_tensor("x", x, min_dim=2)).detach()
    if isinstance(sigmas, (str, bytes)) or not isinstance(sigmas, Sequence) or len(sigmas) == 0:
        raise ValueError(f"sigmas must be a non-empty sequence of noise levels > 0, got {sigmas!r}")
    levels = torch.tensor(
        [check_positive(f"sigmas[{i}]", s) for i, s in enumerate(sigmas)], device=x.device, dtype=x.dtype
    )  # (L,)
    return multilevel_dsm_kernel(energy, x, levels, resolve_generator(generator, x.device))


def multilevel_dsm_kernel(
    energy: Callable[[Tensor, Tensor], Tensor], x: Tensor, levels: Tensor, gen: torch.Generator
) -> Tensor:
    """``multilevel_denoising_score_matching`` without input checks: ``x (B, *event)`` finite and detached,
    ``levels (L,)`` positive on ``x``'s device and dtype (for objectives that have checked them)."""
    idx = torch.randint(len(levels), (x.shape[0],), generator=gen, device=x.device)  # (B,)
    sigma = levels[idx]  # (B,)
    eps = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)  # (B, *event)
    scale = sigma.view(-1, *([1] * (x.dim() - 1)))  # (B,) -> (B, 1, ..., 1)
    with torch.enable_grad():
        x_noisy = (x + scale * eps).requires_grad_(True)  # (B, *event)
        e = energy(x_noisy, sigma)  # (B,)
        check_energy_output(e, x.shape[:1], who="energy", input_shape=x.shape)
        grad = _grad(e.sum(), x_noisy)  # (B, *event)
        residual = (eps - scale * grad).flatten(1)  # (B, D)
        return 0.5 * residual.square().sum(1).mean()
