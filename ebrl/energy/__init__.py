"""Energies ``E: (B, *event) -> (B,)``; lower energy means more probable, p(x) ∝ exp(-E(x)/T)."""

from ebrl.energy.analytic import (
    Distribution,
    GaussianEnergy,
    GaussianMixtureEnergy,
    RingEnergy,
    UniformBox,
)
from ebrl.energy.base import Configurable, Energy, EnergyFn, unchecked
from ebrl.energy.nets import ACTIVATIONS, ConvEnergy, MLPEnergy, StateActionEnergy
from ebrl.energy.noise_conditional import (
    ConvNoiseEnergy,
    MLPNoiseEnergy,
    NoiseConditionalEnergy,
    NoiseConditionalEnergyFn,
    SmoothedGaussianMixture,
    geometric_sigmas,
)

__all__ = [
    "ACTIVATIONS",
    "Configurable",
    "ConvEnergy",
    "ConvNoiseEnergy",
    "Distribution",
    "Energy",
    "EnergyFn",
    "GaussianEnergy",
    "GaussianMixtureEnergy",
    "MLPEnergy",
    "MLPNoiseEnergy",
    "NoiseConditionalEnergy",
    "NoiseConditionalEnergyFn",
    "RingEnergy",
    "SmoothedGaussianMixture",
    "StateActionEnergy",
    "UniformBox",
    "geometric_sigmas",
    "unchecked",
]
