"""The base of ebrl's Boltzmann machines: an ``Energy`` over visible vectors, trained by CD-k or PCD.

A Boltzmann model with hidden units h defines p(v) ∝ exp(-F(v)), where the free energy
F(v) = -log Σ_h exp(-E(v, h)) sums the hidden units out. The model is an ``Energy`` over its
visible units through F, with the library's sign: lower free energy, more probable.

Training follows the log-likelihood gradient, for each parameter θ,

    ∂ log p(v) / ∂θ = -∂F(v)/∂θ + E_model[∂F/∂θ],

whose model expectation is estimated from Gibbs chains: restarted at the data batch for every
update (contrastive divergence, CD-k, Hinton 2002) or carried across updates (persistent CD,
PCD, Tieleman 2008).
"""

from __future__ import annotations

import abc
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from ebrl._checks import (
    DivergenceError,
    check_int,
    check_positive,
    check_probability,
    resolve_generator,
)
from ebrl.boltzmann._utils import as_data, check_bool
from ebrl.boltzmann.objective import GibbsCD
from ebrl.checkpoint import PathLike
from ebrl.energy.base import Energy
from ebrl.training import TrainHistory, load_training_state, save_training_state
from ebrl.training.trainer import fit_kernel

Method = Literal["cd", "pcd"]
LRSchedule = Literal["constant", "linear", "cosine"] | Callable[[float], float]
"""A learning-rate schedule: a name, or ``f(progress) -> factor`` with progress in [0, 1)."""
Callback = Callable[[int, "BoltzmannModel"], None]


@dataclass
class TrainState:
    """What ``fit`` and ``partial_fit`` carry over to a later call with ``resume=True``.

    Attributes:
        chains: the persistent chains of PCD (``None`` for CD). Their representation belongs to
            the model: visible states ``(M, n_visible)`` by default, hidden states for a
            ``BernoulliRBM``.
        optimizer: the ``torch.optim.SGD`` of the last call, with its momentum buffers.
    """

    chains: Tensor | None = None
    optimizer: torch.optim.SGD | None = None


def _schedule_factor(schedule: LRSchedule, progress: float) -> float:
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return 1.0 - progress
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    factor = schedule(progress)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor < 0:
        raise ValueError(f"lr_schedule({progress}) must return a finite number >= 0, got {factor!r}")
    return float(factor)


def _check_schedule(schedule: object) -> None:
    if schedule in ("constant", "linear", "cosine") or (callable(schedule) and not isinstance(schedule, str)):
        return
    raise ValueError(
        f"lr_schedule must be 'constant', 'linear', 'cosine' or a callable progress -> factor, got {schedule!r}"
    )


