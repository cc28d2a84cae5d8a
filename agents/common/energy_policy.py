"""``EnergyPolicy``: any trained ebrl state-action energy as a stable-baselines3 policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs
from torch import Tensor

from agents.common.generator import PolicyGenerator
from ebrl._checks import check_int, check_positive
from ebrl.energy import StateActionEnergy
from ebrl.rl import ActionBox, ActionSampler, ContinuousBoltzmannPolicy
from ebrl.rl.continuous import ACT_SAMPLER
from ebrl.rl.dfo import DerivativeFreeOptimizer

MODE_SEED = 0
"""Seed of the candidates of ``deterministic=True`` actions, so they depend on the weights alone."""


@dataclass(frozen=True)
class EnergyInference:
    """How an ``EnergyPolicy`` turns E(s, a) into actions.

    Args:
        deterministic: ``"mode"`` (``ContinuousBoltzmannPolicy.mode``: the best of ``mode_candidates``
            uniform actions refined by gradient descent) or ``"dfo"`` (``DerivativeFreeOptimizer.minimize``).
        stochastic: ``"langevin"`` (a Boltzmann sample π(a|s) ∝ exp(-E/α) drawn by ``sampler``: tempered SMC
            with Metropolis-adjusted Langevin moves) or ``"dfo"`` (one DFO candidate drawn ∝ exp(-E/α)).
        alpha: the temperature α > 0 of the Boltzmann policy (and of the DFO weights).
        sampler: the ``ebrl.rl.ActionSampler`` of ``"langevin"``.
        mode_candidates, mode_starts, mode_steps: ``"mode"`` settings, see ``ContinuousBoltzmannPolicy``.
        dfo_samples, dfo_iters, dfo_noise_scale, dfo_noise_shrink: ``"dfo"`` settings, see
            ``DerivativeFreeOptimizer``.
    """

    deterministic: Literal["mode", "dfo"] = "mode"
    stochastic: Literal["langevin", "dfo"] = "langevin"
    alpha: float = 1.0
    sampler: ActionSampler = ACT_SAMPLER
    mode_candidates: int = 512
    mode_starts: int = 8
    mode_steps: int = 30
    dfo_samples: int = 1024
    dfo_iters: int = 3
    dfo_noise_scale: float = 0.33
    dfo_noise_shrink: float = 0.5

    def __post_init__(self) -> None:
        if self.deterministic not in ("mode", "dfo"):
            raise ValueError(f"deterministic must be 'mode' or 'dfo', got {self.deterministic!r}")
        if self.stochastic not in ("langevin", "dfo"):
            raise ValueError(f"stochastic must be 'langevin' or 'dfo', got {self.stochastic!r}")
        check_positive("alpha", self.alpha)
        if not isinstance(self.sampler, ActionSampler):
            raise TypeError(f"sampler must be an ebrl.rl.ActionSampler, got {type(self.sampler).__name__}")
        check_int("dfo_samples", self.dfo_samples)
        check_int("dfo_iters", self.dfo_iters, minimum=0)

    def boltzmann(self, box: ActionBox) -> ContinuousBoltzmannPolicy:
        return ContinuousBoltzmannPolicy(
            box,
            sampler=self.sampler,
            mode_candidates=self.mode_candidates,
            mode_starts=self.mode_starts,
            mode_steps=self.mode_steps,
        )

    def dfo(self, box: ActionBox) -> DerivativeFreeOptimizer:
        return DerivativeFreeOptimizer(
            box,
            n_samples=self.dfo_samples,
            n_iters=self.dfo_iters,
            noise_scale=self.dfo_noise_scale,
            noise_shrink=self.dfo_noise_shrink,
            temperature=self.alpha,
        )


def _box_of(action_space: spaces.Space, scaled_actions: bool) -> ActionBox:
    if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(f"action_space must be a 1-D gymnasium Box, got {action_space}")
    if scaled_actions:
        return ActionBox.symmetric(int(action_space.shape[0]))
    if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
        raise ValueError(f"action_space must have finite bounds, got {action_space}")
    return ActionBox(tuple(action_space.low.tolist()), tuple(action_space.high.tolist()))


class EnergyPolicy(BasePolicy):
    """A ``stable_baselines3`` policy that acts with a state-action energy E(s, a) (lower = better).

    ``predict(obs, deterministic=True)`` returns the lowest-energy action (``inference.deterministic``);
    ``deterministic=False`` draws from π(a|s) ∝ exp(-E(s,a)/α) (``inference.stochastic``), with the
    policy's own generator seeded by ``seed``. It works with SB3's ``evaluate_policy``, and
    ``save``/``EnergyPolicy.load`` restore identical deterministic predictions (and, with a seed,
    identical stochastic ones from a fresh stream).

    The energy sees flattened observations. With ``scaled_actions=False`` it scores actions in the
    action space's own bounds (as implicit BC trains it); with ``True`` it scores SB3's scaled actions
    in [-1, 1]^A (as ``SoftQ``'s critics do) and ``predict`` maps them back to the bounds.

    Example: evaluate an energy trained by ``ebrl.training.fit(..., InfoNCE(...))``, then warm-start
    ``SoftQ`` with it (on an env whose actions are [-1, 1]^A, e.g. ``ebrl/MultiGoal-v0``)::

        from stable_baselines3.common.evaluation import evaluate_policy
        from agents import EnergyPolicy, SoftQ
        policy = EnergyPolicy.from_energy(energy, env.observation_space, env.action_space, seed=0)
        print(evaluate_policy(policy, env, n_eval_episodes=10))
        policy.save("energy_policy.pt"); policy = EnergyPolicy.load("energy_policy.pt")
        model = SoftQ("MlpPolicy", env, policy_kwargs={"net_arch": list(energy.hidden)}, seed=0)
        policy.warm_start(model)   # copies E into both critics and their targets
        model.learn(10_000)

    Args:
        observation_space: a gymnasium ``Box``.
        action_space: a 1-D gymnasium ``Box`` with finite bounds (any bounds with ``scaled_actions``).
        hidden, activation, spectral_norm: the ``StateActionEnergy`` architecture.
        scaled_actions: whether the energy's actions are SB3's scaled [-1, 1]^A.
        inference: an ``EnergyInference``.
        seed: seed of the stochastic actions; ``None`` draws it from OS entropy.
    """

    action_space: spaces.Box

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        *,
        hidden: tuple[int, ...] | list[int] = (256, 256),
        activation: str = "silu",
        spectral_norm: bool = False,
        scaled_actions: bool = False,
        inference: EnergyInference | None = None,
        seed: int | None = None,
    ) -> None:
        if not isinstance(observation_space, spaces.Box):
            raise ValueError(f"observation_space must be a gymnasium Box, got {observation_space}")
        box = _box_of(action_space, scaled_actions)
        super().__init__(
            observation_space,
            action_space,
            features_extractor=FlattenExtractor(observation_space),
            squash_output=scaled_actions,
        )
        self.box, self.scaled_actions, self.seed = box, bool(scaled_actions), seed
        self.energy = StateActionEnergy(
            self.features_extractor.features_dim,
            box.dim,
            tuple(hidden),
            activation=activation,
            spectral_norm=spectral_norm,
        )
        self.set_inference(EnergyInference() if inference is None else inference)
        self.rng = PolicyGenerator()
        self.rng.reseed(seed)

    def set_inference(self, inference: EnergyInference) -> None:
        """Act with other inference settings from now on (the energy is unchanged)."""
        if not isinstance(inference, EnergyInference):
            raise TypeError(f"inference must be an EnergyInference, got {type(inference).__name__}")
        self.inference = inference
        self.boltzmann = inference.boltzmann(self.box)
        self.dfo = inference.dfo(self.box)

    @classmethod
    def from_energy(
        cls,
        energy: StateActionEnergy,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        *,
        scaled_actions: bool = False,
        inference: EnergyInference | None = None,
        seed: int | None = None,
    ) -> EnergyPolicy:
        """A policy acting with a copy of ``energy``'s weights; its sizes must match the spaces."""
        if not isinstance(energy, StateActionEnergy):
            raise TypeError(f"energy must be an ebrl StateActionEnergy, got {type(energy).__name__}")
        obs_dim = int(spaces.flatdim(observation_space))
        act_dim = int(np.prod(action_space.shape))
        if energy.obs_dim != obs_dim or energy.act_dim != act_dim:
            raise ValueError(
                f"energy scores (obs_dim={energy.obs_dim}, act_dim={energy.act_dim}) but the spaces have "
                f"obs_dim={obs_dim} and act_dim={act_dim}"
            )
        cfg = energy.get_config()
        policy = cls(
            observation_space,
            action_space,
            hidden=tuple(cfg["hidden"]),
            activation=cfg["activation"],
            spectral_norm=cfg["spectral_norm"],
            scaled_actions=scaled_actions,
            inference=inference,
            seed=seed,
        )
        policy.energy.load_state_dict(energy.state_dict())
        params = list(energy.parameters())
        return policy.to(params[0].device) if params else policy

    def features(self, obs: PyTorchObs) -> Tensor:
        """Flattened observations ``(B, O)``."""
        return self.extract_features(obs, self.features_extractor)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> Tensor:
        obs = self.features(observation)  # (B, O)
        if deterministic:
            starts = torch.Generator(device=obs.device).manual_seed(MODE_SEED)
            if self.inference.deterministic == "dfo":
                return self.dfo.minimize(self.energy, obs, generator=starts)  # (B, A)
            return self.boltzmann.mode(self.energy, obs, generator=starts)  # (B, A)
        gen = self.rng.get(obs.device)
        if self.inference.stochastic == "dfo":
            return self.dfo.sample(self.energy, obs, generator=gen)  # (B, A)
        return self.boltzmann.sample(self.energy, obs, alpha=self.inference.alpha, generator=gen)[:, 0]  # (B, A)

    def warm_start(self, model: Any) -> None:
        """Copy this energy into both of ``model``'s critics and their target copies.

        ``SoftQ``'s critics score scaled actions in [-1, 1]^A and use E = -Q, as this policy does with
        ``scaled_actions=True`` (or with an action space that is already [-1, 1]^A). The critics'
        architecture must match: pass ``policy_kwargs={"net_arch": list(hidden), "activation": ...}``.
        """
        load = getattr(getattr(model, "policy", None), "load_critic_energy", None)
        if load is None:
            raise TypeError(
                f"model must be a SoftQ (a model whose policy has load_critic_energy), got {type(model).__name__}"
            )
        unit = bool(np.all(self.action_space.low == -1.0) and np.all(self.action_space.high == 1.0))
        if not (self.scaled_actions or unit):
            raise ValueError(
                "warm_start needs an energy over SB3's scaled actions [-1, 1]^A: build the policy with "
                f"scaled_actions=True, or use an action space that is [-1, 1]^A (got {self.action_space})"
            )
        load(self.energy)

    def set_training_mode(self, mode: bool) -> None:
        self.energy.train(mode)
        self.training = mode

    def _get_constructor_parameters(self) -> dict[str, Any]:
        cfg = self.energy.get_config()
        return {
            "observation_space": self.observation_space,
            "action_space": self.action_space,
            "hidden": tuple(cfg["hidden"]),
            "activation": cfg["activation"],
            "spectral_norm": cfg["spectral_norm"],
            "scaled_actions": self.scaled_actions,
            "inference": self.inference,
            "seed": self.seed,
        }
