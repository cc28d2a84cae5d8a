"""What a SoftQ gradient update costs against SB3 SAC's, at equal widths: CPU and wall time per update.

Agents (twin critics and the actor or proposal all ``width`` wide, two hidden layers), on the same replay buffer
contents (``learning_starts`` random transitions of ``env_id``), each timed on ``model.train(steps, batch_size)``:

- ``SAC``: SB3's SAC (ReLU networks; its target evaluates the twin target critics at one actor draw per next state);
- ``SoftQ``: the default (the soft value importance-sampled from 8 proposal draws per next state: 8x SAC's
  target-critic batch; SiLU networks, which the Langevin and MALA moves need smooth);
- ``SoftQ, 2 value draws``: SoftQ with ``value_sampler=ActionSampler(n_particles=2, n_levels=1, n_moves=0)``,
  the MuJoCo experiment's setting;
- ``SoftQ, 2 value draws, ReLU``: the same with ReLU networks (``policy_kwargs=dict(activation="relu")``), as
  SAC's: what the activation costs. Not a recommended setting: the acting sampler's MALA moves follow the
  gradient in the action, which ReLU makes piecewise constant.

The agents take turns (one timed ``train`` call each, ``repeats`` rounds, the order reversed every round), so a
change of the machine's load falls on all alike. Reported: the median over rounds of CPU and wall milliseconds per
update, the ratio of the medians to SAC's, the run-to-run spread (the rounds' range over their median), and the
ratio to SAC's time in the same round (paired, so a load shared by the round cancels): its median and range. A
ratio whose per-round range includes 1 is a tie.

Writes ``results/bench_softq_update/bench_softq_update.{csv,md,png}``.

Run: ``python -m experiments.bench_softq_update`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import torch
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm

from agents import SoftQ
from ebrl.rl import ActionSampler
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
    """Configuration of the update benchmark (every field is a command-line option)."""

    env_id: str = field(default="Pendulum-v1", metadata={"help": "Gymnasium id (Box actions)"})
    width: int = field(default=256, metadata={"help": "hidden width (2 layers) of every network"})
    batch_size: int = field(default=256, metadata={"help": "minibatch size"})
    steps: int = field(default=100, metadata={"help": "gradient updates per timed call"})
    repeats: int = field(default=5, metadata={"help": "timed calls per agent (rounds)"})
    learning_starts: int = field(default=1_000, metadata={"help": "random transitions in the buffer"})
    threads: int = field(default=1, metadata={"help": "torch threads (the same for every agent)"})
    seed: int = field(default=0, metadata={"help": "seed of the agents and the buffer"})
    quick: bool = field(default=False, metadata={"help": "smoke run into results/quick/"})


QUICK = {"steps": 3, "repeats": 2, "learning_starts": 300, "width": 32, "batch_size": 32}


def agents(args: Args) -> dict[str, BaseAlgorithm]:
    """The agents, each with ``learning_starts`` random transitions in its buffer and no update yet."""
    common = {"learning_starts": args.learning_starts, "batch_size": args.batch_size, "seed": args.seed,
              "buffer_size": args.learning_starts + 10, "device": "cpu"}
    net = {"net_arch": [args.width, args.width]}
    models: dict[str, BaseAlgorithm] = {"SAC": SAC("MlpPolicy", args.env_id, policy_kwargs=dict(net), **common)}
    two = ActionSampler(n_particles=2, n_levels=1, n_moves=0)
    for name, value, activation in (("SoftQ", None, "silu"), ("SoftQ, 2 value draws", two, "silu"),
                                    ("SoftQ, 2 value draws, ReLU", two, "relu")):
        models[name] = SoftQ("MlpPolicy", args.env_id, policy_kwargs=dict(net, activation=activation),
                             value_sampler=value, **common)
    for model in models.values():
        model.learn(args.learning_starts)  # random actions only: no update before learning_starts
        model.train(args.steps, args.batch_size)  # an untimed round: optimiser state, allocations, caches
    return models


def main(args: Args) -> list[dict[str, Any]]:
    if args.quick:
        args = replace(args, **QUICK)
    torch.set_num_threads(args.threads)
    models = agents(args)
    names = list(models)
    rows = timed_rounds({name: partial(model.train, args.steps, args.batch_size) for name, model in models.items()},
                        repeats=args.repeats, units=args.steps, key="agent", unit="update")
    sac_rows = [r for r in rows if r["agent"] == "SAC"]
    sac = {kind: statistics.median(r[f"{kind}_ms_per_update"] for r in sac_rows) for kind in ("cpu", "wall")}
    summary = []
    for name in names:
        mine = [r for r in rows if r["agent"] == name]
        row: dict[str, Any] = {"agent": name}
        for kind in ("cpu", "wall"):
            values = [r[f"{kind}_ms_per_update"] for r in mine]
            median = statistics.median(values)
            row.update({f"{kind} ms per update": round(median, 3), f"{kind} x SAC": round(median / sac[kind], 2),
                        f"{kind} spread": round((max(values) - min(values)) / median, 2)})
        row["cpu x SAC, per round: median [min, max]"] = round_ratio(rows, "cpu_ms_per_update", "agent", name, "SAC")
        summary.append(row)
    root = results_dir("bench_softq_update", root=results_dir("quick") if args.quick else None)
    info = environment_info(packages=("stable-baselines3",))
    write_table(root, "bench_softq_update", summary, title="SoftQ's gradient update against SAC's, equal widths",
                config=args, info=info,
                notes=(f"{args.env_id}, twin critics and actor or proposal {args.width} wide, batch {args.batch_size};"
                       f" medians over {args.repeats} alternating rounds of {args.steps} updates, one torch thread "
                       "each; spread: the rounds' range over their median; per round: the ratio to SAC's time in the "
                       "same round (a range that includes 1 is a tie)."
                       + (" QUICK SMOKE RUN: figures meaningless." if args.quick else ""),))
    write_table(root, "bench_softq_update_rounds", rows, title="SoftQ's gradient update: every round")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    medians = [r["cpu ms per update"] for r in summary]
    ax.barh(names, medians, color=["grey"] + [f"C{i}" for i in range(len(names) - 1)])
    for i, name in enumerate(names):
        ax.plot([r["cpu_ms_per_update"] for r in rows if r["agent"] == name], [i] * args.repeats, "k.", ms=4)
    ax.set_xlabel("CPU ms per gradient update (dots: rounds)")
    ax.invert_yaxis()
    fig.tight_layout()
    save_figure(fig, str(root / "bench_softq_update.png"))
    return summary


if __name__ == "__main__":
    main(parse_args(Args, description=__doc__.splitlines()[0]))
