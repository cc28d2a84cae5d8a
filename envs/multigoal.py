"""The 2-D multi-goal task of Haarnoja et al. (2017), *Reinforcement Learning with Deep Energy-Based Policies*.

A point mass starts near the origin and moves by its velocity action. Four goals sit at (±5, 0) and
(0, ±5); the reward punishes effort and the squared distance to the nearest goal, so every goal is
equally good and a maximum-entropy policy should keep all four as options.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces

GOALS = np.array([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])
"""The goal positions, ``(4, 2)``."""


class Predictor(Protocol):
    """An SB3 model (or anything with its ``predict`` and ``set_random_seed``)."""

    def predict(self, observation: np.ndarray, *, deterministic: bool = False) -> tuple[Any, Any]: ...

    def set_random_seed(self, seed: int | None = None) -> None: ...


class MultiGoalEnv(gym.Env[np.ndarray, np.ndarray]):
    """Point mass in [-7, 7]² with four goals (registered as ``ebrl/MultiGoal-v0``, 30 steps).

    - Observation: the position s ∈ [-7, 7]², float32.
    - Action: a velocity a ∈ [-1, 1]² (clipped to the box).
    - Dynamics: s' = clip(s + a, -7, 7). Start: s0 ~ N(0, 0.1² I), or ``reset(options={"start": (x, y)})``.
    - Reward: -(30‖a‖² + min_g ‖s' - g‖²), plus 10 on reaching a goal.
    - Termination: within distance 1 of a goal. The registered env truncates at 30 steps.
    - ``info["goal"]``: the index into ``GOALS`` of the goal reached, or -1.

    Args:
        render_mode: ``None`` or ``"rgb_array"`` (a top view of the reward landscape, the goals
            and the episode's path, drawn with numpy alone).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    bound = 7.0
    action_cost = 30.0
    goal_bonus = 10.0
    goal_radius = 1.0
    init_std = 0.1
    render_size = 256

    def __init__(self, render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        self.observation_space = spaces.Box(-self.bound, self.bound, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._pos = np.zeros(2)
        self._path: list[np.ndarray] = []
        self._background: np.ndarray | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        start = None if options is None else options.get("start")
        if start is None:
            self._pos = self.np_random.normal(0.0, self.init_std, size=2)
        else:
            pos = np.asarray(start, dtype=np.float64)
            if pos.shape != (2,) or not np.all(np.isfinite(pos)):
                raise ValueError(f"options['start'] must be a finite (x, y) pair, got {start!r}")
            self._pos = pos
        self._pos = np.clip(self._pos, -self.bound, self.bound)
        self._path = [self._pos.copy()]
        return self._pos.astype(np.float32), {"goal": -1}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a.tolist()}")
        a = np.clip(a, -1.0, 1.0)
        self._pos = np.clip(self._pos + a, -self.bound, self.bound)
        self._path.append(self._pos.copy())
        dist = np.linalg.norm(GOALS - self._pos, axis=1)  # (4,)
        nearest = int(np.argmin(dist))
        reward = -(self.action_cost * float(a @ a) + float(dist[nearest]) ** 2)
        terminated = bool(dist[nearest] < self.goal_radius)
        if terminated:
            reward += self.goal_bonus
        info = {"goal": nearest if terminated else -1}
        return self._pos.astype(np.float32), reward, terminated, False, info

    def render(self) -> np.ndarray | None:
        """An ``(H, W, 3)`` uint8 image when ``render_mode == "rgb_array"``, else ``None``."""
        if self.render_mode != "rgb_array":
            return None
        img = self._landscape().copy()
        for g in GOALS:
            _disc(img, self._to_pixel(g), radius=6, color=(220, 40, 40))
        for p, q in zip(self._path[:-1], self._path[1:], strict=True):
            _segment(img, self._to_pixel(p), self._to_pixel(q), color=(30, 30, 200))
        _disc(img, self._to_pixel(self._pos), radius=4, color=(20, 160, 20))
        return img

    def _to_pixel(self, xy: np.ndarray) -> np.ndarray:
        """World (x, y) -> pixel (row, col); y points up."""
        scale = (self.render_size - 1) / (2 * self.bound)
        return np.array([(self.bound - xy[1]) * scale, (xy[0] + self.bound) * scale])

    def _landscape(self) -> np.ndarray:
        """Grey levels of min_g ‖s - g‖² over the box (dark = low cost), cached."""
        if self._background is None:
            n = self.render_size
            coords = np.linspace(-self.bound, self.bound, n)
            x, y = np.meshgrid(coords, coords[::-1])  # row 0 is y = +bound
            pts = np.stack([x, y], axis=-1)  # (H, W, 2)
            cost = ((pts[:, :, None, :] - GOALS) ** 2).sum(-1).min(-1)  # (H, W, 4, 2) -> (H, W)
            level = 90 + 160 * np.sqrt(cost / cost.max())  # (H, W)
            self._background = np.repeat(level[:, :, None], 3, axis=2).astype(np.uint8)  # (H, W, 3)
        return self._background


def rollouts(model: Predictor, n: int, *, deterministic: bool, seed: int) -> list[dict[str, Any]]:
    """``n`` episodes of ``model`` from the origin of ``ebrl/MultiGoal-v0``.

    Returns one dict per episode: ``"path"`` the positions ``(T+1, 2)``, ``"return"`` the sum of
    rewards, ``"goal"`` the index into ``GOALS`` of the goal reached (-1: none). Episode ``i`` resets
    with ``seed + i``, and ``model.set_random_seed(seed)`` makes a stochastic policy's draws reproducible.
    """
    env = gym.make("ebrl/MultiGoal-v0")  # registered by the envs package, which imports this module
    model.set_random_seed(seed)
    episodes = []
    for i in range(n):
        obs, _ = env.reset(seed=seed + i, options={"start": (0.0, 0.0)})
        path, ret, goal, done = [obs], 0.0, -1, False
        while not done:
            action, _ = model.predict(obs, deterministic=deterministic)
            obs, reward, terminated, truncated, info = env.step(action)
            path.append(obs)
            ret += float(reward)
            goal = int(info["goal"]) if terminated else goal
            done = terminated or truncated
        episodes.append({"path": np.array(path), "return": ret, "goal": goal})
    env.close()
    return episodes


def draw_episodes(ax: Any, episodes: Sequence[Mapping[str, Any]]) -> None:
    """Episodes from ``rollouts`` on a matplotlib ``ax``: the reward landscape (brighter = higher), paths, goals."""
    grid = np.linspace(-7, 7, 201)
    x, y = np.meshgrid(grid, grid)
    cost = ((np.stack([x, y], -1)[:, :, None, :] - GOALS) ** 2).sum(-1).min(-1)  # (201, 201, 4) -> (201, 201)
    ax.contourf(x, y, -cost, levels=20, cmap="viridis")
    for ep in episodes:
        ax.plot(ep["path"][:, 0], ep["path"][:, 1], color="white", lw=0.8)
    ax.scatter(GOALS[:, 0], GOALS[:, 1], c="red", s=40, zorder=3)
    ax.set_xlim(-7, 7)
    ax.set_ylim(-7, 7)
    ax.set_aspect("equal")


def _disc(img: np.ndarray, center: np.ndarray, *, radius: int, color: tuple[int, int, int]) -> None:
    rows, cols = np.ogrid[: img.shape[0], : img.shape[1]]
    mask = (rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= radius**2
    img[mask] = color


def _segment(img: np.ndarray, p: np.ndarray, q: np.ndarray, *, color: tuple[int, int, int]) -> None:
    n = int(np.ceil(np.abs(q - p).max())) + 1
    t = np.linspace(0.0, 1.0, n)[:, None]  # (n, 1)
    pts = np.rint(p + t * (q - p)).astype(int)  # (n, 2)
    pts = np.clip(pts, 0, np.array(img.shape[:2]) - 1)
    img[pts[:, 0], pts[:, 1]] = color