class BoltzmannModel(Energy):
    """Base of the Boltzmann models: an ``Energy`` over visible vectors ``(B, n_visible) -> (B,)``.

    Subclasses define the free energy (``forward``), one Gibbs sweep (``gibbs_step``) and how
    data looks (``visible_values``); training, sampling and validation live here.

    Attributes:
        n_visible: the number of visible units.
        visible_values: ``"binary"`` for {0, 1} visible units, ``"real"`` for Gaussian ones.
        decayed: names of the parameters that weight decay shrinks (the couplings, not biases).
    """

    n_visible: int
    visible_values: ClassVar[str] = "binary"
    decayed: ClassVar[tuple[str, ...]] = ("weight",)

    def __init__(self) -> None:
        super().__init__()
        self._train_state: TrainState | None = None
        self.recoveries: list[tuple[int, float]] = []
        """``(epoch, new learning_rate)`` of each rollback in the last ``fit(on_divergence="recover")``."""

    # ----------------------------------------------------------------------------------- model
    @abc.abstractmethod
    def forward(self, v: Tensor) -> Tensor:
        """The free energy F(v) ``(B,)`` of visible states ``v (B, n_visible)``, without checks."""

    @abc.abstractmethod
    def gibbs_step(self, v: Tensor, *, generator: torch.Generator) -> Tensor:
        """One Gibbs sweep from visible states ``v (B, n_visible)``; returns new states, same shape.

        Vectorised over chains, no host synchronisation; ``v`` is not modified.
        """

    @abc.abstractmethod
    def random_visible(self, n: int, *, generator: torch.Generator) -> Tensor:
        """``n`` visible states ``(n, n_visible)`` to start chains from, when no data is given."""

    def free_energy(self, v: Tensor) -> Tensor:
        """F(v) ``(B,)`` for ``v (B, n_visible)``, with p(v) ∝ exp(-F(v)). Checks the shape only (no sync)."""
        self.check_input(v)
        return self.forward(v)

    def as_data(self, name: str, x: object, *, soft: bool = False) -> Tensor:
        """Validate ``x (N, n_visible)`` for this model and return it on the model's device and dtype.

        Binary models require entries in {0, 1}, or in [0, 1] with ``soft=True``; Gaussian ones
        require finite values. Raises ``ValueError`` naming ``name``.
        """
        check_bool("soft", soft)
        values = self.visible_values
        if soft:
            if values != "binary":
                raise ValueError(f"soft=True applies to binary visible units only, not to {type(self).__name__}")
            values = "unit"
        p = next(self.parameters())
        return as_data(name, x, width=self.n_visible, values=values, device=p.device, dtype=p.dtype)

    def sample(self, n: int, *, n_steps: int = 1000, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples ``(n, n_visible)`` after ``n_steps`` Gibbs sweeps from ``random_visible``."""
        check_int("n", n)
        check_int("n_steps", n_steps)
        gen = resolve_generator(generator, next(self.parameters()).device)
        with torch.no_grad():
            v = self.random_visible(n, generator=gen)
            for _ in range(n_steps):
                v = self.gibbs_step(v, generator=gen)
        return v

    # -------------------------------------------------------------------------------- training
    def fit(
        self,
        X: object,
        *,
        method: Method = "pcd",
        epochs: int = 10,
        batch_size: int = 10,
        learning_rate: float = 0.1,
        k: int = 1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        lr_schedule: LRSchedule = "constant",
        n_chains: int | None = None,
        soft: bool = False,
        shuffle: bool = True,
        progress_bar: bool = False,
        callback: Callback | None = None,
        generator: torch.Generator | None = None,
        resume: bool = False,
        on_divergence: Literal["raise", "recover"] = "raise",
        max_recoveries: int = 3,
        recover_factor: float = 0.5,
    ) -> BoltzmannModel:
        """Train by CD-k or PCD with minibatch SGD, from the current parameters; returns ``self``.

        This is ``ebrl.training.fit`` with the ``GibbsCD`` objective, which writes the CD / PCD
        gradient estimate into each parameter's ``.grad``, and ``torch.optim.SGD``. Each update is

            u ← momentum · u + g + weight_decay · θ,    θ ← θ - lr_t · u,

        where g is the batch-mean gradient of F(v_data) - F(v_chains) (the negative log-likelihood
        gradient estimate) and weight decay applies to the couplings only (``GibbsCD`` adds it).
        The learning rate is ``learning_rate`` times the schedule factor at the fraction of
        updates done (a ``torch.optim.lr_scheduler.LambdaLR``): ``"constant"`` (1), ``"linear"``
        (1 → 0), ``"cosine"`` (1 → 0), or a callable ``progress -> factor``.

        Args:
            X: training data ``(N, n_visible)``, a tensor or array.
            method: ``"cd"`` (chains restart at the batch) or ``"pcd"`` (persistent chains).
            epochs: passes over the data, >= 1.
            batch_size: samples per update, >= 1 (the last batch of an epoch may be smaller).
            learning_rate: the step size, > 0.
            k: Gibbs sweeps per update, >= 1.
            momentum: in [0, 1).
            weight_decay: L2 penalty coefficient on the couplings, >= 0.
            lr_schedule: see above.
            n_chains: PCD chains (default ``batch_size``); unused by CD.
            soft: binary models only: accept probabilities in [0, 1] (mean-field data, as in
                scikit-learn's RBM example) instead of requiring {0, 1}.
            shuffle: visit the data in a fresh random order each epoch.
            progress_bar: show a tqdm bar over the steps (needs ``ebrl[progress]``).
            callback: called as ``callback(epoch, model)`` after each epoch.
            generator: the only source of randomness (fresh OS-seeded one when ``None``).
            resume: continue the persistent chains and momentum left by the previous ``fit``,
                ``partial_fit`` or ``load_training_state`` instead of starting them afresh. With
                the same generator (or one restored by ``load_training_state``) and a
                ``"constant"`` schedule, ``fit(epochs=a)`` then ``fit(epochs=b, resume=True)``
                equals ``fit(epochs=a + b)`` exactly; a decaying schedule restarts at each call,
                since its progress counts this call's updates. ``n_chains`` then applies only if
                there are no chains yet (the previous run used CD).
            on_divergence: ``"raise"``: ``DivergenceError``. ``"recover"``: ``ebrl.training.fit``'s
                recovery: restore the parameters, chains and momentum of the last snapshot that a
                step has verified (taken at each epoch start), multiply the learning rate by
                ``recover_factor``, warn (``RuntimeWarning`` naming the step and the new rate),
                record ``(epoch, new_rate)`` in ``self.recoveries`` and go on; after
                ``max_recoveries`` rollbacks, raise.
            max_recoveries: rollbacks allowed, >= 1.
            recover_factor: in (0, 1).

        Raises:
            ValueError: bad arguments or data (see ``as_data``).
            DivergenceError: a step's gradients are not finite (a parameter became NaN or inf);
                checked at every step before the update, in the step's one host synchronisation.
                The message names the epoch and the step.
        """
        data = self.as_data("X", X, soft=soft)
        persistent = self._check_fit_args(method, batch_size, learning_rate, k, momentum, weight_decay)
        check_int("epochs", epochs)
        check_bool("shuffle", shuffle)
        check_bool("progress_bar", progress_bar)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable(epoch, model) or None, got {type(callback).__name__}")
        _check_schedule(lr_schedule)
        n_chains = batch_size if n_chains is None else check_int("n_chains", n_chains)
        if not isinstance(resume, bool):
            raise TypeError(f"resume must be a bool, got {type(resume).__name__}")
        if on_divergence not in ("raise", "recover"):
            raise ValueError(f"on_divergence must be 'raise' or 'recover', got {on_divergence!r}")
        check_int("max_recoveries", max_recoveries)
        check_positive("recover_factor", recover_factor)
        if recover_factor >= 1:
            raise ValueError(f"recover_factor must be in (0, 1) (it lowers the learning rate), got {recover_factor}")
        if resume and self._train_state is None:
            raise ValueError(
                "resume=True needs the training state (chains, momentum) of a previous fit or partial_fit, or of "
                "load_training_state; this model has none"
            )
        gen = resolve_generator(generator, data.device)
        steps = epochs * math.ceil(data.shape[0] / batch_size)
        history = self._train(
            data, persistent=persistent, k=k, n_chains=n_chains, learning_rate=learning_rate, momentum=momentum,
            weight_decay=weight_decay, previous=self._train_state if resume else None, generator=gen,
            partial=False, lr_schedule=lr_schedule, steps=steps, epochs=epochs, batch_size=batch_size,
            shuffle=shuffle, progress_bar=progress_bar, callback=callback, on_divergence=on_divergence,
            max_recoveries=max_recoveries, recover_factor=recover_factor,
        )
        n_batches = steps // epochs
        self.recoveries = [((step - 1) // n_batches + 1, lr) for step, lr in history.recoveries]
        return self

    def partial_fit(
        self,
        X: object,
        *,
        method: Method = "pcd",
        learning_rate: float = 0.1,
        k: int = 1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        n_chains: int | None = None,
        soft: bool = False,
        generator: torch.Generator | None = None,
    ) -> BoltzmannModel:
        """One update with ``X`` as the batch; PCD chains and momentum carry over between calls.

        The chains and momentum left by ``fit`` or the previous ``partial_fit`` are reused;
        ``n_chains`` (default: the batch size) applies only when the chains are first created.
        Arguments are those of ``fit``; returns ``self``.
        """
        data = self.as_data("X", X, soft=soft)
        persistent = self._check_fit_args(method, data.shape[0], learning_rate, k, momentum, weight_decay)
        m = data.shape[0] if n_chains is None else check_int("n_chains", n_chains)
        gen = resolve_generator(generator, data.device)
        self._train(
            data, persistent=persistent, k=k, n_chains=m, learning_rate=learning_rate, momentum=momentum,
            weight_decay=weight_decay, previous=self._train_state, generator=gen, partial=True,
            epochs=1, batch_size=data.shape[0], shuffle=False,
        )
        return self

    def _train(
        self,
        data: Tensor,
        *,
        persistent: bool,
        k: int,
        n_chains: int,
        learning_rate: float,
        momentum: float,
        weight_decay: float,
        previous: TrainState | None,
        generator: torch.Generator,
        partial: bool,
        lr_schedule: LRSchedule = "constant",
        steps: int = 1,
        callback: Callback | None = None,
        **options: Any,
    ) -> TrainHistory:
        """``ebrl.training.fit``'s loop (``fit_kernel``) with ``GibbsCD`` and SGD, from ``previous``'s chains and
        momentum, for ``fit`` and ``partial_fit`` (``partial``), which have checked every argument; keeps the
        chains and the optimizer in ``self._train_state``, even when training fails. ``options`` go to
        ``fit_kernel``."""
        objective = GibbsCD(k, persistent=persistent, n_chains=n_chains, weight_decay=weight_decay, report_loss=False)
        optimizer = self._optimizer(learning_rate, momentum, previous)
        params = optimizer.param_groups[0]["params"]
        if persistent:
            objective.chains = None if previous is None else previous.chains
            if objective.chains is None:
                objective.start(self, data, generator=generator)
        scheduler = None
        if lr_schedule != "constant":
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda update: _schedule_factor(lr_schedule, update / steps)
            )
        done = 0  # epochs completed, for the error message

        def after_epoch(epoch: int, _: nn.Module) -> None:
            nonlocal done
            done = epoch + 1
            if callback is not None:
                callback(epoch, self)

        self.recoveries = []
        try:
            return fit_kernel(  # fit's loop: the arguments were checked by fit or partial_fit
                self, data, objective, params=params, optimizer=optimizer, scheduler=scheduler,
                generator=generator, callback=after_epoch, **options,
            )
        except DivergenceError as exc:
            at = "in partial_fit" if partial else f"in epoch {done + 1} of {options['epochs']}"
            raise DivergenceError(
                f"{type(self).__name__} training diverged {at}: {exc}. Lower learning_rate (now "
                f"{optimizer.param_groups[0]['lr']:.4g}) or add weight_decay."
            ) from exc
        finally:
            self._train_state = TrainState(chains=objective.chains, optimizer=optimizer)

    @staticmethod
    def _check_fit_args(
        method: str, batch_size: int, learning_rate: float, k: int, momentum: float, weight_decay: float
    ) -> bool:
        if method not in ("cd", "pcd"):
            raise ValueError(f"method must be 'cd' or 'pcd', got '{method}'")
        check_int("batch_size", batch_size)
        check_positive("learning_rate", learning_rate)
        check_int("k", k)
        check_probability("momentum", momentum)
        if momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        check_positive("weight_decay", weight_decay, allow_zero=True)
        return method == "pcd"

    def _optimizer(self, learning_rate: float, momentum: float, previous: TrainState | None) -> torch.optim.SGD:
        """SGD (fused where torch has the kernel) over the parameters; with ``previous``, its momentum
        buffers carry over."""
        params = [p for p in self.parameters() if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)  # GibbsCD writes into these
        fused = all(p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float64) for p in params)
        optimizer = torch.optim.SGD(params, lr=learning_rate, momentum=momentum, fused=fused or None)
        if previous is not None and previous.optimizer is not None:
            for p in params:
                buf = previous.optimizer.state.get(p, {}).get("momentum_buffer")
                if buf is not None and momentum > 0:
                    optimizer.state[p]["momentum_buffer"] = buf.clone()
        return optimizer

    # ------------------------------------------------------------------------------ resuming
    def save_training_state(
        self, path: PathLike, *, generator: torch.Generator, extra: dict[str, Any] | None = None
    ) -> None:
        """Save the parameters, the training state (PCD chains, SGD momentum) and ``generator``'s state.

        This is ``ebrl.training.save_training_state`` with the model's optimizer and ``GibbsCD``
        objective: one file format for every model. Load it into a model of the same class and
        shapes with ``load_training_state``, then continue with ``fit(..., resume=True,
        generator=generator)``: see ``fit``'s ``resume``.

        Args:
            path: the file to write; its directory must exist.
            generator: the generator the run draws from.
            extra: plain values to store alongside.
        """
        state = self._train_state
        optimizer = state.optimizer if state is not None else None
        if optimizer is None:
            optimizer = self._optimizer(1.0, 0.0, None)
        objective = GibbsCD(persistent=state is not None and state.chains is not None)
        objective.chains = None if state is None else state.chains
        save_training_state(path, energy=self, optimizer=optimizer, generator=generator, objective=objective,
                            extra=extra)

    def load_training_state(self, path: PathLike, *, generator: torch.Generator) -> dict[str, Any] | None:
        """Load what ``save_training_state`` wrote into this model and ``generator``; returns ``extra``.

        Everything is checked first (file, digest, class, parameter shapes, momentum shapes,
        generator device): on any ``CheckpointError`` neither the model nor the generator changes.
        """
        optimizer = self._optimizer(1.0, 0.0, None)
        objective = GibbsCD()
        loaded = load_training_state(path, energy=self, optimizer=optimizer, generator=generator, objective=objective)
        chains = objective.chains
        if chains is not None:
            p = next(self.parameters())
            chains = chains.to(p.device, p.dtype)
        self._train_state = TrainState(chains=chains, optimizer=optimizer)
        return loaded["extra"]

    # ------------------------------------------------------------------------ the CD gradient
    def chain_start(self, v: Tensor, *, generator: torch.Generator) -> Tensor:
        """The chain state that starts from the data rows ``v``: the rows themselves by default."""
        return v

    def cd_gradients(
        self, v_pos: Tensor, chains: Tensor | None, *, k: int, generator: torch.Generator, loss: bool = True
    ) -> tuple[Tensor | None, Tensor]:
        """One CD-k (``chains=None``: chains start at ``v_pos``) or PCD (continue ``chains``) estimate.

        Writes the gradient of mean F(v_pos) - mean F(v_neg) into every parameter's ``.grad``
        (the negative log-likelihood gradient estimate) and returns ``(loss, chains)``: that
        difference of mean free energies (a scalar without graph; ``None`` with ``loss=False``,
        where that saves work) and the chains after ``k`` sweeps. This default runs ``k`` Gibbs
        sweeps on visible chains and takes the gradient by autograd; ``BernoulliRBM`` overrides it
        with the closed form.
        """
        v_neg = self.chain_start(v_pos, generator=generator) if chains is None else chains
        for _ in range(k):
            v_neg = self.gibbs_step(v_neg, generator=generator)
        params = [p for p in self.parameters() if p.requires_grad]
        with torch.enable_grad():
            gap = self.forward(v_pos).mean() - self.forward(v_neg).mean()
            grads = torch.autograd.grad(gap, params)
        for p, g in zip(params, grads, strict=True):
            if p.grad is None:
                p.grad = g
            else:
                p.grad.copy_(g)
        return gap.detach(), v_neg


FIT_OPTIONS = frozenset(inspect.signature(BoltzmannModel.fit).parameters) - {"self", "X", "soft", "generator"}
"""``BoltzmannModel.fit``'s keyword options besides the data, ``soft`` and ``generator`` (``DBN.fit`` forwards them)."""
