"""SoftQ and SoftDQN as stable-baselines3 algorithms (sb3-contrib-style run / save-load / determinism
tests on tiny budgets), their bad-input errors, and what their Boltzmann policies learn."""

from __future__ import annotations

import glob
import math
import os
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.save_util import load_from_zip_file

import envs  # noqa: F401  (registers ebrl/*)
from agents import SoftDQN, SoftQ
from ebrl.rl import ActionSampler

torch.set_num_threads(1)

# Tiny networks and cheap samplers keep every run to a second or two.
SMALL: dict[type, dict[str, Any]] = {
    SoftQ: dict(
        policy_kwargs=dict(net_arch=[32, 32]),
        learning_starts=50,
        batch_size=32,
        value_sampler=ActionSampler(n_particles=4, n_levels=1, n_moves=0),
        sampler=ActionSampler(n_particles=4, n_levels=2, n_moves=1),
    ),
    SoftDQN: dict(policy_kwargs=dict(net_arch=[32, 32]), learning_starts=50, batch_size=32, target_update_interval=100),
}
ENV_ID = {SoftQ: "ebrl/MultiGoal-v0", SoftDQN: "CartPole-v1"}  # short episodes keep evaluation cheap
ALGOS = [SoftQ, SoftDQN]


def make(algo: type, env: Any = None, **overrides: Any):
    kwargs = {**SMALL[algo], **overrides}
    return algo("MlpPolicy", ENV_ID[algo] if env is None else env, **kwargs)


def observations(algo: type, n: int = 5) -> np.ndarray:
    env = gym.make(ENV_ID[algo])
    env.observation_space.seed(0)
    return np.stack([env.observation_space.sample() for _ in range(n)])  # (n, O)


def flat_params(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.policy.parameters()])


# --------------------------------------------------------------------------------------------
# sb3-contrib-style: run, save/load, determinism


@pytest.mark.parametrize("algo", ALGOS)
def test_run_learns_with_progress_bar_and_evaluates(algo):
    model = make(algo, seed=0)
    model.learn(200, progress_bar=True)
    assert model.num_timesteps >= 200
    assert model._n_updates > 0
    mean, std = evaluate_policy(model, gym.make(ENV_ID[algo]), n_eval_episodes=2)
    assert math.isfinite(mean) and math.isfinite(std)


@pytest.mark.parametrize("algo", ALGOS)
def test_save_load_gives_identical_predictions(algo, tmp_path):
    model = make(algo, seed=0)
    model.learn(150)
    obs = observations(algo)
    path = tmp_path / "model.zip"
    model.save(path)
    loaded = algo.load(path)

    torch.testing.assert_close(flat_params(loaded), flat_params(model))
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    model.set_random_seed(3)
    loaded.set_random_seed(3)
    np.testing.assert_array_equal(loaded.predict(obs)[0], model.predict(obs)[0])

    # The zip holds no torch.Generator (they are recreated from the seed).
    data, _, _ = load_from_zip_file(path)
    assert not any(isinstance(v, torch.Generator) for v in data.values())

    loaded.set_env(make_vec_env(ENV_ID[algo], n_envs=1))
    loaded.learn(60, reset_num_timesteps=False)  # a loaded model keeps training
    assert loaded.num_timesteps >= model.num_timesteps + 60


@pytest.mark.parametrize("algo", ALGOS)
def test_same_seed_gives_identical_training_and_actions(algo):
    obs = observations(algo)
    runs = []
    for seed in (1, 1, 2):
        model = make(algo, seed=seed)
        model.learn(150)
        runs.append((flat_params(model), model.predict(obs)[0]))
    torch.testing.assert_close(runs[0][0], runs[1][0], rtol=0, atol=0)
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not torch.equal(runs[0][0], runs[2][0])


# --------------------------------------------------------------------------------------------
# SB3 machinery: VecEnvs, callbacks, logging


@pytest.mark.parametrize("algo", ALGOS)
def test_trains_on_a_vec_env_with_two_envs(algo):
    venv = make_vec_env(ENV_ID[algo], n_envs=2, seed=0)
    model = make(algo, env=venv, seed=0)
    model.learn(200)
    assert model.num_timesteps >= 200
    actions, _ = model.predict(venv.reset())
    assert actions.shape[0] == 2
    assert venv.action_space.contains(actions[0]) and venv.action_space.contains(actions[1])


