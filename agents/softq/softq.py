"""SoftQ: soft Q-learning (Haarnoja et al. 2017) for Box action spaces, acting by sampling its Boltzmann policy."""

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
from stable_baselines3.common.utils import get_parameters_by_name, polyak_update

from agents.common import LearntTemperature, check_action_space, check_finite_loss, check_finite_transition
from agents.sb3_checks import check_env
from agents.softq.policies import (
    DEFAULT_SAMPLER,
    UNIFORM_SAMPLER,
    Acting,
    CnnPolicy,
    MlpPolicy,
    MultiInputPolicy,
    SoftQPolicy,
    TwinEnergy,
    check_acting,
    same_prior,
)
from ebrl._checks import DivergenceError, check_positive
from ebrl.rl import ActionSampler
from ebrl.rl.priors import StateActionPrior, StatePrior

SelfSoftQ = TypeVar("SelfSoftQ", bound="SoftQ")

_POLICY_SETTINGS = ("sampler", "value_sampler", "amortized", "alpha", "value_prior", "action_prior")

DEFAULT_VALUE_SAMPLER = ActionSampler(n_particles=8, n_levels=1, n_moves=0)
"""The soft value of the TD target with the proposal: importance sampling from 8 proposal draws."""

UNIFORM_VALUE_SAMPLER = ActionSampler(n_particles=16, n_levels=4, n_moves=1)
"""The soft value of the TD target without a proposal (``amortized=False``): a short tempered SMC run."""


