"""A small trainer: fit an energy to a tensor dataset with any objective.

``fit`` is a function, not a class: every piece of state (the model, the optimizer, a PCD
replay buffer, the generator) is created and owned by the caller, so there is nothing hidden
to save or restore, and the update reads top to bottom in one place, as in CleanRL::

    loss, metrics = objective(energy, batch, generator=g)
    optimizer.zero_grad(); loss.backward(); optimizer.step()

An objective that supplies its own gradients (``supplies_gradients = True``, such as the Gibbs
CD/PCD of ``ebrl.boltzmann``, whose log-likelihood gradient has a closed form) writes them into
each parameter's ``.grad`` itself and returns a loss without a graph; ``fit`` then skips
``backward`` and applies the same checks and the same update (with a fused ``torch.optim.SGD``,
by calling its kernel directly: see ``_fused_sgd_update``). A
``torch.optim.lr_scheduler`` given as ``scheduler`` steps after every applied step.

To continue training, call ``fit`` again with the same optimizer and generator; to continue
in another process, save them with ``ebrl.training.save_training_state`` and load them into
fresh objects with ``load_training_state``.

EBM training is prone to diverge. Each step checks, in the one host synchronisation it makes,
that the loss, the gradient norm and (with ``max_energy``) the reported energies are finite
and in range. By default a fault raises ``DivergenceError`` before the step updates anything;
``on_divergence="recover"`` instead rolls back to the last good snapshot, lowers the learning
rate, warns and continues (see ``fit``).

The same ``fit`` trains across processes and GPUs with PyTorch's own DistributedDataParallel:
launch the script with ``torchrun --nproc_per_node=N script.py``, call
``torch.distributed.init_process_group()`` in it, and ``fit`` wraps the energy in DDP, gives each
rank its shard of the shared permutation, and averages the gradients (see ``fit``).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ebrl._checks import (
    DivergenceError,
    MissingExtraError,
    PendingCheck,
    check_finite,
    check_int,
    check_positive,
    check_tensor,
    deferred_checks,
    resolve_generator,
)
from ebrl._progress import progress_bar as make_progress_bar
from ebrl.energy.nets import StateActionEnergy
from ebrl.training.objectives import Objective

_OPTIMIZER_MODULE = importlib.import_module("torch.optim.optimizer")  # holds the global step hooks


@dataclass
class TrainHistory:
    """What ``fit`` recorded.

    Attributes:
        loss: the loss of every applied step, in order (step ``k`` is ``loss[k - 1]`` unless
            ``on_divergence="recover"`` skipped a faulty step); NaN for an objective that
            supplies its gradients without a loss.
        metrics: each objective metric (e.g. ``e_pos``, ``e_neg``), one value per step.
        epoch_loss: the mean loss of each epoch over its applied steps (NaN for an epoch whose
            every step was faulty, which only ``on_divergence="recover"`` lets pass).
        recoveries: with ``on_divergence="recover"``, one ``(step, new_lr)`` per rollback: the
            step whose fault triggered it and the learning rate of the first parameter group
            afterwards.
    """

    loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    epoch_loss: list[float] = field(default_factory=list)
    recoveries: list[tuple[int, float]] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return len(self.loss)

    def record(self, loss: float, metrics: dict[str, float]) -> None:
        """Append one step's loss and metrics (already on the host)."""
        self.loss.append(loss)
        for name, value in metrics.items():
            self.metrics.setdefault(name, []).append(value)

    def state_dict(self) -> dict[str, Any]:
        """The history as plain lists and dicts (what ``save_training_state`` stores)."""
        return {
            "loss": list(self.loss),
            "metrics": {k: list(v) for k, v in self.metrics.items()},
            "epoch_loss": list(self.epoch_loss),
            "recoveries": [[int(s), float(lr)] for s, lr in self.recoveries],
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TrainHistory:
        """Rebuild a history from ``state_dict()``."""
        return cls(
            loss=[float(v) for v in state["loss"]],
            metrics={str(k): [float(x) for x in v] for k, v in state["metrics"].items()},
            epoch_loss=[float(v) for v in state["epoch_loss"]],
            recoveries=[(int(s), float(lr)) for s, lr in state["recoveries"]],
        )


def _log(history: TrainHistory, writer, bar, *, step: int, epoch: int) -> None:
    """Write the latest step to TensorBoard and the progress bar."""
    if writer is not None:
        writer.add_scalar("train/loss", history.loss[-1], step)
        for name, values in history.metrics.items():
            writer.add_scalar(f"train/{name}", values[-1], step)
    if bar is not None:
        bar.set_postfix(loss=f"{history.loss[-1]:.4g}", epoch=epoch)


def _check_data(energy: nn.Module, data: object) -> Tensor:
    """Require data ``(N, *event)``: floating, non-empty, finite, and of the energy's event shape."""
    data = check_tensor("data", data, min_dim=2)
    if isinstance(energy, StateActionEnergy):
        width = energy.obs_dim + energy.act_dim
        if data.dim() != 2 or data.shape[1] != width:
            raise ValueError(
                f"data for a StateActionEnergy must be rows [obs, act] of shape (N, {energy.obs_dim} + "
                f"{energy.act_dim}), got {tuple(data.shape)}"
            )
    else:
        event = getattr(energy, "event_shape", None)
        if event is not None and tuple(data.shape[1:]) != tuple(event):
            raise ValueError(
                f"data has shape {tuple(data.shape)} but {type(energy).__name__} expects "
                f"(N, {', '.join(map(str, event))})"
            )
    return check_finite("data", data)


def _summary_writer(log_dir: str):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise MissingExtraError('tensorboard_log needs TensorBoard: pip install "ebrl[tensorboard]"') from exc
    return SummaryWriter(log_dir=log_dir)


def _world(distributed: bool | None) -> tuple[int, int] | None:
    """``(rank, world_size)`` when ``fit`` runs data-parallel, else ``None``.

    ``None`` (auto) means on exactly when a process group with more than one process is
    initialised; ``True`` requires one; ``False`` trains this process alone.
    """
    if distributed is not None and not isinstance(distributed, bool):
        raise TypeError(f"distributed must be None (auto), True or False, got {type(distributed).__name__}")
    initialised = dist.is_available() and dist.is_initialized()
    if distributed is True and not initialised:
        raise ValueError(
            "distributed=True needs an initialised torch.distributed process group: launch with "
            "torchrun and call torch.distributed.init_process_group() before fit"
        )
    if distributed is False or not initialised or dist.get_world_size() == 1:
        return None
    return dist.get_rank(), dist.get_world_size()


def _all_average(loss: Tensor, metrics: dict[str, Tensor], world_size: int) -> tuple[Tensor, dict[str, Tensor]]:
    """The loss and metrics averaged over ranks, in one all-reduce (so every rank logs, and raises, alike)."""
    stats = torch.stack([loss.detach().float(), *(v.detach().float() for v in metrics.values())])  # (1 + M,)
    dist.all_reduce(stats)  # sum: gloo has no AVG
    stats = stats / world_size
    return stats[0], dict(zip(metrics, stats[1:], strict=True))


ENERGY_METRICS = ("e_pos", "e_neg", "e_data", "e_noise")
"""The metrics that report batch-mean energies, which ``max_energy`` bounds."""


def _check_max_energy(values: dict[str, float], max_energy: float, objective: Objective) -> None:
    """Raise ``DivergenceError`` when a reported mean energy is beyond ±``max_energy``."""
    reported = {k: v for k, v in values.items() if k in ENERGY_METRICS}
    if not reported:
        raise ValueError(
            f"max_energy needs an objective that reports mean energies ({', '.join(ENERGY_METRICS)}), as CD, "
            f"PCD, NCE and InfoNCE do; {type(objective).__name__} reports {sorted(values) or 'no metrics'}"
        )
    for name, value in reported.items():
        if not abs(value) <= max_energy:  # also catches NaN
            raise DivergenceError(
                f"the energies exploded: the batch mean {name} = {value:.4g} is beyond ±max_energy "
                f"({max_energy:g}); lower the learning rate, or add the l2 regulariser / spectral norm"
            )


def _train_step(
    model: nn.Module,
    params: list[nn.Parameter],
    batch: Tensor,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    *,
    generator: torch.Generator,
    world_size: int,
    max_energy: float | None,
    own_gradients: bool,
    update: Callable[[], object],
    checks: list[PendingCheck],
    f32_params: bool,
) -> tuple[float, dict[str, float]]:
    """One update; returns the (rank-averaged) loss and metrics, read with one host synchronisation.

    The objective runs inside the caller's ``deferred_checks`` block, whose list is ``checks``
    (cleared here first): its value checks (finite energies, a diverged sampler, finite input) are
    recorded, not read. They, the loss, the gradient norm and the
    metrics are read together after ``backward`` and checked before ``optimizer.step()``: a
    failed check raises its own error (``DivergenceError`` without the step number, which the
    caller adds, or ``ValueError`` for bad input), the first in the order they were made, and a
    fault leaves the parameters and the optimizer state as they were.

    An objective with ``supplies_gradients`` runs under the caller's ``no_grad`` and writes the
    gradients itself; there is no ``backward``. As autograd's would, its gradient must be
    non-finite wherever a parameter is, since the gradients are what is checked. It may return
    ``None`` as its loss (a loss that would cost more than the step, such as CD's free-energy
    gap): the step's loss is then NaN in the history and the gradients alone are checked.

    ``update`` applies the checked gradients: ``optimizer.step``, or its direct form
    (``_fused_sgd_update``). ``f32_params``: every parameter is float32 on ``params[0]``'s device
    (one fused norm call then gives what ``_norms`` would).
    """
    checks.clear()
    loss, metrics = objective(model, batch, generator=generator)
    pending = checks  # the objective's value checks, read below with the loss
    no_loss = own_gradients and loss is None
    if not no_loss and (not isinstance(loss, Tensor) or loss.dim() != 0):
        raise TypeError("objective must return (loss, metrics) with a scalar tensor loss")
    device = params[0].device
    parts = []  # (1 + M + G + C,) float32 scalars on device: loss, metrics, gradient norms, checks
    if world_size > 1:
        loss = cast(Tensor, loss)  # not None: checked above (own gradients are refused under DDP)
        mean_loss, metrics = _all_average(loss, metrics, world_size)
        parts.append(_as_f32(mean_loss, device))
        # Score matching never reaches the output bias (it uses only ∇ₓE); DDP finishes a
        # step's all-reduce once every parameter has a gradient, so give each a zero one.
        loss = loss + sum(p.sum() for p in params) * 0.0
    elif not no_loss:
        parts.append(_as_f32(cast(Tensor, loss), device))
    if metrics:
        parts += [_as_f32(v, device) for v in metrics.values()]
    if not own_gradients:
        optimizer.zero_grad(set_to_none=True)
        cast(Tensor, loss).backward()  # under DDP the gradients are averaged here, so every rank sees the same norm
    grads = [p.grad for p in params if p.grad is not None]
    n_norms = len(grads)
    if grads:  # per tensor; the total is formed on the host
        parts += torch._foreach_norm(grads) if f32_params else _norms(grads, device)
    if pending:
        parts += [_as_f32(ok, device) for ok, _ in pending]
    stats = torch.stack(parts).tolist()  # the step's one host synchronisation
    i = 0 if no_loss else 1
    loss_value = math.nan if no_loss else stats[0]
    values = dict(zip(metrics, stats[i : i + len(metrics)], strict=True)) if metrics else {}
    i += len(metrics)
    grad_value = math.hypot(*stats[i : i + n_norms])  # inf or NaN if any is
    i += n_norms
    try:
        if pending:
            for (_, error), passed in zip(pending, stats[i:], strict=True):
                if not passed:  # the first failed check, in the order the objective made them
                    raise error()
        if not no_loss and not math.isfinite(loss_value):
            raise DivergenceError(f"the loss is {loss_value}; lower the learning rate or regularise the energy")
        if not math.isfinite(grad_value):
            what = f"the loss is finite ({loss_value:.4g}) but its gradient is not"
            if no_loss:
                what = "the gradient is not finite"
            raise DivergenceError(f"{what} (norm {grad_value}); lower the learning rate or regularise the energy")
        if max_energy is not None:
            _check_max_energy(values, max_energy, objective)
    except (DivergenceError, ValueError):
        optimizer.zero_grad(set_to_none=not own_gradients)  # drop the non-finite gradients: nothing is applied
        raise
    update()
    return loss_value, values


def _fused_sgd_update(optimizer: torch.optim.Optimizer) -> Callable[[], object] | None:
    """``optimizer.step()`` of a ``torch.optim.SGD(fused=True)`` as direct calls of its fused kernel, or ``None``.

    ``Optimizer.step`` spends about 20 µs per call in Python (profiling and grad-mode context managers,
    hooks, grouping the tensors by device and dtype), a third of a whole CD step of a 64 x 64 RBM at
    batch 10. The returned function calls ``torch._fused_sgd_``, the kernel that ``step`` ends in, once per
    parameter group with the same arguments, so its update is bit for bit ``step``'s. It is offered
    only where ``step`` would do nothing else: an SGD of that exact class whose ``step`` no one but an
    lr scheduler wrapped, every group fused, not differentiable, on one device and dtype, and no
    gradient scaler. Each call falls back to ``optimizer.step()`` when a step hook is registered (the
    optimizer's or a global one), a gradient is missing, or a momentum buffer does not exist yet
    (``step`` creates them on its first call).
    """
    if type(optimizer) is not torch.optim.SGD or getattr(optimizer, "grad_scale", None) is not None:
        return None
    patched = optimizer.__dict__.get("step")  # an lr scheduler wraps step to record that it was called
    if patched is not None and not getattr(patched, "_wrapped_by_lr_sched", False):
        return None
    hooks = [
        getattr(optimizer, "_optimizer_step_pre_hooks", None),
        getattr(optimizer, "_optimizer_step_post_hooks", None),
        getattr(_OPTIMIZER_MODULE, "_global_optimizer_pre_hooks", None),
        getattr(_OPTIMIZER_MODULE, "_global_optimizer_post_hooks", None),
    ]
    if any(h is None for h in hooks):  # another torch: no way to see its hooks
        return None
    groups = optimizer.param_groups
    for group in groups:
        params = group["params"]
        if not group.get("fused") or group.get("differentiable") or not params:
            return None
        if any(p.device != params[0].device or p.dtype != params[0].dtype or p.is_sparse for p in params):
            return None
    state = optimizer.state

    def update() -> object:
        if any(hooks):
            return optimizer.step()
        calls = []
        for group in groups:
            params = group["params"]
            grads = [p.grad for p in params]
            momentum = group["momentum"]
            buffers = [state[p].get("momentum_buffer") for p in params] if momentum != 0 else []
            for t in (*grads, *buffers):
                if t is None:
                    return optimizer.step()
            calls.append((group, params, grads, buffers))
        for group, params, grads, buffers in calls:
            torch._fused_sgd_(
                params, grads, buffers, weight_decay=group["weight_decay"], momentum=group["momentum"],
                lr=group["lr"], dampening=group["dampening"], nesterov=group["nesterov"], maximize=group["maximize"],
                is_first_step=False,
            )
        return None

    return update


def _gather(data: Tensor, order: Tensor, batch_size: int) -> Iterator[Tensor]:
    """The batches ``data[idx]`` ``(b, *event)`` for consecutive slices ``idx`` of ``order``."""
    for idx in order.split(batch_size):
        yield data[idx]


def _as_f32(x: Tensor, device: torch.device) -> Tensor:
    """``x`` detached, as float32 on ``device`` (itself when it already is: no kernel)."""
    if x.dtype == torch.float32 and x.device == device and not x.requires_grad:
        return x
    return x.detach().to(device, torch.float32)


def _norms(grads: list[Tensor], device: torch.device) -> list[Tensor]:
    """The 2-norm of each tensor (gradients, parameters), as float32 scalars on ``device`` (one fused call when
    they share a device)."""
    norms: Sequence[Tensor]
    if all(g.device == device for g in grads):
        norms = torch._foreach_norm(grads)
        if all(n.dtype == torch.float32 for n in norms):
            return list(norms)
    else:
        norms = [torch.linalg.vector_norm(g) for g in grads]
    return [_as_f32(n, device) for n in norms]


@dataclass
class _Snapshot:
    """A copy of everything a step mutates, to roll back to (``on_divergence="recover"``)."""

    step: int  # the first step after the snapshot
    energy: dict[str, Tensor]
    optimizer: dict[str, Any]
    objective: dict[str, Any] | None


def objective_state(objective: Objective) -> dict[str, Any] | None:
    """The persistent state of an objective (PCD's replay buffer), or ``None`` if it holds none.

    An objective with state exposes ``state_dict()`` and ``load_state_dict(state)``, as ``PCD``
    does; ``fit`` rolls it back on recovery and ``save_training_state`` stores it.
    """
    state_dict = getattr(objective, "state_dict", None)
    return state_dict() if callable(state_dict) else None


def _snapshot(step: int, energy: nn.Module, optimizer: torch.optim.Optimizer, objective: Objective) -> _Snapshot:
    return _Snapshot(
        step=step,
        energy={k: v.detach().clone() for k, v in energy.state_dict().items()},
        optimizer=copy.deepcopy(optimizer.state_dict()),
        objective=copy.deepcopy(objective_state(objective)),
    )


def _recover(
    exc: DivergenceError,
    snapshot: _Snapshot,
    energy: nn.Module,
    optimizer: torch.optim.Optimizer,
    objective: Objective,
    history: TrainHistory,
    *,
    step: int,
    factor: float,
    max_recoveries: int,
    scheduler: Any = None,
) -> None:
    """Roll back to ``snapshot`` and scale every parameter group's learning rate by ``factor``.

    With a ``scheduler``, its base learning rates are scaled too, so that the schedule continues
    from the lowered rates.
    """
    if len(history.recoveries) >= max_recoveries:
        raise DivergenceError(
            f"{exc}; gave up: training had already been rolled back {max_recoveries} times "
            f"(max_recoveries={max_recoveries}, at steps {[s for s, _ in history.recoveries]})"
        ) from exc
    lrs = [group["lr"] * factor for group in optimizer.param_groups]
    # Restore copies: load_state_dict may adopt the tensors it is given, which later steps mutate.
    energy.load_state_dict(snapshot.energy)
    optimizer.load_state_dict(copy.deepcopy(snapshot.optimizer))
    if snapshot.objective is not None:  # an objective with state_dict() has load_state_dict() (objective_state)
        cast(Any, objective).load_state_dict(copy.deepcopy(snapshot.objective))
    for group, lr in zip(optimizer.param_groups, lrs, strict=True):
        group["lr"] = lr
    if scheduler is not None:
        scheduler.base_lrs = [base * factor for base in scheduler.base_lrs]
    history.recoveries.append((step, float(lrs[0])))
    warnings.warn(
        f"{exc}; rolled back to the snapshot taken before step {snapshot.step} and lowered the learning "
        f"rate to {', '.join(f'{float(lr):.4g}' for lr in lrs)} (recovery {len(history.recoveries)} of "
        f"{max_recoveries})",
        RuntimeWarning,
        stacklevel=3,
    )


def fit(
    energy: nn.Module,
    data: Tensor,
    objective: Objective,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    generator: torch.Generator | None = None,
    progress_bar: bool = False,
    tensorboard_log: str | None = None,
    log_interval: int = 10,
    distributed: bool | None = None,
    on_divergence: Literal["raise", "recover"] = "raise",
    max_recoveries: int = 3,
    recover_factor: float = 0.5,
    checkpoint_interval: int | None = None,
    max_energy: float | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    shuffle: bool = True,
    callback: Callable[[int, nn.Module], None] | None = None,
) -> TrainHistory:
    """Fit ``energy`` to ``data`` by minimising ``objective`` over shuffled minibatches.

    Example::

        from ebrl.energy import MLPEnergy
        from ebrl.samplers import Langevin
        from ebrl.training import CD, fit
        energy = MLPEnergy(2)
        g = torch.Generator().manual_seed(0)
        hist = fit(energy, data, CD(Langevin(step_size=1e-2, n_steps=20)), epochs=20, generator=g)

    Each epoch visits every row once, in an order drawn from ``generator``; the last batch
    may be smaller. The data is moved to the device and dtype of the energy's parameters, and
    ``generator`` must live on that device.

    Divergence. Each step reads its loss, its gradient norm, its metrics and the objective's own
    value checks (deferred, see ``ebrl._checks.deferred_checks``) in one host synchronisation
    and detects a fault before ``optimizer.step()``: a non-finite loss, non-finite gradients, a
    non-finite energy or a diverged sampler (found by the objective's checks; the first failed
    one raises its own message), or, with ``max_energy``, a batch-mean
    energy (the metrics ``e_pos``/``e_neg`` of CD, PCD and InfoNCE, ``e_data``/``e_noise`` of
    NCE) beyond ±``max_energy``. What follows depends on ``on_divergence``:

    - ``"raise"`` (default): ``DivergenceError`` naming the step (counted from 1) and the
      epoch; the faulty step has updated nothing.
    - ``"recover"``: ``fit`` keeps in memory a snapshot of the energy's ``state_dict``, the
      optimizer's and the objective's persistent state (PCD's replay buffer), taken at the
      start of every epoch, or before every ``checkpoint_interval``-th step when given. A
      snapshot is trusted once the step after it has passed the checks (the update that
      produced it is verified only then). On a fault ``fit`` restores the last trusted
      snapshot (the initial state if there is none yet), multiplies every parameter group's ``lr`` by
      ``recover_factor``, warns (``RuntimeWarning`` naming the step and the new rate), records
      ``(step, new_lr)`` in ``history.recoveries`` and continues with the next batch (the
      generator is not rolled back, so the retried steps see fresh data order and noise). The
      fault after ``max_recoveries`` rollbacks raises ``DivergenceError`` saying so. Steps
      rolled back stay in the history's loss record; faulty steps are not recorded.

    Under ``torchrun`` (a process group of world size W > 1 is initialised), every rank calls
    ``fit`` with the same data and a generator seeded alike, and ``fit``:

    - wraps the energy in ``DistributedDataParallel``, which broadcasts rank 0's parameters
      and averages the gradients in ``backward`` (the objectives call a non-``Energy`` module
      through ``__call__``, so DDP's hooks run; ``InfoNCE`` looks through the wrapper to
      recognise a ``StateActionEnergy``);
    - draws the shared permutation, drops its last ``N mod W`` rows (different ones each
      epoch) so that every shard is equally long, and gives rank r the shard
      ``order[r::W]``: ``batch_size`` is per rank, so a step sees ``W * batch_size`` rows and
      equals a single-process step on their union;
    - draws the objective's randomness (noise, sampler chains) from a per-rank generator
      seeded from ``generator``, so ranks do not repeat each other's noise;
    - averages each step's loss and metrics over ranks (one all-reduce), so the history and
      the divergence check agree on every rank; only rank 0 shows the progress bar and writes
      TensorBoard.

    A sampler divergence raised inside the objective on one rank alone stops that rank only;
    the others then wait in the next all-reduce until the process group's timeout.

    Args:
        energy: the model, an ``nn.Module`` with parameters (an ``Energy`` over x, or a
            ``StateActionEnergy`` for InfoNCE, whose data rows are ``[obs, act]``).
        data: the dataset, shape ``(N, *event)``, finite.
        objective: ``CD``, ``PCD``, ``DSM``, ``SSM``, ``NCE``, ``InfoNCE`` or any callable with
            the ``Objective`` signature.
        epochs: passes over the data, >= 1.
        batch_size: rows per step (per rank under torch.distributed), >= 1.
        lr: learning rate of the default Adam optimizer (1e-3 when ``None``); give either
            ``lr`` or ``optimizer``, not both.
        optimizer: an optimizer over the energy's parameters, instead of the default Adam.
        generator: all randomness (shuffling, sampling, noise); a fresh OS-seeded generator
            when ``None``. The global RNG is never touched.
        progress_bar: show a tqdm progress bar (``pip install "ebrl[progress]"``).
        tensorboard_log: a directory to write TensorBoard scalars to
            (``pip install "ebrl[tensorboard]"``); ``None`` = off.
        log_interval: write to TensorBoard and refresh the bar every this many steps.
        distributed: ``None`` (auto): data-parallel exactly when an initialised process group
            has more than one process; ``True``: require one; ``False``: train this process
            alone even inside a process group.
        on_divergence: ``"raise"`` or ``"recover"`` (see above); ``"recover"`` is refused under
            torch.distributed, where a fault raised inside the objective reaches one rank only.
        max_recoveries: rollbacks allowed before giving up, >= 1 (``"recover"`` only).
        recover_factor: the factor in (0, 1) applied to the learning rates at each rollback.
        checkpoint_interval: take the recovery snapshot before steps 1, 1 + k, 1 + 2k, ...
            (``k`` = this, >= 1) instead of at each epoch start. Each snapshot copies the model,
            the optimizer state and the replay buffer in memory.
        max_energy: a bound > 0 on the reported batch-mean energies, or ``None`` (off).
        scheduler: a ``torch.optim.lr_scheduler`` of ``optimizer``, stepped after every applied
            step (a rolled-back step is not counted); a recovery scales its base rates too.
        shuffle: visit the rows in a fresh order drawn from ``generator`` each epoch (``True``),
            or in their stored order.
        callback: called as ``callback(epoch, energy)`` after each epoch (``epoch`` from 0).

    Returns:
        The ``TrainHistory`` of losses and metrics.
    """
    if not isinstance(energy, nn.Module):
        raise TypeError(f"energy must be a torch.nn.Module, got {type(energy).__name__}")
    params = [p for p in energy.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(energy).__name__} has no trainable parameters")
    if not callable(objective):
        raise TypeError(f"objective must be callable (e.g. CD, PCD, DSM), got {type(objective).__name__}")
    data = _check_data(energy, data)
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    log_interval = check_int("log_interval", log_interval)
    if not isinstance(progress_bar, bool):
        raise TypeError(f"progress_bar must be a bool, got {type(progress_bar).__name__}")
    if not isinstance(shuffle, bool):
        raise TypeError(f"shuffle must be a bool, got {type(shuffle).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable(epoch, energy) or None, got {type(callback).__name__}")
    if on_divergence not in ("raise", "recover"):
        raise ValueError(f"on_divergence must be 'raise' or 'recover', got {on_divergence!r}")
    max_recoveries = check_int("max_recoveries", max_recoveries)
    recover_factor = check_positive("recover_factor", recover_factor)
    if recover_factor >= 1:
        raise ValueError(f"recover_factor must be in (0, 1) (it lowers the learning rate), got {recover_factor}")
    if checkpoint_interval is not None:
        checkpoint_interval = check_int("checkpoint_interval", checkpoint_interval)
    if max_energy is not None:
        max_energy = check_positive("max_energy", max_energy)
    if optimizer is not None and lr is not None:
        raise ValueError("give lr (for the default Adam) or optimizer, not both")
    if optimizer is None:
        optimizer = torch.optim.Adam(params, lr=1e-3 if lr is None else check_positive("lr", lr))
    elif not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if scheduler is not None:
        if not isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler):
            raise TypeError(f"scheduler must be a torch.optim.lr_scheduler scheduler, got {type(scheduler).__name__}")
        if scheduler.optimizer is not optimizer:
            raise ValueError("scheduler must schedule the optimizer that fit steps (pass that optimizer too)")

    world = _world(distributed)
    recover = on_divergence == "recover"
    own_gradients = getattr(objective, "supplies_gradients", False) is True
    if world is not None and own_gradients:
        raise ValueError(
            f"{type(objective).__name__} writes its own gradients, which DistributedDataParallel does not average; "
            f"train it in one process (distributed=False)"
        )
    if recover and world is not None:
        raise ValueError(
            "on_divergence='recover' is not supported under torch.distributed: a divergence raised inside the "
            "objective stops one rank only, so the ranks could not roll back together; use 'raise' and restart "
            "from a checkpoint (ebrl.training.save_training_state)"
        )

    return fit_kernel(
        energy, data, objective, params=params, optimizer=optimizer, generator=generator, world=world,
        epochs=epochs, batch_size=batch_size, progress_bar=progress_bar, tensorboard_log=tensorboard_log,
        log_interval=log_interval, on_divergence=on_divergence, max_recoveries=max_recoveries,
        recover_factor=recover_factor, checkpoint_interval=checkpoint_interval, max_energy=max_energy,
        scheduler=scheduler, shuffle=shuffle, callback=callback,
    )


