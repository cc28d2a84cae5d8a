"""Implicit behavioural cloning (Florence et al. 2021): E(s, a) trained by InfoNCE on demonstrations.

The policy is implicit: a(s) = argmin_a E(s, a), found by the derivative-free optimiser or by
gradient descent / Langevin dynamics on the action (``agents.EnergyPolicy``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from agents.energy_policy import EnergyInference, EnergyPolicy
from ebrl._checks import (
    DivergenceError,
    check_energy_output,
    check_finite,
    check_int,
    check_positive,
    resolve_generator,
    seeded_init,
)
from ebrl.energy import StateActionEnergy
from ebrl.losses import info_nce
from ebrl.rl import ActionBox
from ebrl.samplers import Langevin
from ebrl.training import TrainHistory, fit


@dataclass(frozen=True)
class IBCObjective:
    """InfoNCE on [obs, act] rows with counter-examples in the action box: an ``ebrl.training`` objective.

    For each demonstration (s, a*), N counter-examples ã_j ~ U(box) are drawn; with ``langevin`` set
    they are then moved by that sampler (detached), as in the paper's Langevin variant. With
    ``local_fraction`` f > 0, the last round(f·N) of them are instead drawn close to the
    demonstration, ã = clamp(a* + σ·(high - low)·ξ, box) with ξ ~ N(0, I) and σ = ``local_noise``:
    uniform counter-examples in a box rarely land near a*, so they teach where the good region is
    but not where inside it the minimum sits; local ones make the minimum sharp (cheaply, without
    the sampler). They are not importance-corrected, so E is no longer -log π(a|s) up to a constant
    near the data: only its minimisers, which are what the policy uses, are kept. The loss is

        L = info_nce(E(s, a*), E(s, ã_1..N); T) + λ · mean_j max(0, ‖∇_a E(s, ã_j)‖_∞ - M)²,

    the second term being the paper's gradient penalty (λ = ``grad_penalty``, M = ``grad_margin``),
    which keeps the action landscape smooth enough for Langevin inference.

    Args:
        box: the action box of the counter-examples.
        n_negatives: N >= 1 (the paper uses 256).
        temperature: InfoNCE's T > 0.
        langevin: a sampler that refines the counter-examples (``bounds`` should be the box); ``None`` = uniform.
        grad_penalty: λ >= 0; 0 turns the penalty off.
        grad_margin: M >= 0.
        local_fraction: f in [0, 1), the share of counter-examples drawn near the demonstration.
        local_noise: σ > 0, their spread as a fraction of the box's width.
    """

    box: ActionBox
    n_negatives: int = 256
    temperature: float = 1.0
    langevin: Langevin | None = None
    grad_penalty: float = 0.0
    grad_margin: float = 1.0
    local_fraction: float = 0.0
    local_noise: float = 0.05

    def __post_init__(self) -> None:
        if not isinstance(self.box, ActionBox):
            raise TypeError(f"box must be an ActionBox, got {type(self.box).__name__}")
        check_int("n_negatives", self.n_negatives)
        check_positive("temperature", self.temperature)
        if self.langevin is not None and not isinstance(self.langevin, Langevin):
            raise TypeError(f"langevin must be an ebrl.samplers.Langevin or None, got {type(self.langevin).__name__}")
        check_positive("grad_penalty", self.grad_penalty, allow_zero=True)
        check_positive("grad_margin", self.grad_margin, allow_zero=True)
        fraction = check_positive("local_fraction", self.local_fraction, allow_zero=True)
        if fraction >= 1:
            raise ValueError(f"local_fraction must be in [0, 1) (some counter-examples stay uniform), got {fraction}")
        check_positive("local_noise", self.local_noise)

    @property
    def n_local(self) -> int:
        """How many of the ``n_negatives`` counter-examples are drawn near the demonstration."""
        return round(self.local_fraction * self.n_negatives)

    def __call__(
        self, energy: nn.Module, x: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        if not isinstance(energy, StateActionEnergy):
            raise TypeError(f"IBCObjective trains a StateActionEnergy, got {type(energy).__name__}")
        o, a = energy.obs_dim, energy.act_dim
        if a != self.box.dim or x.dim() != 2 or x.shape[1] != o + a:
            raise ValueError(
                f"x must be rows [obs, act] of shape (B, {o} + {a}) with A = box.dim, got {tuple(x.shape)}"
            )
        gen = resolve_generator(generator, x.device)
        b, n = x.shape[0], self.n_negatives
        obs, act = x[:, :o], x[:, o:]  # (B, O), (B, A)
        neg = self.box.uniform((b, n), device=x.device, dtype=x.dtype, generator=gen)  # (B, N, A)
        if self.langevin is not None:
            neg = self.langevin(energy.at(obs.detach(), n), neg.reshape(b * n, a), generator=gen)  # (B*N, A)
            neg = neg.detach().reshape(b, n, a)  # (B*N, A) -> (B, N, A)
        if self.n_local > 0:
            low, high = self.box.tensors(device=x.device, dtype=x.dtype)  # (A,), (A,)
            k = self.n_local
            xi = torch.randn((b, k, a), device=x.device, dtype=x.dtype, generator=gen)  # (B, k, A)
            near = act.detach().unsqueeze(1) + self.local_noise * (high - low) * xi  # (B, 1, A) + (B, k, A)
            neg = torch.cat([neg[:, : n - k], torch.clamp(near, low, high)], dim=1)  # (B, N, A)
        neg.requires_grad_(self.grad_penalty > 0)
        candidates = torch.cat([act.unsqueeze(1), neg], dim=1)  # (B, 1, A) + (B, N, A) -> (B, 1+N, A)
        e = energy.forward(obs, candidates)  # (B, 1+N)
        check_energy_output(e, (b, n + 1), who="StateActionEnergy", input_shape=candidates.shape)
        if not bool(torch.isfinite(e).all()):
            raise DivergenceError("the energy is not finite on the demonstrations or counter-examples")
        loss = info_nce(e[:, 0], e[:, 1:], temperature=self.temperature)
        metrics = {"e_pos": e[:, 0].detach().mean(), "e_neg": e[:, 1:].detach().mean()}
        if self.grad_penalty > 0:
            (grad,) = torch.autograd.grad(e[:, 1:].sum(), neg, create_graph=True)  # (B, N, A)
            penalty = torch.relu(grad.abs().amax(dim=-1) - self.grad_margin).pow(2).mean()
            loss = loss + self.grad_penalty * penalty
            metrics["grad_penalty"] = penalty.detach()
        with torch.no_grad():
            metrics["top1"] = (e.argmin(dim=1) == 0).to(x.dtype).mean()  # fraction of demos ranked first
        return loss, metrics


def _as_rows(name: str, value: np.ndarray | Tensor, width: int, space: spaces.Box) -> Tensor:
    t = torch.as_tensor(np.asarray(value) if not isinstance(value, Tensor) else value)
    if t.dim() != 2 or t.shape[1] != width:
        raise ValueError(f"{name} must have shape (T, {width}) to match {space}, got {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is empty: expected at least one demonstration step, got shape {tuple(t.shape)}")
    return check_finite(name, t.to(torch.float32))


class IBC:
    """Implicit BC: fit E(s, a) by InfoNCE on demonstrations; act with an SB3-compatible ``EnergyPolicy``.

    Example::

        model = IBC(env.observation_space, env.action_space, seed=0)
        model.learn(observations, actions, epochs=100)
        print(evaluate_policy(model.policy, env, n_eval_episodes=100))
        model.policy.save("ibc.pt")              # EnergyPolicy.load("ibc.pt") restores it

    Args:
        observation_space: a gymnasium ``Box``.
        action_space: a 1-D ``Box`` with finite bounds; counter-examples are uniform in it.
        hidden, activation: the energy's MLP (the first layer sees [obs, act]).
        n_negatives: counter-examples per demonstration (the paper uses 256).
        temperature: InfoNCE's temperature.
        train_langevin: refine counter-examples by this Langevin sampler (paper's Langevin variant).
        grad_penalty, grad_margin: the gradient penalty, see ``IBCObjective``.
        local_fraction, local_noise: counter-examples drawn near the demonstrations, see ``IBCObjective``.
        inference: how the policy acts; default: DFO for ``deterministic=True`` and for samples.
        seed: seeds the weights, the minibatch order, the counter-examples and the policy.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        *,
        hidden: Sequence[int] = (256, 256),
        activation: str = "silu",
        n_negatives: int = 256,
        temperature: float = 1.0,
        train_langevin: Langevin | None = None,
        grad_penalty: float = 0.0,
        grad_margin: float = 1.0,
        local_fraction: float = 0.0,
        local_noise: float = 0.05,
        inference: EnergyInference | None = None,
        seed: int | None = None,
    ) -> None:
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)
        inference = EnergyInference(deterministic="dfo", stochastic="dfo") if inference is None else inference
        with seeded_init(self.generator):
            self.policy = EnergyPolicy(
                observation_space, action_space, hidden=tuple(hidden), activation=activation,
                inference=inference, seed=seed,
            )
        self.objective = IBCObjective(
            self.policy.box,
            n_negatives=n_negatives,
            temperature=temperature,
            langevin=train_langevin,
            grad_penalty=grad_penalty,
            grad_margin=grad_margin,
            local_fraction=local_fraction,
            local_noise=local_noise,
        )
        self.optimizer: torch.optim.Optimizer | None = None

    @property
    def energy(self) -> StateActionEnergy:
        return self.policy.energy

    def learn(
        self,
        observations: np.ndarray | Tensor,
        actions: np.ndarray | Tensor,
        *,
        epochs: int = 100,
        batch_size: int = 256,
        lr: float = 1e-3,
        progress_bar: bool = False,
    ) -> TrainHistory:
        """Fit the energy to demonstrations ``observations (T, O)`` and ``actions (T, A)``.

        Raises ``ValueError`` for empty demonstrations, shapes that do not match the spaces, a
        different number of rows, or actions outside the action box. Calling it again continues
        training with the same Adam optimizer.
        """
        obs_space, act_space = self.policy.observation_space, self.policy.action_space
        assert isinstance(obs_space, spaces.Box) and isinstance(act_space, spaces.Box)  # checked at construction
        obs = _as_rows("observations", observations, int(spaces.flatdim(obs_space)), obs_space)
        act = _as_rows("actions", actions, self.policy.box.dim, act_space)
        if obs.shape[0] != act.shape[0]:
            raise ValueError(
                f"observations and actions must have the same number of rows, got {obs.shape[0]} and {act.shape[0]}"
            )
        low, high = self.policy.box.tensors(device=act.device, dtype=act.dtype)
        if not bool(((act >= low - 1e-6) & (act <= high + 1e-6)).all()):
            raise ValueError(f"actions must lie inside the action space {act_space}")
        device = self.policy.device
        if self.optimizer is None:
            self.optimizer = torch.optim.Adam(self.energy.parameters(), lr=check_positive("lr", lr))
        data = torch.cat([obs, act], dim=1).to(device)  # (T, O + A)
        self.policy.set_training_mode(True)
        try:
            return fit(
                self.energy, data, self.objective, epochs=epochs, batch_size=batch_size,
                optimizer=self.optimizer, generator=self.generator, progress_bar=progress_bar,
            )
        finally:
            self.policy.set_training_mode(False)

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``predict``, by the policy (so ``evaluate_policy(model, env)`` works)."""
        return self.policy.predict(observation, state, episode_start, deterministic)

    def save(self, path: str) -> None:
        """Save the policy; ``agents.EnergyPolicy.load(path)`` restores identical predictions."""
        self.policy.save(path)
