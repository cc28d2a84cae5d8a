"""The temperature α of SoftQ and SoftDQN: one source of truth, load overrides, and learning it (``alpha="auto"``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import configure

import envs  # noqa: F401  (registers the ebrl environments)
from agents import SoftDQN, SoftQ
from agents.softdqn.softdqn import epsilon_greedy_entropy
from ebrl.rl import ActionSampler

torch.set_num_threads(1)

SMALL_Q = dict(
    policy_kwargs=dict(net_arch=[32, 32]), learning_starts=50, batch_size=32,
    value_sampler=ActionSampler(n_particles=4, n_levels=1, n_moves=0),
    sampler=ActionSampler(n_particles=8, n_levels=2, n_moves=1),
)
SMALL_DQN = dict(policy_kwargs=dict(net_arch=[32, 32]), learning_starts=50, batch_size=32)


def make(algo, **kwargs):
    if algo is SoftQ:
        return SoftQ("MlpPolicy", "ebrl/BimodalBandit-v0", seed=0, **{**SMALL_Q, **kwargs})
    return SoftDQN("MlpPolicy", "CartPole-v1", seed=0, **{**SMALL_DQN, **kwargs})


def spread(model) -> float:
    """How random the stochastic policy is: the std of 400 SoftQ actions, or SoftDQN's mean exact entropy."""
    if isinstance(model, SoftQ):
        a, _ = model.predict(np.zeros((400, 1), dtype=np.float32), deterministic=False)
        return float(a.std())
    obs = torch.as_tensor(np.random.default_rng(0).normal(size=(64, 4)), dtype=torch.float32)
    with torch.no_grad():
        e = model.policy.energies(obs)
        return float(model.policy.boltzmann.entropy(e, alpha=model.policy.alpha_tensor).mean())


@pytest.mark.parametrize("algo", [SoftQ, SoftDQN])
def test_setting_alpha_on_the_model_changes_what_the_policy_samples(algo):
    model = make(algo, alpha=1e3)
    hot = spread(model)
    model.alpha = 1e-3
    assert math.isclose(model.alpha, 1e-3, rel_tol=1e-5)
    assert math.isclose(float(model.policy.alpha_tensor), 1e-3, rel_tol=1e-5)  # the policy's own α moved
    assert model.alpha_optimizer is None and not model.policy.log_alpha.requires_grad
    assert spread(model) < 0.5 * hot
    model.alpha = "auto"  # learn from where it is
    assert model._alpha_learnt and math.isclose(model.alpha, 1e-3, rel_tol=1e-5)
    # SoftQ learns α by SAC's dual (an optimiser); SoftDQN by default by a Newton step, which needs none
    assert (model.alpha_optimizer is not None) == (algo is SoftQ)


@pytest.mark.parametrize("algo", [SoftQ, SoftDQN])
def test_load_restores_the_learnt_alpha_and_applies_an_override(algo, tmp_path):
    model = make(algo, alpha="auto_0.5")
    model.learn(150)
    learnt = model.alpha
    assert learnt != 0.5  # it moved
    model.save(tmp_path / "m.zip")
    again = algo.load(tmp_path / "m.zip")
    assert again.alpha == learnt and again._alpha_learnt
    assert again.target_entropy == model.target_entropy
    fixed = algo.load(tmp_path / "m.zip", env=model.get_env(), alpha=0.25)
    assert math.isclose(float(fixed.policy.alpha_tensor), 0.25, rel_tol=1e-6) and fixed.alpha_optimizer is None
    assert not fixed._alpha_learnt
    fixed.learn(60)  # a fixed α stays put while learning
    assert math.isclose(fixed.alpha, 0.25, rel_tol=1e-6)
    target = -0.5 if algo is SoftQ else 0.2  # a discrete policy's entropy lies in (0, log K)
    retarget = algo.load(tmp_path / "m.zip", target_entropy=target)
    assert retarget.target_entropy == target and retarget.alpha == learnt


def test_auto_target_entropies_are_reachable_and_documented():
    assert SoftQ("MlpPolicy", "Pendulum-v1").target_entropy == -1.0  # SAC's -dim(A), on the scaled box
    for k in (2, 3, 18):
        h = epsilon_greedy_entropy(k)
        assert 0 < h < math.log(k)
        p = np.array([1 - 0.05 + 0.05 / k] + [0.05 / k] * (k - 1))
        assert math.isclose(h, float(-(p * np.log(p)).sum()), rel_tol=1e-12)
    assert math.isclose(SoftDQN("MlpPolicy", "CartPole-v1").target_entropy, epsilon_greedy_entropy(2))


