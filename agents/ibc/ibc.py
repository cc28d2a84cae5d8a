"""Implicit behavioural cloning (Florence et al. 2021): E(s, a) trained by InfoNCE on demonstrations.

The objective is ``ebrl.training.InfoNCE`` over [obs, act] rows, with counter-examples uniform in
the action box (optionally refined by Langevin, or drawn near the demonstration) and the gradient
penalty.

The policy is implicit: a(s) = argmin_a E(s, a), found by the derivative-free optimiser or by
gradient descent / Langevin dynamics on the action (``agents.EnergyPolicy``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from agents.common import EnergyInference, EnergyPolicy
from ebrl._checks import check_device, check_finite, check_positive, seeded_init
from ebrl.energy import StateActionEnergy, UniformBox
from ebrl.samplers import Langevin
from ebrl.training import InfoNCE, TrainHistory, fit


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
        grad_penalty, grad_margin: the gradient penalty, see ``ebrl.training.InfoNCE``.
        local_fraction, local_noise: counter-examples drawn near the demonstrations, see ``ebrl.training.InfoNCE``.
        device: where the energy trains and acts (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``, or
            ``"auto"``: CUDA when available). The weights are initialised on the CPU from ``seed`` either way; on
            another device training draws from a generator there, seeded from ``seed``.
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
        device: torch.device | str = "cpu",
    ) -> None:
        target = check_device("device", device)
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)
        inference = EnergyInference(deterministic="dfo", stochastic="dfo") if inference is None else inference
        with seeded_init(self.generator):
            self.policy = EnergyPolicy(
                observation_space,
                action_space,
                hidden=tuple(hidden),
                activation=activation,
                inference=inference,
                seed=seed,
            )
        self.policy.to(target)
        if target.type != "cpu":  # fit draws from a generator on the data's device; seeded from the CPU one
            self.generator = torch.Generator(device=target).manual_seed(
                int(torch.randint(2**62, (1,), generator=self.generator)))
        box = self.policy.box
        self.objective = InfoNCE(
            UniformBox(box.low, box.high, device=self.policy.device),
            n_negatives=n_negatives,
            temperature=temperature,
            sampler=train_langevin,
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
                self.energy,
                data,
                self.objective,
                epochs=epochs,
                batch_size=batch_size,
                optimizer=self.optimizer,
                generator=self.generator,
                progress_bar=progress_bar,
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
