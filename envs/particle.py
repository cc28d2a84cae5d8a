"""Particle tasks of implicit behavioural cloning.

- ``ParticleEnv`` (``ebrl/Particle-v0``): this package's task, a particle that jumps towards its set-point and must go
  round an obstacle between two goals, with a fork that makes the demonstrations bimodal.
- ``PDParticleEnv`` (``ebrl/ParticlePD-v0``): the IBC authors' task (Florence et al. 2021): a PD-controlled point
  mass that visits goal 1, then goal 2, with no obstacle; it observes its position, its velocity and both goals.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ebrl._checks import check_int, check_positive


class ParticleEnv(gym.Env[np.ndarray, np.ndarray]):
    """A particle in [0, 1]^dim must visit goal 1, then goal 2, going around an obstacle (``ebrl/Particle-v0``).

    In the style of the particle task of Florence et al. (2021).

    - Observation (float32, in [0, 1]^(3·dim + 1)): ``[position, goal 1, goal 2, phase]``, with
      phase 0 before goal 1 is visited and 1 after.
    - Action: a set-point in [0, 1]^dim. The particle moves towards it by at most ``max_step``
      (Euclidean) per step.
    - A goal is visited when the particle is within ``goal_radius`` of it. Visiting goal 2 in
      phase 1 ends the episode with reward 1 (``info["is_success"] = True``); every other step
      gives 0.
    - The obstacle: in phase 1 a ball of radius ``0.2·‖g2 - g1‖`` sits at the midpoint m of the two
      goals. Entering it ends the episode (reward 0, ``info["collision"] = True``). The goals are
      drawn so that both detour waypoints m ± 0.4‖g2 - g1‖·u + 0.1(g2 - g1) lie inside the box, where u is the unit
      vector orthogonal to g2 - g1 along the axis on which g2 - g1 is smallest (a function of the
      observation).
    - ``expert_action(side)``: the scripted expert. Phase 0: the set-point is goal 1. Phase 1: goal
      2 once the particle has passed the obstacle's midplane, before that the waypoint on the
      particle's side of the line g1-g2; on that line (at the fork, just after goal 1) it takes
      ``side`` (+1 or -1). Demonstrators who draw their side by a coin flip give bimodal
      demonstrations at the fork: an average of the two (MSE regression) steers into the obstacle.

    Args:
        dim: the dimension N >= 2 of the arena.
        max_step: the largest move per step, > 0.
        goal_radius: the visiting radius, > 0.
        min_separation: the smallest distance between the two goals, > 0.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's own attribute)

    def __init__(
        self, dim: int = 2, max_step: float = 0.1, goal_radius: float = 0.05, min_separation: float = 0.4
    ) -> None:
        dim = check_int("dim", dim, minimum=2)
        for name, value in (("max_step", max_step), ("goal_radius", goal_radius), ("min_separation", min_separation)):
            check_positive(name, value)
        self.dim = dim
        self.max_step, self.goal_radius = float(max_step), float(goal_radius)
        self.min_separation = float(min_separation)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(3 * dim + 1,), dtype=np.float32)
        self.action_space = spaces.Box(0.0, 1.0, shape=(dim,), dtype=np.float32)
        self._pos = np.zeros(dim)
        self._g1 = np.zeros(dim)
        self._g2 = np.ones(dim)
        self._phase = 0

    # geometry -------------------------------------------------------------------------------

    def obstacle(self) -> tuple[np.ndarray, float, np.ndarray]:
        """``(centre m, radius, unit detour direction u)`` of the current episode."""
        d = self._g2 - self._g1
        length = float(np.linalg.norm(d))
        d_hat = d / length
        axis = int(np.argmin(np.abs(d_hat)))
        u = -d_hat[axis] * d_hat
        u[axis] += 1.0  # e_axis minus its projection on d_hat
        return (self._g1 + self._g2) / 2, 0.2 * length, u / np.linalg.norm(u)

    def waypoints(self) -> np.ndarray:
        """The two detour waypoints, ``(2, dim)``: row 0 on the +u side, row 1 on the -u side.

        Each lies a quarter of the way from the midplane to goal 2 (``0.1·(g2 - g1)`` past it), so
        the expert's switch to goal 2 happens on the way to the waypoint, not at a point where a
        slightly-off set-point would leave the particle standing still.
        """
        m, radius, u = self.obstacle()
        ahead = 0.1 * (self._g2 - self._g1)
        return np.stack([m + 2 * radius * u + ahead, m - 2 * radius * u + ahead])

    def _draw_goals(self) -> None:
        while True:
            self._g1 = self.np_random.uniform(0.05, 0.95, self.dim)
            self._g2 = self.np_random.uniform(0.05, 0.95, self.dim)
            if np.linalg.norm(self._g2 - self._g1) < self.min_separation:
                continue
            if np.all((self.waypoints() >= 0.02) & (self.waypoints() <= 0.98)):
                return

    # gymnasium API --------------------------------------------------------------------------

    def _obs(self) -> np.ndarray:
        return np.concatenate([self._pos, self._g1, self._g2, [float(self._phase)]]).astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._draw_goals()
        self._pos = self.np_random.uniform(0.0, 1.0, self.dim)
        self._phase = 0
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(self.dim)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a.tolist()}")
        a = np.clip(a, 0.0, 1.0)
        move = a - self._pos
        dist = float(np.linalg.norm(move))
        if dist > self.max_step:
            move *= self.max_step / dist
        self._pos = np.clip(self._pos + move, 0.0, 1.0)
        info: dict[str, Any] = {"is_success": False, "collision": False}
        if self._phase == 0 and np.linalg.norm(self._pos - self._g1) < self.goal_radius:
            self._phase = 1
            return self._obs(), 0.0, False, False, info
        if self._phase == 1:
            m, radius, _ = self.obstacle()
            if np.linalg.norm(self._pos - m) < radius:
                info["collision"] = True
                return self._obs(), 0.0, True, False, info
            if np.linalg.norm(self._pos - self._g2) < self.goal_radius:
                info["is_success"] = True
                return self._obs(), 1.0, True, False, info
        return self._obs(), 0.0, False, False, info

    def expert_action(self, side: int) -> np.ndarray:
        """The scripted expert's set-point, ``(dim,)`` float32; ``side`` (+1 or -1) breaks the tie at the fork."""
        if side not in (1, -1):
            raise ValueError(f"side must be +1 or -1, got {side!r}")
        if self._phase == 0:
            return self._g1.astype(np.float32)
        m, _, u = self.obstacle()
        d_hat = (self._g2 - self._g1) / np.linalg.norm(self._g2 - self._g1)
        if float(np.dot(self._pos - m, d_hat)) >= -1e-4:  # past the obstacle's midplane (float32 slack)
            return self._g2.astype(np.float32)
        offset = float(np.dot(self._pos - m, u))
        here = side if abs(offset) < 1e-4 else (1 if offset > 0 else -1)
        return self.waypoints()[0 if here == 1 else 1].astype(np.float32)


class PDParticleEnv(gym.Env[np.ndarray, np.ndarray]):
    """The IBC authors' particle task: a PD-controlled point mass visits goal 1, then goal 2 (``ebrl/ParticlePD-v0``).

    As described by Florence et al. (2021) and their released environment's defaults:

    - Observation (float32, ``4·dim``): ``[position, velocity, goal 1, goal 2]``. Both goals and the start are
      uniform in [0, 1]^dim; the velocity starts at 0. Nothing says whether goal 1 was visited: a policy infers it.
    - Action: a position set-point in [0, 1]^dim. Each step holds it for ``repeat_actions`` sub-steps of ``dt``
      seconds under the PD force u = k_p (a - x) - k_v v, integrated by explicit Euler (x += v dt, then v += u dt).
    - Every episode lasts ``n_steps`` steps (then ``terminated``). It succeeds when the particle came within
      ``goal_distance`` of goal 1, then of goal 2, and is within ``goal_distance`` of goal 2 at the end: the last
      step then pays reward 1 (``info["is_success"] = True``); every other reward is 0. ``info`` also says
      whether goal 1 and goal 2 (after goal 1) have been visited so far (``visited_goal_1``, ``visited_goal_2``).
    - ``expert_action()``: the authors' oracle. The set-point is goal 1 until the particle is within
      ``expert_threshold`` of it, then goal 2.

    Args:
        dim: the dimension N >= 1 of the arena.
        n_steps: steps per episode, >= 1.
        dt: the sub-step, > 0 (seconds).
        repeat_actions: sub-steps per step, >= 1.
        k_p: the proportional gain, > 0.
        k_v: the derivative (velocity) gain, >= 0.
        goal_distance: the visiting radius of both goals, > 0.
        expert_threshold: how close to goal 1 the oracle gets before it turns to goal 2, > 0.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's own attribute)

    def __init__(
        self, dim: int = 2, n_steps: int = 50, dt: float = 0.005, repeat_actions: int = 10, k_p: float = 10.0,
        k_v: float = 5.0, goal_distance: float = 0.05, expert_threshold: float = 0.01,
    ) -> None:
        self.dim = check_int("dim", dim, minimum=1)
        self.n_steps = check_int("n_steps", n_steps, minimum=1)
        self.repeat_actions = check_int("repeat_actions", repeat_actions, minimum=1)
        for name, value in (("dt", dt), ("k_p", k_p), ("goal_distance", goal_distance),
                            ("expert_threshold", expert_threshold)):
            check_positive(name, value)
        check_positive("k_v", k_v, allow_zero=True)
        self.dt, self.k_p, self.k_v = float(dt), float(k_p), float(k_v)
        self.goal_distance, self.expert_threshold = float(goal_distance), float(expert_threshold)
        bound = np.concatenate([np.full(dim, 2.0), np.full(dim, 100.0), np.ones(2 * dim)]).astype(np.float32)
        self.observation_space = spaces.Box(-bound, bound, dtype=np.float32)
        self.action_space = spaces.Box(0.0, 1.0, shape=(dim,), dtype=np.float32)
        self._pos, self._vel = np.zeros(dim), np.zeros(dim)
        self._g1, self._g2 = np.zeros(dim), np.ones(dim)
        self._steps, self._hit1, self._hit2, self._expert_turned = 0, False, False, False

    def _obs(self) -> np.ndarray:
        return np.concatenate([self._pos, self._vel, self._g1, self._g2]).astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(0.0, 1.0, self.dim)
        self._vel = np.zeros(self.dim)
        self._g1 = self.np_random.uniform(0.0, 1.0, self.dim)
        self._g2 = self.np_random.uniform(0.0, 1.0, self.dim)
        self._steps, self._hit1, self._hit2, self._expert_turned = 0, False, False, False
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(self.dim)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a.tolist()}")
        a = np.clip(a, 0.0, 1.0)
        for _ in range(self.repeat_actions):
            force = self.k_p * (a - self._pos) - self.k_v * self._vel  # (dim,)
            self._pos = self._pos + self._vel * self.dt
            self._vel = self._vel + force * self.dt
            # A goal counts once the particle has been within reach at any sub-step, goal 2 only after goal 1.
            self._hit1 = self._hit1 or bool(np.linalg.norm(self._pos - self._g1) < self.goal_distance)
            self._hit2 = self._hit2 or (self._hit1 and bool(np.linalg.norm(self._pos - self._g2) < self.goal_distance))
        self._steps += 1
        done = self._steps >= self.n_steps
        success = done and self._hit2 and bool(np.linalg.norm(self._pos - self._g2) < self.goal_distance)
        info = {"is_success": success, "visited_goal_1": self._hit1, "visited_goal_2": self._hit2}
        return self._obs(), float(success), done, False, info

    def expert_action(self) -> np.ndarray:
        """The oracle's set-point, ``(dim,)`` float32: goal 1 until within ``expert_threshold`` of it, then goal 2."""
        if not self._expert_turned and np.linalg.norm(self._pos - self._g1) < self.expert_threshold:
            self._expert_turned = True
        return (self._g2 if self._expert_turned else self._g1).astype(np.float32)


