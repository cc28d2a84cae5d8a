"""Energy value priors: shaping invariance (exact MDP), Wiewiora's equivalence, the wrappers with SB3, novelty."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3 import SAC
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401  (registers the ebrl environments)
from agents import SoftDQN, SoftQ
from ebrl._checks import seeded_init
from ebrl.energy import MLPEnergy
from ebrl.rl import ActionSampler
from ebrl.rl.priors import StatePrior, shaping_term
from envs.wrappers import EnergyNovelty, EnergyShaping

GAMMA = 0.9


def random_mdp(seed: int, n_states: int = 8, n_actions: int = 3):
    """Transitions P (S, A, S), rewards R (S, A, S), terminal flags (S,) (state S-1 absorbs), potential Φ (S,)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(n_states) * 0.5, size=(n_states, n_actions))  # (S, A, S)
    r = rng.normal(size=(n_states, n_actions, n_states))  # (S, A, S)
    terminal = np.zeros(n_states, bool)
    terminal[-1] = True
    phi = rng.normal(scale=5.0, size=n_states)  # large on purpose: it must not matter
    return p, r, terminal, phi


def shaped(r, terminal, phi):
    """R + F with F[s, a, s'] = γ (1 - terminal[s']) Φ(s') - Φ(s), via ebrl's shaping_term."""
    s = r.shape[0]
    phi_t = torch.as_tensor(phi)
    f = shaping_term(
        phi_t[:, None].expand(s, s).reshape(-1),
        phi_t[None, :].expand(s, s).reshape(-1),
        torch.as_tensor(terminal)[None, :].expand(s, s).reshape(-1),
        gamma=GAMMA,
    ).reshape(s, 1, s)  # (S*S,) -> (S, 1, S), broadcast over actions
    return r + f.numpy()


def value_iteration(p, r, terminal, n_iter: int = 500):
    """Optimal Q (S, A) of the episodic MDP: no value after a terminal state."""
    q = np.zeros(p.shape[:2])
    for _ in range(n_iter):
        v = np.where(terminal, 0.0, q.max(axis=1))  # (S,)
        q = (p * (r + GAMMA * v[None, None, :])).sum(axis=2)
    return q


class TableEnergy(torch.nn.Module):
    """E(s) = table[s] for one-hot states ``(B, S) -> (B,)``: a ``StatePrior`` over a finite MDP."""

    def __init__(self, table: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float64))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.to(torch.float64) @ self.table


SHAPING_VARIANTS = {  # every potential the wrappers and experiments use: raw, offset, offset and bounded below
    "raw": {},
    "offset": {"offset": 3.0},
    "bounded": {"offset": 3.0, "floor": -2.0},
}


def prior_potential(phi: np.ndarray, variant: str) -> np.ndarray:
    """Φ per state from ``StatePrior`` (energy -2Φ at temperature 2) with the variant's offset and floor."""
    prior = StatePrior(TableEnergy(-2.0 * phi), len(phi), temperature=2.0, **SHAPING_VARIANTS[variant])
    with torch.no_grad():
        return prior(torch.eye(len(phi), dtype=torch.float64)).numpy()


