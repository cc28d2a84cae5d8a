"""A sparse-reward 2-D navigation task: the only reward is at a far goal."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ebrl._checks import check_positive


def _point(name: str, value: object) -> np.ndarray:
    """A finite pair inside [-1, 1]² as a float64 array; ``ValueError`` naming ``name`` otherwise."""
    try:
        point = np.asarray(value, np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a pair of numbers inside [-1, 1]², got {value!r}") from exc
    if point.shape != (2,) or not np.all(np.abs(point) <= 1.0):
        raise ValueError(f"{name} must be a pair inside [-1, 1]², got {point.tolist()}")
    return point


class SparseGoalEnv(gym.Env[np.ndarray, np.ndarray]):
    """A point in [-1, 1]² must reach a small goal in the far corner (registered as ``ebrl/SparseGoal-v0``).

    - Observation: the position (float32, in [-1, 1]²).
    - Action: a velocity in [-1, 1]²; the point moves by ``speed · action`` and is clipped to the box.
    - Start: ``start`` plus uniform noise of ±0.05. Goal: a disc of radius ``goal_radius`` at ``goal``.
    - Reward 1 and termination on reaching the goal (``info["is_success"] = True``); 0 otherwise. The
      time limit (``max_episode_steps=100`` in the registration) truncates.

    Args:
        speed: the largest move per step along each axis, > 0.
        goal_radius: the goal's radius, > 0.
        start, goal: corners, each a pair in [-1, 1].
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's own attribute)

    def __init__(
        self,
        speed: float = 0.1,
        goal_radius: float = 0.15,
        start: tuple[float, float] = (-0.8, -0.8),
        goal: tuple[float, float] = (0.8, 0.8),
    ) -> None:
        for name, value in (("speed", speed), ("goal_radius", goal_radius)):
            check_positive(name, value)
        self.start, self.goal = _point("start", start), _point("goal", goal)
        self.speed, self.goal_radius = float(speed), float(goal_radius)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._pos = self.start.copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._pos = np.clip(self.start + self.np_random.uniform(-0.05, 0.05, 2), -1.0, 1.0)
        return self._pos.astype(np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a.tolist()}")
        self._pos = np.clip(self._pos + self.speed * np.clip(a, -1.0, 1.0), -1.0, 1.0)
        success = bool(np.linalg.norm(self._pos - self.goal) < self.goal_radius)
        return self._pos.astype(np.float32), float(success), success, False, {"is_success": success}
