"""A small trainer: fit an energy to a tensor dataset with any objective.

``fit`` is a function, not a class: every piece of state (the model, the optimizer, a PCD
replay buffer, the generator) is created and owned by the caller, so there is nothing hidden
to save or restore, and the update reads top to bottom in one place, as in CleanRL::

    loss, metrics = objective(energy, batch, generator=g)
    optimizer.zero_grad(); loss.backward(); optimizer.step()

To continue training, call ``fit`` again with the same optimizer and generator.

The same ``fit`` trains across processes and GPUs with PyTorch's own DistributedDataParallel:
launch the script with ``torchrun --nproc_per_node=N script.py``, call
``torch.distributed.init_process_group()`` in it, and ``fit`` wraps the energy in DDP, gives each
rank its shard of the shared permutation, and averages the gradients (see ``fit``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ebrl._checks import (
    DivergenceError,
    check_finite,
    check_int,
    check_positive,
    check_tensor,
    resolve_generator,
)
from ebrl.energy.nets import StateActionEnergy
from ebrl.training.objectives import Objective


@dataclass
class TrainHistory:
    """What ``fit`` recorded.

    Attributes:
        loss: the loss of every step, in order (step ``k`` is ``loss[k - 1]``).
        metrics: each objective metric (e.g. ``e_pos``, ``e_neg``), one value per step.
        epoch_loss: the mean loss of each epoch.
    """

    loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    epoch_loss: list[float] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return len(self.loss)

    def record(self, loss: float, metrics: dict[str, Tensor]) -> None:
        """Append one step's loss and metrics (one host synchronisation for all metrics)."""
        self.loss.append(loss)
        values = torch.stack([v.detach().float() for v in metrics.values()]).tolist() if metrics else []
        for name, value in zip(metrics, values, strict=True):
            self.metrics.setdefault(name, []).append(value)


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


def _progress_bar(total: int):
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise ImportError('progress_bar=True needs tqdm: pip install "ebrl[progress]"') from exc
    return tqdm(total=total, desc="fit", unit="step")


def _summary_writer(log_dir: str):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ImportError('tensorboard_log needs TensorBoard: pip install "ebrl[tensorboard]"') from exc
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
    ``generator`` must live on that device. Each step checks that the loss is finite (a host
    synchronisation per step, like the objectives' own checks); a non-finite loss, a non-finite
    energy or a diverged sampler raises ``DivergenceError`` naming the step (counted from 1)
    and the epoch, before that step updates the parameters.

    Under ``torchrun`` (a process group of world size W > 1 is initialised), every rank calls
    ``fit`` with the same data and a generator seeded alike, and ``fit``:

    - wraps the energy in ``DistributedDataParallel``, which broadcasts rank 0's parameters
      and averages the gradients in ``backward`` (the objectives call a non-``Energy`` module
      through ``__call__``, so DDP's hooks run);
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
    if optimizer is not None and lr is not None:
        raise ValueError("give lr (for the default Adam) or optimizer, not both")
    if optimizer is None:
        optimizer = torch.optim.Adam(params, lr=1e-3 if lr is None else check_positive("lr", lr))
    elif not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")

    world = _world(distributed)

    device, dtype = params[0].device, params[0].dtype
    data = data.to(device=device, dtype=dtype)
    gen = resolve_generator(generator, device)
    n = data.shape[0]
    model, objective_gen, rank, world_size = energy, gen, 0, 1
    if world is not None:
        rank, world_size = world
        if isinstance(energy, DistributedDataParallel):
            raise TypeError("pass the bare energy to fit: under torch.distributed it wraps it in DDP itself")
        if isinstance(energy, StateActionEnergy):
            raise TypeError(
                "fit under torch.distributed needs an energy over x: InfoNCE recognises a StateActionEnergy "
                "by its type, which DistributedDataParallel hides"
            )
        if n < world_size:
            raise ValueError(f"data has {n} rows, fewer than the {world_size} ranks; every rank needs at least one")
        model = DistributedDataParallel(energy, device_ids=[device] if device.type == "cuda" else None)
        seed = int(torch.randint(2**62, (1,), generator=gen, device=device))
        objective_gen = torch.Generator(device=device).manual_seed(seed + rank)
    shard = n // world_size  # rows per rank and epoch (n when single-process)
    n_batches = math.ceil(shard / batch_size)
    history = TrainHistory()
    bar, writer, step = None, None, 0
    try:
        bar = _progress_bar(epochs * n_batches) if progress_bar and rank == 0 else None
        writer = _summary_writer(tensorboard_log) if tensorboard_log is not None and rank == 0 else None
        for epoch in range(1, epochs + 1):
            order = torch.randperm(n, generator=gen, device=device)  # (N,)
            if world is not None:
                order = order[: shard * world_size][rank::world_size]  # (N // W,), this rank's shard
            epoch_total = 0.0
            for idx in order.split(batch_size):
                step += 1
                batch = data[idx]  # (b, *event)
                try:
                    loss, metrics = objective(model, batch, generator=objective_gen)
                except DivergenceError as exc:
                    raise DivergenceError(f"training diverged at step {step} (epoch {epoch}): {exc}") from exc
                if not isinstance(loss, Tensor) or loss.dim() != 0:
                    raise TypeError("objective must return (loss, metrics) with a scalar tensor loss")
                mean_loss = loss
                if world is not None:
                    mean_loss, metrics = _all_average(loss, metrics, world_size)
                loss_value = mean_loss.item()  # host synchronisation, for the divergence check
                if not math.isfinite(loss_value):
                    raise DivergenceError(
                        f"training diverged at step {step} (epoch {epoch}): the loss is {loss_value}; "
                        f"lower the learning rate or regularise the energy"
                    )
                optimizer.zero_grad(set_to_none=True)
                if world is not None:
                    # Score matching never reaches the output bias (it uses only ∇ₓE); DDP finishes a
                    # step's all-reduce once every parameter has a gradient, so give each a zero one.
                    loss = loss + sum(p.sum() for p in params) * 0.0
                loss.backward()
                optimizer.step()

                epoch_total += loss_value
                history.record(loss_value, metrics)
                if step % log_interval == 0:
                    _log(history, writer, bar, step=step, epoch=epoch)
                if bar is not None:
                    bar.update(1)
            history.epoch_loss.append(epoch_total / n_batches)
            if writer is not None:
                writer.add_scalar("train/epoch_loss", history.epoch_loss[-1], epoch)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    return history
