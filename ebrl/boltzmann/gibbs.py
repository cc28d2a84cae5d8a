"""Gibbs sampling of Boltzmann models as an ebrl sampler."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ebrl._checks import check_int
from ebrl.boltzmann.base import BoltzmannModel
from ebrl.energy.base import EnergyFn
from ebrl.samplers.base import Sampler, prepare, raise_if_diverged


@dataclass(frozen=True)
class Gibbs(Sampler):
    """Gibbs sampling of a ``BoltzmannModel``: ``n_steps`` sweeps of ``model.gibbs_step``.

    For an RBM a sweep is one block-Gibbs step v → h → v' (all hidden units at once given v,
    then all visible units given h), which is valid because each layer is conditionally
    independent given the other. For a fully connected ``BoltzmannMachine`` it is a sequential
    sweep over single units, the only valid schedule on a complete graph. Chains are the batch
    dimension and the loop makes no host synchronisation; the states are checked once, after it.

    ``trace`` records the free energy F(v) of every state (``(n_steps + 1, B)``, from ``v0``) and
    an acceptance rate of one (Gibbs moves are always accepted).

    Example::

        v = Gibbs(n_steps=1000)(rbm, torch.zeros(64, rbm.n_visible), generator=g)  # (64, V)

    Args:
        n_steps: Gibbs sweeps, >= 1.
    """

    n_steps: int = 1

    def __post_init__(self) -> None:
        check_int("n_steps", self.n_steps)

    def _run(
        self, energy: EnergyFn, x0: Tensor, *, generator: torch.Generator | None, record: bool
    ) -> tuple[Tensor, list[Tensor] | None, Tensor | None]:
        if not isinstance(energy, BoltzmannModel):
            raise TypeError(
                f"Gibbs samples a BoltzmannModel (BernoulliRBM, GaussianBernoulliRBM, BoltzmannMachine), "
                f"got {type(energy).__name__}"
            )
        model = energy
        _, v, gen = prepare(model, x0, generator)  # checks x0's shape against the model's event_shape
        p = next(model.parameters())
        if (v.device, v.dtype) != (p.device, p.dtype):
            raise ValueError(
                f"x0 is {v.dtype} on {v.device} but the model is {p.dtype} on {p.device}; move one to the other"
            )
        with torch.no_grad():
            energies = [model.forward(v)] if record else None
            for _ in range(self.n_steps):
                v = model.gibbs_step(v, generator=gen)
                if energies is not None:
                    energies.append(model.forward(v))
        sentinels = [e.sum() for e in energies] if energies is not None else [torch.zeros((), device=v.device)]
        raise_if_diverged(
            "Gibbs", sentinels, n_steps=self.n_steps, final=v, allow_pos_inf=False,
            hint="Check the model's parameters for NaN or inf.",
        )
        accepted = torch.ones(v.shape[0], device=v.device, dtype=v.dtype) if record else None
        return v, energies, accepted
