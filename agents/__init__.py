"""stable-baselines3 algorithms built on ebrl's Boltzmann policies (sb3-contrib style, one folder each).

- ``SoftQ``: soft Q-learning for Box actions, acting by Langevin dynamics on E(s, a) = -Q(s, a).
- ``SoftDQN``: soft Q-learning for Discrete actions, acting by the exact Boltzmann softmax.
- ``EnergyPolicy``: any trained ebrl ``StateActionEnergy`` as an SB3 policy (evaluate, save/load, warm-start SoftQ).
- ``IBC``: implicit behavioural cloning (InfoNCE on demonstrations; DFO or Langevin inference).
- ``add_demonstrations``: demonstrated episodes (a Minari dataset or arrays) into any SB3 off-policy algorithm's
  replay buffer, stored as SB3 stores its own transitions.
- ``save_run`` / ``load_run``: stop an off-policy run and resume it exactly (model, replay buffer,
  env and random states).
"""

from agents.common import add_demonstrations, load_run, save_run
from agents.softdqn import SoftDQN
from agents.softq import SoftQ

__all__ = ["SoftDQN", "SoftQ", "add_demonstrations", "load_run", "save_run"]
from agents.common import EnergyInference, EnergyPolicy
from agents.ibc import IBC

__all__ += ["IBC", "EnergyInference", "EnergyPolicy"]
