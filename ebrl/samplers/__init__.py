"""MCMC samplers for p(x) ∝ exp(-E(x)/T), batched over chains on any torch device.

Each sampler is a frozen dataclass of hyperparameters; calling it is pure::

    x = Langevin(step_size=1e-2, n_steps=60)(energy, x0, generator=g)   # (B, *event)
    tr = MALA(step_size=0.1, n_steps=500).trace(energy, x0, generator=g)  # SamplerTrace
"""

from typing import Any

from ebrl._checks import DivergenceError
from ebrl.samplers.base import Sampler, SamplerTrace
from ebrl.samplers.hmc import HMC
from ebrl.samplers.langevin import MALA, Langevin
from ebrl.samplers.replay import ReplayBuffer

__all__ = ["HMC", "MALA", "DivergenceError", "Gibbs", "Langevin", "ReplayBuffer", "Sampler", "SamplerTrace"]


def __getattr__(name: str) -> Any:
    # Block Gibbs lives with the Boltzmann machines it samples; re-exported here on first use
    # (ebrl.boltzmann imports this package, so an eager import would be circular).
    if name == "Gibbs":
        from ebrl.boltzmann.gibbs import Gibbs

        return Gibbs
    raise AttributeError(f"module 'ebrl.samplers' has no attribute '{name}'")
