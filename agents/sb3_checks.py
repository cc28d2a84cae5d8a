"""Checks that SoftQ and SoftDQN run at construction, so that an observation space or a replay buffer that SB3 cannot
handle gets one error naming it (SB3 itself fails later, deep inside, with an unrelated message)."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import VecEnv

SUPPORTED_OBSERVATION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
"""The observation spaces SB3's policies take, alone or as the values of a (flat) ``Dict``."""

GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")
"""The keys of a goal-conditioned environment's ``Dict`` observations (``HerReplayBuffer`` needs them)."""


def check_observation_space(space: spaces.Space, *, algo: str) -> None:
    """Raise ``ValueError`` naming ``space`` unless it is one that SB3's policies take.

    Supported: ``Box``, ``Discrete``, ``MultiDiscrete``, ``MultiBinary``, or a ``Dict`` whose values are those.
    """
    names = ", ".join(t.__name__ for t in SUPPORTED_OBSERVATION_SPACES)
    if isinstance(space, spaces.Dict):
        for key, sub in space.spaces.items():
            if not isinstance(sub, SUPPORTED_OBSERVATION_SPACES):
                raise ValueError(
                    f"{algo} does not support observation_space[{key!r}] = {sub} ({type(sub).__name__}) inside a Dict; "
                    f"expected each value of the Dict to be one of {names} (no nesting)"
                )
        return
    if not isinstance(space, SUPPORTED_OBSERVATION_SPACES):
        raise ValueError(
            f"{algo} does not support observation_space {space} ({type(space).__name__}); expected one of {names} "
            f"or a Dict of those (e.g. pad a Sequence to a fixed-size Box with a gymnasium.ObservationWrapper)"
        )


def _has_compute_reward(env: Any) -> bool:
    if isinstance(env, VecEnv):
        return bool(env.has_attr("compute_reward"))
    try:
        return callable(env.get_wrapper_attr("compute_reward"))
    except AttributeError:
        return False


def check_replay_buffer(env: Any, replay_buffer_class: type[ReplayBuffer] | None, *, algo: str) -> None:
    """With ``HerReplayBuffer``, require a goal-conditioned ``env``; raise ``ValueError`` naming what is missing.

    Goal-conditioned: ``Dict`` observations with the keys ``GOAL_KEYS`` and ``env.compute_reward(achieved_goal,
    desired_goal, info)``, as ``gymnasium_robotics.GoalEnv`` and SB3's ``BitFlippingEnv``. ``env=None`` (a model
    loaded without an environment) is not checked.
    """
    if env is None or replay_buffer_class is None or not issubclass(replay_buffer_class, HerReplayBuffer):
        return
    space = env.observation_space
    keys = list(space.spaces) if isinstance(space, spaces.Dict) else None
    if keys is None or any(k not in keys for k in GOAL_KEYS):
        raise ValueError(
            f"{algo} with replay_buffer_class=HerReplayBuffer needs a goal-conditioned env: Dict observations with "
            f"the keys {list(GOAL_KEYS)}, got observation_space {space}"
            + ("" if keys is None else f" (keys {keys})")
            + "; use the default replay buffer for this env"
        )
    if not _has_compute_reward(env):
        raise ValueError(
            f"{algo} with replay_buffer_class=HerReplayBuffer needs a goal-conditioned env with a "
            f"compute_reward(achieved_goal, desired_goal, info) method; {env} has none"
        )


def check_env(env: Any, replay_buffer_class: type[ReplayBuffer] | None, *, algo: str) -> None:
    """``check_observation_space`` and ``check_replay_buffer`` on a made env; ``None`` (loading) passes."""
    if env is None:
        return
    check_observation_space(env.observation_space, algo=algo)
    check_replay_buffer(env, replay_buffer_class, algo=algo)
