"""What denormal floats cost an InfoNCE training step on the CPU, and what ebrl's loss saves.

Once a state-action energy separates demonstrations from counter-examples by more than about 87 nats (float32's
``exp`` underflow), the softmax weights of the far counter-examples, which are their gradients, fall below float32's
smallest normal number. Those denormal floats then flow through every matrix product of the backward pass, on which
x86 CPUs run many times slower. Implicit BC's energy reaches such gaps while it trains (on the IBC authors' particle
task its steps slowed down about 4x as training went on). ``ebrl.losses.info_nce`` cuts the gradient of terms
settled beyond e^-50 (``ebrl.losses.contrastive.SETTLED``), so none is produced; the loss is unchanged to float
precision (``tests/test_losses.py``).

Measured here: one forward and backward pass of an InfoNCE step (implicit BC's shape: a 2 x ``width`` SiLU
``StateActionEnergy``, batch ``batch_size`` x (1 + ``n_negatives``) candidates uniform in the action box), with

- ``plain``: the textbook loss, ``cross_entropy(-E/T, 0)`` (ebrl's before), the baseline;
- ``ebrl``: ``ebrl.losses.info_nce``,

on energies made sharper by scaling the network's output layer by ``sharpness`` (1: as initialised). The two take
turns (``repeats`` rounds, the order reversed every round, one torch thread), so a change of the machine's load
falls on both alike. Reported per sharpness: the share of counter-examples whose softmax weight is denormal in
float32 (smaller weights still are 0), the median CPU and wall milliseconds per step, and the ratio plain / ebrl per
round (paired): its median and range; a range that includes 1 is a tie.

Writes ``results/bench_denormals/bench_denormals.{csv,md,png}``.

Run: ``python -m experiments.bench_denormals`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ebrl._checks import seeded_init
from ebrl.energy import StateActionEnergy
from ebrl.losses import info_nce
from experiments._common import (
    environment_info,
    parse_args,
    pyplot,
    results_dir,
    round_ratio,
    save_figure,
    timed_rounds,
    write_table,
)


@dataclass
class Args:
    """Configuration of the denormal benchmark (every field is a command-line option)."""

    sharpness: tuple[float, ...] = field(
        default=(1.0, 300.0, 1000.0, 3000.0), metadata={"help": "output-layer scales (1: as initialised)"}
    )
    obs_dim: int = field(default=8, metadata={"help": "observation size (the PD particle task's, 2-D)"})
    act_dim: int = field(default=2, metadata={"help": "action size"})
    width: int = field(default=128, metadata={"help": "hidden width (2 layers)"})
    batch_size: int = field(default=256, metadata={"help": "demonstrations per step"})
    n_negatives: int = field(default=64, metadata={"help": "counter-examples per demonstration"})
    steps: int = field(default=10, metadata={"help": "steps per timed call"})
    repeats: int = field(default=7, metadata={"help": "timed calls per loss and sharpness (rounds)"})
    threads: int = field(default=1, metadata={"help": "torch threads"})
    seed: int = field(default=0, metadata={"help": "seed of the weights and the batch"})
    quick: bool = field(default=False, metadata={"help": "smoke run into results/quick/"})


QUICK = {"sharpness": (1.0, 3000.0), "width": 16, "batch_size": 8, "n_negatives": 4, "steps": 2, "repeats": 2}


def plain_info_nce(e_pos: Tensor, e_neg: Tensor) -> Tensor:
    """The textbook InfoNCE at T = 1: the cross-entropy of the positive, first among ``(B, 1 + N)`` logits -E."""
    logits = -torch.cat([e_pos[:, None], e_neg], dim=1)  # (B, 1 + N)
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))


LOSSES = {"plain": plain_info_nce, "ebrl": info_nce}


def energy_at(args: Args, sharpness: float) -> StateActionEnergy:
    """The same initial network for every sharpness, its output layer scaled by ``sharpness``."""
    with seeded_init(torch.Generator().manual_seed(args.seed)):
        energy = StateActionEnergy(args.obs_dim, args.act_dim, hidden=(args.width, args.width), activation="silu")
    with torch.no_grad():
        last = [m for m in energy.modules() if isinstance(m, nn.Linear)][-1]
        last.weight.mul_(sharpness)
        last.bias.mul_(sharpness)
    return energy


def denormal_share(e: Tensor) -> float:
    """The share of counter-examples whose softmax weight in float32 is denormal: between the smallest subnormal
    (about e^-103) and the smallest normal number (about e^-87); weights below the first are 0.
    """
    weights = torch.softmax(-e.detach().double(), dim=1)[:, 1:]  # (B, N), exact enough in float64
    info = torch.finfo(torch.float32)
    return float(((weights < info.tiny) & (weights >= info.smallest_normal * 2.0**-23)).double().mean())


def main(args: Args) -> list[dict[str, Any]]:
    if args.quick:
        args = replace(args, **QUICK)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    obs = torch.rand(args.batch_size, args.obs_dim, generator=g)  # (B, O)
    actions = torch.rand(args.batch_size, 1 + args.n_negatives, args.act_dim, generator=g)  # (B, 1 + N, A)
    rows, summary = [], []
    for sharpness in args.sharpness:
        energy = energy_at(args, sharpness)
        share = denormal_share(energy(obs, actions))
        def steps(loss: Callable[[Tensor, Tensor], Tensor], energy: nn.Module = energy) -> None:
            for _ in range(args.steps):
                energy.zero_grad(set_to_none=True)
                e = energy(obs, actions)  # (B, 1 + N)
                loss(e[:, 0], e[:, 1:]).backward()

        mine = [{"sharpness": sharpness, **r} for r in timed_rounds(
            {name: partial(steps, loss) for name, loss in LOSSES.items()}, repeats=args.repeats, units=args.steps,
            key="loss", unit="step")]
        rows += mine
        row: dict[str, Any] = {"sharpness": sharpness, "denormal share of counter-examples": round(share, 3)}
        for name in LOSSES:
            for kind in ("cpu", "wall"):
                row[f"{name} {kind} ms"] = round(statistics.median(r[f"{kind}_ms_per_step"] for r in mine
                                                                   if r["loss"] == name), 2)
        row["plain / ebrl CPU, per round: median [min, max]"] = round_ratio(mine, "cpu_ms_per_step", "loss", "plain",
                                                                            "ebrl")
        summary.append(row)
    root = results_dir("bench_denormals", root=results_dir("quick") if args.quick else None)
    write_table(root, "bench_denormals", summary, title="InfoNCE steps on sharp energies: denormal floats",
                config=args, info=environment_info(),
                notes=(f"One forward and backward pass of an InfoNCE step: a 2 x {args.width} SiLU StateActionEnergy, "
                       f"batch {args.batch_size} x {1 + args.n_negatives} candidates; medians over {args.repeats} "
                       f"alternating rounds of {args.steps} steps, {args.threads} torch thread(s); per round: the "
                       "plain loss's CPU time over ebrl's in the same round (a range that includes 1 is a tie)."
                       + (" QUICK SMOKE RUN: figures meaningless." if args.quick else ""),))
    write_table(root, "bench_denormals_rounds", rows, title="InfoNCE steps on sharp energies: every round")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    for i, name in enumerate(LOSSES):
        ax.plot(args.sharpness, [r[f"{name} cpu ms"] for r in summary], "o-", color=f"C{i}", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("sharpness (output-layer scale)")
    ax.set_ylabel("CPU ms per step")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, str(root / "bench_denormals.png"))
    return summary


if __name__ == "__main__":
    main(parse_args(Args, description=__doc__.splitlines()[0]))
