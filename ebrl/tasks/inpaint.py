"""Inpainting: resample the hidden entries of each sample given the visible ones, with a sampler.

``inpaint`` builds the energy of the hidden entries with the visible ones held at their observed
values and runs the same sampler that generates unconditional samples on it:

- with ``AnnealedLangevin`` and a noise-conditional energy E(x, σ), the visible entries enter each
  level as observed + σ·ξ, with one ξ ~ N(0, I) drawn per call, so that the model always sees an
  input at its own noise level (Song & Ermon 2019 add noise to the visible pixels the same way);
  the chains are p_σ(hidden | visible noised) at each σ, annealed down to the data;
- with an ordinary ``Sampler`` (Langevin, MALA, HMC) and an energy E(x), the chains target
  p(hidden | visible) ∝ exp(-E(visible, hidden)) directly.

Either way only the hidden entries move (the gradient of the visible ones is zero, their noise is
discarded), and the result carries the observed values exactly in the visible entries.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ebrl._checks import check_finite, check_tensor, resolve_generator
from ebrl.energy.base import EnergyFn, unchecked
from ebrl.energy.noise_conditional import NoiseConditionalEnergy, NoiseConditionalEnergyFn
from ebrl.samplers.annealed import AnnealedLangevin
from ebrl.samplers.base import Sampler


def _check_mask(mask: object, images: Tensor) -> Tensor:
    """``mask`` as a bool tensor of ``images``' full shape; it may be given per sample or once for all."""
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True = hidden, to resample), got {mask!r}")
    shape = tuple(images.shape)
    if tuple(mask.shape) not in (shape, shape[1:]):
        raise ValueError(
            f"mask must have the shape of images {shape} or of one sample {shape[1:]}, got {tuple(mask.shape)}"
        )
    if mask.device != images.device:
        raise ValueError(f"mask is on '{mask.device}' but images are on '{images.device}'; expected one device")
    return mask.expand(shape)


def inpaint(
    energy: NoiseConditionalEnergy | NoiseConditionalEnergyFn | EnergyFn,
    images: Tensor,
    mask: Tensor,
    *,
    sampler: AnnealedLangevin | Sampler,
    x0: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample the entries of ``images`` where ``mask`` is True, given the others.

    Args:
        energy: a noise-conditional energy (or function ``(x, sigma) -> (B,)``) for ``AnnealedLangevin``,
            or an energy ``(B, *event) -> (B,)`` for an ordinary ``Sampler``.
        images: the observed samples ``(B, *event)``; the values under the mask are ignored.
        mask: bool, ``(B, *event)`` or ``(*event)``; True marks the entries to resample.
        sampler: ``AnnealedLangevin`` (with a noise-conditional energy) or a ``Sampler``.
        x0: starting values ``(B, *event)`` of the chains (only their hidden entries matter). By
            default, σ_1 · N(0, I) for ``AnnealedLangevin`` (the widest level), and the images with
            their hidden entries set to zero for a ``Sampler``.
        generator: all randomness; the global RNG is untouched.

    Returns:
        ``(B, *event)``: the sampled hidden entries, and the observed ones where ``mask`` is False.
    """
    images = check_finite("images", check_tensor("images", images, min_dim=2)).detach()
    hidden = _check_mask(mask, images)
    gen = resolve_generator(generator, images.device)
    if x0 is not None:
        x0 = check_tensor("x0", x0, min_dim=2)
        if x0.shape != images.shape:
            raise ValueError(f"x0 must have the shape of images {tuple(images.shape)}, got {tuple(x0.shape)}")
    if isinstance(sampler, AnnealedLangevin):
        if not callable(energy):
            raise TypeError(f"energy must be callable as energy(x, sigma), got {type(energy).__name__}")
        if isinstance(energy, NoiseConditionalEnergy):
            energy.check_input(images)
            energy = energy.forward
        xi = torch.randn(images.shape, generator=gen, device=images.device, dtype=images.dtype)  # (B, *event)
        expand = (-1, *([1] * (images.dim() - 1)))

        def conditioned(z: Tensor, sigma: Tensor) -> Tensor:
            visible = images + sigma.view(expand) * xi  # the observation at noise level σ: (B, *event)
            return energy(torch.where(hidden, z, visible), sigma)

        if x0 is None:
            x0 = sampler.sigmas[0] * torch.randn(images.shape, generator=gen, device=images.device, dtype=images.dtype)
        out = sampler(conditioned, x0, generator=gen)
    elif isinstance(sampler, Sampler):
        if isinstance(energy, NoiseConditionalEnergy):
            raise TypeError(
                "a NoiseConditionalEnergy needs sampler=AnnealedLangevin(...); for one level pass energy.at(sigma)"
            )
        fn = unchecked(energy, images)

        def conditioned_fn(z: Tensor) -> Tensor:
            return fn(torch.where(hidden, z, images))

        if x0 is None:
            x0 = torch.where(hidden, torch.zeros_like(images), images)
        out = sampler(conditioned_fn, x0, generator=gen)
    else:
        raise TypeError(
            f"sampler must be AnnealedLangevin or an ebrl Sampler (Langevin, MALA, HMC), got {type(sampler).__name__}"
        )
    return torch.where(hidden, out, images)
