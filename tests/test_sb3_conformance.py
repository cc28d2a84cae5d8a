"""SoftQ and SoftDQN under SB3's own usage patterns: policy aliases, Dict and image observations, HER, load with
kwargs, batch norm in the targets, SAC-style ``net_arch`` and multi-axis Box actions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.envs import BitFlippingEnv, FakeImageEnv
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

import envs  # noqa: F401  (registers the ebrl environments)
from agents import SoftDQN, SoftQ
from ebrl.rl import ActionSampler

torch.set_num_threads(1)

CHEAP_Q = dict(
    learning_starts=20, batch_size=16, buffer_size=500,
    value_sampler=ActionSampler(n_particles=4, n_levels=1, n_moves=0),
    sampler=ActionSampler(n_particles=4, n_levels=2, n_moves=1),
)
CHEAP_DQN = dict(learning_starts=20, batch_size=16, buffer_size=500, train_freq=1)


def cheap(algo):
    return CHEAP_Q if algo is SoftQ else CHEAP_DQN


@pytest.mark.parametrize("algo", [SoftQ, SoftDQN])
def test_her_with_dict_observations_trains_saves_and_reloads(algo, tmp_path):
    env = BitFlippingEnv(n_bits=4, continuous=algo is SoftQ, max_steps=4)
    model = algo("MultiInputPolicy", env, replay_buffer_class=HerReplayBuffer,
                 replay_buffer_kwargs=dict(n_sampled_goal=2, goal_selection_strategy="future"),
                 policy_kwargs=dict(net_arch=[16]), seed=0, **cheap(algo))
    model.learn(80)
    obs, _ = env.reset(seed=1)
    act, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "her.zip")
    again = algo.load(tmp_path / "her.zip", env=env, policy_kwargs=dict(net_arch=[16]))  # as SAC and DQN accept
    np.testing.assert_allclose(again.predict(obs, deterministic=True)[0], act, rtol=1e-6)


@pytest.mark.parametrize("algo", [SoftQ, SoftDQN])
@pytest.mark.parametrize("channel_first", [True, False])
def test_cnn_policy_trains_on_image_observations(algo, channel_first):
    env = FakeImageEnv(screen_height=36, screen_width=36, n_channels=1, discrete=algo is SoftDQN,
                       channel_first=channel_first)
    model = algo("CnnPolicy", env, policy_kwargs=dict(net_arch=[16]), seed=0, **cheap(algo))
    model.learn(40)
    act, _ = model.predict(env.observation_space.sample(), deterministic=False)
    assert env.action_space.contains(act.astype(env.action_space.dtype) if algo is SoftQ else int(act))


class BatchNormExtractor(BaseFeaturesExtractor):
    """Flatten, then batch norm: running statistics that a target network must receive."""

    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__(observation_space, features_dim=int(np.prod(observation_space.shape)))
        self.norm = nn.BatchNorm1d(self.features_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.norm(obs.flatten(1))


@pytest.mark.parametrize("algo", [SoftQ, SoftDQN])
def test_batch_norm_statistics_reach_the_target_networks(algo):
    env_id = "Pendulum-v1" if algo is SoftQ else "CartPole-v1"
    extra = dict(target_update_interval=10) if algo is SoftDQN else {}
    model = algo("MlpPolicy", env_id, policy_kwargs=dict(net_arch=[16], features_extractor_class=BatchNormExtractor),
                 seed=0, **cheap(algo), **extra)
    online, target = (model.critic, model.critic_target) if algo is SoftQ else (model.energy_net,
                                                                                 model.energy_net_target)
    before = target.features_extractor.norm.running_mean.clone()
    model.learn(100)
    after = target.features_extractor.norm.running_mean
    assert not torch.equal(before, after)  # the target's statistics moved ...
    assert model.batch_norm_stats_target  # ... through the copy of the online network's
    online_mean = online.features_extractor.norm.running_mean
    assert torch.allclose(after, online_mean) or algo is SoftDQN  # SoftDQN copies every target_update_interval


def test_softq_accepts_sac_style_net_arch_and_softdqn_names_what_to_pass():
    model = SoftQ("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(net_arch=dict(qf=[32, 32], pi=[8])), seed=0)
    assert model.critic.e1.hidden == (32, 32)
    assert model.policy.proposal is not None and model.policy.proposal.mean.in_features == 8
    with pytest.raises(ValueError, match="qf"):
        SoftQ("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(net_arch=dict(vf=[8])))
    with pytest.raises(TypeError, match="net_arch"):
        SoftDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=dict(qf=[8])))


class _MatrixActions(gym.Env):
    observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    action_space = spaces.Box(-1.0, 1.0, shape=(2, 2), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 0.0, True, False, {}


def test_multi_axis_box_actions_are_refused_at_construction_naming_the_space():
    with pytest.raises(ValueError, match="1-D Box"):
        SoftQ("MlpPolicy", _MatrixActions())
