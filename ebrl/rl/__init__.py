"""Boltzmann policies and soft values for reinforcement learning. Pure torch: no gymnasium, no SB3.

For a state-action energy E(s, a) = -Q(s, a), the policy is π(a|s) ∝ exp(-E(s,a)/α) and the soft
value is V(s) = α log Σ_a exp(-E(s,a)/α) (a sum for discrete actions, an integral over a box for
continuous ones). Continuous policies are sampled by ``ActionSampler`` (tempered SMC with MALA moves), which is
scale-free and says when its draws cannot be trusted.
"""

from ebrl.rl.box import ActionBox
from ebrl.rl.continuous import ContinuousBoltzmannPolicy, StateActionEnergyFn
from ebrl.rl.dfo import DerivativeFreeOptimizer
from ebrl.rl.discrete import DiscreteBoltzmannPolicy
from ebrl.rl.priors import StatePrior, shaping_term
from ebrl.rl.sampler import ActionSampler, PolicySample, Proposal, SamplerDiagnostics, SamplerWarning

__all__ = [
    "ActionBox",
    "ActionSampler",
    "ContinuousBoltzmannPolicy",
    "DerivativeFreeOptimizer",
    "DiscreteBoltzmannPolicy",
    "PolicySample",
    "Proposal",
    "SamplerDiagnostics",
    "SamplerWarning",
    "StateActionEnergyFn",
    "StatePrior",
    "shaping_term",
]