@pytest.mark.parametrize("algo", ALGOS)
def test_eval_and_checkpoint_callbacks_run(algo, tmp_path):
    model = make(algo, seed=0)
    eval_cb = EvalCallback(gym.make(ENV_ID[algo]), eval_freq=100, n_eval_episodes=1, log_path=str(tmp_path))
    ckpt_cb = CheckpointCallback(save_freq=100, save_path=str(tmp_path / "ckpt"), name_prefix="m")
    model.learn(200, callback=[eval_cb, ckpt_cb])
    evals = np.load(tmp_path / "evaluations.npz")
    assert evals["timesteps"].tolist() == [100, 200]
    ckpts = sorted(glob.glob(str(tmp_path / "ckpt" / "m_*_steps.zip")))
    assert [os.path.basename(c) for c in ckpts] == ["m_100_steps.zip", "m_200_steps.zip"]
    algo.load(ckpts[-1])


@pytest.mark.parametrize("algo", ALGOS)
def test_logs_losses_and_alpha(algo, tmp_path):
    model = make(algo, seed=0, alpha=0.3)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(200, log_interval=1)
    lines = (tmp_path / "progress.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    logged = [r for r in rows if r.get("train/alpha")]
    assert logged, "no train/ rows were logged"
    loss_key = "train/critic_loss" if algo is SoftQ else "train/loss"
    assert all(math.isclose(float(r["train/alpha"]), 0.3, rel_tol=1e-6) for r in logged)
    assert all(math.isfinite(float(r[loss_key])) for r in logged)


@pytest.mark.parametrize("algo", ALGOS)
def test_writes_tensorboard_events(algo, tmp_path):
    pytest.importorskip("tensorboard")
    model = make(algo, seed=0, tensorboard_log=str(tmp_path))
    model.learn(120)
    assert glob.glob(str(tmp_path / f"{algo.__name__}_1" / "events.out.tfevents.*"))


# --------------------------------------------------------------------------------------------
# Bad input


class SpaceEnv(gym.Env):
    """A minimal env with a chosen action space and a reward/observation that can turn non-finite."""

    def __init__(self, action_space: spaces.Space, bad: str | None = None, bad_at: int = 3) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = action_space
        self.bad, self.bad_at, self.t = bad, bad_at, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        obs, reward = np.zeros(2, dtype=np.float32), 0.0
        if self.t >= self.bad_at and self.bad == "reward":
            reward = math.nan
        if self.t >= self.bad_at and self.bad == "observation":
            obs[1] = math.inf
        return obs, reward, False, self.t % 10 == 0, {}


def test_softq_rejects_discrete_and_multidiscrete_action_spaces():
    with pytest.raises(ValueError, match=r"SoftQ supports Box .* got Discrete"):
        SoftQ("MlpPolicy", "CartPole-v1")
    with pytest.raises(ValueError, match="MultiDiscrete"):
        SoftQ("MlpPolicy", SpaceEnv(spaces.MultiDiscrete([3, 2])))


def test_softq_rejects_infinite_action_bounds():
    with pytest.raises(ValueError, match="finite action bounds"):
        SoftQ("MlpPolicy", SpaceEnv(spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)))


def test_softdqn_rejects_box_action_spaces():
    with pytest.raises(ValueError, match=r"SoftDQN supports Discrete .* got Box"):
        SoftDQN("MlpPolicy", "Pendulum-v1")


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("alpha", [0.0, -1.0])
def test_rejects_non_positive_alpha(algo, alpha):
    with pytest.raises(ValueError, match="alpha"):
        algo("MlpPolicy", ENV_ID[algo], alpha=alpha)


def test_softq_rejects_non_positive_reward_scale_and_policy_kwargs_clash():
    with pytest.raises(ValueError, match="reward_scale"):
        SoftQ("MlpPolicy", "Pendulum-v1", reward_scale=0.0)
    with pytest.raises(ValueError, match="alpha"):
        SoftQ("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(alpha=0.1))
    with pytest.raises(ValueError, match="alpha"):
        SoftDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(alpha=0.1))


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("bad", ["reward", "observation"])
def test_non_finite_reward_or_observation_raises_before_entering_the_buffer(algo, bad):
    space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32) if algo is SoftQ else spaces.Discrete(2)
    model = make(algo, env=SpaceEnv(space, bad=bad), seed=0)
    with pytest.raises(ValueError, match=f"{bad}.*non-finite"):
        model.learn(20)
    assert model.replay_buffer.pos == 2  # the two finite transitions went in, the bad one did not


# --------------------------------------------------------------------------------------------
# What the Boltzmann policies learn


def test_softdqn_explores_by_the_softmax_of_its_energies():
    model = make(SoftDQN, seed=0, alpha=0.05)
    model.learn(100)
    obs = observations(SoftDQN, n=1)
    with torch.no_grad():
        e = model.policy.energies(torch.as_tensor(obs))  # (1, 2)
    p = torch.softmax(-e / 0.05, dim=1)[0].numpy()
    actions, _ = model.predict(np.repeat(obs, 4000, axis=0))
    # Binomial: sd = sqrt(p(1-p)/4000) <= 0.008; allow 5 sd.
    assert abs(actions.mean() - p[1]) < 5 * math.sqrt(p[1] * (1 - p[1]) / 4000) + 1e-9, (actions.mean(), p)


