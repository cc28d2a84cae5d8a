"""Boltzmann policies and soft values for reinforcement learning. Pure torch: no gymnasium, no SB3.

For a state-action energy E(s, a) = -Q(s, a), the policy is π(a|s) ∝ exp(-E(s,a)/α) and the soft
value is V(s) = α log Σ_a exp(-E(s,a)/α) (a sum for discrete actions, an integral over a box for
continuous ones).
"""

from ebrl.rl.box import ActionBox
from ebrl.rl.continuous import ContinuousBoltzmannPolicy, StateActionEnergyFn
from ebrl.rl.dfo import DerivativeFreeOptimizer
from ebrl.rl.discrete import DiscreteBoltzmannPolicy
from ebrl.rl.priors import StatePrior, shaping_term

__all__ = [
    "ActionBox",
    "ContinuousBoltzmannPolicy",
    "DerivativeFreeOptimizer",
    "DiscreteBoltzmannPolicy",
    "StateActionEnergyFn",
    "StatePrior",
    "shaping_term",
]
