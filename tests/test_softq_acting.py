"""SoftQ acting with its proposal network alone (``sampler="proposal"``), as soft Q-learning's amortised sampler.

- a stochastic action is one draw of q(·|s): in the pre-tanh space its mean and standard deviation match the
  proposal's own μ(s) and σ(s), within tolerances set by the number of draws;
- a deterministic action is the proposal's mode INSIDE·tanh(μ(s)), exactly, and the critics are not consulted;
- the same seed gives the same actions; save/load keeps them; ``load(path, sampler=...)`` switches how a
  saved model acts, either way;
- a non-finite proposal output raises rather than being acted on; a "proposal" sampler without a proposal,
  or an unknown sampler, is refused naming the argument.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents import SoftQ
from agents.softq.policies import INSIDE
from ebrl._checks import DivergenceError
from ebrl.rl import ActionSampler

torch.set_num_threads(1)


class BoxEnv(gym.Env):
    """3-D observations, 2-D actions in [-2, 2]^2 (not SB3's scaled box), reward -|a|²; 20-step episodes."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)  # one per instance: its RNG
        self.action_space = spaces.Box(-2.0, 2.0, shape=(2,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), -float(np.square(action).sum()), False, self.t >= 20, {}


SMALL = dict(policy_kwargs=dict(net_arch=[32, 32]), learning_starts=50, batch_size=32,
             value_sampler=ActionSampler(n_particles=4, n_levels=1, n_moves=0))


def make(**kwargs) -> SoftQ:
    env = BoxEnv()
    env.reset(seed=0)
    env.action_space.seed(0)
    env.observation_space.seed(0)
    return SoftQ("MlpPolicy", env, seed=0, **{**SMALL, "sampler": "proposal", **kwargs})


def proposal_params(model: SoftQ, obs: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    policy = model.policy
    assert policy.proposal is not None
    with torch.no_grad():
        feats = policy.features(torch.as_tensor(obs), policy.proposal)
        mu, log_std = policy.proposal.params(feats)
    return mu, log_std.exp()


def test_a_stochastic_action_is_one_draw_of_the_proposal():
    model = make()
    model.learn(200)  # the proposal moves away from its initialisation
    n = 20_000
    obs = np.tile(np.array([[0.3, -0.5, 0.1]], dtype=np.float32), (n, 1))
    mu, sigma = proposal_params(model, obs[:1])  # (1, 2)
    with torch.no_grad():
        scaled = model.policy._predict(torch.as_tensor(obs), deterministic=False)  # (n, 2) in [-1, 1]
    assert torch.isfinite(scaled).all() and (scaled.abs() < 1).all()
    z = torch.atanh(scaled.double() / INSIDE)  # back to the Gaussian before the tanh
    # mean within 4 standard errors; sd within 4 standard errors of a normal sample's sd (≈ σ/sqrt(2n))
    assert ((z.mean(0) - mu[0].double()).abs() < 4 * sigma[0].double() / math.sqrt(n)).all()
    assert ((z.std(0) / sigma[0].double() - 1).abs() < 4 / math.sqrt(2 * n)).all()
    # and the draws are not all alike: independent draws, not a fixed point
    assert (z.std(0) > 0.1 * sigma[0].double()).all()


def test_a_deterministic_action_is_the_proposal_mode_without_the_critics(monkeypatch):
    model = make()
    obs = np.random.default_rng(1).uniform(-1, 1, size=(7, 3)).astype(np.float32)
    mu, _ = proposal_params(model, obs)

    def no_critic(*args, **kwargs):
        raise AssertionError("the critics were consulted")

    monkeypatch.setattr(model.policy.critic, "forward", no_critic)
    actions, _ = model.predict(obs, deterministic=True)
    expected = model.policy.unscale_action((INSIDE * torch.tanh(mu)).numpy())
    np.testing.assert_array_equal(actions, expected)
    stochastic, _ = model.predict(obs, deterministic=False)
    assert np.isfinite(stochastic).all() and (np.abs(stochastic) <= 2).all()


def test_same_seed_same_actions_and_save_load_keeps_them(tmp_path):
    a = make().learn(120)  # SB3 seeds the global NumPy RNG (its buffer's sampling) at construction: one at a time
    b = make().learn(120)
    obs = np.random.default_rng(2).uniform(-1, 1, size=(5, 3)).astype(np.float32)
    np.testing.assert_array_equal(a.predict(obs)[0], b.predict(obs)[0])
    a.save(tmp_path / "m.zip")
    loaded = SoftQ.load(tmp_path / "m.zip")
    assert loaded.sampler == "proposal" and loaded.policy.act_with_proposal
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], a.predict(obs, deterministic=True)[0])


def test_load_with_a_sampler_override_switches_how_a_model_acts(tmp_path):
    smc = make(sampler=ActionSampler(n_particles=8, n_levels=2, n_moves=1))
    smc.learn(120)
    smc.save(tmp_path / "smc.zip")
    obs = np.random.default_rng(3).uniform(-1, 1, size=(4, 3)).astype(np.float32)
    fast = SoftQ.load(tmp_path / "smc.zip", sampler="proposal")
    assert fast.policy.act_with_proposal
    mu, _ = proposal_params(fast, obs)
    np.testing.assert_array_equal(
        fast.predict(obs, deterministic=True)[0], fast.policy.unscale_action((INSIDE * torch.tanh(mu)).numpy())
    )
    fast.save(tmp_path / "fast.zip")
    back = SoftQ.load(tmp_path / "fast.zip", sampler=ActionSampler(n_particles=8, n_levels=2, n_moves=1))
    assert not back.policy.act_with_proposal
    np.testing.assert_array_equal(back.predict(obs, deterministic=True)[0], smc.predict(obs, deterministic=True)[0])


def test_a_non_finite_proposal_output_raises_instead_of_acting():
    model = make()
    assert model.policy.proposal is not None
    with torch.no_grad():
        model.policy.proposal.mean.weight.fill_(float("nan"))
    obs = np.zeros((2, 3), dtype=np.float32)
    for deterministic in (False, True):
        with pytest.raises(DivergenceError, match="non-finite action"):
            model.predict(obs, deterministic=deterministic)


def test_a_proposal_sampler_needs_a_proposal_and_other_values_are_refused():
    with pytest.raises(ValueError, match="amortized=True"):
        make(amortized=False)
    with pytest.raises(TypeError, match=r'sampler must be an ebrl\.rl\.ActionSampler or "proposal"'):
        make(sampler="amortised")
    with pytest.raises(TypeError, match="value_sampler"):
        make(value_sampler="proposal")
