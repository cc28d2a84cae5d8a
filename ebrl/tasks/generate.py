"""Generation from a learned energy.

An energy trained by PCD is sampled by running its sampler (from the replay buffer or from
noise). An energy trained by denoising score matching at one noise level σ models the
*smoothed* density p_σ = p * N(0, σ²I), which is easier to sample than p (its modes are
connected), but its samples are noisy. ``walk_jump_sample`` (Saremi & Hyvärinen 2019, *Neural
Empirical Bayes*) walks on p_σ with MCMC and then jumps to the posterior mean E[x | y] with one
Tweedie step, which removes the noise.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ebrl._checks import check_positive
from ebrl.energy.base import EnergyFn
from ebrl.samplers.base import Sampler
from ebrl.tasks.denoise import tweedie_denoise


def walk_jump_sample(
    energy: EnergyFn,
    x0: Tensor,
    *,
    sigma: float,
    sampler: Sampler,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Walk on E with ``sampler`` from ``x0``, then jump: x̂ = y - σ²∇E(y).

    Args:
        energy: E of the σ-smoothed data, e.g. trained with ``DSM(sigma=σ)``.
        x0: chain starts ``(B, *event)`` (e.g. uniform noise).
        sigma: the smoothing σ > 0 the energy was trained at.
        sampler: the walk, e.g. ``Langevin(step_size=σ²/2, n_steps=200)`` (exact Langevin noise).
        generator: randomness of the walk; the global RNG is untouched.

    Returns:
        The denoised samples ``(B, *event)``.
    """
    check_positive("sigma", sigma)
    if not isinstance(sampler, Sampler):
        raise TypeError(f"sampler must be an ebrl Sampler (Langevin, MALA, HMC), got {type(sampler).__name__}")
    y = sampler(energy, x0, generator=generator)  # (B, *event)
    return tweedie_denoise(energy, y, sigma=sigma)
