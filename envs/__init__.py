"""Gymnasium environments of ebrl, registered as ``ebrl/<Name>-v0`` on import.

- ``ebrl/MultiGoal-v0``: the 2-D multi-goal task of Haarnoja et al. (2017), 30 steps.
- ``ebrl/BimodalBandit-v0``: a one-step continuous bandit with two equally good actions.
- ``ebrl/SparseGoal-v0``: a 2-D point that is rewarded only at a far goal (sparse reward), 100 steps.
- ``ebrl/Particle-v0``: IBC's particle task (visit goal 1, then goal 2 around an obstacle), ``dim=`` kwarg.
- ``ebrl/ParticlePD-v0``: the IBC authors' own particle task (a PD-controlled point mass, no obstacle), ``dim=``.
"""

import gymnasium as gym

from envs.bandit import BimodalBanditEnv
from envs.multigoal import GOALS, MultiGoalEnv

gym.register(id="ebrl/MultiGoal-v0", entry_point="envs.multigoal:MultiGoalEnv", max_episode_steps=30)
gym.register(id="ebrl/BimodalBandit-v0", entry_point="envs.bandit:BimodalBanditEnv")
gym.register(id="ebrl/SparseGoal-v0", entry_point="envs.sparse:SparseGoalEnv", max_episode_steps=100)
gym.register(id="ebrl/Particle-v0", entry_point="envs.particle:ParticleEnv", max_episode_steps=100)
gym.register(id="ebrl/ParticlePD-v0", entry_point="envs.particle:PDParticleEnv")  # fixed horizon, n_steps

__all__ = ["GOALS", "BimodalBanditEnv", "MultiGoalEnv"]
