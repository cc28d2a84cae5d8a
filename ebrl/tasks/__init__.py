"""Energies at work: denoising, anomaly scoring and generation.

``EnergyOutlierDetector`` needs scikit-learn (``pip install "ebrl[sklearn]"``) and is imported
on first use, so the rest of ``ebrl.tasks`` works without it.
"""

from __future__ import annotations

from typing import Any

from ebrl.tasks.denoise import map_denoise, posterior_energy, posterior_mean_denoise, psnr, tweedie_denoise
from ebrl.tasks.energies import GaussianResidualEnergy, KernelDensityEnergy
from ebrl.tasks.generate import walk_jump_sample
from ebrl.tasks.inpaint import inpaint

__all__ = [
    "EnergyOutlierDetector",
    "GaussianResidualEnergy",
    "KernelDensityEnergy",
    "inpaint",
    "map_denoise",
    "posterior_energy",
    "posterior_mean_denoise",
    "psnr",
    "tweedie_denoise",
    "walk_jump_sample",
]


def __getattr__(name: str) -> Any:
    if name == "EnergyOutlierDetector":
        try:
            from ebrl.tasks.anomaly import EnergyOutlierDetector
        except ImportError as exc:
            raise ImportError('EnergyOutlierDetector needs scikit-learn: pip install "ebrl[sklearn]"') from exc
        return EnergyOutlierDetector
    raise AttributeError(f"module 'ebrl.tasks' has no attribute '{name}'")
