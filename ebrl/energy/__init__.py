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

__all__ = [
    "ACTIVATIONS",
    "Configurable",
    "ConvEnergy",
    "Distribution",
    "Energy",
    "EnergyFn",
    "GaussianEnergy",
    "GaussianMixtureEnergy",
    "MLPEnergy",
    "RingEnergy",
    "StateActionEnergy",
    "UniformBox",
    "unchecked",
]
