"""Gymnasium environments of ebrl, registered as ``ebrl/<Name>-v0`` on import.

- ``ebrl/MultiGoal-v0``: the 2-D multi-goal task of Haarnoja et al. (2017), 30 steps.
- ``ebrl/BimodalBandit-v0``: a one-step continuous bandit with two equally good actions.
"""

import gymnasium as gym

from envs.bandit import BimodalBanditEnv
from envs.multigoal import GOALS, MultiGoalEnv

gym.register(id="ebrl/MultiGoal-v0", entry_point="envs.multigoal:MultiGoalEnv", max_episode_steps=30)
gym.register(id="ebrl/BimodalBandit-v0", entry_point="envs.bandit:BimodalBanditEnv")

__all__ = ["GOALS", "BimodalBanditEnv", "MultiGoalEnv"]
