"""Policies for SoftQ: twin state-action energies, an amortised proposal, and the sampled Boltzmann policy."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import Tensor, nn

from agents.common import PolicyGenerator, check_value_prior
from ebrl._checks import DivergenceError
from ebrl.energy import StateActionEnergy
from ebrl.energy.nets import ACTIVATIONS
from ebrl.rl import ActionBox, ActionSampler, ContinuousBoltzmannPolicy, PolicySample
from ebrl.rl.continuous import ACT_SAMPLER
from ebrl.rl.priors import StateActionPrior, StatePrior

MODE_SEED = 0
"""Seed of the starts of ``deterministic=True`` actions, so they depend on the weights alone."""

MODE_CANDIDATES = 16
"""``predict(deterministic=True)`` with a proposal: the best of its mean and 15 fixed-seed draws."""

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
"""Bounds of the proposal's log standard deviation (before the tanh), as in SB3's SAC."""

INSIDE = 1 - 1e-5
"""The proposal's draws are tanh(z)·INSIDE: a saturated tanh (exactly ±1 in float32) would put a draw on a
wall, where half of every MALA proposal leaves the box and the chain freezes."""

DEFAULT_SAMPLER = ActionSampler(n_particles=16, n_levels=2, n_moves=1)
"""Acting with the proposal: 16 proposal draws importance-resampled towards π, then two MALA moves."""

UNIFORM_SAMPLER = ACT_SAMPLER
"""Acting without a proposal (``amortized=False``): tempered SMC from the uniform box, ``ebrl.rl``'s default."""

PROPOSAL = "proposal"
"""``sampler="proposal"``: act with the amortised proposal alone, as soft Q-learning's amortised sampler does
(Haarnoja et al. 2017): a stochastic action is one draw from q(·|s), a deterministic one its mode tanh(μ(s)).
As cheap as SAC's actor; the actions follow q, the reverse-KL fit to π, rather than π itself."""