@pytest.mark.parametrize("variant", list(SHAPING_VARIANTS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_potential_shaping_keeps_the_optimal_policy_of_an_exact_mdp(seed, variant):
    p, r, terminal, phi = random_mdp(seed)
    phi = prior_potential(phi, variant)
    if variant == "bounded":
        assert (phi == -2.0).any() and (phi > -2.0).any()  # the floor binds on some states, not all
    q = value_iteration(p, r, terminal)
    q_shaped = value_iteration(p, shaped(r, terminal, phi), terminal)
    live = ~terminal
    np.testing.assert_array_equal(q.argmax(axis=1)[live], q_shaped.argmax(axis=1)[live])
    # Ng et al.: Q_shaped(s, a) = Q(s, a) - Φ(s) exactly (to the error of 500 sweeps, 0.9^500 ~ 1e-23).
    np.testing.assert_allclose(q_shaped[live], (q - phi[:, None])[live], atol=1e-8)


def test_shaping_with_a_nonzero_terminal_potential_would_change_the_values():
    # Control: the Φ(terminal) = 0 convention matters; ignoring termination in F breaks Q - Φ.
    p, r, terminal, phi = random_mdp(0)
    wrong = r + (GAMMA * phi[None, None, :] - phi[:, None, None])
    q = value_iteration(p, r, terminal)
    q_wrong = value_iteration(p, wrong, terminal)
    assert np.abs(q_wrong - (q - phi[:, None]))[~terminal].max() > 0.1


def soft_q_learning(p, r, terminal, q0, *, alpha: float, episodes: int, seed: int):
    """Tabular soft Q-learning with Boltzmann exploration; returns (Q, actions taken, episode returns)."""
    rng = np.random.default_rng(seed)
    q, actions, returns = q0.copy(), [], []
    for _ in range(episodes):
        s, total = 0, 0.0
        for _ in range(30):
            logits = q[s] / alpha
            probs = np.exp(logits - logits.max())
            a = int(rng.choice(len(probs), p=probs / probs.sum()))
            s2 = int(rng.choice(p.shape[2], p=p[s, a]))
            v2 = 0.0 if terminal[s2] else alpha * np.log(np.exp(q[s2] / alpha).sum())
            q[s, a] += 0.5 * (r[s, a, s2] + GAMMA * v2 - q[s, a])
            actions.append(a)
            total += r[s, a, s2]
            s = s2
            if terminal[s]:
                break
        returns.append(total)
    return q, actions, returns


def test_shaping_and_potential_initialisation_learn_identically_wiewiora_2003():
    p, r, terminal, phi = random_mdp(4)
    q_zero = np.zeros(p.shape[:2])
    q_a, act_a, _ = soft_q_learning(p, shaped(r, terminal, phi), terminal, q_zero, alpha=0.5, episodes=200, seed=9)
    q_b, act_b, ret_b = soft_q_learning(p, r, terminal, q_zero + phi[:, None], alpha=0.5, episodes=200, seed=9)
    # Same Boltzmann probabilities at every step, so with the same random stream the same actions,
    # hence the same learning curve on the true rewards, and Q_init = Q_shaped + Φ(s) throughout.
    assert act_a == act_b
    np.testing.assert_allclose(q_b, q_a + phi[:, None], atol=1e-9)
    np.testing.assert_array_equal(q_a.argmax(axis=1), q_b.argmax(axis=1))
    assert len(ret_b) == 200


def test_energy_shaping_wrapper_telescopes_with_zero_terminal_potential():
    goal = torch.tensor([0.8, 0.8])

    def prior(obs: torch.Tensor) -> torch.Tensor:
        return -(obs - goal).norm(dim=1)  # Φ(s) = -‖s - goal‖

    env = EnergyShaping(gym.make("ebrl/SparseGoal-v0"), prior, gamma=1.0)
    obs, _ = env.reset(seed=0)
    phi0 = float(prior(torch.as_tensor(obs)[None])[0])
    total_f = 0.0
    for _ in range(100):
        obs, reward, terminated, truncated, info = env.step(np.array([1.0, 1.0], np.float32))
        total_f += info["shaping"]
        assert reward == pytest.approx(info["raw_reward"] + info["shaping"])
        if terminated or truncated:
            break
    assert terminated  # straight to the goal
    assert total_f == pytest.approx(-phi0, abs=1e-5)  # Σ F = γ^T·0 - Φ(s_0) with γ = 1


def test_wrappers_run_with_an_sb3_algorithm():
    prior = StatePrior(MLPEnergy(2, (8,)), 2, temperature=2.0)
    env = EnergyNovelty(
        EnergyShaping(gym.make("ebrl/SparseGoal-v0"), prior, gamma=0.99), MLPEnergy(2, (8,)), 0.1, update_every=20
    )
    model = SAC("MlpPolicy", env, learning_starts=10, batch_size=16, policy_kwargs={"net_arch": [16]}, seed=0)
    model.learn(60)
    assert model.num_timesteps == 60 and env.n_seen >= 60


@pytest.mark.slow
def test_novelty_bonus_decreases_for_revisited_states():
    with seeded_init(torch.Generator().manual_seed(0)):
        energy = MLPEnergy(2, (32, 32))
    env = EnergyNovelty(gym.make("ebrl/SparseGoal-v0"), energy, 1.0, update_every=50, n_updates=20, lr=3e-3)
    env.reset(seed=0)
    stay, far = np.array([-1.0, -1.0], np.float32), np.array([0.9, -0.9], np.float32)
    before_stay, before_far = env.bonus(stay), env.bonus(far)
    for _ in range(150):  # stay in place: revisit the start over and over (pushing into the wall)
        env.step(np.array([-1.0, -1.0], np.float32))
    assert np.array_equal(env.unwrapped._pos, stay)
    assert env.bonus(stay) < before_stay - 1.0
    assert env.bonus(stay) < env.bonus(far) - 1.0  # an unvisited state keeps a larger bonus
    assert np.isfinite(before_far)


def test_prior_trained_on_another_observation_size_raises_value_error():
    prior = StatePrior(MLPEnergy(3, (8,)), 3)
    with pytest.raises(ValueError, match="prior was trained on observations of size 3"):
        EnergyShaping(gym.make("ebrl/SparseGoal-v0"), prior, gamma=0.99)
    with pytest.raises(ValueError, match="prior was trained on observations of size 3"):
        prior(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="obs_dim"):
        StatePrior(MLPEnergy(3, (8,)), 2)
    with pytest.raises(ValueError, match="MLPEnergy over 2"):
        EnergyNovelty(gym.make("ebrl/SparseGoal-v0"), MLPEnergy(3, (8,)), 0.1)


def frozen_prior(obs_dim: int, seed: int) -> StatePrior:
    with seeded_init(torch.Generator().manual_seed(seed)):
        return StatePrior(MLPEnergy(obs_dim, (8,)), obs_dim, temperature=0.5)


def test_softdqn_value_prior_makes_the_network_a_residual_on_phi_and_survives_save_load(tmp_path):
    prior = frozen_prior(4, 0)
    model = SoftDQN("MlpPolicy", "CartPole-v1", value_prior=prior, learning_starts=10, batch_size=8,
                    policy_kwargs={"net_arch": [16]}, seed=0)
    obs = torch.rand(5, 4)
    with torch.no_grad():
        e = model.policy.energies(obs)  # (5, 2)
        net = model.policy.energy_net(obs)  # (5, 2): the residual alone
        torch.testing.assert_close(-e, -net + prior(obs)[:, None])  # Q = Φ(s) + Q_net(s, a)
    model.learn(30)
    assert all(not p.requires_grad for p in model.policy.value_prior.parameters())
    model.save(tmp_path / "dqn")
    loaded = SoftDQN.load(tmp_path / "dqn")
    np.testing.assert_array_equal(model.predict(obs.numpy(), deterministic=True)[0],
                                  loaded.predict(obs.numpy(), deterministic=True)[0])
    with pytest.raises(ValueError, match="value_prior was trained on observations of size 3"):
        SoftDQN("MlpPolicy", "CartPole-v1", value_prior=frozen_prior(3, 0))


def test_softq_value_prior_shifts_both_critics_by_phi():
    prior = frozen_prior(2, 1)
    model = SoftQ("MlpPolicy", gym.make("ebrl/SparseGoal-v0"), value_prior=prior, learning_starts=5, batch_size=8,
                  value_sampler=ActionSampler(n_particles=4, n_levels=1, n_moves=0), policy_kwargs={"net_arch": [16]},
                  seed=0)
    obs, act = torch.rand(3, 2), torch.rand(3, 4, 2) * 2 - 1
    with torch.no_grad():
        e1, e2 = model.critic.energies(obs, act)  # (3, 4) each
        phi = prior(obs)[:, None]  # (3, 1)
        torch.testing.assert_close(e1, model.critic.e1(obs, act) - phi)
        torch.testing.assert_close(e2, model.critic.e2(obs, act) - phi)
    model.learn(12)  # Polyak updates must leave Φ itself unchanged in both critics
    with torch.no_grad():
        for critic in (model.critic, model.critic_target):
            torch.testing.assert_close(critic.value_prior(obs), prior(obs))
    with pytest.raises(ValueError, match="value_prior was trained on observations of size 3"):
        SoftQ("MlpPolicy", gym.make("ebrl/SparseGoal-v0"), value_prior=frozen_prior(3, 0))


def test_sparse_goal_env_passes_checkers_and_rewards_only_the_goal():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(gym.make("ebrl/SparseGoal-v0").unwrapped)
        sb3_check_env(gym.make("ebrl/SparseGoal-v0"))
    env = gym.make("ebrl/SparseGoal-v0")
    env.reset(seed=0)
    rewards = [env.step(np.array([1.0, -1.0], np.float32))[1] for _ in range(20)]  # away from the goal
    assert rewards == [0.0] * 20


def test_offset_potential_makes_the_goal_step_pay_the_goal_reward():
    goal = torch.tensor([0.8, 0.8])

    def energy(obs: torch.Tensor) -> torch.Tensor:
        return 10.0 * (obs - goal).norm(dim=1)  # Φ = -E/T rises to 0 at the goal's centre

    class Energy(torch.nn.Module):
        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return energy(obs)

    for offset, floor in ((0.0, None), (-1.5, None), (-1.5, -3.0)):
        prior = StatePrior(Energy(), 2, temperature=1.0, offset=offset, floor=floor)
        env = EnergyShaping(gym.make("ebrl/SparseGoal-v0"), prior, gamma=0.99)
        obs, _ = env.reset(seed=0)
        for _ in range(100):
            last = obs
            obs, reward, terminated, truncated, _ = env.step(np.array([1.0, 1.0], np.float32))
            if terminated or truncated:
                break
        assert terminated
        phi_last = float(prior(torch.as_tensor(last)[None])[0])
        # the step into the goal pays r + γ·0 - Φ(s): with the offset, Φ(s) is raised by 1.5 and the step pays less
        assert reward == pytest.approx(1.0 - phi_last, abs=1e-5)
        assert phi_last == pytest.approx(max(-10.0 * float((torch.as_tensor(last) - goal).norm()) - offset,
                                             -np.inf if floor is None else floor), abs=1e-5)


def test_state_prior_floor_bounds_the_potential_and_offset_shifts_it():
    with seeded_init(torch.Generator().manual_seed(0)):
        energy = MLPEnergy(2, (8,))
    obs = torch.rand(64, 2) * 2 - 1
    base = StatePrior(energy, 2, temperature=0.01)(obs)  # a wide range of potentials
    shifted = StatePrior(energy, 2, temperature=0.01, offset=2.5)(obs)
    bounded = StatePrior(energy, 2, temperature=0.01, offset=2.5, floor=-1.0)(obs)
    torch.testing.assert_close(shifted, base - 2.5)
    torch.testing.assert_close(bounded, (base - 2.5).clamp(min=-1.0))
    assert (bounded == -1.0).any() and (bounded > -1.0).any()
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="offset"):
            StatePrior(energy, 2, offset=bad)
        with pytest.raises(ValueError, match="floor"):
            StatePrior(energy, 2, floor=bad)


def test_non_finite_potential_or_novelty_energy_raises_and_is_never_a_reward():
    state = {"nan": False}

    def prior(obs: torch.Tensor) -> torch.Tensor:
        return torch.full((obs.shape[0],), float("nan") if state["nan"] else 0.0)

    env = EnergyShaping(gym.make("ebrl/SparseGoal-v0"), prior, gamma=0.99)
    env.reset(seed=0)
    state["nan"] = True
    with pytest.raises(ValueError, match="potential is not finite"):
        env.step(np.zeros(2, np.float32))

    class NaNEnergy(MLPEnergy):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) * float("nan")

    novelty = EnergyNovelty(gym.make("ebrl/SparseGoal-v0"), NaNEnergy(2, (8,)), 0.1)
    novelty.reset(seed=0)
    with pytest.raises(ValueError, match=r"not finite|non-finite"):
        novelty.step(np.zeros(2, np.float32))