def collect_demonstrations(
    env: ParticleEnv | PDParticleEnv, n_episodes: int, *, seed: int, max_steps: int = 200,
    execution_noise: float = 0.0, history: int = 1,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Roll out the scripted expert: ``(observations (T, history·O), actions (T, A), success rate)``.

    On ``ParticleEnv`` each episode's expert draws its side of the obstacle by a fair coin (from ``seed``), so half
    the demonstrations pass on each side; on ``PDParticleEnv`` the expert is the authors' oracle.
    With ``execution_noise`` σ > 0 the environment executes the
    expert's set-point plus N(0, σ²) noise while the recorded action stays the expert's (as in DART,
    Laskey et al. 2017): the demonstrations then also show how to recover from small deviations.

    With ``history`` k > 1 each observation is the last k observations, oldest first, the reset observation
    repeated before the episode's start: what the environment wrapped in
    ``FlattenObservation(FrameStackObservation(env, k))`` returns (the IBC authors' ``sequence_length``).
    """
    if not isinstance(env, ParticleEnv | PDParticleEnv):
        raise TypeError(f"env must be a ParticleEnv or PDParticleEnv (use env.unwrapped), got {type(env).__name__}")
    n_episodes = check_int("n_episodes", n_episodes, minimum=1)
    history = check_int("history", history, minimum=1)
    check_positive("execution_noise", execution_noise, allow_zero=True)
    rng = np.random.default_rng(seed)
    observations, actions, successes = [], [], 0
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed * 100_003 + episode)
        frames = [obs] * history
        side = 1 if rng.random() < 0.5 else -1
        for _ in range(max_steps):
            act = env.expert_action(side) if isinstance(env, ParticleEnv) else env.expert_action()
            observations.append(np.concatenate(frames))
            actions.append(act)
            executed = act + rng.normal(0.0, execution_noise, act.shape) if execution_noise > 0 else act
            obs, _, terminated, _, info = env.step(executed)
            frames = [*frames[1:], obs]
            if terminated:
                successes += int(info["is_success"])
                break
    return np.stack(observations), np.stack(actions), successes / n_episodes
