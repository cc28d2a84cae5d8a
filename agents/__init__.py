"""stable-baselines3 algorithms built on ebrl's Boltzmann policies (sb3-contrib style, one folder each).

- ``SoftQ``: soft Q-learning for Box actions, acting by Langevin dynamics on E(s, a) = -Q(s, a).
- ``SoftDQN``: soft Q-learning for Discrete actions, acting by the exact Boltzmann softmax.
"""

from agents.softdqn import SoftDQN
from agents.softq import SoftQ

__all__ = ["SoftDQN", "SoftQ"]
