"""The ebrl environments: checkers, dynamics, rewards, termination and rendering."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs import GOALS, BimodalBanditEnv, MultiGoalEnv

ENV_IDS = ["ebrl/MultiGoal-v0", "ebrl/BimodalBandit-v0"]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_env_passes_gymnasium_and_sb3_checkers_without_warnings(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(gym.make(env_id, render_mode="rgb_array").unwrapped)
        sb3_check_env(gym.make(env_id))


def test_importing_envs_registers_both_ids():
    assert envs.__name__ == "envs"
    for env_id in ENV_IDS:
        assert env_id in gym.registry


# --------------------------------------------------------------------------------------------
# MultiGoal


def reset_at(env: gym.Env, xy: tuple[float, float]) -> np.ndarray:
    obs, _ = env.reset(seed=0, options={"start": xy})
    return obs


def test_multigoal_moves_by_the_action_and_clips_to_the_box():
    env = MultiGoalEnv()
    reset_at(env, (0.0, 0.0))
    obs, *_ = env.step(np.array([0.5, -0.25]))
    np.testing.assert_allclose(obs, [0.5, -0.25])
    reset_at(env, (6.5, -6.8))
    obs, *_ = env.step(np.array([1.0, -1.0]))
    np.testing.assert_allclose(obs, [7.0, -7.0])
    reset_at(env, (0.0, 0.0))
    obs, *_ = env.step(np.array([3.0, 0.0]))  # actions are clipped to [-1, 1]
    np.testing.assert_allclose(obs, [1.0, 0.0])


def test_multigoal_reward_is_effort_plus_squared_distance_to_nearest_goal():
    env = MultiGoalEnv()
    reset_at(env, (0.0, 0.0))
    _, reward, terminated, truncated, info = env.step(np.array([0.5, 0.0]))
    # s' = (0.5, 0); nearest goal (5, 0) at 4.5: -(30 · 0.25 + 4.5²)
    assert reward == pytest.approx(-(7.5 + 20.25))
    assert not terminated and not truncated and info["goal"] == -1


@pytest.mark.parametrize("goal", range(4))
def test_multigoal_terminates_with_bonus_within_distance_one_of_each_goal(goal):
    env = MultiGoalEnv()
    g = GOALS[goal]
    start = g * 0.7  # 1.5 from the goal, on the line to the origin
    reset_at(env, tuple(start))
    step = g / np.linalg.norm(g) * 0.6  # lands 0.9 from the goal
    _, reward, terminated, _, info = env.step(step)
    assert terminated and info["goal"] == goal
    assert reward == pytest.approx(-(30 * 0.36 + 0.81) + 10.0)


def test_multigoal_start_state_is_gaussian_with_sd_0_1():
    env = MultiGoalEnv()
    starts = np.array([env.reset(seed=s)[0] for s in range(2000)])  # (2000, 2)
    # Sample mean sd = 0.1/sqrt(2000) = 0.0022, sample-sd sd ≈ 0.1/sqrt(4000) = 0.0016; 5 of each.
    assert np.all(np.abs(starts.mean(0)) < 5 * 0.0022)
    assert np.all(np.abs(starts.std(0) - 0.1) < 5 * 0.0016)


def test_multigoal_reset_with_seed_is_reproducible():
    env = MultiGoalEnv()
    np.testing.assert_array_equal(env.reset(seed=3)[0], env.reset(seed=3)[0])
    assert not np.array_equal(env.reset(seed=3)[0], env.reset(seed=4)[0])


def test_registered_multigoal_truncates_after_30_steps():
    env = gym.make("ebrl/MultiGoal-v0")
    env.reset(seed=0)
    for t in range(1, 31):
        _, _, terminated, truncated, _ = env.step(np.zeros(2, dtype=np.float32))
        assert not terminated
        assert truncated == (t == 30)


def test_multigoal_renders_an_rgb_image_that_shows_the_path():
    env = MultiGoalEnv(render_mode="rgb_array")
    reset_at(env, (0.0, 0.0))
    before = env.render()
    assert before.shape == (256, 256, 3) and before.dtype == np.uint8
    for _ in range(3):
        env.step(np.array([0.0, 1.0]))
    after = env.render()
    assert (before != after).any(axis=2).sum() > 20  # a segment of ~3 · 18 pixels and the marker moved
    assert MultiGoalEnv().render() is None


def test_multigoal_rejects_bad_start_action_and_render_mode():
    env = MultiGoalEnv()
    with pytest.raises(ValueError, match="start"):
        env.reset(options={"start": (1.0, np.nan)})
    with pytest.raises(ValueError, match="start"):
        env.reset(options={"start": (1.0, 2.0, 3.0)})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(np.array([np.inf, 0.0]))
    with pytest.raises(ValueError, match="render_mode"):
        MultiGoalEnv(render_mode="human")


# --------------------------------------------------------------------------------------------
# Bimodal bandit


def test_bandit_has_two_equally_good_actions():
    env = BimodalBanditEnv()
    assert env.reward(np.array([0.5])) == 0.0 == env.reward(np.array([-0.5]))
    # Anything else is worse: r(a) = -min_k (a - μ_k)² / (2 · 0.2²)
    assert env.reward(np.array([0.0])) == pytest.approx(-0.25 / 0.08)
    assert env.reward(np.array([0.9])) == pytest.approx(-0.16 / 0.08)
    grid = np.linspace(-1, 1, 201)[:, None]
    assert np.sort(env.reward(grid))[-3] < 0.0  # only the two modes reach the maximum


def test_bandit_is_one_step_and_reports_the_mode():
    env = gym.make("ebrl/BimodalBandit-v0")
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [0.0])
    _, reward, terminated, truncated, info = env.step(np.array([-0.4], dtype=np.float32))
    assert terminated and not truncated and info["mode"] == 1
    assert reward == pytest.approx(-0.01 / 0.08)


def test_bandit_in_two_dimensions_uses_the_distance_to_the_modes():
    env = BimodalBanditEnv(dim=2)
    assert env.action_space.shape == (2,)
    assert env.reward(np.array([0.5, 0.2])) == pytest.approx(-0.04 / 0.08)


def test_bandit_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dim"):
        BimodalBanditEnv(dim=0)
    with pytest.raises(ValueError, match="center"):
        BimodalBanditEnv(center=1.0)
    with pytest.raises(ValueError, match="width"):
        BimodalBanditEnv(width=0.0)
    env = BimodalBanditEnv()
    env.reset()
    with pytest.raises(ValueError, match="action"):
        env.step(np.array([np.nan]))
