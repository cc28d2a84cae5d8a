"""Demonstrations into an SB3 replay buffer: the standard way to give an off-policy learner demonstrations.

``add_demonstrations(model, source)`` stores every transition of every demonstrated episode in ``model``'s replay
buffer, as SB3 stores its own: Box actions rescaled to [-1, 1], a time-out kept apart from a terminal state, the
raw (unnormalised) observations and rewards. It works for any SB3 off-policy algorithm (SAC, TD3, DQN, SoftQ,
SoftDQN) with a ``ReplayBuffer`` or a ``DictReplayBuffer``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecTransposeImage, unwrap_vec_wrapper

from ebrl.demos import require_minari

EPISODE_FIELDS = ("observations", "actions", "rewards", "terminations", "truncations")
"""What an episode holds, as Minari's ``EpisodeData`` does: ``observations`` (T + 1, ...) (a mapping of such arrays
for ``Dict`` spaces), ``actions`` (T, ...), ``rewards``, ``terminations`` and ``truncations`` (T,)."""


def _field(episode: Any, name: str) -> Any:
    value = episode[name] if isinstance(episode, Mapping) else getattr(episode, name, None)
    if value is None:
        raise ValueError(f"demonstrations: an episode has no {name!r}; expected the fields {EPISODE_FIELDS}")
    return value


def _take(x: Any, index: Any) -> Any:
    """``x[index]``, or the same for every array of a mapping (``Dict`` observations)."""
    return {k: np.asarray(v)[index] for k, v in x.items()} if isinstance(x, Mapping) else np.asarray(x)[index]


def _concat(parts: list[Any]) -> Any:
    if isinstance(parts[0], Mapping):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


def _episodes(source: str | Iterable[Any]) -> Iterable[Any]:
    if isinstance(source, str):
        minari = require_minari()
        local = set(minari.list_local_datasets())
        if source not in local:
            raise ValueError(f"demonstrations: no Minari dataset {source!r} in the local store; expected one of "
                             f"{sorted(local) or 'none'} (nothing is downloaded)")
        return minari.load_dataset(source).iterate_episodes()
    return source


def _check_observations(obs: Any, space: spaces.Space, steps: int) -> None:
    if isinstance(space, spaces.Dict):
        for key, sub in space.spaces.items():
            _check_observations(obs[key], sub, steps)
        return
    shape = (steps + 1, *(space.shape or ()))
    if np.shape(obs) != shape:
        raise ValueError(f"demonstrations: an episode of {steps} actions must have observations of shape {shape} "
                         f"(one more than its actions, for {space}), got {np.shape(obs)}")


def _scaled_actions(actions: np.ndarray, space: spaces.Space, steps: int) -> np.ndarray:
    """The actions as SB3's buffers hold them: Box actions rescaled from the space's bounds to [-1, 1]."""
    if isinstance(space, spaces.Box):
        if actions.shape != (steps, *space.shape):
            raise ValueError(f"demonstrations: actions must have shape {(steps, *space.shape)}, got {actions.shape}")
        outside = ~((actions >= space.low) & (actions <= space.high))
        if outside.any():
            raise ValueError(f"demonstrations: {int(outside.any(axis=tuple(range(1, actions.ndim))).sum())} "
                             f"action(s) outside the action space {space}")
        return 2.0 * (actions - space.low) / (space.high - space.low) - 1.0
    if isinstance(space, spaces.Discrete):
        actions = actions.reshape(-1) if actions.shape == (steps, 1) else actions
        if actions.shape != (steps,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"demonstrations: Discrete actions must be integers of shape ({steps},), got "
                             f"{actions.dtype} {actions.shape}")
        if ((actions < space.start) | (actions >= space.start + space.n)).any():
            raise ValueError(f"demonstrations: actions outside the action space {space}")
        return actions
    if not all(space.contains(a.astype(space.dtype)) for a in actions):
        raise ValueError(f"demonstrations: actions must be elements of the action space {space}")
    return actions


def _transitions(model: OffPolicyAlgorithm, episode: Any, transpose: VecTransposeImage | None) -> tuple[Any, ...]:
    """One episode's (obs, next_obs, buffer actions, rewards, dones, time-outs), checked against the model's spaces."""
    actions = np.asarray(_field(episode, "actions"))
    steps = len(actions)
    observations = _field(episode, "observations")
    space = model.observation_space
    keys = set(observations) if isinstance(observations, Mapping) else None
    if isinstance(space, spaces.Dict) and keys != set(space.spaces):
        raise ValueError(f"demonstrations: observations must be a mapping with the keys {sorted(space.spaces)}")
    if transpose is not None:  # images channel-last, as the environment emits them: SB3 stores them transposed
        observations = transpose.transpose_observations(
            {k: np.asarray(v) for k, v in observations.items()} if isinstance(observations, Mapping)
            else np.asarray(observations))
    _check_observations(observations, space, steps)
    flags = {}
    for name in ("rewards", "terminations", "truncations"):
        flags[name] = np.asarray(_field(episode, name)).reshape(-1)
        if flags[name].shape != (steps,):
            raise ValueError(f"demonstrations: {name} must have shape ({steps},), got {flags[name].shape}")
    terminated, truncated = flags["terminations"].astype(bool), flags["truncations"].astype(bool)
    return (_take(observations, slice(0, steps)), _take(observations, slice(1, steps + 1)),
            _scaled_actions(actions, model.action_space, steps), flags["rewards"].astype(np.float32),
            terminated | truncated, truncated & ~terminated)


def add_demonstrations(model: OffPolicyAlgorithm, demonstrations: str | Iterable[Any]) -> int:
    """Store demonstrated episodes in ``model``'s replay buffer, as SB3 would have stored them online.

    Args:
        model: an SB3 off-policy algorithm (SAC, TD3, DQN, SoftQ, SoftDQN, ...) whose model is set up, with a
            ``ReplayBuffer`` or ``DictReplayBuffer`` (not ``HerReplayBuffer``, which stores whole episodes).
        demonstrations: a local Minari dataset id, or episodes: Minari ``EpisodeData`` or mappings with the
            fields ``EPISODE_FIELDS``: ``observations`` (T + 1, ...), ``actions`` (T, ...), ``rewards``,
            ``terminations`` and ``truncations`` (T,), all as the environment emits and takes them (Box actions
            in its units, images channel-last: SB3's own rescaling and image transposition are applied here).

    Returns:
        The number of transitions stored.

    The last step of an episode that was truncated and not terminated is stored as a time-out, which SB3's
    targets bootstrap through. With ``n_envs`` environments the buffer takes ``n_envs`` transitions at a time;
    the last group is filled up with the first transitions again (at most ``n_envs - 1`` stored twice). The
    buffer is first in, first out: demonstrations stay for the whole run only if it holds the run as well.

    Raises:
        ValueError: naming what is wrong, if an episode lacks a field or its shapes, actions (outside the action
            space) or observations do not match the model's spaces, or if the buffer cannot hold them all.
        TypeError: if ``model`` has no replay buffer of a supported kind.
    """
    buffer = getattr(model, "replay_buffer", None)
    if type(buffer) not in (ReplayBuffer, DictReplayBuffer):
        got = "none (set up the model first)" if buffer is None else type(buffer).__name__
        raise TypeError(f"model: add_demonstrations needs an SB3 ReplayBuffer or DictReplayBuffer, got {got}")
    assert isinstance(buffer, ReplayBuffer | DictReplayBuffer)
    env = model.get_env()
    transpose = unwrap_vec_wrapper(env, VecTransposeImage) if env is not None else None
    parts = [_transitions(model, episode, transpose) for episode in _episodes(demonstrations)]
    if not parts:
        return 0
    obs, next_obs, act, rew, done, timeout = (_concat([p[i] for p in parts]) for i in range(6))
    total, n = len(act), buffer.n_envs
    if -(-total // n) > buffer.buffer_size:
        raise ValueError(f"demonstrations: {total} transitions do not fit in the replay buffer "
                         f"({buffer.buffer_size} x {n} environments); raise buffer_size")
    order = np.arange(-(-total // n) * n) % total  # groups of n_envs; the last is filled up from the start
    for group in order.reshape(-1, n):
        infos = [{"TimeLimit.truncated": bool(t)} for t in timeout[group]]
        buffer.add(_take(obs, group), _take(next_obs, group), act[group], rew[group], done[group], infos)
    return total