def test_nonpositive_novelty_is_the_bonus_shifted_below_zero():
    with seeded_init(torch.Generator().manual_seed(0)):
        energy = MLPEnergy(2, (16,))
    plain = EnergyNovelty(gym.make("ebrl/SparseGoal-v0"), energy, 0.2, clip=3.0)
    shifted = EnergyNovelty(gym.make("ebrl/SparseGoal-v0"), energy, 0.2, clip=3.0, nonpositive=True)
    states = np.random.default_rng(0).uniform(-1, 1, (50, 2)).astype(np.float32)
    a = np.array([plain.bonus(s) for s in states])
    b = np.array([shifted.bonus(s) for s in states])
    np.testing.assert_allclose(b, a - 0.2 * 3.0, atol=1e-6)
    assert b.max() <= 0.0 and b.min() >= -2 * 0.2 * 3.0
    with pytest.raises(TypeError, match="nonpositive"):
        EnergyNovelty(gym.make("ebrl/SparseGoal-v0"), energy, 0.2, nonpositive=1)


@pytest.mark.parametrize("wrapper", ["shaping_bounded", "novelty_nonpositive"])
def test_energy_wrappers_pass_gymnasium_and_sb3_env_checkers(wrapper):
    def make() -> gym.Env:
        env = gym.make("ebrl/SparseGoal-v0")
        with seeded_init(torch.Generator().manual_seed(0)):
            energy = MLPEnergy(2, (8,))
        if wrapper == "shaping_bounded":
            return EnergyShaping(env, StatePrior(energy, 2, offset=1.0, floor=-1.0), gamma=0.99)
        return EnergyNovelty(env, energy, 0.1, nonpositive=True, update_every=10)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # gymnasium always says that a wrapper differs from its unwrapped env; any other warning fails
        warnings.filterwarnings("ignore", message=".*is different from the unwrapped version")
        gym_check_env(make())
        sb3_check_env(make())


