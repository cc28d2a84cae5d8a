"""Optuna sweep of SoftQ's acting sampler (particles per state, MALA moves), on a short budget; α is learnt.

Each trial trains SoftQ for ``total_timesteps`` in ``n_chunks`` chunks and, after each chunk,
reports the mean return of ``n_eval_episodes`` stochastic episodes to Optuna; a ``MedianPruner``
stops trials that fall below the median of earlier trials at the same chunk. The first trial of a
new study is SoftQ's defaults (16 particles, 1 move): the baseline, measured in the
same run. The study lives in an SQLite file, so an interrupted sweep resumes where it stopped:
run the same command again and it adds trials until the study holds ``n_trials``.

Writes ``results/sweep/``: ``sweep.csv`` and ``sweep.md`` (one row per trial, best first) and
``sweep.db`` (the Optuna study). Needs Optuna: ``pip install "ebrl[sweep]"``.

Run: ``python -m experiments.sweep`` (``--quick`` for a smoke run). Several machines can share one
study through a database URL that all of them reach (``--storage postgresql://...``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import envs  # noqa: F401  (registers ebrl/* ids)
from agents import SoftQ
from agents.softq.policies import DEFAULT_SAMPLER
from experiments._common import environment_info, package_version, parse_args, results_dir, write_table

BASELINE = {"n_particles": DEFAULT_SAMPLER.n_particles, "n_moves": DEFAULT_SAMPLER.n_moves}
"""SoftQ's defaults: the first trial of every new study (α is learnt, ``alpha="auto"``, in every trial)."""


@dataclass
class Args:
    """Configuration of the sweep (every field is a command-line option)."""

    env_id: str = field(default="Pendulum-v1", metadata={"help": "Gymnasium id with a Box action space"})
    n_trials: int = field(default=20, metadata={"help": "trials the study should hold (resumes up to this)"})
    total_timesteps: int = field(default=6_000, metadata={"help": "environment steps per trial"})
    n_chunks: int = field(default=3, metadata={"help": "evaluations per trial (the pruner's steps)"})
    n_eval_episodes: int = field(default=3, metadata={"help": "stochastic episodes per evaluation"})
    seed: int = field(default=0, metadata={"help": "seed of the TPE sampler and of every trial's agent"})
    study_name: str = field(default="softq", metadata={"help": "name of the study in the storage"})
    storage: str = field(default="", metadata={"help": "Optuna storage URL (default: sqlite in the output folder)"})
    out_dir: str = field(default="", metadata={"help": "output folder (default: results/sweep)"})
    quick: bool = field(default=False, metadata={"help": "smoke run: 3 trials of 400 steps, ebrl/MultiGoal-v0"})


QUICK = {"env_id": "ebrl/MultiGoal-v0", "n_trials": 3, "total_timesteps": 400, "n_chunks": 2, "n_eval_episodes": 2}


def _optuna():
    try:
        import optuna
    except ImportError as exc:
        raise ImportError('the sweep needs Optuna: pip install "ebrl[sweep]"') from exc
    return optuna


def objective(trial: Any, args: Args) -> float:
    """Train SoftQ with the trial's hyperparameters; report the mean return after each chunk."""
    optuna = _optuna()
    params = {
        "n_particles": trial.suggest_int("n_particles", 4, 32, log=True),
        "n_moves": trial.suggest_int("n_moves", 1, 4),
    }
    sampler = replace(DEFAULT_SAMPLER, n_particles=params["n_particles"], n_moves=params["n_moves"])
    env = gym.make(args.env_id)
    model = SoftQ("MlpPolicy", env, sampler=sampler, seed=args.seed, device="cpu")
    eval_env = Monitor(gym.make(args.env_id))
    chunk = math.ceil(args.total_timesteps / args.n_chunks)
    mean = -math.inf
    for k in range(args.n_chunks):
        model.learn(chunk, reset_num_timesteps=k == 0)
        model.set_random_seed(args.seed + 1000)
        eval_env.reset(seed=args.seed + 1000)
        mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=args.n_eval_episodes, deterministic=False)
        trial.report(float(mean), k)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return float(mean)


def main(args: Args) -> list[dict[str, Any]]:
    optuna = _optuna()
    torch.set_num_threads(1)
    if args.quick:
        args = replace(args, **QUICK)
    out_dir = Path(args.out_dir) if args.out_dir else results_dir("sweep")
    out_dir.mkdir(parents=True, exist_ok=True)
    storage = args.storage or f"sqlite:///{(out_dir / 'sweep.db').resolve()}"
    study = optuna.create_study(
        study_name=args.study_name,
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=args.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        load_if_exists=True,
    )
    if not study.trials:
        study.enqueue_trial(BASELINE)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    remaining = args.n_trials - len(study.get_trials(deepcopy=False, states=finished))
    if remaining > 0:
        study.optimize(lambda trial: objective(trial, args), n_trials=remaining)
    rows = [
        {
            "trial": t.number,
            "state": t.state.name,
            "baseline": t.params == BASELINE,
            **t.params,
            "mean_return": t.value if t.value is not None else "",
            "last_report": t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else "",
            "chunks": len(t.intermediate_values),
        }
        for t in study.trials
    ]
    rows.sort(key=lambda r: -np.inf if r["mean_return"] == "" else -float(r["mean_return"]))
    write_table(
        out_dir, "sweep", rows,
        title=f"Optuna sweep of SoftQ on {args.env_id}: α, Langevin step size and steps",
        config=args,
        info=environment_info(packages=("stable-baselines3", "gymnasium", "optuna")),
        notes=(
            "mean_return: stochastic episodes after the last chunk (higher is better); PRUNED trials stopped "
            "early by the median pruner. baseline = SoftQ's defaults, the first trial of the study. "
            f"Optuna {package_version('optuna')}; study '{args.study_name}' in {storage}.",
        ),
    )
    return rows


if __name__ == "__main__":
    for row in main(parse_args(Args, description=__doc__.splitlines()[0])):
        print(row)
