"""MCMC samplers for p(x) ∝ exp(-E(x)/T), batched over chains on any torch device.

Each sampler is a frozen dataclass of hyperparameters; calling it is pure::

    x = Langevin(step_size=1e-2, n_steps=60)(energy, x0, generator=g)   # (B, *event)
    tr = MALA(step_size=0.1, n_steps=500).trace(energy, x0, generator=g)  # SamplerTrace

Block Gibbs sampling lives with the Boltzmann machines it samples: ``ebrl.boltzmann.Gibbs``.
"""

from ebrl._checks import DivergenceError
from ebrl.samplers.annealed import AnnealedLangevin
from ebrl.samplers.base import Sampler, SamplerTrace
from ebrl.samplers.hmc import HMC
from ebrl.samplers.langevin import MALA, Langevin
from ebrl.samplers.replay import ReplayBuffer

__all__ = ["HMC", "MALA", "AnnealedLangevin", "DivergenceError", "Langevin", "ReplayBuffer", "Sampler", "SamplerTrace"]

