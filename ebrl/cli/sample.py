"""``ebrl sample``: samples of a saved energy (Langevin), noise-conditional energy (annealed Langevin) or
Boltzmann machine (Gibbs), drawn to a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ebrl.boltzmann import DBN, BoltzmannModel
from ebrl.checkpoint import load_model
from ebrl.cli._common import UsageError, add_command, existing_file, require_positive
from ebrl.energy import NoiseConditionalEnergy
from ebrl.plots import can_draw_samples, save_samples_figure
from ebrl.samplers import AnnealedLangevin, Langevin


def draw_samples(
    model: Any,
    n: int,
    *,
    steps: int = 500,
    step_size: float | None = None,
    init_std: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, str]:
    """``n`` samples ``(n, *event)`` of ``model`` and how they were drawn.

    A Boltzmann machine or DBN samples by ``steps`` Gibbs sweeps; a noise-conditional energy by
    annealed Langevin through the noise levels it records (``steps`` split evenly over them, from
    σ_1 · N(0, I), ``step_size`` the step at the last level, 0.5 σ_L² by default); any other energy
    by ``steps`` Langevin steps of size ``step_size`` (0.01 by default) from a Gaussian of std ``init_std``.
    """
    if isinstance(model, (BoltzmannModel, DBN)):
        return model.sample(n, n_steps=steps, generator=generator), f"{steps} Gibbs sweeps"  # (n, V)
    if isinstance(model, NoiseConditionalEnergy):
        if model.sigmas is None:
            raise UsageError(
                f"--model: this {type(model).__name__} records no noise levels; build it with sigmas= to sample it"
            )
        each = max(1, steps // len(model.sigmas))
        last = 0.5 * model.sigmas[-1] ** 2 if step_size is None else step_size
        sampler = AnnealedLangevin(model.sigmas, n_steps_each=each, step_size=last)
        x0 = model.sigmas[0] * torch.randn(n, *model.input_shape, generator=generator)  # (n, *event)
        method = f"annealed Langevin, {len(model.sigmas)} noise levels x {each} steps, last step {last:.3g}"
        return sampler(model, x0, generator=generator), method
    step_size = 0.01 if step_size is None else step_size
    event = tuple(model.event_shape)
    x0 = init_std * torch.randn(n, *event, generator=generator)  # (n, *event)
    x = Langevin(step_size=step_size, n_steps=steps)(model, x0, generator=generator)
    return x, f"{steps} Langevin steps of size {step_size}"


def load_energy(path: str | Path) -> Any:
    """The model saved at ``path`` by ``ebrl.checkpoint.save_model``, on the CPU."""
    return load_model(existing_file("--model", path), map_location="cpu")


def run(args: argparse.Namespace) -> None:
    require_positive("--n", args.n, "number of samples")
    require_positive("--steps", args.steps, "number of Langevin steps or Gibbs sweeps")
    if args.step_size is not None:
        require_positive("--step-size", args.step_size, "Langevin step size")
    model = load_energy(args.model)
    event = tuple(model.input_shape if isinstance(model, NoiseConditionalEnergy) else model.event_shape)
    if not can_draw_samples(event):
        raise UsageError(
            f"--model: samples of event shape {event} cannot be drawn; expected 2-D points or square images"
        )
    x, method = draw_samples(model, args.n, steps=args.steps, step_size=args.step_size, init_std=args.init_std,
                             generator=torch.Generator().manual_seed(args.seed))
    save_samples_figure(x, args.out, title=f"{args.n} samples of {type(model).__name__} ({method})")
    print(f"Drew {args.n} samples of {type(model).__name__} by {method}; saved {args.out}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "sample", "draw samples from a saved energy (Langevin), noise-conditional energy "
                    "(annealed Langevin) or Boltzmann machine (Gibbs); save a PNG")
    p.add_argument("--model", required=True, help="a checkpoint from ebrl.checkpoint.save_model")
    p.add_argument("--n", type=int, default=64, help="number of samples")
    p.add_argument("--out", default="samples.png")
    p.add_argument("--steps", type=int, default=500, help="Langevin steps or Gibbs sweeps")
    p.add_argument("--step-size", type=float, default=None,
                   help="Langevin step size (default 0.01); for a noise-conditional energy, the step at the last "
                        "noise level (default 0.5 σ_L²)")
    p.add_argument("--init-std", type=float, default=1.0, help="std of the Gaussian the Langevin chains start from")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)
