"""Save and restore a training run: the energy, the optimizer, the generator, PCD's buffer, the history.

``save_training_state`` writes everything ``fit`` needs to continue a run; ``load_training_state``
into fresh objects continues it exactly. The file is an ``ebrl.checkpoint`` training payload:
atomic write, a digest over every field, full validation before anything is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ebrl.checkpoint import (
    CheckpointError,
    PathLike,
    as_path,
    leaves,
    read_training_payload,
    write_training_payload,
)
from ebrl.training.trainer import TrainHistory


class Stateful(Protocol):
    """Anything with ``state_dict()`` and ``load_state_dict(state)``, such as ``PCD`` (its replay buffer)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _check_layout(path: Path, what: str, live: object, saved: object) -> None:
    """Require ``saved`` to have the keys, lengths and tensor shapes of ``live``."""
    live_leaves = dict(leaves("", live))
    saved_leaves = dict(leaves("", saved))
    if live_leaves.keys() != saved_leaves.keys():
        raise CheckpointError(
            f"'{path}': the stored {what} state has other entries than the given {what}'s; nothing was loaded"
        )
    for key, v in live_leaves.items():
        w = saved_leaves[key]
        if isinstance(v, Tensor) and (not isinstance(w, Tensor) or w.shape != v.shape):
            shape = tuple(w.shape) if isinstance(w, Tensor) else type(w).__name__
            raise CheckpointError(
                f"'{path}': the stored {what} state has {key} of shape {shape}, the given {what} "
                f"{tuple(v.shape)}; nothing was loaded"
            )


def _check_optimizer_state(path: Path, optimizer: torch.optim.Optimizer, saved: object) -> None:
    """Require the stored optimizer state to fit ``optimizer``: groups, parameter counts and state shapes."""
    if not isinstance(saved, dict) or not isinstance(saved.get("param_groups"), list):
        raise CheckpointError(f"'{path}' holds no optimizer state; nothing was loaded")
    groups, own = saved["param_groups"], optimizer.param_groups
    if len(groups) != len(own) or any(len(g["params"]) != len(o["params"]) for g, o in zip(groups, own, strict=False)):
        raise CheckpointError(
            f"'{path}': the stored optimizer has parameter groups of sizes {[len(g['params']) for g in groups]}, "
            f"the given one {[len(o['params']) for o in own]}; nothing was loaded"
        )
    param_of = {i: p for g, o in zip(groups, own, strict=True) for i, p in zip(g["params"], o["params"], strict=True)}
    for i, state in saved.get("state", {}).items():
        p = param_of.get(i)
        if p is None:
            raise CheckpointError(f"'{path}' is corrupt: optimizer state for an unknown parameter {i}")
        for name, value in state.items():
            if isinstance(value, Tensor) and value.dim() > 0 and value.shape != p.shape:
                raise CheckpointError(
                    f"'{path}': the stored optimizer state '{name}' has shape {tuple(value.shape)} but its "
                    f"parameter has shape {tuple(p.shape)}; nothing was loaded"
                )


def save_training_state(
    path: PathLike,
    *,
    energy: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    objective: Stateful | None = None,
    history: Any | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Save everything ``ebrl.training.fit`` needs to continue a run, atomically and with a digest.

    Resuming at an epoch boundary with ``load_training_state`` into fresh objects and calling
    ``fit`` again continues the run exactly: on the CPU, the parameters equal an uninterrupted
    run's bit for bit (``fit`` draws every random number from ``generator``).

    Example::

        history = fit(energy, data, pcd, epochs=10, optimizer=opt, generator=g)
        save_training_state("run.pt", energy=energy, optimizer=opt, generator=g, objective=pcd, history=history)

    Args:
        path: the file to write (its directory must exist); replaced only once complete.
        energy: the model (any ``nn.Module``): its ``state_dict`` and class are stored.
        optimizer: its ``state_dict`` (moments, step counts, learning rates).
        generator: the run's generator: its state.
        objective: an objective with persistent state (``PCD``: the replay buffer's chains).
        history: the ``TrainHistory`` so far, or ``None``.
        extra: plain values to store alongside (epochs done, hyperparameters...).
    """
    as_path(path)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    objective_state = None
    if objective is not None:
        if not callable(getattr(objective, "state_dict", None)):
            raise TypeError(
                f"objective must have persistent state to save (state_dict(), as PCD has), got "
                f"{type(objective).__name__}; stateless objectives (CD, DSM...) need no saving"
            )
        objective_state = objective.state_dict()
    history_state = None
    if history is not None:
        if not isinstance(history, TrainHistory):
            raise TypeError(f"history must be a TrainHistory or None, got {type(history).__name__}")
        history_state = history.state_dict()
    sections = {
        "optimizer": {"class": type(optimizer).__name__, "state": optimizer.state_dict()},
        "objective": objective_state,
        "history": history_state,
    }
    write_training_payload(path, model=energy, generator=generator, sections=sections, extra=extra)


def load_training_state(
    path: PathLike,
    *,
    energy: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    objective: Stateful | None = None,
) -> dict[str, Any]:
    """Load a state written by ``save_training_state`` into existing objects; never half-loads.

    Everything is checked before anything changes: the file (``FileNotFoundError``), its format,
    version and SHA-256 digest (a truncated or damaged file), the energy's class, keys and shapes,
    the optimizer's class, groups and state shapes, the generator's device, and the objective's
    state (present exactly when ``objective`` is given, with the replay buffer's shape), all
    ``CheckpointError``. Then the objective, the optimizer, the energy and the generator are set.

    Returns:
        ``{"history": TrainHistory | None, "extra": dict | None, "ebrl_version": str}``.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    path = as_path(path)
    payload = read_training_payload(path, model=energy, generator=generator)
    saved_optimizer = payload.get("optimizer")
    if not isinstance(saved_optimizer, dict) or saved_optimizer.get("class") != type(optimizer).__name__:
        held = saved_optimizer.get("class") if isinstance(saved_optimizer, dict) else None
        raise CheckpointError(
            f"'{path}' holds the state of a {held} optimizer, but optimizer is a {type(optimizer).__name__}; "
            f"nothing was loaded"
        )
    _check_optimizer_state(path, optimizer, saved_optimizer["state"])
    saved_objective = payload.get("objective")
    if (objective is None) != (saved_objective is None):
        raise CheckpointError(
            f"'{path}' {'holds' if saved_objective is not None else 'holds no'} objective state (a PCD replay "
            f"buffer), but objective={'None' if objective is None else type(objective).__name__} was given; "
            f"pass the objective exactly when the run had one; nothing was loaded"
        )
    if objective is not None:
        _check_layout(path, "objective", objective.state_dict(), saved_objective)
    history = None
    if payload.get("history") is not None:
        try:
            history = TrainHistory.from_state_dict(payload["history"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"'{path}' is corrupt: its history cannot be read ({exc})") from exc
    if objective is not None:
        objective.load_state_dict(payload["objective"])  # present: checked above
    optimizer.load_state_dict(saved_optimizer["state"])
    energy.load_state_dict(payload["state_dict"])
    generator.set_state(payload["generator"]["state"])
    return {"history": history, "extra": payload.get("extra"), "ebrl_version": payload["ebrl_version"]}
