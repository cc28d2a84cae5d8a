"""Checks the agents share: action spaces, value priors, finite transitions and finite losses."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.type_aliases import GymEnv

from ebrl._checks import DivergenceError
from ebrl.rl.priors import StatePrior


def check_action_space(env: GymEnv | str | None, *, algo: str, expected: type[spaces.Space], verbose: int) -> Any:
    """Make ``env`` if it is an id, and require its action space to be ``expected``.

    SB3 itself asserts; this raises ``ValueError`` naming the space instead. A ``Box`` must also have
    finite bounds. Returns the (made) env; ``None`` passes through (loading a model without an env).
    """
    if env is None:
        return None
    env = maybe_make_env(env, verbose)
    space = env.action_space
    if not isinstance(space, expected):
        raise ValueError(
            f"{algo} supports {expected.__name__} action spaces only, got {space} "
            f"({type(space).__name__}); use "
            f"{'SoftDQN for Discrete' if expected is spaces.Box else 'SoftQ for Box'} actions"
        )
    if isinstance(space, spaces.Box) and len(space.shape) != 1:
        raise ValueError(
            f"{algo} needs a 1-D Box of actions, got action_space {space} of shape {space.shape}; wrap the env so that "
            f"it takes flat actions (e.g. a gymnasium.ActionWrapper whose action(a) reshapes a to {space.shape})"
        )
    if isinstance(space, spaces.Box) and not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError(
            f"{algo} needs finite action bounds, got action_space {space} with low={space.low.tolist()} "
            f"and high={space.high.tolist()}; rescale the actions to a bounded box (e.g. RescaleAction)"
        )
    return env


def check_value_prior(value_prior: StatePrior | None, observation_space: spaces.Space) -> StatePrior | None:
    """Require a ``StatePrior`` over the flattened observations (or ``None``) and freeze it."""
    if value_prior is None:
        return None
    if not isinstance(value_prior, StatePrior):
        raise TypeError(f"value_prior must be an ebrl.rl.priors.StatePrior or None, got {type(value_prior).__name__}")
    obs_dim = int(spaces.flatdim(observation_space))
    if value_prior.obs_dim != obs_dim:
        raise ValueError(
            f"value_prior was trained on observations of size {value_prior.obs_dim}, but the observations "
            f"have size {obs_dim}"
        )
    return value_prior.requires_grad_(False)


def _non_finite(name: str, value: np.ndarray | dict[str, np.ndarray]) -> str | None:
    items = value.items() if isinstance(value, dict) else [("", value)]
    for key, arr in items:
        arr = np.asarray(arr)
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            where = np.argwhere(~np.isfinite(arr))[:, 0]  # env indices of the bad rows
            label = f"{name}[{key!r}]" if key else name
            return f"{label} is non-finite (NaN or inf) in env(s) {sorted(set(where.tolist()))}: {arr.tolist()}"
    return None


def check_finite_transition(
    last_obs: np.ndarray | dict[str, np.ndarray] | None,
    new_obs: np.ndarray | dict[str, np.ndarray],
    rewards: np.ndarray,
    infos: list[dict[str, Any]],
) -> None:
    """Raise ``ValueError`` if a reward or an observation about to enter the replay buffer is not finite."""
    checks: list[tuple[str, Any]] = [("reward", rewards), ("observation", new_obs)]
    if last_obs is not None:
        checks.append(("observation", last_obs))
    checks += [
        ("terminal observation", info["terminal_observation"])
        for info in infos
        if info.get("terminal_observation") is not None
    ]
    for name, value in checks:
        problem = _non_finite(name, value)
        if problem is not None:
            raise ValueError(
                f"the environment returned a transition that cannot enter the replay buffer: {problem}; "
                f"expected finite rewards and observations"
            )


def check_finite_loss(name: str, value: float, *, n_updates: int) -> float:
    """Raise ``DivergenceError`` when a training loss is NaN or inf (instead of training on NaN)."""
    if not math.isfinite(value):
        raise DivergenceError(
            f"{name} is {value} at gradient update {n_updates}; lower learning_rate, raise alpha, or "
            f"rescale the rewards"
        )
    return value
