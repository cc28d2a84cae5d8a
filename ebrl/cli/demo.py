"""``ebrl demo``: SoftQ on ebrl/MultiGoal-v0, then the model, a trajectory plot and a summary."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents import SoftQ
from ebrl.cli._common import ProgressBar, add_command, make_env
from ebrl.plots import pyplot, save_figure
from envs.multigoal import draw_episodes, rollouts


def run_demo(out: Path, *, steps: int, episodes: int, seed: int, progress: bool = True) -> dict[str, Any]:
    """Train SoftQ on MultiGoal, evaluate ``episodes`` stochastic episodes from the origin, write three files.

    Writes ``softq_multigoal.zip``, ``trajectories.png`` and ``summary.json`` under ``out`` and
    returns the summary.
    """
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = SoftQ(
        "MlpPolicy",
        make_env("ebrl/MultiGoal-v0"),
        alpha=1.0,
        reward_scale=0.1,
        policy_kwargs={"net_arch": [128, 128]},
        seed=seed,
        device="cpu",
    )
    model.learn(steps, callback=ProgressBar(steps, enabled=progress))
    train_s = time.perf_counter() - start
    eps = rollouts(model, episodes, deterministic=False, seed=1000 + seed)
    goals = sorted({ep["goal"] for ep in eps} - {-1})
    returns = np.array([ep["return"] for ep in eps])
    summary = {
        "env": "ebrl/MultiGoal-v0",
        "algo": "SoftQ",
        "steps": steps,
        "seed": seed,
        "episodes": episodes,
        "goals_reached": len(goals),
        "goals": goals,
        "episodes_at_goal": int(sum(ep["goal"] >= 0 for ep in eps)),
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "train_seconds": round(train_s, 1),
    }
    model.save(out / "softq_multigoal.zip")
    fig, ax = pyplot().subplots(figsize=(5, 5))
    draw_episodes(ax, eps)
    ax.set_title(f"SoftQ, {steps} steps: {len(goals)}/4 goals ({episodes} episodes)")
    save_figure(fig, out / "trajectories.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    print(f"Training SoftQ on ebrl/MultiGoal-v0 for {args.steps} steps (seed {args.seed}) ...", flush=True)
    summary = run_demo(out, steps=args.steps, episodes=args.episodes, seed=args.seed, progress=args.progress)
    model_path, plot_path, summary_path = out / "softq_multigoal.zip", out / "trajectories.png", out / "summary.json"
    print(
        f"Goals reached: {summary['goals_reached']}/4 {summary['goals']} in {summary['episodes_at_goal']}/"
        f"{args.episodes} stochastic episodes from the origin; return {summary['mean_return']:.1f} ± "
        f"{summary['std_return']:.1f}; trained in {summary['train_seconds']:.0f} s"
    )
    print(f"Model:        {model_path}")
    print(f"Trajectories: {plot_path}")
    print(f"Summary:      {summary_path}")
    print(f"Evaluate again: ebrl eval {model_path} --env ebrl/MultiGoal-v0 --episodes 20")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "demo", "train SoftQ on ebrl/MultiGoal-v0, then save the model, a trajectory plot and a "
                    "summary", threads=True, progress=True)
    p.add_argument("--steps", type=int, default=3000, help="environment steps")
    p.add_argument("--episodes", type=int, default=10, help="evaluation episodes from the origin")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="ebrl-demo", help="output directory")
    p.set_defaults(func=run)
