"""SoftQ against SB3 SAC on Pendulum-v1: final return and wall-clock, measured in the same run.

Targets: SoftQ's mean return at least SAC's, and its training wall-clock at most 1.5x
SAC's. The two agents of a seed train side by side, alternating ``timing_chunk``-step ``learn``
calls (ABBA order, so a change in the machine's load falls on both alike); only the ``learn`` calls
are timed. Every ``eval_freq`` steps each is evaluated on ``n_eval_episodes`` deterministic episodes
(fixed seeds).

The hyperparameters are the Pendulum-v1 entries of ``hyperparams/softq.yml`` and ``hyperparams/sac.yml`` (rl-zoo3's
format, so ``python -m agents.zoo --algo softq --env Pendulum-v1`` trains the same SoftQ); options override them.

Protocol. Pendulum has no tuning seeds of its own: the configuration is the yml entries' (SAC's is rl-zoo3's;
SoftQ's adds its defaults of the time, a learnt α and the amortised proposal). Seeds 0-5 had run at the earlier
defaults before these were adopted (``results/pendulum*``, history); the current configuration then ran on seeds
0-2 (``results/auto_alpha/pendulum/``) and later, with no setting changed in between, on seeds 3 and 4 (their
rows added to the same table). ``tests/test_zoo.py`` checks that the committed table's configuration is the
current one.

A run's final score (``final_window_return``) is the mean of its evaluations in the last 10% of training
(``experiments.stats.final_window``: steps 18,000 and 20,000 at the defaults), not one evaluation.

Writes ``results/pendulum/``: ``pendulum.csv`` (one row per algorithm and seed), ``pendulum.md``,
``summary.csv`` (means over seeds with 95% bootstrap intervals, and the paired difference SoftQ - SAC),
``curves.csv`` and ``pendulum.png`` (evaluation return against steps).

Run: ``python -m experiments.pendulum`` (``--quick`` for a smoke run; ``--no-run`` rebuilds the tables from
the rows already in the folder, e.g. after the rows of more seeds, made at the same configuration by
another invocation, were added to its CSVs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from agents import SoftQ
from experiments._common import (
    config_digest,
    environment_info,
    parse_args,
    pyplot,
    read_rows,
    results_dir,
    save_figure,
    write_table,
    zoo_entry,
)
from experiments.stats import bootstrap_ci, final_window, mean, paired_difference_ci, verdict

SOFTQ_HP, SAC_HP = zoo_entry("softq", "Pendulum-v1"), zoo_entry("sac", "Pendulum-v1")
if SOFTQ_HP["n_timesteps"] != SAC_HP["n_timesteps"]:
    raise ValueError(f"softq.yml and sac.yml give Pendulum-v1 different n_timesteps: {SOFTQ_HP}, {SAC_HP}")
_WIDTHS = SOFTQ_HP["policy_kwargs"]["net_arch"]
if len(_WIDTHS) != 2 or _WIDTHS[0] != _WIDTHS[1]:
    raise ValueError(f"softq.yml's Pendulum-v1 net_arch must be two equal widths (softq_width), got {_WIDTHS}")


@dataclass
class Args:
    """Configuration of the Pendulum experiment (every field is a command-line option)."""

    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"help": "training seeds"})
    total_timesteps: int = field(default=int(SOFTQ_HP["n_timesteps"]), metadata={"help": "environment steps per run"})
    eval_freq: int = field(default=2_000, metadata={"help": "steps between evaluations (a multiple of timing_chunk)"})
    timing_chunk: int = field(default=500, metadata={"help": "steps per alternating learn call of the two agents"})
    n_eval_episodes: int = field(default=10, metadata={"help": "deterministic episodes per evaluation"})
    sac_learning_rate: float = field(
        default=float(SAC_HP["learning_rate"]), metadata={"help": "SAC learning rate (hyperparams/sac.yml)"}
    )
    softq_learning_rate: float = field(
        default=float(SOFTQ_HP["learning_rate"]), metadata={"help": "SoftQ learning rate (hyperparams/softq.yml)"}
    )
    softq_alpha: str = field(
        default=str(SOFTQ_HP["alpha"]),
        metadata={"help": "SoftQ temperature: 'auto' (learnt, as SAC's) or a float in reward units"},
    )
    softq_width: int = field(
        default=int(_WIDTHS[0]), metadata={"help": "SoftQ critic and proposal width (2 layers)"}
    )
    run: bool = field(default=True, metadata={"help": "--no-run: only rebuild the tables from the folder's rows"})
    quick: bool = field(default=False, metadata={"help": "smoke run: 600 steps, one seed, 2 episodes"})


NOT_IN_CONFIG = ("seeds", "run", "quick")
"""Fields that do not change what a run of one seed computes (left out of the ``config`` digest)."""

QUICK = {"seeds": (0,), "total_timesteps": 600, "eval_freq": 300, "timing_chunk": 150, "n_eval_episodes": 2}


def alpha_arg(text: str) -> float | str:
    """``"auto"``/``"auto_<init>"`` as given, anything else as a float."""
    return text if text.startswith("auto") else float(text)


def make_agent(algo: str, seed: int, args: Args) -> SoftQ | SAC:
    env = Monitor(gym.make("Pendulum-v1"))
    if algo == "SAC":
        return SAC("MlpPolicy", env, learning_rate=args.sac_learning_rate, seed=seed)
    return SoftQ(
        "MlpPolicy",
        env,
        learning_rate=args.softq_learning_rate,
        alpha=alpha_arg(args.softq_alpha),
        policy_kwargs={"net_arch": [args.softq_width, args.softq_width]},
        seed=seed,
    )


ALGOS = ("SAC", "SoftQ")


def run_seed(seed: int, args: Args) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train SAC and SoftQ side by side on one seed; return their summary rows and learning curves.

    The two agents train in lockstep, alternating ``timing_chunk``-step ``learn`` calls in ABBA order,
    so that any change in the machine's load during the run falls on both timings alike.
    """
    models = {algo: make_agent(algo, seed, args) for algo in ALGOS}
    eval_envs = {algo: Monitor(gym.make("Pendulum-v1")) for algo in ALGOS}
    for env in eval_envs.values():
        env.reset(seed=10_000 + seed)
    train_s = dict.fromkeys(ALGOS, 0.0)
    curves: dict[str, list[dict[str, Any]]] = {algo: [] for algo in ALGOS}
    done, flip = 0, False
    while done < args.total_timesteps:
        chunk = min(args.timing_chunk, args.total_timesteps - done)
        for algo in reversed(ALGOS) if flip else ALGOS:
            start = time.perf_counter()
            models[algo].learn(chunk, reset_num_timesteps=False)
            train_s[algo] += time.perf_counter() - start
        done += chunk
        flip = not flip
        if done % args.eval_freq and done < args.total_timesteps:
            continue
        for algo in ALGOS:
            mean, std = evaluate_policy(
                models[algo], eval_envs[algo], n_eval_episodes=args.n_eval_episodes, deterministic=True
            )
            curves[algo].append(
                {"algo": algo, "seed": seed, "step": done, "eval_return": float(mean), "eval_std": float(std)}
            )
            print(f"{algo} seed {seed} step {done}: eval {mean:.1f} ± {std:.1f}, train {train_s[algo]:.0f} s",
                  flush=True)
    rows = [
        {
            "algo": algo,
            "seed": seed,
            "final_window_return": final_window([(c["step"], c["eval_return"]) for c in curves[algo]],
                                                args.total_timesteps),
            "final_return": curves[algo][-1]["eval_return"],
            "final_std": curves[algo][-1]["eval_std"],
            "best_return": max(c["eval_return"] for c in curves[algo]),
            "train_seconds": round(train_s[algo], 1),
            "env_steps_per_s": round(models[algo].num_timesteps / train_s[algo], 1),
        }
        for algo in ALGOS
    ]
    return rows, curves["SAC"] + curves["SoftQ"]