def logged(model, tmp_path, steps: int) -> list[dict[str, float]]:
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(steps, log_interval=1)
    lines = (tmp_path / "progress.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    return [{k: float(v) for k, v in r.items() if v} for r in rows if r.get("train/entropy")]


def test_softdqn_refuses_an_unknown_alpha_update_and_an_unreachable_target_entropy(tmp_path):
    with pytest.raises(ValueError, match="alpha_update must be one of"):
        make(SoftDQN, alpha_update="sgd")
    for bad in (0.0, -0.5, math.log(2), 1.0):
        with pytest.raises(ValueError, match=r"target_entropy must lie in \(0, log K\)"):
            make(SoftDQN, target_entropy=bad)
    make(SoftDQN, alpha=0.1, target_entropy=-0.5)  # a fixed α ignores the target
    make(SoftDQN).save(tmp_path / "m.zip")
    with pytest.raises(ValueError, match="target_entropy must lie in"):
        SoftDQN.load(tmp_path / "m.zip", target_entropy=-0.5)


@pytest.mark.parametrize("start", ["auto_1000", "auto", "auto_0.001"])
def test_softdqn_newton_alpha_meets_the_target_entropy_at_dqns_learning_rate_from_any_start(start, tmp_path):
    # at DQN's learning rate (1e-4) SAC's dual could move log α by only ~0.1 in these 1,000 updates; the Newton
    # step needs no learning rate, so α meets the target whatever its start (α from 1e-3 to 1e3: 14 e-folds)
    model = make(SoftDQN, alpha=start, alpha_max_step=0.5, learning_rate=1e-4, train_freq=1)
    rows = logged(model, tmp_path, 1_050)
    target = model.target_entropy
    tail = [r["train/entropy"] for r in rows if r["time/total_timesteps"] > 550]  # the last half of the updates
    assert abs(np.mean(tail) - target) <= 0.1 * target, (np.mean(tail), target)


def test_softdqn_default_newton_alpha_moves_at_most_alpha_max_step_per_update_and_reaches_its_target(tmp_path):
    model = make(SoftDQN, learning_rate=1e-4, train_freq=1)  # α from 1, at most 0.01 in log α per update
    assert model.alpha_max_step == 0.01 and model.alpha_optimizer is None
    rows = logged(model, tmp_path, 1_050)
    log_alpha = np.log([r["train/alpha"] for r in rows])  # one row per episode
    updates = np.array([r["train/n_updates"] for r in rows])
    assert np.all(np.abs(np.diff(log_alpha)) <= 0.01 * np.diff(updates) * (1 + 1e-4))
    assert log_alpha[0] > log_alpha[-1] + 1  # it did move (α falls towards the target on CartPole)
    target = model.target_entropy
    tail = [r["train/entropy"] for r in rows if r["time/total_timesteps"] > 800]
    assert abs(np.mean(tail) - target) <= 0.1 * target, (np.mean(tail), target)
    with pytest.raises(ValueError, match="alpha_max_step must be a finite float > 0"):
        make(SoftDQN, alpha_max_step=0.0)


def test_softdqn_adam_alpha_moves_about_one_learning_rate_per_update(tmp_path):
    # SAC's dual (alpha_update="adam") kept for comparison: from α = 1 at lr 1e-4, 500 updates leave log α
    # within 500 · 1e-4 · (1 + slack) of 0, so α has barely moved
    model = make(SoftDQN, alpha="auto", alpha_update="adam", learning_rate=1e-4, train_freq=1)
    assert model.alpha_optimizer is not None
    model.learn(550)
    assert 0 < abs(math.log(model.alpha)) <= 500 * 1e-4 * 1.1


@pytest.mark.slow
def test_softdqn_auto_alpha_brings_the_entropy_to_its_target_on_cartpole(tmp_path):
    # SAC's dual learns α with the policy's learning rate: Adam moves log α by about that much per update,
    # so a short run needs a large one to travel from α = 1 to the α that meets the target
    model = SoftDQN("MlpPolicy", "CartPole-v1", alpha="auto", alpha_update="adam", learning_rate=3e-3,
                    learning_starts=200, train_freq=1, target_update_interval=500,
                    policy_kwargs=dict(net_arch=[64, 64]), seed=0)
    rows = logged(model, tmp_path, 6_000)
    target = model.target_entropy
    tail = [r["train/entropy"] for r in rows if r["time/total_timesteps"] > 4_000]  # the last third
    alphas = [r["train/alpha"] for r in rows]
    assert all(math.isfinite(a) and a > 0 for a in alphas)
    assert abs(np.mean(tail) - target) <= 0.1 * target, (np.mean(tail), target)


@pytest.mark.slow
def test_softq_auto_alpha_brings_the_entropy_to_its_target_on_pendulum(tmp_path):
    model = SoftQ("MlpPolicy", "Pendulum-v1", alpha="auto", learning_rate=3e-3, learning_starts=200,
                  policy_kwargs=dict(net_arch=[32, 32]), seed=0)
    rows = logged(model, tmp_path, 4_000)
    target = model.target_entropy
    tail = [r["train/entropy"] for r in rows if r["time/total_timesteps"] > 3_000]  # the last quarter
    alphas = [r["train/alpha"] for r in rows]
    assert all(math.isfinite(a) and a > 0 for a in alphas)
    assert abs(np.mean(tail) - target) <= 0.1 * abs(target), (np.mean(tail), target)
