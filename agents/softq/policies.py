"""Policies for SoftQ: twin state-action energies and the Langevin-sampled Boltzmann policy."""

from __future__ import annotations

import copy
from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import Tensor, nn

from agents.common import PolicyGenerator
from agents.softdqn.policies import check_value_prior
from ebrl.energy import StateActionEnergy
from ebrl.rl import ActionBox, ContinuousBoltzmannPolicy
from ebrl.rl.priors import StatePrior

MODE_SEED = 0
"""Seed of the starts of ``deterministic=True`` actions, so they depend on the weights alone."""


class TwinEnergy(nn.Module):
    """Two state-action energies on one features extractor; the pessimistic energy is their maximum.

    ``forward(features (B, F), act (B, A) or (B, N, A))`` returns max(E1, E2) = -min(Q1, Q2) of shape
    ``(B,)`` or ``(B, N)``: the energy that both the policy and the soft value use.

    Args:
        features_extractor: SB3 features extractor owned by this pair.
        act_dim: A.
        net_arch: hidden widths of each energy.
        activation: one of ``ebrl.energy.ACTIVATIONS`` (smooth ones give Langevin useful gradients).
        value_prior: a frozen potential Φ over the features (the flattened observations), or ``None``;
            when set, each energy is a residual: E_i(s, a) = E_net,i(s, a) - Φ(s).
    """

    def __init__(
        self,
        features_extractor: BaseFeaturesExtractor,
        act_dim: int,
        net_arch: list[int],
        activation: str,
        value_prior: StatePrior | None = None,
    ) -> None:
        super().__init__()
        self.features_extractor = features_extractor
        self.value_prior = value_prior
        dim = features_extractor.features_dim
        self.e1 = StateActionEnergy(dim, act_dim, net_arch, activation=activation)
        self.e2 = StateActionEnergy(dim, act_dim, net_arch, activation=activation)

    def energies(self, features: Tensor, act: Tensor) -> tuple[Tensor, Tensor]:
        """(E1, E2), each ``(B,)`` or ``(B, N)``."""
        e1, e2 = self.e1.forward(features, act), self.e2.forward(features, act)
        if self.value_prior is None:
            return e1, e2
        phi = self.value_prior(features)  # (B,)
        phi = phi.unsqueeze(1) if act.dim() == 3 else phi  # (B,) -> (B, 1), broadcast over N candidates
        return e1 - phi, e2 - phi  # Q_i = Φ(s) + Q_net,i(s, a)

    def forward(self, features: Tensor, act: Tensor) -> Tensor:
        e1, e2 = self.energies(features, act)
        return torch.maximum(e1, e2)