def plot(curves: list[dict[str, Any]], path: str) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    for (algo, seed), color in zip(sorted({(c["algo"], c["seed"]) for c in curves}), plt.cm.tab10.colors, strict=False):
        pts = [c for c in curves if (c["algo"], c["seed"]) == (algo, seed)]
        ax.plot([c["step"] for c in pts], [c["eval_return"] for c in pts], color=color, label=f"{algo} seed {seed}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return (deterministic)")
    ax.set_title("Pendulum-v1")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def summarize(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """Each agent's mean final score and training time over seeds (95% bootstrap intervals), the paired
    difference SoftQ - SAC and the SoftQ/SAC training wall-clock ratio (total over the seeds both ran)."""
    by = {algo: {r["seed"]: r for r in rows if r["algo"] == algo} for algo in ALGOS}
    seeds = sorted(set(by["SAC"]) & set(by["SoftQ"]))
    if not seeds:
        return [], "no seed was run by both agents"
    out = []
    for algo in ALGOS:
        score = bootstrap_ci([by[algo][s]["final_window_return"] for s in seeds], mean)
        out.append({"quantity": f"{algo} final score", "seeds": len(seeds), "mean": score.point, "low": score.low,
                    "high": score.high})
    diff = paired_difference_ci([by["SoftQ"][s]["final_window_return"] for s in seeds],
                                [by["SAC"][s]["final_window_return"] for s in seeds])
    out.append({"quantity": "SoftQ - SAC final score (paired by seed)", "seeds": len(seeds), "mean": diff.point,
                "low": diff.low, "high": diff.high, "verdict": verdict(diff) if len(seeds) > 1 else "n/a (1 seed)"})
    ratio = sum(by["SoftQ"][s]["train_seconds"] for s in seeds) / sum(by["SAC"][s]["train_seconds"] for s in seeds)
    out.append({"quantity": "SoftQ / SAC training wall-clock (total)", "seeds": len(seeds), "mean": ratio})
    note = (f"Seeds {seeds}: SoftQ - SAC final score {diff} (paired, 95% CI): {out[2]['verdict']}; "
            f"SoftQ/SAC training wall-clock {ratio:.2f} (target <= 1.5).")
    return out, note


def main(args: Args) -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    if args.quick:
        args = replace(args, **QUICK)
    out_dir = results_dir("pendulum")
    digest = config_digest(args, exclude=NOT_IN_CONFIG)
    if not args.run:  # the folder's rows as they are, final scores recomputed from their curves
        curves = read_rows(out_dir / "curves.csv", keep=lambda r: True, integer=("seed", "step"),
                           real=("eval_return", "eval_std"))
        rows = read_rows(out_dir / "pendulum.csv", keep=lambda r: r["seed"].isdigit(), integer=("seed",),
                         real=("final_return", "final_std", "best_return", "train_seconds", "env_steps_per_s"))
        if not rows:
            raise FileNotFoundError(f"--no-run: no per-seed rows in {out_dir / 'pendulum.csv'}")
        for r in rows:
            curve = [(c["step"], c["eval_return"]) for c in curves if (c["algo"], c["seed"]) == (r["algo"], r["seed"])]
            r["final_window_return"] = final_window(curve, args.total_timesteps)
        args = replace(args, seeds=tuple(sorted({r["seed"] for r in rows})))
        rebuilt = ("Rebuilt from this folder's rows by --no-run: the environment below is the rebuild's, not the "
                   "runs'; rows with a config column were made at that configuration digest.",)
    else:
        rows, curves, rebuilt = [], [], ()
        for seed in args.seeds:
            seed_rows, seed_curves = run_seed(seed, args)
            rows += [{**r, "config": digest} for r in seed_rows]
            curves += seed_curves
    rows = sorted(rows, key=lambda r: (r["seed"], r["algo"]))
    summary, note = summarize(rows)
    plot(curves, str(out_dir / "pendulum.png"))
    write_table(out_dir, "curves", curves, title="Pendulum-v1 learning curves")
    info = environment_info(packages=("stable-baselines3", "gymnasium"))
    write_table(
        out_dir, "pendulum", rows,
        title="Pendulum-v1: SoftQ against SAC",
        config=args,
        info=info,
        notes=(
            note,
            f"The agents trained in alternating {args.timing_chunk}-step chunks (ABBA), one torch thread; "
            f"final_window_return: the mean of the evaluations (each {args.n_eval_episodes} deterministic episodes) "
            f"in the last 10% of training; final_return: the last evaluation alone.",
            *rebuilt,
        ),
    )
    write_table(out_dir, "summary", summary, title="Pendulum-v1: means over seeds with 95% bootstrap intervals",
                config=args, info=info, notes=("Percentile bootstrap over seeds (experiments/stats.py); a paired "
                                               "difference whose interval includes 0 is a tie.",))
    return rows + summary


if __name__ == "__main__":
    for row in main(parse_args(Args, description=__doc__.splitlines()[0])):
        print(row)
