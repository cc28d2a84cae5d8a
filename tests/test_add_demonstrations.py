"""``agents.add_demonstrations``: demonstrated episodes go into an SB3 replay buffer exactly as SB3 stores its own
transitions online (scaled Box actions, time-outs apart from terminal states), for Box, Discrete and Dict spaces and
several environments, and bad demonstrations are refused naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import DQN, SAC, HerReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import BitFlippingEnv, SimpleMultiObsEnv

from agents import SoftDQN, SoftQ, add_demonstrations

torch.set_num_threads(1)


def episodes_from_buffer(model, steps: int) -> list[dict[str, np.ndarray]]:
    """The first ``steps`` transitions of a one-environment buffer that SB3 filled online, cut into episodes in the
    environment's units (Box actions unscaled back)."""
    buf = model.replay_buffer
    ends = [t for t in range(steps) if buf.dones[t, 0]] + [steps - 1]
    episodes, start = [], 0
    for end in dict.fromkeys(ends):
        span = slice(start, end + 1)
        actions = buf.actions[span, 0]
        if isinstance(model.action_space, spaces.Box):
            actions = model.policy.unscale_action(actions)
        done, timeout = buf.dones[span, 0].astype(bool), buf.timeouts[span, 0].astype(bool)
        observations = np.concatenate([buf.observations[span, 0], buf.next_observations[end:end + 1, 0]])
        episodes.append({"observations": observations, "actions": actions, "rewards": buf.rewards[span, 0],
                         "terminations": done & ~timeout, "truncations": timeout})
        start = end + 1
    return episodes


@pytest.mark.parametrize("algo, env_id", [(SAC, "Pendulum-v1"), (SoftQ, "Pendulum-v1"),
                                          (DQN, "CartPole-v1"), (SoftDQN, "CartPole-v1")])
def test_demonstrations_are_stored_as_sb3_stored_the_same_transitions_online(algo, env_id):
    """SB3 fills one model's buffer with random actions (no training); the same transitions, as episodes in the
    environment's units, fill another's identically: truncations at the time limit and terminations included."""
    steps = 450
    online = algo("MlpPolicy", env_id, learning_starts=10_000, buffer_size=1_000, seed=0)
    online.learn(steps)
    episodes = episodes_from_buffer(online, steps)
    offline = algo("MlpPolicy", env_id, buffer_size=1_000, seed=1)
    assert add_demonstrations(offline, episodes) == steps
    a, b = online.replay_buffer, offline.replay_buffer
    assert b.pos == steps
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        np.testing.assert_allclose(getattr(b, name)[:steps], getattr(a, name)[:steps], rtol=1e-6, atol=1e-6,
                                   err_msg=name)
    assert a.dones[:steps].any()  # the test covers episode ends (time-outs on Pendulum, failures on CartPole)


def test_box_actions_are_scaled_from_the_space_bounds_and_a_time_out_is_not_terminal():
    model = SAC("MlpPolicy", "Pendulum-v1", buffer_size=100, seed=0)  # actions in [-2, 2]
    obs = np.arange(12, dtype=np.float32).reshape(4, 3)
    episode = {"observations": obs, "actions": np.array([[-2.0], [0.0], [1.0]]), "rewards": np.array([1.0, 2.0, 3.0]),
               "terminations": np.zeros(3, bool), "truncations": np.array([False, False, True])}
    add_demonstrations(model, [episode])
    buf = model.replay_buffer
    np.testing.assert_allclose(buf.actions[:3, 0, 0], [-1.0, 0.0, 0.5])
    np.testing.assert_array_equal(buf.next_observations[:3, 0], obs[1:])
    assert buf.dones[:3, 0].tolist() == [0, 0, 1] and buf.timeouts[:3, 0].tolist() == [0, 0, 1]
    assert not buf.sample(32).dones.any()  # SB3 bootstraps through a time-out


