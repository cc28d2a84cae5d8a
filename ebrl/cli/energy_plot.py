"""``ebrl energy-plot``: a saved energy over 2-D points, or a SoftQ zip's E(s, a) over its actions at one state."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ebrl.cli._common import UsageError, add_command, algo_of_zip, existing_file, load_agent
from ebrl.cli.sample import load_energy
from ebrl.plots import save_action_energy_slice, save_energy_landscape


def action_energy_slice(
    model: Any, obs: np.ndarray, grid: int, dims: tuple[int, ...] | None = None
) -> tuple[Tensor, Tensor]:
    """``(coordinates (G, 1) or (G*G, 2), energies)``: a SoftQ's E(s, a) = max_i E_i(s, a) over its scaled box.

    The action dimensions ``dims`` (one or two; default all, when A <= 2) span ``[-1, 1]`` on a grid of
    ``grid`` points per axis; any other dimension is held at the model's deterministic action at ``obs``, so
    the slice passes through the action the agent would take. The coordinates returned are those of ``dims``.
    """
    policy = model.policy
    act_dim = model.action_space.shape[0]
    dims = tuple(range(act_dim)) if dims is None else dims
    axis = torch.linspace(-1.0, 1.0, grid)
    if len(dims) == 1:
        coords = axis.reshape(-1, 1)  # (G, 1)
    else:
        aa, bb = torch.meshgrid(axis, axis, indexing="xy")  # (G, G) each
        coords = torch.stack([aa.reshape(-1), bb.reshape(-1)], dim=1)  # (G*G, 2)
    with torch.no_grad():
        obs_t, _ = policy.obs_to_tensor(obs)  # (1, *obs)
        base = policy._predict(obs_t, deterministic=True)  # (1, A), scaled box
        acts = base.expand(coords.shape[0], act_dim).clone()  # (N, A)
        acts[:, list(dims)] = coords
        e = policy.critic(policy.features(obs_t, policy.critic), acts.unsqueeze(0))[0]  # (1, N) -> (N,)
    return coords, e


def run(args: argparse.Namespace) -> None:
    if args.grid < 2:
        raise UsageError(f"--grid: expected at least 2 points per axis, got {args.grid}")
    if args.model.endswith(".zip"):
        _run_state_action_slice(args)
        return
    model = load_energy(args.model)
    event = tuple(model.event_shape)
    if event != (2,):
        raise UsageError(f"--model: energy-plot needs an energy over 2-D points, event shape (2,); got {event}")
    lo, hi = args.range
    if not lo < hi:
        raise UsageError(f"--range: expected LOW < HIGH, got {lo} {hi}")
    save_energy_landscape(model, args.out, low=lo, high=hi, grid=args.grid)
    print(f"Energy landscape of {type(model).__name__} on [{lo}, {hi}]²; saved {args.out}")


def _run_state_action_slice(args: argparse.Namespace) -> None:
    path = existing_file("--model", args.model)
    if algo_of_zip(path) != "softq":
        raise UsageError("--model: a state-action slice needs a SoftQ zip; SoftDQN's actions are discrete")
    model = load_agent(Path(path))
    act_dim, obs_dim = model.action_space.shape[0], model.observation_space.shape
    if args.obs is None or len(args.obs) != math.prod(obs_dim):
        raise UsageError(f"--obs: expected {math.prod(obs_dim)} numbers, the state to slice at; got {args.obs}")
    dims = tuple(args.dims) if args.dims is not None else tuple(range(min(act_dim, 2)))
    if not 1 <= len(dims) <= 2 or len(set(dims)) != len(dims) or not all(0 <= d < act_dim for d in dims):
        raise UsageError(f"--dims: expected 1 or 2 distinct action dimensions in [0, {act_dim}); got {list(dims)}")
    obs = np.asarray(args.obs, dtype=np.float32).reshape(obs_dim)
    acts, e = action_energy_slice(model, obs, args.grid, dims)
    held = "" if len(dims) == act_dim else ", other dimensions at the deterministic action"
    flat = obs.reshape(-1)
    state = f"s = {np.round(flat, 3).tolist()}" if flat.size <= 4 else f"the {flat.size}-D state of --obs"
    title = f"SoftQ energy over actions {list(dims)}\nat {state}{held}"
    save_action_energy_slice(acts, e, args.out, title=title)
    print(f"State-action energy of SoftQ over action dimensions {list(dims)} at s = {obs.reshape(-1).tolist()}"
          f"{held}; saved {args.out}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "energy-plot", "plot a saved energy over 2-D points, or a SoftQ zip's E(s, a) over "
                    "actions at one state")
    p.add_argument("--model", required=True,
                   help="a checkpoint from ebrl.checkpoint.save_model, or a SoftQ .zip (then give --obs)")
    p.add_argument("--obs", type=float, nargs="+", default=None, help="for a SoftQ zip: the state to slice at")
    p.add_argument("--out", default="energy.png")
    p.add_argument("--range", type=float, nargs=2, default=(-4.0, 4.0), metavar=("LOW", "HIGH"))
    p.add_argument("--grid", type=int, default=200, help="grid points per axis")
    p.add_argument("--dims", type=int, nargs="+", default=None, metavar="I",
                   help="for a SoftQ zip: the 1 or 2 action dimensions to vary (default: the first two); the "
                        "others stay at the deterministic action")
    p.set_defaults(func=run)
