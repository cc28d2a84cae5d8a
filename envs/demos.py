"""Recorded demonstrations of this package's tasks, as Minari datasets.

``record_particle_demonstrations`` records the particle task's scripted expert with Minari's own
``DataCollector`` into Minari's local store; ``ebrl.demos.load_demonstrations`` reads such a dataset (or an
``.npz``) back. Minari is not a runtime dependency: ``pip install "ebrl[minari]"``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from ebrl._checks import check_int, check_positive
from ebrl.demos import require_minari
from envs.particle import ParticleEnv


class _ExecutionNoise(gym.ActionWrapper):
    """Executes ``action + N(0, σ²)`` (clipped to the box) while the wrapper outside sees the clean action (DART)."""

    def __init__(self, env: gym.Env, sigma: float, rng: np.random.Generator) -> None:
        super().__init__(env)
        self.sigma, self.rng = float(sigma), rng

    def action(self, action: np.ndarray) -> np.ndarray:
        if self.sigma == 0:
            return action
        return action + self.rng.normal(0.0, self.sigma, np.shape(action))


def record_particle_demonstrations(
    dataset_id: str,
    n_episodes: int,
    *,
    seed: int,
    max_steps: int = 200,
    execution_noise: float = 0.0,
    dim: int = 2,
) -> Any:
    """Record the particle task's scripted expert with Minari's ``DataCollector``; return the ``MinariDataset``.

    The episodes are those of ``envs.particle.collect_demonstrations`` with the same arguments (the same resets, the
    same coin for the side of the obstacle, the same execution noise): the recorded actions are the expert's
    set-points, the environment executes them plus N(0, ``execution_noise``²). An episode ends at success or
    collision, or is truncated after ``max_steps``. The dataset goes to Minari's local store as ``dataset_id``
    (``namespace/name-v0``).
    """
    minari = require_minari()
    n_episodes = check_int("n_episodes", n_episodes, minimum=1)
    check_positive("execution_noise", execution_noise, allow_zero=True)
    rng = np.random.default_rng(seed)
    particle = ParticleEnv(dim=dim)
    env = minari.DataCollector(gym.wrappers.TimeLimit(_ExecutionNoise(particle, execution_noise, rng), max_steps))
    for episode in range(n_episodes):
        env.reset(seed=seed * 100_003 + episode)
        side = 1 if rng.random() < 0.5 else -1
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(particle.expert_action(side))
            done = terminated or truncated
    dataset = env.create_dataset(
        dataset_id=dataset_id,
        algorithm_name=f"scripted expert (execution noise {execution_noise})",
        description=f"ebrl/Particle-v0 (dim {dim}) scripted-expert demonstrations, {n_episodes} episodes, seed {seed}",
    )
    env.close()
    return dataset
