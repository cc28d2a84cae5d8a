"""Denoising under a learned energy, for observations y = x + σ·ε with known Gaussian noise σ.

Three estimators, from cheapest to most faithful:

- ``tweedie_denoise``: one step, x̂ = y + σ² ∇ log p_σ(y) = y - σ² ∇E(y). It is the exact
  posterior mean (MMSE) when E is the energy of the *noisy* data at level σ, which is what
  denoising score matching at that σ learns (Tweedie / Robbins; Efron 2011).
- ``map_denoise``: gradient descent on the posterior energy E(x) + ‖x - y‖² / 2σ² from y,
  for an energy of the *clean* data (e.g. trained by PCD or DSM at a small σ).
- ``posterior_mean_denoise``: Langevin chains on the same posterior energy, averaged: an
  estimate of E[x | y], the PSNR-optimal answer.
"""

from __future__ import annotations

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
from ebrl.energy.base import EnergyFn, unchecked
from ebrl.samplers.base import Bounds, energy_and_grad
from ebrl.samplers.langevin import Langevin


def _check_inputs(y: object, sigma: float, energy: object) -> Tensor:
    if not callable(energy):
        raise TypeError(f"energy must be callable (an Energy or a function), got {type(energy).__name__}")
    check_positive("sigma", sigma)
    y = check_tensor("y", y)
    return check_finite("y", y)


def tweedie_denoise(energy: EnergyFn, y: Tensor, *, sigma: float) -> Tensor:
    """x̂ = y - σ² ∇E(y): the one-step posterior mean for an energy of the σ-noisy data.

    Args:
        energy: E over the noisy data at noise level ``sigma`` (e.g. trained with ``DSM(sigma)``).
        y: noisy observations ``(B, *event)``.
        sigma: the noise standard deviation, > 0.

    Returns:
        Denoised estimates ``(B, *event)``.
    """
    y = _check_inputs(y, sigma, energy)
    _, _, grad = energy_and_grad(unchecked(energy, y), y)  # (B, *event); checks the energy's output shape
    return check_finite("denoised estimate", y - sigma**2 * grad)


def posterior_energy(energy: EnergyFn, y: Tensor, sigma: float) -> EnergyFn:
    """E_post(x) = E(x) + ‖x - y‖² / 2σ², the negative log posterior for Gaussian noise, ``(B,)``."""
    y = _check_inputs(y, sigma, energy)
    fn = unchecked(energy, y)

    def e_post(x: Tensor) -> Tensor:
        e = check_energy_output(fn(x), x.shape[:1], who="energy", input_shape=x.shape)  # (B,); free: shapes only
        return e + (x - y).square().flatten(1).sum(1) / (2 * sigma**2)

    return e_post


def map_denoise(
    energy: EnergyFn,
    y: Tensor,
    *,
    sigma: float,
    n_steps: int = 200,
    step_size: float | None = None,
    bounds: Bounds | None = None,
) -> Tensor:
    """MAP estimate: gradient descent on E(x) + ‖x - y‖²/2σ², starting at y.

    Gradient descent is ``Langevin`` with ``noise_scale=0``.

    Args:
        energy: E over clean data.
        y: noisy observations ``(B, *event)``.
        sigma: noise standard deviation, > 0.
        n_steps: descent steps.
        step_size: defaults to σ²/2, stable for the data term (whose curvature is 1/σ²).
        bounds: optional ``(low, high)`` box for the pixels, e.g. ``(0.0, 1.0)``.
    """
    y = _check_inputs(y, sigma, energy)
    check_int("n_steps", n_steps)
    step = 0.5 * sigma**2 if step_size is None else step_size
    descent = Langevin(step_size=step, n_steps=n_steps, noise_scale=0.0, bounds=bounds)
    return descent(posterior_energy(energy, y, sigma), y)


def posterior_mean_denoise(
    energy: EnergyFn,
    y: Tensor,
    *,
    sigma: float,
    n_chains: int = 16,
    n_steps: int = 200,
    n_snapshots: int = 1,
    step_size: float | None = None,
    bounds: Bounds | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Posterior mean E[x | y]: the average of Langevin chain states, ``n_chains`` per observation.

    All ``B × n_chains`` chains run as one batch of the library sampler, started at y, on the
    posterior energy E(x) + ‖x - y‖²/2σ². With ``n_snapshots = 1`` the final states are averaged.
    With more, each chain also contributes states along its second half: ``n_snapshots`` states
    spaced ``n_steps // (2 · n_snapshots)`` steps apart, ending at the final one. Averaging along a
    chain costs no extra gradient and cuts the Monte Carlo error of the mean.

    Args:
        energy: E over clean data.
        y: noisy observations ``(B, *event)``.
        sigma: noise standard deviation, > 0.
        n_chains: chains per observation, averaged.
        n_steps: Langevin steps per chain.
        n_snapshots: states averaged per chain, 1 <= n_snapshots <= n_steps // 2 (or exactly 1).
        step_size: defaults to σ²/10.
        bounds: optional ``(low, high)`` pixel box (reflected).
        generator: randomness; the global RNG is untouched.
    """
    y = _check_inputs(y, sigma, energy)
    k = check_int("n_chains", n_chains)
    check_int("n_steps", n_steps)
    check_int("n_snapshots", n_snapshots)
    if n_snapshots > 1 and n_snapshots > n_steps // 2:
        raise ValueError(f"n_snapshots must be 1 or at most n_steps // 2 = {n_steps // 2}, got {n_snapshots}")
    step = 0.1 * sigma**2 if step_size is None else step_size
    y_rep = y.repeat_interleave(k, dim=0)  # (B, *event) -> (B*K, *event), chain j of image b at b*K + j
    target = posterior_energy(energy, y_rep, sigma)
    gen = resolve_generator(generator, y.device)
    interval = n_steps if n_snapshots == 1 else n_steps // (2 * n_snapshots)
    burn_in = n_steps - interval * n_snapshots
    x = y_rep
    if burn_in > 0:
        x = Langevin(step_size=step, n_steps=burn_in, bounds=bounds, boundary="reflect")(target, x, generator=gen)
    chunk = Langevin(step_size=step, n_steps=interval, bounds=bounds, boundary="reflect")
    total = torch.zeros_like(y_rep)
    for _ in range(n_snapshots):
        x = chunk(target, x, generator=gen)
        total += x
    mean = total / n_snapshots  # (B*K, *event)
    return mean.reshape(y.shape[0], k, *y.shape[1:]).mean(1)  # (B*K, *event) -> (B, *event)


def psnr(x: Tensor, reference: Tensor, *, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB, per image: 10 log10(range² / MSE), shape ``(B,)``."""
    check_finite("x", check_tensor("x", x))
    check_finite("reference", check_tensor("reference", reference))
    check_positive("data_range", data_range)
    if x.shape != reference.shape:
        raise ValueError(f"x and reference must have one shape, got {tuple(x.shape)} and {tuple(reference.shape)}")
    mse = (x - reference).square().flatten(1).mean(1).clamp_min(1e-12)
    return 10 * torch.log10(data_range**2 / mse)
