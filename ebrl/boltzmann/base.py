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
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from ebrl._checks import (
    DivergenceError,
    check_int,
    check_positive,
    check_probability,
    resolve_generator,
)
from ebrl._progress import progress_bar as make_progress_bar
from ebrl.boltzmann._utils import as_data
from ebrl.checkpoint import CheckpointError, PathLike, read_training_payload, write_training_payload
from ebrl.energy.base import Energy

Method = Literal["cd", "pcd"]
LRSchedule = Literal["constant", "linear", "cosine"] | Callable[[float], float]
"""A learning-rate schedule: a name, or ``f(progress) -> factor`` with progress in [0, 1)."""
Callback = Callable[[int, "BoltzmannModel"], None]


@dataclass
class TrainState:
    """What CD training carries from one update to the next.

    Attributes:
        chains: the persistent chains of PCD (``None`` for CD). Their representation belongs to
            the model: visible states ``(M, n_visible)`` by default, hidden states for a
            ``BernoulliRBM``.
        velocity: the momentum buffers, by parameter name.
    """

    chains: Tensor | None = None
    velocity: dict[str, Tensor] = field(default_factory=dict)


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


def _check_bool(name: str, value: object) -> None:
    """Require a real ``bool`` (not a truthy value such as ``"yes"`` or ``1``)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


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
        _check_bool("soft", soft)
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

        Each update moves every parameter θ by the momentum step

            u ← momentum · u + lr_t · (g - weight_decay · θ),    θ ← θ + u,

        where g is the batch-mean log-likelihood gradient estimate and weight decay applies to
        the couplings only. The learning rate is ``learning_rate`` times the schedule factor at
        the fraction of updates done: ``"constant"`` (1), ``"linear"`` (1 → 0), ``"cosine"``
        (1 → 0), or a callable ``progress -> factor``.

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
            progress_bar: show a tqdm bar over epochs (needs ``ebrl[progress]``).
            callback: called as ``callback(epoch, model)`` after each epoch.
            generator: the only source of randomness (fresh OS-seeded one when ``None``).
            resume: continue the persistent chains and momentum left by the previous ``fit``,
                ``partial_fit`` or ``load_training_state`` instead of starting them afresh. With
                the same generator (or one restored by ``load_training_state``) and a
                ``"constant"`` schedule, ``fit(epochs=a)`` then ``fit(epochs=b, resume=True)``
                equals ``fit(epochs=a + b)`` exactly; a decaying schedule restarts at each call,
                since its progress counts this call's updates. ``n_chains`` then applies only if
                there are no chains yet (the previous run used CD).
            on_divergence: ``"raise"``: ``DivergenceError``. ``"recover"``: restore the
                parameters, chains and momentum of the last state that passed the check (the
                start, or the end of the last good epoch, before its callback), multiply
                ``learning_rate`` by ``recover_factor``, warn (``RuntimeWarning`` naming the
                epoch and the new rate), record ``(epoch, new_rate)`` in ``self.recoveries`` and
                go on with the next epoch; after ``max_recoveries`` rollbacks, raise.
            max_recoveries: rollbacks allowed, >= 1.
            recover_factor: in (0, 1).

        Raises:
            ValueError: bad arguments or data (see ``as_data``).
            DivergenceError: the parameters became non-finite (checked once per epoch, one host
                synchronisation); the message names the epoch.
        """
        data = self.as_data("X", X, soft=soft)
        persistent = self._check_fit_args(method, batch_size, learning_rate, k, momentum, weight_decay)
        check_int("epochs", epochs)
        _check_bool("shuffle", shuffle)
        _check_bool("progress_bar", progress_bar)
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
        state = self._train_state if resume else TrainState()
        assert state is not None
        self.recoveries = []
        n = data.shape[0]
        n_batches = math.ceil(n / batch_size)
        total = epochs * n_batches
        bar = make_progress_bar(epochs, desc=type(self).__name__, unit="epoch") if progress_bar else None
        try:
            with torch.no_grad():
                if persistent and state.chains is None:
                    state.chains = self._init_chains(data, n_chains, generator=gen)
                snapshot = self._snapshot(state) if on_divergence == "recover" else None
                params = self._step_params()
                for epoch in range(epochs):
                    rows = data[torch.randperm(n, generator=gen, device=data.device)] if shuffle else data
                    for i, batch in enumerate(rows.split(batch_size)):
                        lr = learning_rate * _schedule_factor(lr_schedule, (epoch * n_batches + i) / total)
                        self._update(
                            state, batch, lr=lr, k=k, momentum=momentum, weight_decay=weight_decay,
                            persistent=persistent, generator=gen, params=params,
                        )
                    try:
                        self._raise_if_diverged(f"in epoch {epoch + 1} of {epochs}", learning_rate)
                    except DivergenceError as exc:
                        if snapshot is None:
                            raise
                        learning_rate = self._recover(
                            exc, snapshot, state, epoch=epoch + 1, new_lr=recover_factor * learning_rate,
                            max_recoveries=max_recoveries,
                        )
                    else:
                        if snapshot is not None:
                            snapshot = self._snapshot(state)  # the last state that passed the check
                    if bar is not None:
                        bar.update(1)
                    if callback is not None:
                        callback(epoch, self)
        finally:
            if bar is not None:
                bar.close()
        self._train_state = state
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
        gen = resolve_generator(generator, data.device)
        if self._train_state is None:
            self._train_state = TrainState()
        state = self._train_state
        with torch.no_grad():
            if persistent and state.chains is None:
                m = data.shape[0] if n_chains is None else check_int("n_chains", n_chains)
                state.chains = self._init_chains(data, m, generator=gen)
            self._update(
                state, data, lr=learning_rate, k=k, momentum=momentum, weight_decay=weight_decay,
                persistent=persistent, generator=gen, params=self._step_params(),
            )
        self._raise_if_diverged("in partial_fit", learning_rate)
        return self

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

    def _raise_if_diverged(self, where: str, learning_rate: float) -> None:
        finite = torch.stack([torch.isfinite(p).all() for p in self.parameters()])
        if not bool(finite.all()):  # one synchronisation per epoch
            raise DivergenceError(
                f"{type(self).__name__} training diverged {where}: a parameter became NaN or inf. "
                f"Lower learning_rate (now {learning_rate}) or add weight_decay."
            )

    def _snapshot(self, state: TrainState) -> tuple[dict[str, Tensor], Tensor | None, dict[str, Tensor]]:
        """Copies of the parameters, the chains and the momentum, to roll back to."""
        params = {name: p.detach().clone() for name, p in self.named_parameters()}
        chains = None if state.chains is None else state.chains.clone()
        return params, chains, {name: u.clone() for name, u in state.velocity.items()}

    def _recover(
        self,
        exc: DivergenceError,
        snapshot: tuple[dict[str, Tensor], Tensor | None, dict[str, Tensor]],
        state: TrainState,
        *,
        epoch: int,
        new_lr: float,
        max_recoveries: int,
    ) -> float:
        """Restore ``snapshot`` and return ``new_lr``; raise ``DivergenceError`` after ``max_recoveries``."""
        if len(self.recoveries) >= max_recoveries:
            raise DivergenceError(
                f"{exc} Gave up: training had already been rolled back {max_recoveries} times "
                f"(max_recoveries={max_recoveries}, in epochs {[e for e, _ in self.recoveries]})"
            ) from exc
        params, chains, velocity = snapshot
        for name, p in self.named_parameters():
            p.copy_(params[name])
        state.chains = None if chains is None else chains.clone()
        state.velocity = {name: u.clone() for name, u in velocity.items()}
        self.recoveries.append((epoch, new_lr))
        warnings.warn(
            f"{exc} Rolled back to the state before epoch {epoch} and lowered learning_rate to {new_lr:.4g} "
            f"(recovery {len(self.recoveries)} of {max_recoveries}).",
            RuntimeWarning,
            stacklevel=3,
        )
        return new_lr

    # ------------------------------------------------------------------------------ resuming
    def save_training_state(
        self, path: PathLike, *, generator: torch.Generator, extra: dict[str, Any] | None = None
    ) -> None:
        """Save the parameters, the training state (PCD chains, momentum) and ``generator``'s state.

        The file is written atomically with a digest (``ebrl.checkpoint``). Load it into a model
        of the same class and shapes with ``load_training_state``, then continue with
        ``fit(..., resume=True, generator=generator)``: see ``fit``'s ``resume``.

        Args:
            path: the file to write; its directory must exist.
            generator: the generator the run draws from.
            extra: plain values to store alongside.
        """
        state = self._train_state
        saved = None
        if state is not None:
            saved = {
                "chains": None if state.chains is None else state.chains.detach().cpu().clone(),
                "velocity": {name: u.detach().cpu().clone() for name, u in state.velocity.items()},
            }
        write_training_payload(path, model=self, generator=generator, sections={"train_state": saved}, extra=extra)

    def load_training_state(self, path: PathLike, *, generator: torch.Generator) -> dict[str, Any] | None:
        """Load what ``save_training_state`` wrote into this model and ``generator``; returns ``extra``.

        Everything is checked first (file, digest, class, parameter shapes, momentum shapes,
        generator device): on any ``CheckpointError`` neither the model nor the generator changes.
        """
        payload = read_training_payload(path, model=self, generator=generator)  # checks path's type first
        path = Path(path)
        saved = payload.get("train_state")
        shapes = {name: p.shape for name, p in self.named_parameters()}
        if saved is not None:
            chains, velocity = saved.get("chains"), saved.get("velocity")
            if chains is not None and (not isinstance(chains, Tensor) or chains.dim() != 2):
                raise CheckpointError(f"'{path}' is corrupt: the chains are not a (M, units) tensor")
            if not isinstance(velocity, dict) or any(
                name not in shapes or not isinstance(u, Tensor) or u.shape != shapes[name]
                for name, u in velocity.items()
            ):
                raise CheckpointError(f"'{path}': the stored momentum does not fit {type(self).__name__}'s parameters")
        self.load_state_dict(payload["state_dict"])
        p = next(self.parameters())
        self._train_state = None
        if saved is not None:
            chains = saved["chains"]
            self._train_state = TrainState(
                chains=None if chains is None else chains.to(p.device, p.dtype),
                velocity={name: u.to(p.device, p.dtype) for name, u in saved["velocity"].items()},
            )
        generator.set_state(payload["generator"]["state"])
        return payload.get("extra")

    def _step_params(self) -> list[tuple[str, Tensor, bool]]:
        """``(name, parameter, decayed)`` of each trainable parameter, for ``_update``."""
        return [(name, p, name in self.decayed) for name, p in self.named_parameters() if p.requires_grad]

    def _init_chains(self, data: Tensor, n_chains: int, *, generator: torch.Generator) -> Tensor:
        """Persistent chains started from ``n_chains`` random data rows (``chain_start`` of them)."""
        idx = torch.randint(data.shape[0], (n_chains,), generator=generator, device=data.device)
        return self.chain_start(data[idx], generator=generator)

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

    def _update(
        self,
        state: TrainState,
        v_pos: Tensor,
        *,
        lr: float,
        k: int,
        momentum: float,
        weight_decay: float,
        persistent: bool,
        generator: torch.Generator,
        params: list[tuple[str, Tensor, bool]],
    ) -> None:
        """One CD-k / PCD update from the batch ``v_pos (B, n_visible)``: ``cd_gradients``, then the step
        u ← momentum · u - lr · (g + weight_decay · θ), θ ← θ + u on each of ``params`` (``_step_params``),
        with g its ``.grad`` and weight decay on the couplings only."""
        _, chains = self.cd_gradients(v_pos, state.chains if persistent else None, k=k, generator=generator, loss=False)
        if persistent:
            state.chains = chains
        for name, p, decayed in params:
            g = p.grad
            if g is None:
                continue
            decay = lr * weight_decay if decayed else 0.0
            if momentum > 0:
                u = state.velocity.get(name)
                if u is None:
                    u = state.velocity[name] = torch.zeros_like(p)
                u.mul_(momentum).add_(g, alpha=-lr)
                if decay > 0:
                    u.add_(p, alpha=-decay)
                p.add_(u)
            else:
                if decay > 0:
                    p.mul_(1.0 - decay)
                p.add_(g, alpha=-lr)

