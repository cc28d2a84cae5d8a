"""EnergyPolicy: an ebrl StateActionEnergy as an SB3 policy (predict, evaluate_policy, save/load, warm start)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.evaluation import evaluate_policy

import envs  # noqa: F401  (registers the ebrl environments)
from agents import EnergyInference, EnergyPolicy, SoftQ
from ebrl._checks import seeded_init
from ebrl.energy import StateActionEnergy
from ebrl.rl import ActionSampler

SMALL = EnergyInference(
    mode_candidates=64, mode_starts=2, mode_steps=5, dfo_samples=64, sampler=ActionSampler(n_particles=8, n_levels=4)
)


def bandit_energy() -> StateActionEnergy:
    with seeded_init(torch.Generator().manual_seed(0)):
        return StateActionEnergy(1, 2, (16,))


@pytest.mark.parametrize("deterministic_method", ["mode", "dfo"])
def test_predict_returns_actions_in_the_space_and_the_lowest_energy_when_deterministic(deterministic_method):
    env = gym.make("ebrl/BimodalBandit-v0", dim=2)
    energy = bandit_energy()
    inference = EnergyInference(
        deterministic=deterministic_method, mode_candidates=256, mode_starts=4, mode_steps=20, dfo_samples=256
    )
    policy = EnergyPolicy.from_energy(energy, env.observation_space, env.action_space, inference=inference, seed=0)
    obs, _ = env.reset(seed=0)
    act, _ = policy.predict(obs, deterministic=True)
    assert act.shape == (2,) and env.action_space.contains(act.astype(np.float32))
    grid = torch.stack(torch.meshgrid(torch.linspace(-1, 1, 41), torch.linspace(-1, 1, 41), indexing="ij"), -1)
    with torch.no_grad():
        e_grid = energy(torch.as_tensor(obs)[None], grid.reshape(1, -1, 2))  # (1, 41*41)
        e_act = energy(torch.as_tensor(obs)[None], torch.as_tensor(act)[None])  # (1,)
    # The 41x41 grid has spacing 0.05; the optimiser's answer must be at least as good, up to a small slack.
    assert float(e_act) <= float(e_grid.min()) + 0.05


def test_evaluate_policy_and_save_load_give_identical_predictions(tmp_path):
    env = gym.make("ebrl/BimodalBandit-v0", dim=2)
    policy = EnergyPolicy.from_energy(bandit_energy(), env.observation_space, env.action_space, inference=SMALL, seed=3)
    mean, std = evaluate_policy(policy, env, n_eval_episodes=3, deterministic=True, warn=False)
    assert np.isfinite(mean) and std == pytest.approx(0.0, abs=1e-6)  # deterministic, constant observation
    obs = np.zeros((5, 1), np.float32)
    path = tmp_path / "policy.pt"
    policy.save(str(path))
    loaded = EnergyPolicy.load(str(path))
    before, after = policy.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    np.testing.assert_array_equal(before, after)
    fresh = EnergyPolicy.load(str(path))  # same seed, fresh stream: identical stochastic actions too
    np.testing.assert_array_equal(fresh.predict(obs)[0], loaded.predict(obs)[0])


def test_scaled_actions_are_mapped_back_to_the_space_bounds():
    env = gym.make("ebrl/Particle-v0", dim=2)  # actions in [0, 1]^2
    energy = StateActionEnergy(7, 2, (8,))
    policy = EnergyPolicy.from_energy(
        energy, env.observation_space, env.action_space, scaled_actions=True, inference=SMALL, seed=0
    )
    obs, _ = env.reset(seed=0)
    act, _ = policy.predict(np.stack([obs] * 16))
    assert act.shape == (16, 2) and act.min() >= 0.0 and act.max() <= 1.0


def test_warm_start_copies_the_energy_into_softq_critics():
    env = gym.make("ebrl/BimodalBandit-v0", dim=2)
    energy = bandit_energy()
    policy = EnergyPolicy.from_energy(energy, env.observation_space, env.action_space, inference=SMALL, seed=0)
    model = SoftQ("MlpPolicy", env, policy_kwargs={"net_arch": [16]}, learning_starts=0, batch_size=8, seed=0)
    policy.warm_start(model)
    obs, act = torch.zeros(4, 1), torch.rand(4, 2) * 2 - 1
    with torch.no_grad():
        expected = energy(obs, act)
        for critic in (model.critic, model.critic_target):
            e1, e2 = critic.energies(obs, act)
            torch.testing.assert_close(e1, expected)
            torch.testing.assert_close(e2, expected)
    model.learn(16)  # the warm-started agent trains
    mismatched = SoftQ("MlpPolicy", env, policy_kwargs={"net_arch": [32]}, seed=0)
    with pytest.raises(ValueError, match="net_arch"):
        policy.warm_start(mismatched)


def test_energy_of_the_wrong_size_raises_value_error_naming_it():
    env = gym.make("ebrl/BimodalBandit-v0", dim=2)
    with pytest.raises(ValueError, match="energy scores"):
        EnergyPolicy.from_energy(StateActionEnergy(3, 2, (8,)), env.observation_space, env.action_space)
    with pytest.raises(ValueError, match="deterministic"):
        EnergyInference(deterministic="argmax")  # type: ignore[arg-type]
