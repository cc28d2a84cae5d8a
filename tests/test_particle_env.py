"""The IBC-style particle task: checkers, the scripted expert, bimodal demonstrations and failure modes."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401  (registers the ebrl environments)
from envs.particle import ParticleEnv, collect_demonstrations


@pytest.mark.parametrize("dim", [2, 8])
def test_particle_env_passes_gymnasium_and_sb3_checkers(dim):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Actions are positions in [0, 1]^dim, as in IBC; SB3 only *recommends* a [-1, 1] box.
        warnings.filterwarnings("ignore", message="We recommend you to use a symmetric and normalized Box")
        gym_check_env(gym.make("ebrl/Particle-v0", dim=dim).unwrapped)
        sb3_check_env(gym.make("ebrl/Particle-v0", dim=dim))


@pytest.mark.parametrize("dim", [2, 16])
def test_scripted_expert_always_succeeds(dim):
    _, _, success = collect_demonstrations(ParticleEnv(dim=dim), 30, seed=0)
    assert success == 1.0


def test_demonstrations_are_bimodal_at_the_fork_and_their_average_hits_the_obstacle():
    env = ParticleEnv(dim=2)
    obs, act, _ = collect_demonstrations(env, 200, seed=1)
    phase = obs[:, -1]
    fork = np.flatnonzero((phase == 1) & (np.r_[0, phase[:-1]] == 0))  # first phase-1 step of each episode
    sides = []
    for i in fork:
        env._g1, env._g2 = obs[i, 2:4].astype(np.float64), obs[i, 4:6].astype(np.float64)
        m, _, u = env.obstacle()
        sides.append(np.sign(np.dot(act[i] - m, u)))
    # 200 fair coins: sd of the share is sqrt(0.25/200) = 0.035; 0.15 is > 4 sd.
    assert abs(np.mean(np.array(sides) > 0) - 0.5) < 0.15
    # The average of the two expert set-points at a fork, MSE regression's answer, lies inside the obstacle.
    env.reset(seed=3)
    m, radius, _ = env.obstacle()
    assert np.linalg.norm(env.waypoints().mean(axis=0) - m) < 0.6 * radius and radius > env.max_step


def test_walking_straight_from_goal_1_to_goal_2_collides():
    env = ParticleEnv(dim=2)
    env.reset(seed=4)
    while env._phase == 0:
        env.step(env._g1)
    info = {"collision": False}
    for _ in range(50):
        _, reward, terminated, _, info = env.step(env._g2)
        if terminated:
            break
    assert info["collision"] and reward == 0.0


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="dim"):
        ParticleEnv(dim=1)
    with pytest.raises(ValueError, match="max_step"):
        ParticleEnv(max_step=0.0)
    env = ParticleEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="side"):
        env.expert_action(0)