def test_several_environments_take_the_transitions_in_groups_and_the_last_is_filled_from_the_start():
    model = DQN("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=0), buffer_size=50, seed=0)
    obs = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    episode = {"observations": obs, "actions": np.array([0, 1, 1, 0, 1]), "rewards": np.ones(5),
               "terminations": np.array([0, 0, 0, 0, 1]), "truncations": np.zeros(5)}
    assert add_demonstrations(model, [episode]) == 5
    buf = model.replay_buffer
    assert buf.pos == 3  # 5 transitions in groups of 2: the third group is transition 4, then transition 0 again
    np.testing.assert_array_equal(buf.observations[:3].reshape(6, 4), obs[[0, 1, 2, 3, 4, 0]])
    np.testing.assert_array_equal(buf.actions[:3].reshape(6), [0, 1, 1, 0, 1, 0])
    np.testing.assert_array_equal(buf.dones[:3].reshape(6), [0, 0, 0, 0, 1, 0])


def test_dict_observations_go_into_a_dict_replay_buffer():
    env = SimpleMultiObsEnv(random_start=False)
    model = DQN("MultiInputPolicy", env, buffer_size=20, learning_starts=0, seed=0)
    first, _ = env.reset(seed=0)
    second, reward, terminated, truncated, _ = env.step(1)
    episode = {"observations": {k: np.stack([first[k], second[k]]) for k in first}, "actions": np.array([1]),
               "rewards": np.array([reward]), "terminations": np.array([terminated]),
               "truncations": np.array([truncated])}
    assert add_demonstrations(model, [episode]) == 1
    buf = model.replay_buffer
    # the image channel-last as the environment emits it, stored channel-first as SB3's VecTransposeImage does
    assert first["img"].shape == (64, 64, 1) and buf.observations["img"].shape[2:] == (1, 64, 64)
    np.testing.assert_array_equal(buf.observations["img"][0, 0], np.moveaxis(first["img"], -1, 0))
    np.testing.assert_array_equal(buf.next_observations["img"][0, 0], np.moveaxis(second["img"], -1, 0))
    np.testing.assert_array_equal(buf.observations["vec"][0, 0], first["vec"])
    np.testing.assert_array_equal(buf.next_observations["vec"][0, 0], second["vec"])
    with pytest.raises(ValueError, match="keys"):
        add_demonstrations(model, [dict(episode, observations=episode["observations"]["vec"])])


def good_pendulum_episode(steps: int = 3) -> dict[str, np.ndarray]:
    return {"observations": np.zeros((steps + 1, 3), np.float32), "actions": np.zeros((steps, 1), np.float32),
            "rewards": np.zeros(steps), "terminations": np.zeros(steps, bool), "truncations": np.zeros(steps, bool)}


@pytest.mark.parametrize("change, match", [
    ({"actions": np.array([[0.0], [2.5], [-2.0]])}, "1 action\\(s\\) outside the action space"),
    ({"actions": np.zeros((3, 2))}, "actions must have shape \\(3, 1\\)"),
    ({"observations": np.zeros((3, 3))}, "observations of shape \\(4, 3\\)"),
    ({"rewards": np.zeros(2)}, "rewards must have shape \\(3,\\)"),
    ({"truncations": None}, "no 'truncations'"),
])
def test_bad_demonstrations_are_refused_naming_what_is_wrong(change, match):
    model = SAC("MlpPolicy", "Pendulum-v1", buffer_size=10, seed=0)
    with pytest.raises(ValueError, match=match):
        add_demonstrations(model, [{**good_pendulum_episode(), **change}])
    assert model.replay_buffer.pos == 0  # nothing was stored


def test_demonstrations_that_do_not_fit_and_unsupported_buffers_are_refused():
    model = SAC("MlpPolicy", "Pendulum-v1", buffer_size=5, seed=0)
    with pytest.raises(ValueError, match="6 transitions do not fit in the replay buffer"):
        add_demonstrations(model, [good_pendulum_episode(), good_pendulum_episode()])
    her = DQN("MultiInputPolicy", BitFlippingEnv(n_bits=4), replay_buffer_class=HerReplayBuffer, buffer_size=100)
    with pytest.raises(TypeError, match="model: add_demonstrations needs an SB3 ReplayBuffer"):
        add_demonstrations(her, [])
    with pytest.raises(ValueError, match="Discrete actions must be integers"):
        add_demonstrations(DQN("MlpPolicy", "CartPole-v1", buffer_size=10),
                           [{**good_pendulum_episode(), "observations": np.zeros((4, 4)), "actions": np.zeros(3)}])
    assert add_demonstrations(model, []) == 0
