"""Pieces shared by the ebrl agents: action-space checks, finite transitions and losses, and the
sampling generator that is seeded through SB3's ``seed=`` but never pickled."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.type_aliases import GymEnv

from ebrl._checks import DivergenceError


def check_action_space(env: GymEnv | str | None, *, algo: str, expected: type[spaces.Space], verbose: int) -> Any:
    """Make ``env`` if it is an id, and require its action space to be ``expected``.

    SB3 itself asserts; this raises ``ValueError`` naming the space instead. A ``Box`` must also have
    finite bounds. Returns the (made) env; ``None`` passes through (loading a model without an env).
    """
    env = maybe_make_env(env, verbose)
    if env is None:
        return None
    space = env.action_space
    if not isinstance(space, expected):
        raise ValueError(
            f"{algo} supports {expected.__name__} action spaces only, got {space} "
            f"({type(space).__name__}); use "
            f"{'SoftDQN for Discrete' if expected is spaces.Box else 'SoftQ for Box'} actions"
        )
    if isinstance(space, spaces.Box) and not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError(
            f"{algo} needs finite action bounds, got action_space {space} with low={space.low.tolist()} "
            f"and high={space.high.tolist()}; rescale the actions to a bounded box (e.g. RescaleAction)"
        )
    return env


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


class PolicyGenerator:
    """The ``torch.Generator`` a policy samples actions with, created on demand from a seed.

    SB3's ``seed=`` seeds it (through ``reseed``); ``seed=None`` draws the seed from OS entropy.
    The generator itself is never pickled: a copy or an unpickled policy restarts the stream from
    the seed. The global torch RNG is never used.
    """

    def __init__(self) -> None:
        self._seed: int | None = None
        self._generator: torch.Generator | None = None

    def reseed(self, seed: int | None) -> None:
        """Restart the stream from ``seed`` (decorrelated from ``torch.manual_seed(seed)``)."""
        self._seed = None if seed is None else int(np.random.SeedSequence(seed).generate_state(1)[0])
        self._generator = None

    def get(self, device: torch.device) -> torch.Generator:
        """The generator on ``device``, recreated from the seed if the device changed."""
        if self._generator is None or self._generator.device.type != device.type:
            self._generator = torch.Generator(device=device)
            if self._seed is None:
                self._generator.seed()
            else:
                self._generator.manual_seed(self._seed)
        return self._generator

    def __getstate__(self) -> dict[str, Any]:
        return {"_seed": self._seed, "_generator": None}
