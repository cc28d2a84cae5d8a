"""``GibbsCD``: CD-k and PCD for Boltzmann machines as an ``ebrl.training`` objective that writes its own gradients."""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
from torch import Tensor, nn

from ebrl._checks import check_int, check_positive, resolve_generator
from ebrl.boltzmann._utils import check_bool


class GibbsCD:
    """CD-k or PCD with Gibbs chains for a ``BoltzmannModel``: an ``ebrl.training`` objective that
    supplies its own gradients.

    Each call estimates the negative log-likelihood gradient of the batch ``x (B, n_visible)``,

        ∂/∂θ [mean F(x) - mean F(v_neg)],

    with ``v_neg`` after ``k`` Gibbs sweeps from the batch (CD-k, Hinton 2002) or from the
    persistent chains (PCD, Tieleman 2008), and writes it into every parameter's ``.grad``
    (``model.cd_gradients``: the closed form for a ``BernoulliRBM``, autograd of F otherwise).
    ``fit`` then skips ``backward``: there is no autograd graph. The loss is that difference of
    mean free energies (a surrogate: its gradient is the CD update, its value is not a
    likelihood); there are no metrics, as the log-likelihood itself needs log Z.

    Example::

        rbm = BernoulliRBM(64, 64)
        opt = torch.optim.SGD(rbm.parameters(), lr=0.06, momentum=0.5)
        fit(rbm, x, GibbsCD(k=1, persistent=True), epochs=20, batch_size=10, optimizer=opt, generator=g)

    The chains (``persistent=True``) are state, as ``PCD``'s replay buffer is: ``state_dict()``
    and ``load_state_dict`` expose them, so ``fit`` rolls them back on recovery and
    ``ebrl.training.save_training_state`` stores them. They start from ``n_chains`` rows drawn at
    random from the first batch (default: as many as it has), or from ``start(model, data)``.

    Args:
        k: Gibbs sweeps per update, >= 1.
        persistent: PCD (chains carried across calls) or CD-k (chains restart at the batch).
        n_chains: the number of persistent chains, >= 1 (``None``: the first batch's size).
        weight_decay: λ >= 0 of an L2 penalty λ/2 ‖θ‖² on the couplings (``model.decayed``, not the
            biases), added to their gradients.
        report_loss: return the free-energy gap as the loss (a few more kernels per step), or
            ``None`` (``fit`` records NaN and checks the gradients alone); ``BoltzmannModel.fit``
            does not report it.
    """

    supplies_gradients: ClassVar[bool] = True

    def __init__(
        self,
        k: int = 1,
        *,
        persistent: bool = True,
        n_chains: int | None = None,
        weight_decay: float = 0.0,
        report_loss: bool = True,
    ) -> None:
        self.k = check_int("k", k)
        check_bool("persistent", persistent)
        self.persistent = persistent
        self.n_chains = None if n_chains is None else check_int("n_chains", n_chains)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        check_bool("report_loss", report_loss)
        self.report_loss = report_loss
        self.chains: Tensor | None = None
        self._generator: torch.Generator | None = None  # the last generator checked against the data's device

    def __repr__(self) -> str:
        return (
            f"GibbsCD(k={self.k}, persistent={self.persistent}, n_chains={self.n_chains}, "
            f"weight_decay={self.weight_decay}, report_loss={self.report_loss})"
        )

    def start(self, model: nn.Module, data: Tensor, *, generator: torch.Generator) -> None:
        """Start the persistent chains from ``n_chains`` rows of ``data (N, n_visible)`` drawn at random."""
        m = data.shape[0] if self.n_chains is None else self.n_chains
        idx = torch.randint(data.shape[0], (m,), generator=generator, device=data.device)  # (M,)
        with torch.no_grad():
            self.chains = cast(Any, model).chain_start(data[idx], generator=generator)

    def __call__(
        self, energy: nn.Module, x: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor | None, dict[str, Tensor]]:
        model = cast(Any, energy)
        cd_gradients = getattr(model, "cd_gradients", None)  # a BoltzmannModel's (this module sits below it)
        if cd_gradients is None or not callable(cd_gradients):
            raise TypeError(
                f"GibbsCD trains a BoltzmannModel (BernoulliRBM, GaussianBernoulliRBM, BoltzmannMachine), "
                f"got {type(energy).__name__}"
            )
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != model.n_visible:
            model.check_input(x)  # raises, naming what was expected
        if torch.is_grad_enabled():  # called directly: the closed-form gradients are written in place
            with torch.no_grad():
                return self(energy, x, generator=generator)
        if generator is None or generator is not self._generator:  # fit passes the same one at every step
            self._generator = resolve_generator(generator, x.device)
        gen = self._generator
        if self.persistent and self.chains is None:
            self.start(model, x, generator=gen)
        loss, chains = cd_gradients(
            x, self.chains if self.persistent else None, k=self.k, generator=gen, loss=self.report_loss
        )
        if self.weight_decay > 0:
            for name, p in model.named_parameters():
                if name in model.decayed and p.grad is not None:
                    p.grad.add_(p, alpha=self.weight_decay)
        if self.persistent:
            self.chains = chains
        return loss, {}

    def state_dict(self) -> dict[str, Any]:
        """The persistent chains, ``{"chains": (M, units) tensor or None}`` (a copy)."""
        return {"chains": None if self.chains is None else self.chains.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the chains from ``state_dict()`` output."""
        chains = state.get("chains") if isinstance(state, dict) else ()
        if chains is not None and not (isinstance(chains, Tensor) and chains.dim() == 2):
            raise ValueError(f"GibbsCD state must be {{'chains': (M, units) tensor or None}}, got {state!r:.80}")
        self.chains = None if chains is None else chains.clone()
