"""Policies for SoftDQN: an energy network over discrete actions and its Boltzmann policy."""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
    create_mlp,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import Tensor, nn

from agents.common import PolicyGenerator, check_value_prior
from ebrl.rl import DiscreteBoltzmannPolicy
from ebrl.rl.priors import StatePrior


class ActionEnergyNet(nn.Module):
    """Observation -> the energy of every action, ``(B, K)``; E(s, a) = -Q(s, a).

    Args:
        features_extractor: SB3 features extractor (its own; never shared with the target net).
        n_actions: K.
        net_arch: hidden layer widths.
        activation_fn: the hidden activation.
    """

    def __init__(
        self,
        features_extractor: BaseFeaturesExtractor,
        n_actions: int,
        net_arch: list[int],
        activation_fn: type[nn.Module],
    ) -> None:
        super().__init__()
        self.features_extractor = features_extractor
        self.mlp = nn.Sequential(*create_mlp(features_extractor.features_dim, n_actions, net_arch, activation_fn))

    def forward(self, features: Tensor) -> Tensor:
        return self.mlp(features)  # (B, F) -> (B, K)


class SoftDQNPolicy(BasePolicy):
    """An energy network, its target copy, and the policy π(a|s) ∝ exp(-E(s,a)/α).

    The temperature α is the parameter ``log_alpha`` (fixed or learnt by ``SoftDQN``): the only copy there is.

    ``predict(obs, deterministic=False)`` samples from the Boltzmann policy with the policy's own
    generator (seeded by the algorithm's ``seed``); ``deterministic=True`` takes the lowest-energy
    action.

    Args:
        observation_space, action_space, lr_schedule: as for every SB3 policy.
        net_arch: hidden layer widths; default ``[64, 64]`` as SB3's DQN.
        activation_fn: the hidden activation.
        value_prior: a ``StatePrior`` Φ(s) over the flattened observations, or ``None``. When set, the
            network learns a residual: E(s, a) = E_net(s, a) - Φ(s), i.e. Q = Φ(s) + Q_net (set by
            ``SoftDQN``; pass it there).
        features_extractor_class, features_extractor_kwargs, normalize_images, optimizer_class,
            optimizer_kwargs: as for SB3's ``DQNPolicy``.
    """

    action_space: spaces.Discrete

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
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
        )
        self.boltzmann = DiscreteBoltzmannPolicy()
        self.log_alpha = nn.Parameter(torch.zeros(()), requires_grad=False)
        if isinstance(net_arch, dict):
            raise TypeError(
                f"net_arch must be a list of hidden widths (one network scores all actions, as DQN's), got {net_arch!r}"
            )
        self.net_arch = [64, 64] if net_arch is None else list(net_arch)
        self.activation_fn = activation_fn
        self.rng = PolicyGenerator()
        self.value_prior = check_value_prior(value_prior, observation_space)

        self.energy_net = self.make_energy_net()
        self.energy_net_target = self.make_energy_net()
        self.energy_net_target.load_state_dict(self.energy_net.state_dict())
        self.energy_net_target.requires_grad_(False)
        self.energy_net_target.train(False)
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.energy_net.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def make_energy_net(self) -> ActionEnergyNet:
        return ActionEnergyNet(
            self.make_features_extractor(), int(self.action_space.n), self.net_arch, self.activation_fn
        )

    @property
    def alpha_tensor(self) -> Tensor:
        """α as a detached scalar tensor (no host synchronisation)."""
        return self.log_alpha.detach().exp()

    def energies(self, obs: PyTorchObs, *, target: bool = False) -> Tensor:
        """E(s, a) for every action, ``(B, K)``, from the online or the target network."""
        net = self.energy_net_target if target else self.energy_net
        e = net(self.extract_features(obs, net.features_extractor))  # (B, K)
        if self.value_prior is None:
            return e
        flat = preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images)
        assert isinstance(flat, Tensor), "a value prior needs Box observations (checked at construction)"
        return e - self.value_prior(flat.flatten(1)).unsqueeze(1)  # (B, K) - (B, 1): Q = Φ(s) + Q_net(s, a)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> Tensor:
        e = self.energies(observation)  # (B, K)
        if deterministic:
            return self.boltzmann.mode(e)
        return self.boltzmann.sample(e, alpha=self.alpha_tensor, generator=self.rng.get(e.device))

    def set_training_mode(self, mode: bool) -> None:
        self.energy_net.train(mode)
        self.training = mode

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            value_prior=self.value_prior,
            lr_schedule=self._dummy_schedule,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
            features_extractor_class=self.features_extractor_class,
            features_extractor_kwargs=self.features_extractor_kwargs,
        )
        return data


MlpPolicy = SoftDQNPolicy


class CnnPolicy(SoftDQNPolicy):
    """``SoftDQNPolicy`` on image observations: SB3's ``NatureCNN`` features by default."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space, action_space, lr_schedule, features_extractor_class=features_extractor_class, **kwargs
        )


class MultiInputPolicy(SoftDQNPolicy):
    """``SoftDQNPolicy`` on ``Dict`` observations (e.g. with ``HerReplayBuffer``): SB3's ``CombinedExtractor``."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space, action_space, lr_schedule, features_extractor_class=features_extractor_class, **kwargs
        )
