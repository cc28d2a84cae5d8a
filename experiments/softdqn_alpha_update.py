"""SoftDQN's two ways of learning α, paired on the same CartPole-v1 seeds: the Newton step against SAC's Adam dual.

Both runs of a seed use ``experiments.classic_discrete``'s SoftDQN configuration (rl-zoo3's DQN hyperparameters,
the learnt α, the soft double-Q target, the decaying learning rate) and differ only in ``alpha_update``:
``"newton"`` (the default; log α moves by at most ``alpha_max_step`` = 0.01 per update) or ``"adam"`` (the
previous default; Adam on log α at the policy's learning rate, from α = 1). Each agent's own held-out result is in
``results/classic_discrete/`` (Newton, seeds 110-114) and ``results/classic_discrete_adam_alpha/`` (Adam, seeds
100-104), but those are different seeds. This run puts both on the same fresh seeds.

Protocol: ``SEEDS`` were declared in the commit that added this script, before any run on them, and no setting
was chosen on them. A run's final score is classic_discrete's (the mean of the evaluations in the last 10% of
training). The summary gives each update's solved count, late collapses and mean final score with its 95%
bootstrap interval, and the paired difference Newton − Adam (a tie when its interval includes zero).

Writes ``results/softdqn_alpha_update/``: ``runs.csv``/``runs.md`` (one row per update and seed, then the
summary) and ``runs.png``. Resumable: finished (update, seed) rows are kept.

Run: ``python -m experiments.softdqn_alpha_update`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from experiments import classic_discrete as cd
from experiments._common import environment_info, parse_args, pyplot, read_rows, results_dir, save_figure, write_table
from experiments.stats import bootstrap_ci, mean, paired_difference_ci, verdict

SEEDS: tuple[int, ...] = (120, 121, 122, 123, 124)
"""Fresh seeds, declared before any run on them."""

UPDATES: tuple[str, ...] = ("newton", "adam")


@dataclass
class Args:
    """Configuration of the paired comparison (every field is a command-line option)."""

    seeds: tuple[int, ...] = field(default=SEEDS, metadata={"help": "CartPole-v1 seeds (default: the declared ones)"})
    updates: tuple[str, ...] = field(default=UPDATES, metadata={"help": "alpha_update values to run"})
    quick: bool = field(default=False, metadata={"help": "smoke run: one seed, 2% of the steps"})


def classic_args(args: Args, update: str) -> cd.Args:
    """classic_discrete's configuration for SoftDQN with ``update``."""
    base = cd.Args(env_ids=("CartPole-v1",), algos=("SoftDQN",), softdqn_alpha_update=update)
    if args.quick:
        base = replace(base, step_fraction=0.02, eval_freq=500, n_eval_episodes=2)
    return base


def summarise(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Per update: solved count, late collapses, mean final score (95% CI); the paired Newton − Adam note."""
    out, notes = [], []
    scores = {u: {r["seed"]: r["final_window_return"] for r in rows if r["update"] == u} for u in UPDATES}
    for update in UPDATES:
        mine = [r for r in rows if r["update"] == update]
        if not mine:
            continue
        ci = bootstrap_ci(np.array([r["final_window_return"] for r in mine]), mean, reps=10_000)
        out.append({
            "update": update, "seed": "all", "final_window_return": ci.point,
            "final_ci95": f"[{ci.low:.4g}, {ci.high:.4g}]",
            "solved_at_end": f"{sum(bool(r['solved_at_end']) for r in mine)}/{len(mine)}",
            "late_collapse": f"{sum(bool(r['late_collapse']) for r in mine)}/{len(mine)}",
        })
    shared = sorted(set(scores["newton"]) & set(scores["adam"]))
    if len(shared) >= 2:
        diff = paired_difference_ci([scores["newton"][s] for s in shared], [scores["adam"][s] for s in shared])
        notes.append(f"Newton - Adam, final score paired by seed over {len(shared)} seeds {shared}: "
                     f"{diff.point:.4g} [{diff.low:.4g}, {diff.high:.4g}] ({verdict(diff)}).")
    return out, notes


def main(args: Args) -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    if args.quick:
        args = replace(args, seeds=args.seeds[:1])
    unknown = sorted(set(args.updates) - set(UPDATES))
    if unknown:
        raise ValueError(f"updates must be among {UPDATES}, got {unknown}")
    out_dir = results_dir("softdqn_alpha_update")
    digests = {u: cd.config_key(classic_args(args, u), "SoftDQN", "CartPole-v1") for u in UPDATES}
    path = out_dir / "runs.csv"
    rows = read_rows(path, keep=lambda r: r["seed"] != "all" and r.get("config") == digests.get(r["update"]),
                     integer=("seed", "solved_at_step", "steps"),
                     real=("final_window_return", "final_return", "best_return", "seconds"),
                     boolean=("solved_at_end", "late_collapse")) if path.exists() else []
    for seed in args.seeds:
        for update in args.updates:
            if any((r["update"], r["seed"]) == (update, seed) for r in rows):
                continue
            row, _ = cd.run("SoftDQN", "CartPole-v1", seed, classic_args(args, update))
            keep = ("seed", "final_window_return", "final_return", "best_return", "solved_at_step", "solved_at_end",
                    "late_collapse", "steps", "seconds")
            rows.append({"update": update, **{k: row[k] for k in keep}, "config": digests[update]})
            print(rows[-1], flush=True)
            write_table(out_dir, "runs", rows, title="SoftDQN's alpha_update on CartPole-v1 (partial)")
    rows.sort(key=lambda r: (r["update"], r["seed"]))
    summary, notes = summarise(rows)
    write_table(
        out_dir, "runs", rows + summary,
        title="SoftDQN on CartPole-v1: the Newton temperature against SAC's Adam dual, paired by seed",
        config=args, info=environment_info(packages=("stable-baselines3", "gymnasium")),
        notes=(*notes, "final_window_return: the mean of the evaluations in the last 10% of training "
               "(experiments.classic_discrete). seconds: each run's wall-clock on a shared machine."),
    )
    plot(rows, out_dir)
    return rows + summary


def plot(rows: list[dict[str, Any]], out_dir) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, update in enumerate(UPDATES):
        mine = [r for r in rows if r["update"] == update]
        ax.scatter([r["seed"] + 0.1 * (i - 0.5) for r in mine], [r["final_window_return"] for r in mine],
                   label=update, color="tab:blue" if update == "newton" else "tab:orange")
    ax.axhline(475, color="grey", linestyle="--", linewidth=0.8, label="solve threshold")
    ax.set_xlabel("seed")
    ax.set_ylabel("final score (last 10% of evaluations)")
    ax.legend()
    save_figure(fig, out_dir / "runs.png")


if __name__ == "__main__":
    for row in main(parse_args(Args, description=__doc__.splitlines()[0])):
        print(row)
