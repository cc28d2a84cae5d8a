"""SoftDQN: soft Q-learning for discrete actions, with Boltzmann exploration."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import get_parameters_by_name, polyak_update
from torch import Tensor

from agents.common import LearntTemperature, check_action_space, check_finite_loss, check_finite_transition
from agents.sb3_checks import check_env
from agents.softdqn.policies import ActionEnergyNet, CnnPolicy, MlpPolicy, MultiInputPolicy, SoftDQNPolicy
from ebrl.rl.discrete import DiscreteBoltzmannPolicy
from ebrl.rl.priors import StatePrior

SelfSoftDQN = TypeVar("SelfSoftDQN", bound="SoftDQN")


EXPLORATION_EPS = 0.05
"""``target_entropy="auto"`` is the entropy of an ε-greedy policy with this ε (SB3 DQN's final exploration rate)."""


ALPHA_UPDATES = ("newton", "adam")
"""The ways a learnt α can move: see ``SoftDQN(alpha_update=...)``."""


def epsilon_greedy_entropy(n_actions: int, eps: float = EXPLORATION_EPS) -> float:
    """The entropy (nats) of ε-greedy over ``n_actions``: 1 - ε + ε/K on the greedy action, ε/K on the others.

    It is always below log K, so the target can be reached for every K >= 2 (0.98 log K, a common choice in
    discrete SAC, asks for a nearly uniform policy when K = 2), and it speaks the language of DQN users.
    """
    k = int(n_actions)
    p_best, p_other = 1 - eps + eps / k, eps / k
    return float(-(p_best * np.log(p_best) + (k - 1) * p_other * np.log(p_other)))


class SoftDQN(LearntTemperature, OffPolicyAlgorithm):
    """Soft Q-learning for ``Discrete`` action spaces (a maximum-entropy DQN).

    The network outputs energies E(s, a) = -Q(s, a) for every action. Acting samples the Boltzmann
    policy π(a|s) = softmax(-E(s, ·)/α) (no ε-greedy); the TD target uses the exact soft value of
    the target network,

        y = r + γ (1 - done) · α logsumexp_a(-E_target(s', a)/α),

    and the Huber loss between Q(s, a) = -E(s, a) and y. The target network follows DQN: every
    ``target_update_interval`` environment steps it moves toward the online one by ``tau``.
    As α → 0 this is DQN with a greedy policy; α sets how much entropy the policy keeps.

    Hyperparameters not listed are those of SB3's ``DQN`` with the same defaults.

    Args:
        alpha: the temperature α in reward units: a float > 0 (fixed), ``"auto"`` (learnt from 1) or
            ``"auto_<init>"``, learnt so that the policy's exact mean entropy on each batch tracks
            ``target_entropy``. Setting ``model.alpha`` later, or ``SoftDQN.load(path, alpha=...)``, changes what
            the policy samples.
        target_entropy: H̄ in nats for a learnt α; ``"auto"`` = the entropy of ε-greedy with ε = 0.05
            over the K actions (``epsilon_greedy_entropy``).
        alpha_update: how a learnt α moves. ``"newton"`` (default): after each gradient step, one Newton step
            on log α, clipped to ±``alpha_max_step``, towards the α at which the batch's exact mean entropy
            equals H̄ (``DiscreteBoltzmannPolicy.log_alpha_newton_step``). It is invariant to the reward scale
            and stops at the target without oscillating. ``"adam"``: SAC's dual, Adam on log α · (H - H̄) at the
            policy's learning rate; α then moves by about the learning rate per step, so with DQN's 1e-4 it can
            take tens of thousands of steps to leave its start.
        alpha_max_step: the largest change of log α in one gradient step with ``alpha_update="newton"``. The
            default 0.01 takes α from 1 to 0.01 or to 100 in about 460 steps: early training keeps exploring
            while α falls, as DQN's ε falls. An instant jump (0.5) makes the policy as greedy as its target
            from the first step, which left SB3's IdentityEnv unsolved on one of three tuning seeds.
        max_grad_norm: clip the gradient norm to this value.
        double_q: soft double Q-learning. The target's next-state value becomes the
            entropy-regularised value Σ_a π(a|s') Q_target(s', a) + α H(π) of the *online* network's
            Boltzmann policy π, instead of α logsumexp of the target network's (which it never
            exceeds). Like double DQN it curbs overestimation. Off by default.
        target_update_interval: environment steps between target-network updates.
        value_prior: a potential Φ(s) (``ebrl.rl.priors.StatePrior``) on the flattened observations, or
            ``None``. The network then learns a residual on top of it, Q(s, a) = Φ(s) + Q_net(s, a): the
            same as starting Q at Φ, which by Wiewiora (2003) learns as shaping with Φ does.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: SoftDQNPolicy
    energy_net: ActionEnergyNet
    energy_net_target: ActionEnergyNet

    def __init__(
        self,
        policy: str | type[SoftDQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 4,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        target_update_interval: int = 10_000,
        alpha: float | str = "auto",
        target_entropy: float | str = "auto",
        alpha_update: str = "newton",
        alpha_max_step: float = 0.01,
        max_grad_norm: float = 10.0,
        double_q: bool = False,
        value_prior: StatePrior | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: torch.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if alpha_update not in ALPHA_UPDATES:
            raise ValueError(f"alpha_update must be one of {ALPHA_UPDATES}, got {alpha_update!r}")
        self.alpha_update = alpha_update
        if isinstance(alpha_max_step, bool) or not isinstance(alpha_max_step, (int, float)) or not (
            math.isfinite(alpha_max_step) and alpha_max_step > 0
        ):
            raise ValueError(
                f"alpha_max_step must be a finite float > 0 (a change of log alpha), got {alpha_max_step!r}"
            )
        self.alpha_max_step = float(alpha_max_step)
        self._init_temperature(alpha, target_entropy)
        if not isinstance(double_q, bool):
            raise TypeError(f"double_q must be a bool, got {type(double_q).__name__}")
        for name in ("alpha", "value_prior"):
            if policy_kwargs is not None and name in policy_kwargs:
                raise ValueError(f"pass {name} to SoftDQN({name}=...), not in policy_kwargs")
        env = check_action_space(env, algo="SoftDQN", expected=spaces.Discrete, verbose=verbose)
        check_env(env, replay_buffer_class, algo="SoftDQN")
        super().__init__(
            policy,
            env,
            learning_rate,
            buffer_size,
            learning_starts,
            batch_size,
            tau,
            gamma,
            train_freq,
            gradient_steps,
            action_noise=None,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            sde_support=False,
            supported_action_spaces=(spaces.Discrete,),
            support_multi_env=True,
        )
        if value_prior is not None:
            self.policy_kwargs["value_prior"] = value_prior
        self.target_update_interval = target_update_interval
        self.max_grad_norm = max_grad_norm
        self.double_q = double_q
        self._n_calls = 0
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        self.energy_net = self.policy.energy_net
        self.energy_net_target = self.policy.energy_net_target
        self.batch_norm_stats = get_parameters_by_name(self.energy_net, ["running_"])
        self.batch_norm_stats_target = get_parameters_by_name(self.energy_net_target, ["running_"])
        self.policy.rng.reseed(self.seed)
        self._setup_temperature()

    def _check_target_entropy(self) -> None:
        """A discrete policy's entropy lies in [0, log K]: a learnt α needs a target strictly inside."""
        assert isinstance(self.action_space, spaces.Discrete)
        n_actions = int(self.action_space.n)
        target = self.target_entropy  # resolved to a float in _setup_temperature
        if self._alpha_learnt and not (isinstance(target, float) and 0.0 < target < math.log(n_actions)):
            raise ValueError(
                f"target_entropy must lie in (0, log K) = (0, {math.log(n_actions):.4g}) nats for a learnt alpha "
                f"over K = {n_actions} actions, got {self.target_entropy!r}"
            )

    def _auto_target_entropy(self) -> float:
        assert isinstance(self.action_space, spaces.Discrete)
        return epsilon_greedy_entropy(int(self.action_space.n))

    def _set_learnt(self, learnt: bool) -> None:
        super()._set_learnt(learnt)
        if self.alpha_update == "newton":
            self.alpha_optimizer = None  # the Newton step needs no optimiser
            self.policy.log_alpha.requires_grad_(False)

    def _update_alpha(self, boltzmann: DiscreteBoltzmannPolicy, energies: Tensor, entropy: Tensor) -> Tensor:
        """Move a learnt α after a gradient step; returns the dual's loss ``()`` (0 for a fixed α)."""
        if not self._alpha_learnt:
            return torch.zeros((), device=entropy.device)
        if self.alpha_update == "adam":
            return self._temperature_step(entropy)
        assert isinstance(self.target_entropy, float), "target_entropy is resolved in _setup_temperature"
        with torch.no_grad():
            loss = self.policy.log_alpha * (entropy.mean() - self.target_entropy)
            self.policy.log_alpha.copy_(
                boltzmann.log_alpha_newton_step(
                    energies, log_alpha=self.policy.log_alpha, target_entropy=self.target_entropy,
                    max_step=self.alpha_max_step,
                )
            )
        return loss

    def set_random_seed(self, seed: int | None = None) -> None:
        """Seed SB3's generators and, once the policy exists, the policy's sampling generator."""
        super().set_random_seed(seed)
        if seed is not None and getattr(self, "policy", None) is not None:
            self.policy.rng.reseed(seed)

    def _on_step(self) -> None:
        """After each environment step: move the target network every ``target_update_interval`` steps."""
        self._n_calls += 1
        if self._n_calls % max(self.target_update_interval // self.n_envs, 1) == 0:
            polyak_update(self.energy_net.parameters(), self.energy_net_target.parameters(), self.tau)
            # running statistics (batch norm) are copied to the target, as DQN does: buffers, not parameters
            polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: np.ndarray | dict[str, np.ndarray],
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """Refuse non-finite rewards and observations, then store the transition as SB3 does."""
        check_finite_transition(self._last_obs, new_obs, reward, infos)
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)

    def train(self, gradient_steps: int, batch_size: int = 32) -> None:
        self.policy.set_training_mode(True)
        optimizers = [self.policy.optimizer] + ([self.alpha_optimizer] if self.alpha_optimizer is not None else [])
        self._update_learning_rate(optimizers)
        # unchecked: a NaN energy makes the loss NaN, which the one host read after these steps catches
        boltzmann = dataclasses.replace(self.policy.boltzmann, validate=False)

        stats = []
        for _ in range(gradient_steps):
            alpha = self.policy.alpha_tensor  # ()
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = data.discounts if data.discounts is not None else self.gamma

            with torch.no_grad():
                next_e = self.policy.energies(data.next_observations, target=True)  # (B, K)
                if self.double_q:  # the online network's Boltzmann policy, valued by the target network
                    online_next_e = self.policy.energies(data.next_observations)  # (B, K)
                    next_v = boltzmann.policy_value(next_e, online_next_e, alpha=alpha).reshape(-1, 1)  # (B, 1)
                else:
                    next_v = boltzmann.soft_value(next_e, alpha=alpha).reshape(-1, 1)  # α logsumexp(-E'/α): (B, 1)
                target_q = data.rewards + (1 - data.dones) * discounts * next_v  # (B, 1)

            e = self.policy.energies(data.observations)  # (B, K)
            q = -torch.gather(e, dim=1, index=data.actions.long())  # Q = -E at the taken actions: (B, 1)
            loss = F.smooth_l1_loss(q, target_q)

            self.policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.energy_net.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

            entropy = boltzmann.entropy(e.detach(), alpha=alpha)  # (B,), exact
            alpha_loss = self._update_alpha(boltzmann, e.detach(), entropy)
            stats.append(torch.stack([loss.detach(), entropy.mean(), next_v.mean(), alpha, alpha_loss]))

        values = torch.stack(stats).tolist()  # the one host synchronisation of these gradient steps
        for row in values:
            check_finite_loss("SoftDQN loss", row[0], n_updates=self._n_updates)
        cols = np.asarray(values).mean(axis=0)
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", cols[0])
        self.logger.record("train/entropy", cols[1])
        self.logger.record("train/soft_value", cols[2])
        self.logger.record("train/alpha", cols[3])
        if self._alpha_learnt:
            self.logger.record("train/alpha_loss", cols[4])
            self.logger.record("train/target_entropy", self.target_entropy)

    def learn(
        self: SelfSoftDQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "SoftDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfSoftDQN:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "energy_net", "energy_net_target"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer", *self._temperature_save_params()], []