class SoftQ(LearntTemperature, OffPolicyAlgorithm):
    """Soft Q-learning for ``Box`` action spaces: twin energies, an amortised proposal, a sampled Boltzmann policy.

    Two energies E_i(s, a) = -Q_i(s, a) are trained on the soft Bellman target of their Polyak-averaged copies.
    The policy is the Boltzmann distribution of the pessimistic energy E = max_i E_i on SB3's scaled box
    [-1, 1]^A; there is no actor that *is* the policy. Instead (``amortized=True``, the default) a proposal
    network q(a|s), a tanh-squashed Gaussian, is trained to follow π by minimising the reverse KL divergence
    E_q[α log q + E] (SAC's actor loss). It serves three ways:

    - the soft value of the target is importance-sampled from it, with a_j ~ q(·|s'), j = 1..M::

          V'(s') = α [logsumexp_j(-E'(s', a_j)/α - log q(a_j|s')) - log M]
          y      = reward_scale · r + γ (1 - done) V'(s'),     loss = ½ Σ_i (Q_i(s, a) - y)²,

      which is unbiased for exp(V'/α) and, for M = 1, SAC's target; larger M tightens it towards the true soft
      value of the energy rather than of the proposal;
    - acting (``predict(deterministic=False)``) draws from π itself: ``sampler`` importance-resamples
      proposal draws towards π and moves them by MALA (``ebrl.rl.ActionSampler``);
    - ``predict(deterministic=True)`` is the lowest-energy of the proposal's mean and 15 fixed-seed draws.

    With ``amortized=False`` there is no proposal (the soft Q-learning of Haarnoja et al. 2017, with a better
    soft value): acting is tempered SMC from the uniform box, and the soft value of the target a short tempered
    SMC run (``value_sampler``); slower, and the estimate degrades in many action dimensions.

    The temperature is SAC's: ``alpha="auto"`` learns it so that the policy's entropy (estimated by the
    same importance sampling as the soft value) tracks ``target_entropy``, by default -A (SAC's default, in
    the same scaled box). Hyperparameters not listed are SB3's ``SAC``'s, with the same defaults.

    Args:
        alpha: the temperature α: a float > 0 (fixed), ``"auto"`` (learnt from 1) or ``"auto_<init>"``.
            Setting ``model.alpha`` later, or ``SoftQ.load(path, alpha=...)``, changes what the policy samples.
        target_entropy: H̄ for a learnt α, in nats on the scaled box; ``"auto"`` = -A.
        reward_scale: multiplies the rewards in the target, > 0 (only α/reward_scale shapes the policy).
        amortized: train a proposal network and sample from it (see above).
        sampler: what acts: an ``ActionSampler`` drawing from π, default ``DEFAULT_SAMPLER`` with a proposal,
            tempered SMC from the uniform box (``ActionSampler()``) without; or ``"proposal"``: the proposal
            network alone, as soft Q-learning's amortised sampler (one draw of q, or its mode tanh(μ) when
            deterministic): as fast as SAC's actor, but its actions follow q, a unimodal fit to π.
        value_sampler: the ``ActionSampler`` of the target's soft value and of the entropy estimate; default
            ``DEFAULT_VALUE_SAMPLER`` (8 proposal draws, importance sampling) or, without a proposal,
            ``UNIFORM_VALUE_SAMPLER``.
        value_prior: a potential Φ(s) (``ebrl.rl.priors.StatePrior``) on the flattened observations, or
            ``None``. Both critics then learn a residual on top of it, Q_i(s, a) = Φ(s) + Q_net,i(s, a):
            the same as starting Q at Φ, which by Wiewiora (2003) learns as shaping with Φ does.
        action_prior: a state-action prior Ψ(s, a) = -E_prior(s, a)/T (``ebrl.rl.priors.StateActionPrior``,
            e.g. an implicit-BC energy trained on demonstrations) on the flattened observations and the
            scaled actions in [-1, 1]^A, or ``None``. Both critics, and their target copies, then learn a
            residual on it, Q_i(s, a) = Ψ(s, a) + Q_net,i(s, a), with Q_net,i's output layer started at zero,
            so the critics start at Ψ and the policy at π ∝ exp(Ψ/α) (the prior's own Boltzmann policy when
            T = 1/α). Ψ is frozen: no gradient reaches it and the Polyak averaging leaves it as it is. It is
            saved with the model; ``SoftQ.load(path, action_prior=...)`` refuses a prior other than the
            saved one. Both priors may be given: Q_i = Φ(s) + Ψ(s, a) + Q_net,i(s, a).
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
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
        alpha: float | str = "auto",
        target_entropy: float | str = "auto",
        reward_scale: float = 1.0,
        amortized: bool = True,
        sampler: Acting | None = None,
        value_sampler: ActionSampler | None = None,
        value_prior: StatePrior | None = None,
        action_prior: StateActionPrior | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: torch.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        self._init_temperature(alpha, target_entropy)
        check_positive("reward_scale", reward_scale)
        if not isinstance(amortized, bool):
            raise TypeError(f"amortized must be a bool, got {type(amortized).__name__}")
        if sampler is not None:
            check_acting(sampler, amortized=amortized)
        if value_sampler is not None and not isinstance(value_sampler, ActionSampler):
            got = type(value_sampler).__name__
            raise TypeError(f"value_sampler must be an ebrl.rl.ActionSampler or None, got {got}")
        clash = sorted(set(policy_kwargs or {}) & set(_POLICY_SETTINGS))
        if clash:
            raise ValueError(f"pass {clash} to SoftQ(...) directly, not in policy_kwargs")
        env = check_action_space(env, algo="SoftQ", expected=spaces.Box, verbose=verbose)
        check_env(env, replay_buffer_class, algo="SoftQ")
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
        self.reward_scale = reward_scale
        self.amortized = amortized
        self.sampler = sampler if sampler is not None else (DEFAULT_SAMPLER if amortized else UNIFORM_SAMPLER)
        default_value = DEFAULT_VALUE_SAMPLER if amortized else UNIFORM_VALUE_SAMPLER
        self.value_sampler = value_sampler if value_sampler is not None else default_value
        if value_prior is not None:
            self.policy_kwargs["value_prior"] = value_prior
        if action_prior is not None:
            self.policy_kwargs["action_prior"] = action_prior
        if _init_setup_model:
            self._setup_model()

    def _auto_target_entropy(self) -> float:
        assert isinstance(self.action_space, spaces.Box)
        return -float(np.prod(self.action_space.shape))

    def _setup_model(self) -> None:
        super()._setup_model()
        self.policy.configure(self.sampler, amortized=self.amortized)
        self.critic = self.policy.critic
        self.critic_target = self.policy.critic_target
        trainable = [name for name, p in self.critic.named_parameters() if p.requires_grad]  # not a frozen prior
        self.critic_params = [self.critic.get_parameter(name) for name in trainable]
        # the Polyak averaging skips the frozen priors: averaging equal weights would still round them
        self.critic_target_params = [self.critic_target.get_parameter(name) for name in trainable]
        # running statistics (batch norm) are copied to the target, as SAC does: they are buffers, not parameters
        self.batch_norm_stats = get_parameters_by_name(self.critic, ["running_"])
        self.batch_norm_stats_target = get_parameters_by_name(self.critic_target, ["running_"])
        self.policy.rng.reseed(self.seed)
        self._setup_temperature()

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
        optimizers = [self.policy.optimizer]
        if self.policy.proposal_optimizer is not None:
            optimizers.append(self.policy.proposal_optimizer)
        if self.alpha_optimizer is not None:
            optimizers.append(self.alpha_optimizer)
        self._update_learning_rate(optimizers)
        boltzmann = self.policy.boltzmann
        proposal = self.policy.proposal
        generator = self.policy.rng.get(self.device)

        stats = []
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = data.discounts if data.discounts is not None else self.gamma
            alpha = self.policy.alpha_tensor  # ()

            with torch.no_grad():
                next_obs = self.policy.features(data.next_observations, self.critic_target)  # (B, F)
                nxt = boltzmann.run(
                    self.critic_target,
                    next_obs,
                    alpha=alpha,
                    sampler=self.value_sampler,
                    proposal=self.policy.bound_proposal(data.next_observations),
                    generator=generator,
                    check=False,  # folded into this step's one synchronisation below
                )
                next_v = (alpha * nxt.log_z).reshape(-1, 1)  # (B,) -> (B, 1)
                target_q = self.reward_scale * data.rewards + (1 - data.dones) * discounts * next_v  # (B, 1)

            obs = self.policy.features(data.observations, self.critic)  # (B, F)
            e1, e2 = self.critic.energies(obs, data.actions)  # (B,), (B,)
            target = target_q.reshape(-1)  # (B, 1) -> (B,)
            critic_loss = 0.5 * (F.mse_loss(-e1, target) + F.mse_loss(-e2, target))  # Q_i = -E_i

            self.policy.optimizer.zero_grad()
            critic_loss.backward()
            self.policy.optimizer.step()

            proposal_loss = torch.zeros((), device=self.device)
            if proposal is not None and self.policy.proposal_optimizer is not None:
                feats = self.policy.features(data.observations, proposal)  # (B, F)
                act, log_q = proposal.rsample(feats, 1, generator)  # (B, 1, A), (B, 1)
                for p in self.critic_params:  # the gradient flows to the action only: no critic weight gradients
                    p.requires_grad_(False)
                e = self.critic(obs.detach(), act)  # (B, 1): max_i E_i
                proposal_loss = (alpha * log_q + e).mean()  # reverse KL to π, times α (SAC's actor loss)
                self.policy.proposal_optimizer.zero_grad()
                proposal_loss.backward()
                for p in self.critic_params:
                    p.requires_grad_(True)
                self.policy.proposal_optimizer.step()

            alpha_loss = self._temperature_step(nxt.entropy)

            polyak_update(self.critic_params, self.critic_target_params, self.tau)
            polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

            d = nxt.diagnostics
            stats.append(
                torch.stack(
                    [
                        critic_loss.detach(),
                        proposal_loss.detach(),
                        alpha_loss,
                        next_v.mean(),
                        nxt.entropy.mean(),
                        d.ess.mean(),
                        alpha,
                        nxt.diverged.to(alpha.dtype),
                    ]
                )
            )

        values = torch.stack(stats).tolist()  # the one host synchronisation of these gradient steps
        for row in values:
            check_finite_loss("SoftQ critic loss", row[0], n_updates=self._n_updates)
            check_finite_loss("SoftQ proposal loss", row[1], n_updates=self._n_updates)
        if any(row[7] for row in values):
            raise DivergenceError(
                f"SoftQ: the target critic's energy was NaN or -inf at a sampled next action (gradient update "
                f"{self._n_updates}); lower learning_rate or rescale the rewards"
            )
        cols = np.asarray(values).mean(axis=0)
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/critic_loss", cols[0])
        if proposal is not None:
            self.logger.record("train/proposal_loss", cols[1])
        if self.alpha_optimizer is not None:
            self.logger.record("train/alpha_loss", cols[2])
        self.logger.record("train/soft_value", cols[3])
        self.logger.record("train/entropy", cols[4])
        self.logger.record("train/target_entropy", self.target_entropy)
        self.logger.record("train/value_ess", cols[5])
        self.logger.record("train/alpha", cols[6])
        self.logger.record("train/reward_scale", self.reward_scale)
        last = self.policy.last_diagnostics
        if last is not None and last.summary is not None:  # the acting sampler's last call, read in its own sync
            for name, value in last.summary.items():
                self.logger.record(f"sampler/{name}", value)

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

    @classmethod
    def load(
        cls: type[SelfSoftQ],
        path: Any,
        env: GymEnv | None = None,
        device: torch.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfSoftQ:
        """SB3's ``load``. The priors are saved with the model; ``value_prior=`` or ``action_prior=`` given here
        must be the saved ones (same settings and weights), else ``ValueError``: a prior is part of what the
        critics learnt, so another one cannot be swapped in."""
        given = {name: kwargs.pop(name) for name in ("value_prior", "action_prior") if name in kwargs}
        model = super().load(
            path,
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **kwargs,
        )
        for name, prior in given.items():
            saved = getattr(model.policy, name)
            if not same_prior(saved, prior):
                what = "no prior" if saved is None else f"a different {type(saved).__name__} ({saved!r})"
                raise ValueError(
                    f"{name}: the model in {path!r} was trained with {what}, not the {name} given "
                    f"({prior!r}); its critics are residuals on the saved prior. Load without {name}= to use "
                    f"the saved one, or train a new SoftQ with this prior"
                )
        return model

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "critic", "critic_target", "critic_params", "critic_target_params"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        names = ["policy", "policy.optimizer"]
        if self.policy.proposal_optimizer is not None:
            names.append("policy.proposal_optimizer")
        return names + self._temperature_save_params(), []