Acting = ActionSampler | str
"""What acts: an ``ActionSampler`` (draws from π) or ``PROPOSAL``."""


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
        action_prior: a frozen state-action prior Ψ(s, a) = -E_prior(s, a)/T over the features and the
            scaled actions, or ``None``; when set, each energy is a residual on it,
            E_i(s, a) = E_net,i(s, a) - Ψ(s, a), i.e. Q_i = Ψ + Q_net,i, and the last layer of each E_net,i
            starts at zero, so that the critics start at the prior exactly.
    """

    def __init__(
        self,
        features_extractor: BaseFeaturesExtractor,
        act_dim: int,
        net_arch: list[int],
        activation: str,
        value_prior: StatePrior | None = None,
        action_prior: StateActionPrior | None = None,
    ) -> None:
        super().__init__()
        self.features_extractor = features_extractor
        self.value_prior = value_prior
        dim = features_extractor.features_dim
        self.e1 = StateActionEnergy(dim, act_dim, net_arch, activation=activation)
        self.e2 = StateActionEnergy(dim, act_dim, net_arch, activation=activation)
        self.action_prior = action_prior  # registered after e1, e2: their parameters keep their order
        if action_prior is not None:
            for energy in (self.e1, self.e2):
                last = energy.body[-1]  # the output layer, (H,) -> (1,)
                assert isinstance(last, nn.Linear)
                nn.init.zeros_(last.weight)
                nn.init.zeros_(last.bias)

    def energies(self, features: Tensor, act: Tensor) -> tuple[Tensor, Tensor]:
        """(E1, E2), each ``(B,)`` or ``(B, N)``."""
        e1, e2 = self.e1.forward(features, act), self.e2.forward(features, act)
        if self.action_prior is not None:
            psi = self.action_prior.potential(features, act)  # (B,) or (B, N), unchecked: the loss is checked
            e1, e2 = e1 - psi, e2 - psi  # Q_i = Ψ(s, a) + Q_net,i(s, a)
        if self.value_prior is None:
            return e1, e2
        phi = self.value_prior(features)  # (B,)
        phi = phi.unsqueeze(1) if act.dim() == 3 else phi  # (B,) -> (B, 1), broadcast over N candidates
        return e1 - phi, e2 - phi  # Q_i = Φ(s) + Q_net,i(s, a)

    def forward(self, features: Tensor, act: Tensor) -> Tensor:
        e1, e2 = self.energies(features, act)
        return torch.maximum(e1, e2)


class SquashedGaussianProposal(nn.Module):
    """An amortised sampler with a density: a = tanh(z), z ~ N(μ(s), diag σ(s)²), on the box [-1, 1]^A.

    Trained by ``SoftQ`` to minimise the reverse KL divergence to the Boltzmann policy,
    E_q[α log q(a|s) + E(s, a)] (SAC's actor loss), so that it is a cheap proposal for the Boltzmann policy:
    its draws start the sampler, and its density turns them into an importance-sampled soft value.

    Args:
        features_extractor: the SB3 features extractor it owns.
        act_dim: A.
        net_arch: hidden widths.
        activation: one of ``ebrl.energy.ACTIVATIONS``.
    """

    def __init__(
        self, features_extractor: BaseFeaturesExtractor, act_dim: int, net_arch: list[int], activation: str
    ) -> None:
        super().__init__()
        self.features_extractor = features_extractor
        layers: list[nn.Module] = []
        width = features_extractor.features_dim
        for h in net_arch:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            width = h
        self.body = nn.Sequential(*layers)
        self.mean = nn.Linear(width, act_dim)
        self.log_std = nn.Linear(width, act_dim)

    def params(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """(μ, log σ), each ``(B, A)``."""
        h = self.body(features)  # (B, H)
        return self.mean(h), self.log_std(h).clamp(LOG_STD_MIN, LOG_STD_MAX)

    def rsample(self, features: Tensor, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` reparameterised draws per state ``(B, n, A)`` and their log densities ``(B, n)`` on the box.

        The draws are INSIDE·tanh(z), strictly inside the box; the density accounts for that factor.
        """
        mu, log_std = self.params(features)  # (B, A)
        eps = torch.randn((mu.shape[0], n, mu.shape[1]), generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu[:, None] + log_std.exp()[:, None] * eps  # (B, n, A)
        # log N(z; μ, σ) - Σ log(1 - tanh²z), with log(1 - tanh²z) = 2 (log 2 - z - softplus(-2z)) (stable)
        log_n = -0.5 * eps.square() - log_std[:, None] - 0.5 * math.log(2 * math.pi)  # (B, n, A)
        log_det = 2 * (math.log(2) - z - F.softplus(-2 * z)) + math.log(INSIDE)  # (B, n, A)
        return INSIDE * torch.tanh(z), (log_n - log_det).sum(dim=-1)

    def draw(self, features: Tensor, generator: torch.Generator) -> Tensor:
        """One draw per state, ``(B, A)``, without its density (acting)."""
        mu, log_std = self.params(features)  # (B, A)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return INSIDE * torch.tanh(mu + log_std.exp() * eps)

    def mean_action(self, features: Tensor) -> Tensor:
        """INSIDE·tanh(μ(s)), ``(B, A)``."""
        return INSIDE * torch.tanh(self.params(features)[0])

    def candidates(self, features: Tensor, n: int) -> Tensor:
        """tanh(μ(s)) and ``n - 1`` draws with a fixed seed, ``(B, n, A)``: a function of the weights alone."""
        g = torch.Generator(device=features.device).manual_seed(MODE_SEED)
        draws, _ = self.rsample(features, n - 1, g)  # (B, n-1, A)
        return torch.cat([self.mean_action(features)[:, None], draws], dim=1)


def check_acting(sampler: object, *, amortized: bool) -> None:
    """Refuse a ``sampler`` that is neither an ``ActionSampler`` nor ``"proposal"`` (which needs a proposal)."""
    if isinstance(sampler, ActionSampler):
        return
    if sampler == PROPOSAL:
        if not amortized:
            raise ValueError('sampler="proposal" acts with the proposal network, which needs amortized=True')
        return
    raise TypeError(f'sampler must be an ebrl.rl.ActionSampler or "proposal", got {sampler!r}')


def check_action_prior(
    action_prior: StateActionPrior | None, observation_space: spaces.Space, action_space: spaces.Box
) -> StateActionPrior | None:
    """Require a ``StateActionPrior`` over the flattened observations and the actions (or ``None``); freeze it."""
    if action_prior is None:
        return None
    if not isinstance(action_prior, StateActionPrior):
        raise TypeError(
            f"action_prior must be an ebrl.rl.priors.StateActionPrior or None, got {type(action_prior).__name__}"
        )
    obs_dim, act_dim = int(spaces.flatdim(observation_space)), int(action_space.shape[0])
    if (action_prior.obs_dim, action_prior.act_dim) != (obs_dim, act_dim):
        raise ValueError(
            f"action_prior scores observations of size {action_prior.obs_dim} and actions of size "
            f"{action_prior.act_dim}, but the spaces have sizes {obs_dim} and {act_dim}"
        )
    return action_prior.requires_grad_(False).train(False)


def same_prior(a: nn.Module | None, b: nn.Module | None) -> bool:
    """Whether two priors (``StatePrior`` or ``StateActionPrior``, or ``None``) compute the same function:
    the same type, settings, architecture and weights."""
    if a is None or b is None:
        return a is b
    def settings(m: nn.Module) -> dict[str, object]:
        return {k: v for k, v in vars(m).items()
                if not k.startswith("_") and k != "training" and isinstance(v, (bool, int, float, str, type(None)))}

    if type(a) is not type(b) or settings(a) != settings(b) or repr(a) != repr(b):
        return False
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(
        sa[k].shape == sb[k].shape and torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa
    )


def split_net_arch(net_arch: list[int] | dict[str, list[int]]) -> tuple[list[int], list[int]]:
    """``(critic widths, proposal widths)`` from a list (both) or SAC's ``dict(qf=..., pi=...)``."""
    if isinstance(net_arch, dict):
        if set(net_arch) != {"qf", "pi"}:
            raise ValueError(
                f"net_arch as a dict needs exactly the keys 'qf' (the energies) and 'pi' (the proposal), as SAC's; "
                f"got keys {sorted(net_arch)}"
            )
        return list(net_arch["qf"]), list(net_arch["pi"])
    if not isinstance(net_arch, (list, tuple)) or not all(isinstance(h, int) and h > 0 for h in net_arch):
        raise TypeError(f"net_arch must be a list of positive ints or dict(qf=[...], pi=[...]), got {net_arch!r}")
    return list(net_arch), list(net_arch)


class _BoundProposal:
    """A ``Proposal`` for ``ContinuousBoltzmannPolicy.run``: the proposal network on fixed features."""

    def __init__(self, proposal: SquashedGaussianProposal, features: Tensor) -> None:
        self.proposal, self.features = proposal, features

    def sample(self, obs: Tensor, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            return self.proposal.rsample(self.features, n, generator)


class SoftQPolicy(BasePolicy):
    """Twin energies E_i(s, a) = -Q_i(s, a), their target copies, an amortised proposal, and the policy
    π(a|s) ∝ exp(-max_i E_i(s,a)/α).

    Actions live in SB3's scaled box [-1, 1]^A (``squash_output=True``: ``predict`` maps them back to the
    action space's bounds). ``predict(deterministic=False)`` draws from π with ``sampler``
    (``ebrl.rl.ActionSampler``), started from the proposal network when there is one
    (``amortized=True``) and from the uniform box otherwise, with the policy's own generator (seeded by the
    algorithm's ``seed``). ``deterministic=True`` returns the lowest-energy of the proposal's mean action
    tanh(μ(s)) and 15 draws with a fixed seed (one batched evaluation) or, without a proposal,
    ``ContinuousBoltzmannPolicy.mode`` from candidates drawn with a fixed seed: a function of the weights alone.

    The temperature α is the parameter ``log_alpha`` (fixed or learnt by ``SoftQ``): the only copy there is.

    Args:
        observation_space, action_space, lr_schedule: as for every SB3 policy.
        net_arch: hidden widths of each energy and of the proposal, default ``[256, 256]`` as SB3's SAC; or, as
            for SAC, ``dict(qf=[...], pi=[...])``: ``qf`` for the energies, ``pi`` for the proposal.
        activation: one of ``ebrl.energy.ACTIVATIONS``; default ``"silu"`` (smooth: useful action gradients).
        value_prior: a ``StatePrior`` Φ over the flattened observations, or ``None`` (set by ``SoftQ``;
            pass it there). It needs the default ``FlattenExtractor``.
        action_prior: a ``StateActionPrior`` Ψ over the flattened observations and the scaled actions, or
            ``None`` (set by ``SoftQ``; pass it there). It needs the default ``FlattenExtractor``.
        features_extractor_class, features_extractor_kwargs, normalize_images, optimizer_class,
            optimizer_kwargs: as for SB3's SAC policy.

    ``SoftQ`` sets the sampler and whether there is a proposal with ``configure``.
    """

    action_space: spaces.Box

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation: str = "silu",
        value_prior: StatePrior | None = None,
        action_prior: StateActionPrior | None = None,
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
        self.net_arch = [256, 256] if net_arch is None else net_arch
        self.critic_arch, self.proposal_arch = split_net_arch(self.net_arch)
        self.activation = activation
        self.rng = PolicyGenerator()
        if value_prior is not None and features_extractor_class is not FlattenExtractor:
            raise ValueError("value_prior needs the default FlattenExtractor: Φ is a function of the flat observation")
        self.value_prior = check_value_prior(value_prior, observation_space)
        if action_prior is not None and features_extractor_class is not FlattenExtractor:
            raise ValueError("action_prior needs the default FlattenExtractor: Ψ is a function of the flat observation")
        self.action_prior = check_action_prior(action_prior, observation_space, action_space)
        self.lr_schedule = lr_schedule
        self.log_alpha = nn.Parameter(torch.zeros(()), requires_grad=False)
        self.last_diagnostics: PolicySample | None = None

        self.critic = self.make_critic()
        self.critic_target = self.make_critic()
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.critic_target.train(False)
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.critic.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )
        self.proposal: SquashedGaussianProposal | None = None
        self.proposal_optimizer: torch.optim.Optimizer | None = None
        self.configure(DEFAULT_SAMPLER, amortized=True)

    def configure(self, sampler: Acting, *, amortized: bool) -> None:
        """Set what acts (an ``ActionSampler``, or ``"proposal"``: the proposal network alone), and build (or
        drop) the amortised proposal and its optimiser."""
        check_acting(sampler, amortized=amortized)
        box = ActionBox.symmetric(int(self.action_space.shape[0]))
        self.act_with_proposal = sampler == PROPOSAL
        # with "proposal" the policy object still serves the soft value (its run() takes the value sampler); its
        # own acting sampler is then never used
        acting = sampler if isinstance(sampler, ActionSampler) else ACT_SAMPLER
        self.boltzmann = ContinuousBoltzmannPolicy(box, sampler=acting)
        if amortized and self.proposal is None:
            act_dim = int(self.action_space.shape[0])
            self.proposal = SquashedGaussianProposal(
                self.make_features_extractor(), act_dim, self.proposal_arch, self.activation
            ).to(self.device)
            self.proposal_optimizer = self.optimizer_class(  # type: ignore[call-arg]
                self.proposal.parameters(), lr=self.lr_schedule(1), **self.optimizer_kwargs
            )
        elif not amortized:
            self.proposal, self.proposal_optimizer = None, None

    def load_critic_energy(self, energy: StateActionEnergy) -> None:
        """Copy ``energy``'s weights into both critics and their target copies (a warm start).

        The energy must score SB3's scaled actions in [-1, 1]^A with E = -Q, and have the critics'
        architecture (``policy_kwargs`` ``net_arch`` and ``activation``).
        """
        if not isinstance(energy, StateActionEnergy):
            raise TypeError(f"energy must be an ebrl StateActionEnergy, got {type(energy).__name__}")
        for target in (self.critic.e1, self.critic.e2):
            if target.get_config() != energy.get_config():
                raise ValueError(
                    f"the critic has config {target.get_config()}, this energy {energy.get_config()}; "
                    f"create SoftQ with policy_kwargs net_arch/activation matching the energy"
                )
            target.load_state_dict(energy.state_dict())
        self.critic_target.load_state_dict(self.critic.state_dict())

    @property
    def alpha_tensor(self) -> Tensor:
        """α as a detached scalar tensor (no host synchronisation)."""
        return self.log_alpha.detach().exp()

    def make_critic(self) -> TwinEnergy:
        act_dim = int(self.action_space.shape[0])
        # Each critic owns a copy of Φ: a shared module would be Polyak-averaged with itself, in place.
        prior = None if self.value_prior is None else copy.deepcopy(self.value_prior)
        action_prior = None if self.action_prior is None else copy.deepcopy(self.action_prior)
        return TwinEnergy(
            self.make_features_extractor(), act_dim, self.critic_arch, self.activation, prior, action_prior
        )

    def features(self, obs: PyTorchObs, module: TwinEnergy | SquashedGaussianProposal) -> Tensor:
        """Observation features ``(B, F)`` from ``module``'s features extractor (a critic or the proposal)."""
        return self.extract_features(obs, module.features_extractor)

    def bound_proposal(self, obs: PyTorchObs) -> _BoundProposal | None:
        """The proposal on these observations, for ``ContinuousBoltzmannPolicy.run``; ``None`` without one."""
        if self.proposal is None:
            return None
        return _BoundProposal(self.proposal, self.features(obs, self.proposal))

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> Tensor:
        if self.act_with_proposal:
            return self._predict_proposal(observation, deterministic)
        feats = self.features(observation, self.critic)  # (B, F)
        if deterministic and self.proposal is not None:
            # the lowest-energy of the proposal's mean and draws: one batched evaluation, and it finds the better
            # mode of a multimodal Q, which the mean of a unimodal proposal can miss
            cand = self.proposal.candidates(self.features(observation, self.proposal), MODE_CANDIDATES)  # (B, C, A)
            e = self.critic(feats, cand)  # (B, C)
            return cand[torch.arange(cand.shape[0], device=cand.device), e.argmin(dim=1)]  # (B, A)
        if deterministic:
            starts = torch.Generator(device=feats.device).manual_seed(MODE_SEED)
            return self.boltzmann.mode(self.critic, feats, generator=starts)  # (B, A)
        out = self.boltzmann.run(
            self.critic,
            feats,
            alpha=self.alpha_tensor,
            proposal=self.bound_proposal(observation),
            generator=self.rng.get(feats.device),
        )
        self.last_diagnostics = out
        return out.actions[:, 0]  # (B, 1, A) -> (B, A)

    def _predict_proposal(self, observation: PyTorchObs, deterministic: bool) -> Tensor:
        """An action of the proposal alone, ``(B, A)``: its mode, or one draw with the policy's generator."""
        assert self.proposal is not None  # configure() refuses "proposal" without one
        feats = self.features(observation, self.proposal)  # (B, F)
        if deterministic:
            act = self.proposal.mean_action(feats)  # (B, A)
        else:
            act = self.proposal.draw(feats, self.rng.get(feats.device))  # (B, A)
        if not bool(torch.isfinite(act).all()):  # one host synchronisation; predict reads the action anyway
            raise DivergenceError(
                "SoftQ: the proposal network returned a non-finite action; its weights have diverged "
                "(lower learning_rate or rescale the rewards)"
            )
        self.last_diagnostics = None
        return act

    def set_training_mode(self, mode: bool) -> None:
        self.critic.train(mode)
        if self.proposal is not None:
            self.proposal.train(mode)
        self.training = mode

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            activation=self.activation,
            value_prior=self.value_prior,
            action_prior=self.action_prior,
            lr_schedule=self._dummy_schedule,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
            features_extractor_class=self.features_extractor_class,
            features_extractor_kwargs=self.features_extractor_kwargs,
        )
        return data


MlpPolicy = SoftQPolicy


class CnnPolicy(SoftQPolicy):
    """``SoftQPolicy`` on image observations: SB3's ``NatureCNN`` features by default."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space, action_space, lr_schedule, features_extractor_class=features_extractor_class, **kwargs
        )


class MultiInputPolicy(SoftQPolicy):
    """``SoftQPolicy`` on ``Dict`` observations (e.g. with ``HerReplayBuffer``): SB3's ``CombinedExtractor``."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space, action_space, lr_schedule, features_extractor_class=features_extractor_class, **kwargs
        )
