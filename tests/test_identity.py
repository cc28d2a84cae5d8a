"""SB3's own identity tests, at the step budgets SB3 gives DQN and SAC, passed by SoftDQN and SoftQ with their
defaults (SB3's tests/test_identity.py: a mean return above 90 of 100 over 20 deterministic episodes), and
SB3's bit flipping with HER (tests/test_her.py: a training success rate above 0.9). experiments.identity runs
them on more seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import BitFlippingEnv, IdentityEnv, IdentityEnvBox
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from agents import SoftDQN, SoftQ

torch.set_num_threads(1)


@pytest.mark.slow
def test_softdqn_solves_identity_env_at_dqns_budget():
    env = DummyVecEnv([lambda: IdentityEnv(4)])
    model = SoftDQN("MlpPolicy", env, gamma=0.4, seed=1, learning_starts=0).learn(4000)  # SB3's DQN arguments
    evaluate_policy(model, env, n_eval_episodes=20, reward_threshold=90)  # asserts mean > 90, as SB3's test
    obs = env.reset()
    assert model.predict(obs)[0].shape == obs.shape


@pytest.mark.slow
def test_softq_solves_identity_env_box_at_sacs_budget():
    env = IdentityEnvBox(eps=0.5)
    model = SoftQ("MlpPolicy", env, policy_kwargs=dict(net_arch=[64, 64]), seed=0, gamma=0.95).learn(700)
    evaluate_policy(model, env, n_eval_episodes=20, reward_threshold=90)


@pytest.mark.slow
def test_softdqn_solves_bit_flipping_with_her_at_dqns_budget():
    env = make_vec_env(lambda: BitFlippingEnv(n_bits=10, continuous=False), n_envs=2)
    model = SoftDQN(  # SB3's DQN arguments in tests/test_her.py, without DQN's exploration_final_eps
        "MultiInputPolicy", env, replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs=dict(n_sampled_goal=5, goal_selection_strategy="future"), learning_rate=5e-4,
        train_freq=1, gradient_steps=2, learning_starts=100, target_update_interval=500, seed=0, batch_size=32,
        buffer_size=100_000,
    ).learn(5000)
    assert np.mean(model.ep_success_buffer) > 0.9  # SB3's test: the training success rate at the end
