"""SoftQ: soft Q-learning (Haarnoja et al. 2017) for Box action spaces, acting by Langevin dynamics."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import polyak_update

from agents.common import check_action_space, check_finite_loss, check_finite_transition
from agents.softq.policies import MlpPolicy, SoftQPolicy, TwinEnergy
from ebrl._checks import check_int, check_positive
from ebrl.rl.priors import StatePrior

SelfSoftQ = TypeVar("SelfSoftQ", bound="SoftQ")

_POLICY_SETTINGS = (
    "alpha",
    "langevin_steps",
    "langevin_step_size",
    "langevin_grad_clip",
    "n_proposals",
    "mode_candidates",
    "mode_starts",
    "mode_steps",
    "value_prior",
)


class SoftQ(OffPolicyAlgorithm):
    """Soft Q-learning for ``Box`` action spaces, with twin critics and a Langevin-sampled policy.

    Two energies E_i(s, a) = -Q_i(s, a) are trained on the soft Bellman target of their Polyak-averaged
    copies; there is no actor network. With a_j ~ U[-1, 1]^D (SB3's scaled action box), j = 1..M,

        V'(s') = α [logsumexp_j(-max_i E'_i(s', a_j)/α) - log M + D log 2]      (importance sampling)
        y      = reward_scale · r + γ (1 - done) V'(s'),     loss = ½ Σ_i (Q_i(s, a) - y)²,

    and the agent acts by sampling π(a|s) ∝ exp(-max_i E_i(s, a)/α): a chain starts at one of
    ``n_proposals`` uniform candidates drawn ∝ exp(-E/α) and takes ``langevin_steps`` Langevin steps
    (``ebrl.rl.ContinuousBoltzmannPolicy``). Only α/reward_scale shapes the optimal policy: set
    α directly (``reward_scale=1``) or, as in Haarnoja et al.'s code, fix α = 1 and set a reward
    scale. Hyperparameters not listed are SB3's ``SAC``'s, with the same defaults.

    Args:
        alpha: the temperature α > 0.
        reward_scale: multiplies the rewards in the target, > 0.
        n_value_samples: M, uniform actions per next state in the soft-value estimate.
        langevin_steps: Langevin steps per action when acting.
        langevin_step_size: the step size of ``ebrl.samplers.Langevin`` (temperature α) in the scaled box.
        langevin_grad_clip: clamp each element of ∇_a E to [-c, c] while sampling; ``None`` = off.
        n_proposals: uniform candidates per action for the importance-resampled chain start; 0 starts
            chains uniformly in the box.
        mode_candidates, mode_starts, mode_steps: ``predict(deterministic=True)`` scores
            ``mode_candidates`` uniform actions, refines the best ``mode_starts`` by ``mode_steps``
            steps of gradient descent and returns the lowest-energy one.
        value_prior: a potential Φ(s) (``ebrl.rl.priors.StatePrior``) on the flattened observations, or
            ``None``. Both critics then learn a residual on top of it, Q_i(s, a) = Φ(s) + Q_net,i(s, a):
            the same as starting Q at Φ, which by Wiewiora (2003) learns as shaping with Φ does.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy}
    policy: SoftQPolicy
    critic: TwinEnergy
    critic_target: TwinEnergy

    def __init__(
        self,
        policy: str | type[SoftQPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        alpha: float = 1.0,
        reward_scale: float = 1.0,
        n_value_samples: int = 16,
        langevin_steps: int = 8,
        langevin_step_size: float = 0.01,
        langevin_grad_clip: float | None = None,
        n_proposals: int = 32,
        mode_candidates: int = 256,
        mode_starts: int = 4,
        mode_steps: int = 20,
        value_prior: StatePrior | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: torch.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        check_positive("alpha", alpha)
        check_positive("reward_scale", reward_scale)
        check_int("n_value_samples", n_value_samples)
        clash = sorted(set(policy_kwargs or {}) & set(_POLICY_SETTINGS))
        if clash:
            raise ValueError(f"pass {clash} to SoftQ(...) directly, not in policy_kwargs")
        env = check_action_space(env, algo="SoftQ", expected=spaces.Box, verbose=verbose)
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
            action_noise,
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
            supported_action_spaces=(spaces.Box,),
            support_multi_env=True,
        )
        self.alpha = alpha
        self.reward_scale = reward_scale
        self.n_value_samples = n_value_samples
        self.policy_kwargs = {
            **self.policy_kwargs,
            "alpha": alpha,
            "langevin_steps": langevin_steps,
            "langevin_step_size": langevin_step_size,
            "langevin_grad_clip": langevin_grad_clip,
            "n_proposals": n_proposals,
            "mode_candidates": mode_candidates,
            "mode_starts": mode_starts,
            "mode_steps": mode_steps,
        }
        if value_prior is not None:
            self.policy_kwargs["value_prior"] = value_prior
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        self.critic = self.policy.critic
        self.critic_target = self.policy.critic_target
        self.policy.rng.reseed(self.seed)

    def set_random_seed(self, seed: int | None = None) -> None:
        """Seed SB3's generators and, once the policy exists, the policy's sampling generator."""
        super().set_random_seed(seed)
        if seed is not None and getattr(self, "policy", None) is not None:
            self.policy.rng.reseed(seed)

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

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        boltzmann = self.policy.boltzmann
        generator = self.policy.rng.get(self.device)

        critic_losses, soft_values = [], []
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = data.discounts if data.discounts is not None else self.gamma

            with torch.no_grad():
                next_obs = self.policy.features(data.next_observations, self.critic_target)  # (B, F)
                next_v = boltzmann.soft_value(
                    self.critic_target, next_obs, n_samples=self.n_value_samples, generator=generator
                ).reshape(-1, 1)  # (B,) -> (B, 1)
                target_q = self.reward_scale * data.rewards + (1 - data.dones) * discounts * next_v  # (B, 1)

            obs = self.policy.features(data.observations, self.critic)  # (B, F)
            e1, e2 = self.critic.energies(obs, data.actions)  # (B,), (B,)
            target = target_q.reshape(-1)  # (B, 1) -> (B,)
            critic_loss = 0.5 * (F.mse_loss(-e1, target) + F.mse_loss(-e2, target))  # Q_i = -E_i

            self.policy.optimizer.zero_grad()
            critic_loss.backward()
            self.policy.optimizer.step()

            polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)

            loss_value, soft_value = torch.stack([critic_loss.detach(), next_v.mean()]).tolist()  # one host sync
            critic_losses.append(check_finite_loss("SoftQ critic loss", loss_value, n_updates=self._n_updates))
            soft_values.append(soft_value)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        self.logger.record("train/soft_value", np.mean(soft_values))
        self.logger.record("train/alpha", self.alpha)
        self.logger.record("train/reward_scale", self.reward_scale)

    def learn(
        self: SelfSoftQ,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "SoftQ",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfSoftQ:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "critic", "critic_target"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []
