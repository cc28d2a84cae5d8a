"""A one-step continuous bandit with two equally good actions, to test that a policy keeps both modes."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ebrl._checks import check_int, check_number, check_positive


class BimodalBanditEnv(gym.Env[np.ndarray, np.ndarray]):
    """One step, one constant observation, two optimal actions (registered as ``ebrl/BimodalBandit-v0``).

    - Observation: the constant ``[0.0]`` (float32), so a policy is a distribution over actions.
    - Action: a ∈ [-1, 1]^dim.
    - Reward: r(a) = -min_k ‖a - μ_k‖² / (2 width²), with modes μ_± = (±center, 0, ..., 0); the
      maximum 0 is reached at both modes.
    - Every episode terminates after its single step. ``info["mode"]`` is 0 for the mode at
      +center, 1 for the one at -center (whichever is nearer).

    With temperature α = 1 the Boltzmann policy exp(r(a)/α) is an equal mixture of two Gaussians of
    standard deviation ``width`` around the modes (truncated to the box), so a soft Q-learner that
    learns r exactly should put half its actions near each mode.

    Args:
        dim: action dimension, >= 1.
        center: distance of each mode from the origin along the first axis, in (0, 1).
        width: the reward's length scale, > 0.
        render_mode: ``None`` or ``"rgb_array"`` (the reward along the first action axis, with the
            last action marked, drawn with numpy alone).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 1}
    render_shape = (96, 192)

    def __init__(
        self, dim: int = 1, center: float = 0.5, width: float = 0.2, render_mode: str | None = None
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        dim = check_int("dim", dim)
        if not 0.0 < check_number("center", center) < 1.0:
            raise ValueError(f"center must be in (0, 1) so both modes lie inside the action box, got {center}")
        check_positive("width", width)
        self.center, self.width = float(center), float(width)
        self.render_mode = render_mode
        self._last_action: np.ndarray | None = None
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(dim,), dtype=np.float32)
        self.modes = np.zeros((2, dim))
        self.modes[:, 0] = [self.center, -self.center]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._last_action = None
        return np.zeros(1, dtype=np.float32), {}

    def reward(self, action: np.ndarray) -> np.ndarray:
        """r(a) for actions of shape ``(..., dim)`` -> ``(...)``."""
        a = np.asarray(action, dtype=np.float64)
        sq = ((a[..., None, :] - self.modes) ** 2).sum(-1)  # (..., 2, dim) -> (..., 2)
        return -sq.min(-1) / (2 * self.width**2)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(self.action_space.shape)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a.tolist()}")
        a = np.clip(a, -1.0, 1.0)
        self._last_action = a
        mode = int(np.argmin(((a - self.modes) ** 2).sum(-1)))
        return np.zeros(1, dtype=np.float32), float(self.reward(a)), True, False, {"mode": mode}

    def render(self) -> np.ndarray | None:
        """An ``(H, W, 3)`` uint8 image when ``render_mode == "rgb_array"``, else ``None``."""
        if self.render_mode != "rgb_array":
            return None
        h, w = self.render_shape
        img = np.full((h, w, 3), 255, dtype=np.uint8)
        a = np.zeros((w, self.action_space.shape[0]))
        a[:, 0] = np.linspace(-1.0, 1.0, w)
        r = self.reward(a)  # (W,)
        rows = np.rint((h - 1) * (r.max() - r) / (r.max() - r.min())).astype(int)  # top = best
        img[rows, np.arange(w)] = (30, 30, 200)
        if self._last_action is not None:
            col = int(np.rint((self._last_action[0] + 1.0) / 2.0 * (w - 1)))
            img[:, col] = (220, 40, 40)
        return img