class SoftQPolicy(BasePolicy):
    """Twin energies E_i(s, a) = -Q_i(s, a), their target copies, and π(a|s) ∝ exp(-max_i E_i(s,a)/α).

    Actions live in SB3's scaled box [-1, 1]^A (``squash_output=True``: ``predict`` maps them back
    to the action space's bounds). ``predict(deterministic=False)`` starts a chain at one of
    ``n_proposals`` uniform candidates drawn ∝ exp(-E/α) and runs ``langevin_steps`` Langevin steps,
    with the policy's own generator (seeded by the algorithm's ``seed``). ``deterministic=True``
    returns the lowest-energy end point of gradient descent from the best ``mode_starts`` of
    ``mode_candidates`` candidates drawn with a fixed seed: a function of the weights alone.

    Args:
        observation_space, action_space, lr_schedule: as for every SB3 policy.
        alpha, langevin_steps, langevin_step_size, langevin_grad_clip, n_proposals, mode_candidates,
            mode_starts, mode_steps: set by ``SoftQ`` (pass them there, not in ``policy_kwargs``);
            see ``SoftQ`` and ``ebrl.rl.ContinuousBoltzmannPolicy``.
        net_arch: hidden widths of each energy; default ``[256, 256]`` as SB3's SAC.
        activation: one of ``ebrl.energy.ACTIVATIONS``; default ``"silu"``.
        value_prior: a ``StatePrior`` Φ over the flattened observations, or ``None`` (set by ``SoftQ``;
            pass it there). It needs the default ``FlattenExtractor``.
        features_extractor_class, features_extractor_kwargs, normalize_images, optimizer_class,
            optimizer_kwargs: as for SB3's SAC policy.
    """

    action_space: spaces.Box

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        alpha: float = 1.0,
        langevin_steps: int = 8,
        langevin_step_size: float = 0.01,
        langevin_grad_clip: float | None = None,
        n_proposals: int = 32,
        mode_candidates: int = 256,
        mode_starts: int = 4,
        mode_steps: int = 20,
        net_arch: list[int] | None = None,
        activation: str = "silu",
        value_prior: StatePrior | None = None,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[torch.optim.Optimizer] = torch.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor_class,
            features_extractor_kwargs,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=normalize_images,
            squash_output=True,
        )
        self.boltzmann = ContinuousBoltzmannPolicy(
            ActionBox.symmetric(int(action_space.shape[0])),
            alpha=alpha,
            step_size=langevin_step_size,
            n_steps=langevin_steps,
            grad_clip=langevin_grad_clip,
            n_proposals=n_proposals,
            mode_candidates=mode_candidates,
            mode_starts=mode_starts,
            mode_steps=mode_steps,
        )
        self.net_arch = [256, 256] if net_arch is None else list(net_arch)
        self.activation = activation
        self.rng = PolicyGenerator()
        if value_prior is not None and features_extractor_class is not FlattenExtractor:
            raise ValueError("value_prior needs the default FlattenExtractor: Φ is a function of the flat observation")
        self.value_prior = check_value_prior(value_prior, observation_space)

        self.critic = self.make_critic()
        self.critic_target = self.make_critic()
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.critic_target.train(False)
        self.optimizer = self.optimizer_class(self.critic.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def make_critic(self) -> TwinEnergy:
        act_dim = int(self.action_space.shape[0])
        # Each critic owns a copy of Φ: a shared module would be Polyak-averaged with itself, in place.
        prior = None if self.value_prior is None else copy.deepcopy(self.value_prior)
        return TwinEnergy(self.make_features_extractor(), act_dim, self.net_arch, self.activation, prior)

    def features(self, obs: PyTorchObs, critic: TwinEnergy) -> Tensor:
        """Observation features ``(B, F)`` from ``critic``'s features extractor."""
        return self.extract_features(obs, critic.features_extractor)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> Tensor:
        feats = self.features(observation, self.critic)  # (B, F)
        if deterministic:
            starts = torch.Generator(device=feats.device).manual_seed(MODE_SEED)
            return self.boltzmann.mode(self.critic, feats, generator=starts)  # (B, A)
        act = self.boltzmann.sample(self.critic, feats, n=1, generator=self.rng.get(feats.device))  # (B, 1, A)
        return act[:, 0]  # (B, 1, A) -> (B, A)

    def set_training_mode(self, mode: bool) -> None:
        self.critic.train(mode)
        self.training = mode

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        pi = self.boltzmann
        data.update(
            alpha=pi.alpha,
            langevin_steps=pi.n_steps,
            langevin_step_size=pi.step_size,
            langevin_grad_clip=pi.grad_clip,
            n_proposals=pi.n_proposals,
            mode_candidates=pi.mode_candidates,
            mode_starts=pi.mode_starts,
            mode_steps=pi.mode_steps,
            net_arch=self.net_arch,
            activation=self.activation,
            value_prior=self.value_prior,
            lr_schedule=self._dummy_schedule,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
            features_extractor_class=self.features_extractor_class,
            features_extractor_kwargs=self.features_extractor_kwargs,
        )
        return data


MlpPolicy = SoftQPolicy