class ThreeArmedBandit(gym.Env):
    """Arms 0 and 2 pay 1, arm 1 pays 0; one step per episode."""

    observation_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    action_space = spaces.Discrete(3)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(1, dtype=np.float32), float(int(action) != 1), True, False, {}


def test_softdqn_keeps_both_equally_good_arms():
    # With α = 0.2 the soft-optimal policy is softmax(Q/α) with Q = (1, 0, 1): each good arm
    # 1/(2 + e^-5) ≈ 0.497, the bad arm 0.007. A greedy learner would commit to one good arm.
    model = SoftDQN("MlpPolicy", ThreeArmedBandit(), alpha=0.2, learning_rate=3e-3, learning_starts=50, batch_size=32,
                    train_freq=1, target_update_interval=50, policy_kwargs=dict(net_arch=[32]), seed=0)
    model.learn(600)
    with torch.no_grad():
        e = model.policy.energies(torch.zeros(1, 1))
        p = model.policy.boltzmann.probs(e, alpha=model.policy.alpha_tensor)[0].numpy()
    assert p[0] > 0.35 and p[2] > 0.35 and p[1] < 0.1, p


@pytest.mark.parametrize("double_q", [False, True])
def test_softdqn_target_uses_the_online_policy_with_double_q(monkeypatch, double_q):
    # With the online and target networks made to differ, the double-Q target must equal
    # r + γ (Σ π_online Q_target + α H(π_online)), and the plain target r + γ α logsumexp(Q_target/α).
    model = SoftDQN("MlpPolicy", "CartPole-v1", alpha=0.5, learning_starts=0, batch_size=8, gamma=0.9,
                    double_q=double_q, policy_kwargs=dict(net_arch=[16]), seed=0)
    model.learn(20)
    with torch.no_grad():
        for p in model.energy_net_target.parameters():
            p.add_(0.3 * torch.randn_like(p))
    data = model.replay_buffer.sample(8)
    monkeypatch.setattr(model.replay_buffer, "sample", lambda *a, **k: data)
    captured = {}
    real_loss = F.smooth_l1_loss

    def recording_loss(q, y):
        captured["y"] = y
        return real_loss(q, y)

    monkeypatch.setattr(F, "smooth_l1_loss", recording_loss)
    with torch.no_grad():
        q_target = -model.policy.energies(data.next_observations, target=True)
        log_pi = torch.log_softmax(-model.policy.energies(data.next_observations) / 0.5, dim=1)
    model.train(gradient_steps=1, batch_size=8)
    if double_q:
        v = (log_pi.exp() * (q_target - 0.5 * log_pi)).sum(1, keepdim=True)
    else:
        v = 0.5 * torch.logsumexp(q_target / 0.5, dim=1, keepdim=True)
    torch.testing.assert_close(captured["y"], data.rewards + (1 - data.dones) * 0.9 * v)


def test_softdqn_rejects_a_non_bool_double_q():
    with pytest.raises(TypeError, match="double_q"):
        SoftDQN("MlpPolicy", "CartPole-v1", double_q=1)


@pytest.mark.slow
def test_softq_keeps_both_modes_of_the_bimodal_bandit():
    # With α = 1 the soft-optimal policy exp(r(a)/α) puts half its mass within ±2.5 sd (0.5) of
    # each mode at ±0.5. Check each side holds 25-75% of 1000 sampled actions (binomial sd 0.016,
    # so this fails only if a mode is lost) and that most actions sit near a mode, which a
    # uniform policy (50%) would not satisfy.
    model = SoftQ("MlpPolicy", "ebrl/BimodalBandit-v0", alpha=1.0, learning_rate=3e-3, learning_starts=100,
                  batch_size=64, gradient_steps=2,
                  policy_kwargs=dict(net_arch=[64, 64]), seed=0)
    model.learn(600)
    a, _ = model.predict(np.zeros((1000, 1), dtype=np.float32), deterministic=False)
    right = float((a[:, 0] > 0).mean())
    near = float((np.abs(np.abs(a[:, 0]) - 0.5) < 0.25).mean())
    assert 0.25 < right < 0.75, right
    assert near > 0.7, near
    mode, _ = model.predict(np.zeros((1, 1), dtype=np.float32), deterministic=True)
    assert abs(abs(float(mode[0, 0])) - 0.5) < 0.15, mode
