"""ebrl: energy-based models and their use in reinforcement learning.

Sign convention, for the whole library: lower energy means more probable,
p(x) ∝ exp(-E(x)/T); for RL, E(s, a) = -Q(s, a).
"""

__version__ = "0.1.0"