def test_shaping_from_demonstrated_states_raises_phi_along_them_and_keeps_it_nonpositive_there(tmp_path):
    rng = np.random.default_rng(0)
    states = np.clip(np.linspace(-0.8, 0.8, 2000)[:, None] + rng.normal(0, 0.03, (2000, 2)), -1, 1)  # the diagonal
    np.savez(tmp_path / "d.npz", observations=states.astype(np.float32), actions=np.zeros((2000, 2), np.float32))
    env = EnergyShaping.from_demonstrations(gym.make("ebrl/SparseGoal-v0"), tmp_path / "d.npz", gamma=0.99,
                                            epochs=40, seed=0)
    assert isinstance(env.prior, StatePrior)
    with torch.no_grad():
        on = env.prior(torch.as_tensor(states, dtype=torch.float32))  # (2000,)
        off = env.prior(torch.tensor([[-0.8, 0.8], [0.8, -0.8]]))  # the far corners, off the diagonal
    assert float(on.max()) == pytest.approx(0.0, abs=1e-5)  # offset="max": Φ <= 0 on the demonstrations
    assert float(off.max()) < float(on.median()) - 1.0  # Φ is high where the demonstrations went
    same = EnergyShaping.from_demonstrations(gym.make("ebrl/SparseGoal-v0"), states, gamma=0.99, epochs=40, seed=0)
    with torch.no_grad():  # an array of states is read as the .npz's observations are
        torch.testing.assert_close(same.prior(torch.as_tensor(states, dtype=torch.float32)), on)
    with pytest.raises(ValueError, match=r"demos must hold demonstrated states of shape \(T, 2\)"):
        EnergyShaping.from_demonstrations(gym.make("ebrl/SparseGoal-v0"), np.zeros((5, 3)), gamma=0.99)
    with pytest.raises(ValueError, match="non-finite"):
        EnergyShaping.from_demonstrations(gym.make("ebrl/SparseGoal-v0"), np.full((5, 2), np.nan), gamma=0.99)
