"""SoftQ against SB3 SAC on Pendulum-v1: final return and wall-clock, measured in the same run.

Targets (issue 5): SoftQ's mean return at least SAC's, and its training wall-clock at most 1.5x
SAC's. Both agents train in chunks of ``eval_freq`` steps; only the ``learn`` calls are timed, and
between chunks each is evaluated on ``n_eval_episodes`` deterministic episodes (fixed seeds).

Writes ``results/pendulum/``: ``pendulum.csv`` (one row per algorithm and seed), ``pendulum.md``,
``curves.csv`` and ``pendulum.png`` (evaluation return against steps).

Run: ``python -m experiments.pendulum`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from agents import SoftQ
from experiments._common import environment_info, parse_args, results_dir, write_table


@dataclass
class Args:
    """Configuration of the Pendulum experiment (every field is a command-line option)."""

    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"help": "training seeds"})
    total_timesteps: int = field(default=20_000, metadata={"help": "environment steps per run"})
    eval_freq: int = field(default=2_000, metadata={"help": "steps between evaluations"})
    n_eval_episodes: int = field(default=10, metadata={"help": "deterministic episodes per evaluation"})
    sac_learning_rate: float = field(default=1e-3, metadata={"help": "SAC learning rate (issue 5: 1e-3)"})
    softq_learning_rate: float = field(default=1e-3, metadata={"help": "SoftQ learning rate"})
    softq_alpha: float = field(default=0.5, metadata={"help": "SoftQ temperature alpha (reward units)"})
    softq_width: int = field(
        default=128,
        metadata={"help": "SoftQ critic width (2 layers); its target scores batch x n_value_samples actions"},
    )
    softq_n_value_samples: int = field(default=16, metadata={"help": "SoftQ: uniform actions per soft value"})
    softq_langevin_steps: int = field(default=8, metadata={"help": "SoftQ: Langevin steps per action"})
    quick: bool = field(default=False, metadata={"help": "smoke run: 600 steps, one seed, 2 episodes"})


QUICK = {"seeds": (0,), "total_timesteps": 600, "eval_freq": 300, "n_eval_episodes": 2}


def make_agent(algo: str, seed: int, args: Args) -> SoftQ | SAC:
    env = Monitor(gym.make("Pendulum-v1"))
    if algo == "SAC":
        return SAC("MlpPolicy", env, learning_rate=args.sac_learning_rate, seed=seed)
    return SoftQ(
        "MlpPolicy",
        env,
        learning_rate=args.softq_learning_rate,
        alpha=args.softq_alpha,
        n_value_samples=args.softq_n_value_samples,
        langevin_steps=args.softq_langevin_steps,
        policy_kwargs={"net_arch": [args.softq_width, args.softq_width]},
        seed=seed,
    )


def run(algo: str, seed: int, args: Args) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train one agent; return its summary row and its learning curve."""
    model = make_agent(algo, seed, args)
    eval_env = Monitor(gym.make("Pendulum-v1"))
    eval_env.reset(seed=10_000 + seed)
    curve, train_s = [], 0.0
    while model.num_timesteps < args.total_timesteps:
        chunk = min(args.eval_freq, args.total_timesteps - model.num_timesteps)
        start = time.perf_counter()
        model.learn(chunk, reset_num_timesteps=False)
        train_s += time.perf_counter() - start
        mean, std = evaluate_policy(model, eval_env, n_eval_episodes=args.n_eval_episodes, deterministic=True)
        step = model.num_timesteps
        curve.append({"algo": algo, "seed": seed, "step": step, "eval_return": float(mean), "eval_std": float(std)})
    row = {
        "algo": algo,
        "seed": seed,
        "final_return": curve[-1]["eval_return"],
        "final_std": curve[-1]["eval_std"],
        "best_return": max(c["eval_return"] for c in curve),
        "train_seconds": round(train_s, 1),
        "env_steps_per_s": round(model.num_timesteps / train_s, 1),
    }
    return row, curve


def plot(curves: list[dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (algo, seed), color in zip(sorted({(c["algo"], c["seed"]) for c in curves}), plt.cm.tab10.colors, strict=False):
        pts = [c for c in curves if (c["algo"], c["seed"]) == (algo, seed)]
        ax.plot([c["step"] for c in pts], [c["eval_return"] for c in pts], color=color, label=f"{algo} seed {seed}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return (deterministic)")
    ax.set_title("Pendulum-v1")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(args: Args) -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    if args.quick:
        args = replace(args, **QUICK)
    out_dir = results_dir("pendulum")
    rows, curves = [], []
    for seed in args.seeds:
        for algo in ("SAC", "SoftQ"):
            row, curve = run(algo, seed, args)
            rows.append(row)
            curves += curve
    summary = []
    for algo in ("SAC", "SoftQ"):
        mine = [r for r in rows if r["algo"] == algo]
        summary.append({
            "algo": algo,
            "seed": "mean",
            "final_return": float(np.mean([r["final_return"] for r in mine])),
            "train_seconds": round(float(np.mean([r["train_seconds"] for r in mine])), 1),
        })
    ratio = summary[1]["train_seconds"] / summary[0]["train_seconds"]
    plot(curves, str(out_dir / "pendulum.png"))
    write_table(out_dir, "curves", curves, title="Pendulum-v1 learning curves")
    write_table(
        out_dir, "pendulum", rows + summary,
        title="Pendulum-v1: SoftQ against SAC",
        config=args,
        info=environment_info(packages=("stable-baselines3", "gymnasium")),
        notes=(
            f"SoftQ/SAC training wall-clock ratio: {ratio:.2f} (target <= 1.5). Returns are the mean of "
            f"n_eval_episodes deterministic episodes after the last chunk.",
        ),
    )
    return rows + summary


if __name__ == "__main__":
    for row in main(parse_args(Args, description=__doc__.splitlines()[0])):
        print(row)
