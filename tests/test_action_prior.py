"""SoftQ with a state-action prior: Q_i = Ψ(s, a) + Q_net,i(s, a), Ψ = -E_prior/T frozen, saved and checked on load."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers the ebrl environments)
from agents import SoftQ
from ebrl._checks import seeded_init
from ebrl.energy import StateActionEnergy
from ebrl.rl import ActionSampler
from ebrl.rl.priors import StateActionPrior

ENV = "ebrl/SparseGoal-v0"  # observations (2,), actions [-1, 1]^2


def prior(seed: int, temperature: float = 0.5, obs_dim: int = 2, act_dim: int = 2) -> StateActionPrior:
    with seeded_init(torch.Generator().manual_seed(seed)):
        return StateActionPrior(StateActionEnergy(obs_dim, act_dim, (8,)), temperature=temperature)


def model(action_prior: StateActionPrior | None, **kwargs) -> SoftQ:
    return SoftQ("MlpPolicy", gym.make(ENV), action_prior=action_prior, learning_starts=5, batch_size=8,
                 value_sampler=ActionSampler(n_particles=4, n_levels=1, n_moves=0),
                 policy_kwargs={"net_arch": [16]}, seed=0, **kwargs)


def test_state_action_prior_is_minus_energy_over_temperature_and_refuses_non_finite_output():
    psi = prior(0, temperature=0.5)
    obs, act = torch.rand(3, 2), torch.rand(3, 4, 2) * 2 - 1
    torch.testing.assert_close(psi(obs, act), -psi.energy(obs, act) / 0.5)  # (3, 4)
    torch.testing.assert_close(psi(obs, act[:, 0]), -psi.energy(obs, act[:, 0]) / 0.5)  # (3,)
    with pytest.raises(ValueError, match="non-finite"):
        psi(obs, torch.full((3, 2), float("nan")))
    with pytest.raises(TypeError, match="StateActionEnergy"):
        StateActionPrior(torch.nn.Linear(4, 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="temperature"):
        prior(0, temperature=0.0)


def test_critics_and_targets_start_at_the_prior_exactly():
    psi = prior(1)
    m = model(psi)
    obs, act = torch.rand(5, 2), torch.rand(5, 3, 2) * 2 - 1
    with torch.no_grad():
        expected = psi(obs, act)  # (5, 3)
        for critic in (m.critic, m.critic_target):
            e1, e2 = critic.energies(obs, act)  # (5, 3) each
            torch.testing.assert_close(-e1, expected, rtol=0, atol=0)  # Q_net's output layer starts at 0
            torch.testing.assert_close(-e2, expected, rtol=0, atol=0)
        torch.testing.assert_close(m.critic(obs, act[:, 0]), -psi(obs, act[:, 0]), rtol=0, atol=0)  # (5,)


def test_the_critic_is_a_residual_on_the_prior_once_the_network_is_not_zero():
    psi = prior(2)
    m = model(psi)
    with torch.no_grad():
        for p in m.critic.e1.parameters():
            p.add_(0.1)
    obs, act = torch.rand(4, 2), torch.rand(4, 2) * 2 - 1
    with torch.no_grad():
        e1, _ = m.critic.energies(obs, act)  # (4,)
        torch.testing.assert_close(-e1, psi(obs, act) - m.critic.e1(obs, act))  # Q = Ψ + Q_net
        assert m.critic.e1(obs, act).abs().min() > 0  # the residual is not zero any more


def test_learning_moves_the_residual_and_leaves_the_frozen_prior_untouched():
    psi = prior(3)
    before = {k: v.clone() for k, v in psi.state_dict().items()}
    m = model(psi)
    net_before = m.critic.e1.body[-1].weight.detach().clone()
    target_before = m.critic_target.e1.body[-1].weight.detach().clone()
    m.learn(40)
    for owner in (m.policy, m.critic, m.critic_target):
        for name, value in owner.action_prior.state_dict().items():
            torch.testing.assert_close(value, before[name], rtol=0, atol=0)  # bit for bit: no gradient, no Polyak
        assert all(p.grad is None and not p.requires_grad for p in owner.action_prior.parameters())
    assert not torch.equal(m.critic.e1.body[-1].weight, net_before)  # the residual learnt
    assert not torch.equal(m.critic_target.e1.body[-1].weight, target_before)  # and its target followed


def test_save_load_restores_identical_predictions_and_refuses_another_prior(tmp_path):
    psi = prior(4)
    m = model(psi)
    m.learn(30)
    m.save(tmp_path / "softq")
    obs = np.random.default_rng(0).uniform(-1, 1, (6, 2)).astype(np.float32)
    for loaded in (SoftQ.load(tmp_path / "softq"), SoftQ.load(tmp_path / "softq", action_prior=prior(4))):
        np.testing.assert_array_equal(m.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
        act = torch.rand(6, 5, 2) * 2 - 1
        with torch.no_grad():
            for a, b in ((m.critic, loaded.critic), (m.critic_target, loaded.critic_target)):
                torch.testing.assert_close(a(torch.as_tensor(obs), act), b(torch.as_tensor(obs), act), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"action_prior: the model .* trained with a different StateActionPrior"):
        SoftQ.load(tmp_path / "softq", action_prior=prior(5))  # other weights
    with pytest.raises(ValueError, match="trained with a different StateActionPrior"):
        SoftQ.load(tmp_path / "softq", action_prior=prior(4, temperature=2.0))  # another scale
    model(None).save(tmp_path / "plain")
    with pytest.raises(ValueError, match=r"action_prior: the model .* trained with no prior"):
        SoftQ.load(tmp_path / "plain", action_prior=psi)


def test_a_prior_of_the_wrong_sizes_or_type_is_refused():
    with pytest.raises(ValueError, match="action_prior scores observations of size 3 and actions of size 2"):
        model(prior(0, obs_dim=3))
    with pytest.raises(ValueError, match="actions of size 1, but the spaces have sizes 2 and 2"):
        model(prior(0, act_dim=1))
    with pytest.raises(TypeError, match=r"action_prior must be an ebrl\.rl\.priors\.StateActionPrior"):
        model(StateActionEnergy(2, 2, (8,)))  # type: ignore[arg-type]


def test_without_a_prior_the_critics_are_unchanged():
    m = model(None)
    assert m.critic.action_prior is None and m.policy.action_prior is None
    assert not any("action_prior" in k for k in m.policy.state_dict())
    assert m.critic.e1.body[-1].weight.abs().sum() > 0  # the usual initialisation, not the residual's zeros
