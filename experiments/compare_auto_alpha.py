"""Where results moved when SoftQ and SoftDQN went to their new defaults: a learnt temperature (``alpha="auto"``)
and, for SoftQ, the amortised proposal with the scale-free sampler.

Reads the per-seed rows of the earlier tables (``results/<name>/``, hand-set α, SoftQ with the replaced Langevin
sampler) and of the reruns with the new defaults (``results/auto_alpha/<name>/``, the same seeds and budgets,
written by ``EBRL_RESULTS_ROOT=results/auto_alpha python -m experiments.<name>``), and reports per experiment
and agent the mean of each, and the mean of the per-seed differences (new - old) with its 95% bootstrap
interval (``experiments.stats``); an interval that includes zero is a tie. The baselines (SAC, DQN) did not
change: their rows show how far a rerun of identical settings moves on this machine.

Writes ``results/auto_alpha/comparison.{csv,md}``. Run: ``python -m experiments.compare_auto_alpha``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from experiments import stats
from experiments._common import RESULTS_ROOT, environment_info, write_table

CASES = (
    # (experiment, metric, filter on other columns, agents)
    ("pendulum", "final_return", {}, ("SoftQ", "SAC")),
    ("multigoal", "goals_reached", {"policy": "stochastic"}, ("SoftQ", "SAC")),
    ("multigoal", "mean_return", {"policy": "stochastic"}, ("SoftQ", "SAC")),
    ("classic_discrete", "final_return", {"env": "CartPole-v1"}, ("SoftDQN", "DQN")),
)


def read(path: Path, metric: str, where: dict[str, str], algo: str) -> dict[int, float]:
    """seed -> metric for ``algo``'s rows of ``path`` that match ``where`` (summary rows such as 'mean' skipped)."""
    out: dict[int, float] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            if row["algo"] != algo or not row["seed"].isdigit() or any(row.get(k) != v for k, v in where.items()):
                continue
            out[int(row["seed"])] = float(row[metric])
    return out


def compare(
    name: str, where: dict[str, str], metric: str, agent: str, new: dict[int, float], old: dict[int, float]
) -> dict[str, Any]:
    """One table row: ``new`` against ``old`` (seed -> metric), paired on their common seeds."""
    seeds = sorted(set(old) & set(new))
    a, b = np.array([new[s] for s in seeds]), np.array([old[s] for s in seeds])
    diff = stats.paired_difference_ci(a, b, stats.mean) if len(seeds) > 1 else None
    return {
        "experiment": name + (" " + " ".join(f"{k}={v}" for k, v in where.items()) if where else ""),
        "metric": metric,
        "agent": agent,
        "seeds": " ".join(map(str, seeds)),
        "old per seed": " ".join(f"{x:.4g}" for x in b),
        "new per seed": " ".join(f"{x:.4g}" for x in a),
        "old mean": float(b.mean()),
        "new mean": float(a.mean()),
        "mean difference (new - old)": float((a - b).mean()),
        "95% CI": "" if diff is None else f"[{diff.low:.4g}, {diff.high:.4g}]",
        "verdict": "n/a (one seed)" if diff is None else stats.verdict(diff),
    }


def main(root: Path = RESULTS_ROOT) -> list[dict[str, Any]]:
    rows = []
    for name, metric, where, algos in CASES:
        old_path, new_path = root / name / f"{name}.csv", root / "auto_alpha" / name / f"{name}.csv"
        if not new_path.is_file():
            continue
        for algo in algos:
            old, new = read(old_path, metric, where, algo), read(new_path, metric, where, algo)
            if set(old) & set(new):
                rows.append(compare(name, where, metric, algo, new, old))
    for name, metric, where, (ebrl_agent, baseline) in CASES:
        new_path = root / "auto_alpha" / name / f"{name}.csv"
        if new_path.is_file():
            ours, theirs = read(new_path, metric, where, ebrl_agent), read(new_path, metric, where, baseline)
            rows.append(compare(name, where, metric, f"{ebrl_agent} - {baseline}, new defaults", ours, theirs))
    out_dir = root / "auto_alpha"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(
        out_dir, "comparison", rows,
        title="Reruns with the new defaults (learnt α; SoftQ's amortised, scale-free sampler) against earlier tables",
        info=environment_info(),
        notes=(
            "old: results/<experiment>/ (hand-set α: Pendulum 0.5, MultiGoal 1 with reward scale 0.1, CartPole 1; "
            "SoftQ with 32 uniform candidates and 8 Langevin steps). new: results/auto_alpha/<experiment>/. "
            "Same seeds, budgets and evaluation. The baselines' settings did not change.",
            "Rows 'X - Y, new defaults' compare the ebrl agent with its baseline in the reruns, paired by seed: there "
            "'old' holds the baseline and 'new' the ebrl agent.",
            "Interval: 95% percentile bootstrap over seeds of the mean paired difference; 'tie' when it includes 0. "
            "With 2-3 seeds these intervals are wide and the bootstrap over so few seeds is optimistic.",
        ),
    )
    return rows


if __name__ == "__main__":
    for r in main():
        print(r)