def fit_kernel(
    energy: nn.Module,
    data: Tensor,
    objective: Objective,
    *,
    params: list[nn.Parameter],
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator | None,
    world: tuple[int, int] | None = None,
    epochs: int,
    batch_size: int,
    progress_bar: bool = False,
    tensorboard_log: str | None = None,
    log_interval: int = 10,
    on_divergence: Literal["raise", "recover"] = "raise",
    max_recoveries: int = 3,
    recover_factor: float = 0.5,
    checkpoint_interval: int | None = None,
    max_energy: float | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    shuffle: bool = True,
    callback: Callable[[int, nn.Module], None] | None = None,
) -> TrainHistory:
    """``fit``'s training loop without its argument checks, for internal callers that made them.

    ``fit`` validates at the boundary and calls this; so does ``BoltzmannModel.fit``, whose own checks
    cover the same ground (its data, finite and of the model's width; its options), instead of having
    every argument checked twice. Arguments are ``fit``'s, already valid: ``params`` the energy's
    trainable parameters (non-empty), ``optimizer`` an optimizer over them, ``world`` ``(rank, world
    size)`` under torch.distributed (``None``: one process), ``data`` finite ``(N, *event)``.
    """
    recover = on_divergence == "recover"
    own_gradients = getattr(objective, "supplies_gradients", False) is True
    device, dtype = params[0].device, params[0].dtype
    f32_params = all(p.device == device and p.dtype == torch.float32 for p in params)
    data = data.to(device=device, dtype=dtype)
    gen = resolve_generator(generator, device)
    n = data.shape[0]
    model, objective_gen, rank, world_size = energy, gen, 0, 1
    if world is not None:
        rank, world_size = world
        if isinstance(energy, DistributedDataParallel):
            raise TypeError("pass the bare energy to fit: under torch.distributed it wraps it in DDP itself")
        if n < world_size:
            raise ValueError(f"data has {n} rows, fewer than the {world_size} ranks; every rank needs at least one")
        model = DistributedDataParallel(energy, device_ids=[device] if device.type == "cuda" else None)
        seed = int(torch.randint(2**62, (1,), generator=gen, device=device))
        objective_gen = torch.Generator(device=device).manual_seed(seed + rank)
    shard = n // world_size  # rows per rank and epoch (n when single-process)
    n_batches = math.ceil(shard / batch_size)
    history = TrainHistory()
    bar, writer, step = None, None, 0
    # Objectives that write their gradients pay for every µs of a small model's step: after one step
    # through optimizer.step() (which creates its state), fused SGD runs its kernel directly.
    direct = _fused_sgd_update(optimizer) if own_gradients else None
    update: Callable[[], object] = optimizer.step
    try:
        if progress_bar and rank == 0:
            bar = make_progress_bar(epochs * n_batches, desc=f"fit {type(energy).__name__}", unit="step")
        writer = _summary_writer(tensorboard_log) if tensorboard_log is not None and rank == 0 else None
        good, pending = None, None  # recovery snapshots: verified by a later step, and not yet
        for epoch in range(1, epochs + 1):
            # (N,): a fresh order, or the stored one
            order = torch.randperm(n, generator=gen, device=device) if shuffle else torch.arange(n, device=device)
            if world is not None:
                order = order[: shard * world_size][rank::world_size]  # (N // W,), this rank's shard
            if recover and checkpoint_interval is None:
                pending = _snapshot(step + 1, energy, optimizer, objective)
            epoch_total, epoch_steps = 0.0, 0
            # Shuffled: gather each batch; in stored order a batch is a view.
            batches = data.split(batch_size) if not shuffle and world is None else _gather(data, order, batch_size)
            # One deferred-checks block per epoch (each step reads and clears what its objective recorded;
            # nothing else in the loop makes checks), under no_grad for objectives that write their gradients.
            with deferred_checks() as checks, torch.no_grad() if own_gradients else contextlib.nullcontext():
                for batch in batches:  # (b, *event)
                    step += 1
                    if recover and checkpoint_interval is not None and (step - 1) % checkpoint_interval == 0:
                        pending = _snapshot(step, energy, optimizer, objective)
                    try:
                        loss_value, values = _train_step(
                            model, params, batch, objective, optimizer,
                            generator=objective_gen, world_size=world_size, max_energy=max_energy,
                            own_gradients=own_gradients, update=update, checks=checks,
                            f32_params=f32_params,
                        )
                    except DivergenceError as exc:
                        fault = DivergenceError(f"training diverged at step {step} (epoch {epoch}): {exc}")
                        if not recover:
                            raise fault from exc
                        fault.__cause__ = exc
                        # A snapshot counts as good once a step from it has passed the checks: the
                        # update just before a snapshot is only checked by the step after it.
                        last = good if good is not None else pending
                        assert last is not None
                        pending = None
                        _recover(
                            fault, last, energy, optimizer, objective, history,
                            step=step, factor=recover_factor, max_recoveries=max_recoveries, scheduler=scheduler,
                        )
                        if bar is not None:
                            bar.update(1)
                        continue
                    if direct is not None:
                        update = direct
                    if scheduler is not None:
                        scheduler.step()
                    if pending is not None:
                        good, pending = pending, None
                    epoch_total += loss_value
                    epoch_steps += 1
                    history.record(loss_value, values)
                    if step % log_interval == 0:
                        _log(history, writer, bar, step=step, epoch=epoch)
                    if bar is not None:
                        bar.update(1)
            history.epoch_loss.append(epoch_total / epoch_steps if epoch_steps else math.nan)
            if writer is not None:
                writer.add_scalar("train/epoch_loss", history.epoch_loss[-1], epoch)
            if callback is not None:
                callback(epoch - 1, energy)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    return history
