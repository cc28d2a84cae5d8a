"""SoftQ against SB3 SAC (rl-zoo3's hyperparameters) on HalfCheetah-v5 and Hopper-v5: return, wall-clock, memory.

Targets: on both environments at 50,000 steps SoftQ's mean return at least SAC's, its training
wall-clock at most 1.5x SAC's on the same machine and load, and memory flat over the run.

**SAC** uses rl-zoo3's hyperparameters for these environments: ``hyperparams/sac.yml`` of
DLR-RM/rl-baselines3-zoo (commit 22e3ff2, entries ``HalfCheetah-v4`` and ``Hopper-v4``, which
share ``&mujoco-defaults``) sets ``learning_starts: 10000`` (and ``n_timesteps: 1e6``, ``policy:
MlpPolicy``) on top of SB3's SAC defaults, written out in ``SAC_CONFIG``. SB3's default
``buffer_size`` of 1e6 exceeds a run, so the buffer holds ``total_timesteps`` transitions: it never
evicts one either, so sampling is the same, and the checkpoints stay small.

**SoftQ** shares SAC's settings (``SHARED``: learning rate, buffer, batch, tau, gamma,
``learning_starts``, train frequency and gradient steps) and takes its own from ``SOFTQ_CONFIG``:
the one configuration reported, fixed before any run on the held-out seeds (``HELD_OUT_SEEDS``). It was
chosen a priori, not on returns: the tuning seeds (``TUNING_SEEDS``, ``--split tuning``, written to
``results/mujoco_tuning/``) are declared for a future choice, and no tuning run has been made.

**Side by side.** The two agents of an (environment, seed) train in one process, alternating
``chunk``-step ``learn`` calls in ABBA order, so a change in the machine's load falls on both alike;
only the ``learn`` calls are timed (wall and CPU time per agent). Every ``eval_freq`` steps each
agent is evaluated on ``n_eval_episodes`` deterministic episodes, and at the end on
``n_final_episodes``; every evaluation of a seed starts its episodes from the same states (a fresh
environment reset with seed ``10_000 + seed``), for both agents. The process's resident set size
(RSS, both agents together) is sampled after every ``learn`` call.

**Resume.** After each evaluation both agents are checkpointed with ``agents.save_run`` under
``<checkpoint_dir>/<config digest>/<env>-seed<seed>/``; rerunning the same command continues every
unfinished run exactly where it stopped (``agents.load_run``), and keeps the finished runs already
in ``mujoco.csv`` whose ``config`` digest matches. The digest covers every setting that shapes a
run, including SoftQ's and SAC's resolved hyperparameters (their defaults too), so a changed
configuration never mixes with an old one. ``--stop-at N`` checkpoints and stops each run at N
steps, to complete a long experiment in parts. Invocations for different seeds or environments may
run in parallel (one process per core): each merges the others' finished rows when it writes.

Writes ``results/mujoco/`` (``results/mujoco_tuning/`` for ``--split tuning``): ``mujoco.csv`` and
``.md`` (one row per environment, agent and seed), ``summary.csv`` and ``.md`` (IQM and mean over
seeds with 95% stratified bootstrap intervals, SoftQ - SAC paired by seed, and the wall-clock
ratio), ``curves.csv`` and ``mujoco.png`` (learning curves and RSS against steps).

Run: ``python -m experiments.mujoco`` (held-out seeds, hours; resumable), ``--split tuning`` for
the tuning seeds, ``--quick`` for a smoke run. Needs ``pip install -e ".[mujoco]"``.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from agents import SoftQ, load_run, save_run
from ebrl.rl import ActionSampler
from experiments._common import (
    environment_info,
    merge,
    parse_args,
    pick_device,
    pyplot,
    read_rows,
    results_dir,
    save_figure,
    write_table,
)
from experiments.stats import bootstrap_ci, final_window, iqm, mean, paired_difference_ci, verdict

ROOT = Path(__file__).resolve().parent.parent

ENV_IDS = ("HalfCheetah-v5", "Hopper-v5")
HELD_OUT_SEEDS = (0, 1, 2)
"""The reported seeds: never used to choose ``SOFTQ_CONFIG``."""
TUNING_SEEDS = (100, 101, 102)
"""The seeds on which ``SOFTQ_CONFIG`` is chosen (``--split tuning``)."""
EVAL_SEED_OFFSET = 10_000
"""Evaluation episodes of seed s start from ``env.reset(seed=EVAL_SEED_OFFSET + s)``."""

SAC_CONFIG: dict[str, Any] = dict(
    learning_rate=3e-4,
    buffer_size=1_000_000,
    batch_size=256,
    tau=0.005,
    gamma=0.99,
    train_freq=1,
    gradient_steps=1,
    ent_coef="auto",
    policy_kwargs=dict(net_arch=[256, 256]),
)
"""SB3's SAC defaults, as rl-zoo3 uses them for HalfCheetah and Hopper; ``learning_starts`` (rl-zoo3:
10,000) is ``Args.learning_starts`` and ``buffer_size`` is capped at the run's length (see the docstring)."""

SHARED = ("learning_rate", "buffer_size", "batch_size", "tau", "gamma", "train_freq", "gradient_steps")
"""SAC's settings that SoftQ takes as well (with ``learning_starts``)."""

SOFTQ_CONFIG: dict[str, Any] = dict(
    sampler="proposal",
    value_sampler=ActionSampler(n_particles=2, n_levels=1, n_moves=0),
)
"""SoftQ's own settings (keyword arguments of ``agents.SoftQ``), on top of ``SHARED``: the one configuration
reported on the held-out seeds, fixed before any held-out run. It was chosen a priori for the wall-clock target,
not by returns on the tuning seeds (no tuning run at 50,000 steps was affordable): acting by the proposal network
alone (``sampler="proposal"``, as fast as SAC's actor; the default tempered SMC costs ~80x SAC's actor per
action), and the soft value importance-sampled from 2 proposal draws (training steps ~1.2x SAC's CPU time; the
default 8 draws cost ~1.8x). The temperature is learnt (``alpha="auto"``, target entropy -A), as SAC's."""

ALGOS = ("SAC", "SoftQ")
ALGO_CLASSES: dict[str, type[BaseAlgorithm]] = {"SAC": SAC, "SoftQ": SoftQ}


@dataclass
class Args:
    """Configuration of the MuJoCo experiment (every field is a command-line option)."""

    env_ids: tuple[str, ...] = field(default=ENV_IDS, metadata={"help": "MuJoCo environments"})
    split: Literal["held_out", "tuning"] = field(
        default="held_out", metadata={"help": "seeds to run: HELD_OUT_SEEDS (reported) or TUNING_SEEDS"}
    )
    seeds: tuple[int, ...] = field(default=(), metadata={"help": "a subset of the split's seeds (default: all)"})
    total_timesteps: int = field(default=50_000, metadata={"help": "environment steps per run"})
    learning_starts: int = field(default=10_000, metadata={"help": "random steps before learning (rl-zoo3: 10000)"})
    chunk: int = field(default=1_000, metadata={"help": "steps per alternating learn call of the two agents"})
    eval_freq: int = field(default=5_000, metadata={"help": "steps between evaluations (a multiple of chunk)"})
    n_eval_episodes: int = field(default=5, metadata={"help": "deterministic episodes per learning-curve point"})
    n_final_episodes: int = field(default=10, metadata={"help": "deterministic episodes of the final evaluation"})
    max_episode_steps: int | None = field(
        default=None, metadata={"help": "episode time limit (default: the environment's, 1000)"}
    )
    device: str = field(default="cpu", metadata={"help": "torch device of both agents ('auto': CUDA if available)"})
    checkpoint_dir: str = field(
        default=str(ROOT / "runs" / "mujoco"), metadata={"help": "where unfinished runs are checkpointed"}
    )
    resume: bool = field(
        default=True, metadata={"help": "continue checkpointed runs and keep finished rows of this configuration"}
    )
    stop_at: int | None = field(
        default=None, metadata={"help": "checkpoint and stop each run at this step (a multiple of eval_freq)"}
    )
    quick: bool = field(
        default=False, metadata={"help": "smoke run: 300 steps, one tuning seed, 100-step episodes, no resume"}
    )


QUICK = {
    "seeds": (TUNING_SEEDS[0],), "split": "tuning", "total_timesteps": 300, "learning_starts": 100, "chunk": 50,
    "eval_freq": 150, "n_eval_episodes": 1, "n_final_episodes": 1, "max_episode_steps": 100, "resume": False,
}

NOT_IN_DIGEST = ("env_ids", "split", "seeds", "checkpoint_dir", "resume", "stop_at", "quick")
"""Options that choose which runs to make, or where, not how a run goes."""


# ------------------------------------------------------------------------------ configuration


def agent_kwargs(algo: str, args: Args) -> dict[str, Any]:
    """The keyword arguments ``algo`` is built with (besides policy, env, seed and device): a deep copy, as
    SB3 adds its own entries to ``policy_kwargs``."""
    sac = {**copy.deepcopy(SAC_CONFIG), "learning_starts": args.learning_starts,
           "buffer_size": min(SAC_CONFIG["buffer_size"], args.total_timesteps)}
    if algo == "SAC":
        return sac
    return {**{k: sac[k] for k in (*SHARED, "learning_starts")}, **copy.deepcopy(SOFTQ_CONFIG)}


def resolved_hyperparameters(algo: str, args: Args) -> dict[str, Any]:
    """Every constructor argument of ``algo`` that shapes a run: its defaults overridden by :func:`agent_kwargs`."""
    skip = {"self", "policy", "env", "verbose", "seed", "device", "tensorboard_log", "_init_setup_model"}
    params = inspect.signature(ALGO_CLASSES[algo].__init__).parameters
    defaults = {k: p.default for k, p in params.items() if k not in skip and p.default is not inspect.Parameter.empty}
    return {**defaults, **agent_kwargs(algo, args)}


def digest(args: Args) -> str:
    """A 10-hex-digit digest of everything that shapes a run: the options and both agents' hyperparameters.

    Hyperparameters whose value is ``None`` (a feature not used, such as ``action_prior``) are left out, so that
    adding an optional feature to an agent does not orphan the runs made before it existed; changing any default
    that a run uses changes the digest."""
    payload = {
        "args": {k: v for k, v in asdict(args).items() if k not in NOT_IN_DIGEST},
        **{algo: {k: v for k, v in resolved_hyperparameters(algo, args).items() if v is not None} for algo in ALGOS},
    }
    text = json.dumps(payload, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def check_args(args: Args) -> Args:
    """Resolve the split's seeds and refuse inconsistent options, naming them."""
    unknown = sorted(set(args.env_ids) - set(ENV_IDS))
    if not args.env_ids or unknown:
        raise ValueError(f"env_ids must be a non-empty subset of {ENV_IDS}, got {args.env_ids}")
    split_seeds = HELD_OUT_SEEDS if args.split == "held_out" else TUNING_SEEDS
    seeds = args.seeds or split_seeds
    if not set(seeds) <= set(split_seeds):
        raise ValueError(f"seeds {seeds} are not among the {args.split} seeds {split_seeds}; the two never mix")
    for name in ("total_timesteps", "chunk", "eval_freq", "n_eval_episodes", "n_final_episodes"):
        if getattr(args, name) < 1:
            raise ValueError(f"{name} must be a positive integer, got {getattr(args, name)}")
    if args.eval_freq % args.chunk or args.total_timesteps % args.chunk:
        raise ValueError(f"eval_freq ({args.eval_freq}) and total_timesteps ({args.total_timesteps}) must be "
                         f"multiples of chunk ({args.chunk})")
    if args.stop_at is not None and (args.stop_at < 1 or args.stop_at % args.eval_freq):
        raise ValueError(f"stop_at must be a positive multiple of eval_freq ({args.eval_freq}), got {args.stop_at}")
    return replace(args, seeds=tuple(seeds))


def make_env(env_id: str, args: Args) -> gym.Env:
    kwargs = {} if args.max_episode_steps is None else {"max_episode_steps": args.max_episode_steps}
    return Monitor(gym.make(env_id, **kwargs))  # agents.save_run keeps MuJoCo's simulation state


def make_agent(algo: str, env_id: str, seed: int, args: Args) -> BaseAlgorithm:
    return ALGO_CLASSES[algo]("MlpPolicy", make_env(env_id, args), seed=seed, device=args.device,
                              **agent_kwargs(algo, args))


# ------------------------------------------------------------------------------ measurements


def rss_mb() -> float:
    """The process's current resident set size in MiB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def evaluate(model: BaseAlgorithm, env_id: str, seed: int, n_episodes: int, args: Args) -> tuple[float, float]:
    """Mean and std of ``n_episodes`` deterministic returns, from the seed's fixed start states."""
    env = make_env(env_id, args)
    env.reset(seed=EVAL_SEED_OFFSET + seed)  # later resets continue this RNG: the same episodes every time
    mean_return, std_return = evaluate_policy(model, env, n_eval_episodes=n_episodes, deterministic=True)
    env.close()
    return float(mean_return), float(std_return)


@dataclass
class Progress:
    """What a pair of runs has done so far, besides the agents (checkpointed beside them as JSON)."""

    done: int = 0
    flip: bool = False
    train_wall_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ALGOS, 0.0))
    train_cpu_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ALGOS, 0.0))
    eval_wall_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ALGOS, 0.0))
    rss_mb: list[float] = field(default_factory=list)
    load_1m: list[float] = field(default_factory=list)
    curves: list[dict[str, Any]] = field(default_factory=list)
    segments: int = 1


def save_checkpoint(folder: Path, models: dict[str, BaseAlgorithm], progress: Progress) -> None:
    """Write both agents and the progress to ``folder/step-<done>/``, then drop older checkpoints.

    ``progress.json`` is written last, so a checkpoint without it is incomplete and ignored.
    """
    target = folder / f"step-{progress.done:09d}"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for algo, model in models.items():
        save_run(model, target / algo)
    tmp = target / "progress.json.tmp"
    tmp.write_text(json.dumps(asdict(progress)))
    tmp.rename(target / "progress.json")
    for old in folder.glob("step-*"):
        if old != target:
            shutil.rmtree(old)


def load_checkpoint(folder: Path, args: Args) -> tuple[dict[str, BaseAlgorithm], Progress] | None:
    """The latest complete checkpoint in ``folder``, or ``None``."""
    complete = sorted(p.parent for p in folder.glob("step-*/progress.json"))
    if not complete:
        return None
    latest = complete[-1]
    progress = Progress(**json.loads((latest / "progress.json").read_text()))
    models = {algo: load_run(ALGO_CLASSES[algo], latest / algo, device=args.device) for algo in ALGOS}
    progress.segments += 1
    return models, progress


def run_pair(env_id: str, seed: int, args: Args, checkpoints: Path) -> tuple[list[dict[str, Any]], list[dict]] | None:
    """Train SAC and SoftQ side by side on ``(env_id, seed)``; their rows and curves, or ``None`` if stopped early.

    The agents alternate ``chunk``-step ``learn`` calls in ABBA order; after every ``eval_freq``
    steps both are evaluated and checkpointed, so the run can stop and resume there.
    """
    folder = checkpoints / f"{env_id}-seed{seed}"
    loaded = load_checkpoint(folder, args) if args.resume else None
    if loaded is None:
        models, progress = {algo: make_agent(algo, env_id, seed, args) for algo in ALGOS}, Progress()
    else:
        models, progress = loaded
        print(f"{env_id} seed {seed}: resumed at step {progress.done}", flush=True)
    while progress.done < args.total_timesteps:
        if args.stop_at is not None and progress.done >= args.stop_at:
            print(f"{env_id} seed {seed}: stopped at step {progress.done} (--stop-at); rerun to continue", flush=True)
            return None
        for algo in reversed(ALGOS) if progress.flip else ALGOS:
            wall, cpu = time.perf_counter(), time.process_time()
            models[algo].learn(args.chunk, reset_num_timesteps=False)
            progress.train_wall_s[algo] += time.perf_counter() - wall
            progress.train_cpu_s[algo] += time.process_time() - cpu
            progress.rss_mb.append(round(rss_mb(), 1))
        progress.load_1m.append(os.getloadavg()[0])
        progress.done += args.chunk
        progress.flip = not progress.flip
        if progress.done % args.eval_freq and progress.done < args.total_timesteps:
            continue
        final = progress.done >= args.total_timesteps
        for algo in ALGOS:
            start = time.perf_counter()
            episodes = args.n_final_episodes if final else args.n_eval_episodes
            mean_return, std_return = evaluate(models[algo], env_id, seed, episodes, args)
            progress.eval_wall_s[algo] += time.perf_counter() - start
            progress.curves.append({
                "env": env_id, "algo": algo, "seed": seed, "step": progress.done, "eval_return": mean_return,
                "eval_std": std_return, "episodes": episodes, "train_wall_s": round(progress.train_wall_s[algo], 1),
                "train_cpu_s": round(progress.train_cpu_s[algo], 1), "rss_mb": progress.rss_mb[-1],
            })
            print(f"{env_id} {algo} seed {seed} step {progress.done}: eval {mean_return:.1f} ± {std_return:.1f}, "
                  f"train {progress.train_wall_s[algo]:.0f} s, RSS {progress.rss_mb[-1]:.0f} MiB", flush=True)
        save_checkpoint(folder, models, progress)
    rows = []
    for algo in ALGOS:
        curve = [c for c in progress.curves if c["algo"] == algo]
        rows.append({
            "env": env_id, "algo": algo, "seed": seed,
            "final_return": curve[-1]["eval_return"], "final_std": curve[-1]["eval_std"],
            "best_return": max(c["eval_return"] for c in curve),
            "steps": models[algo].num_timesteps,
            "train_wall_s": round(progress.train_wall_s[algo], 1),
            "train_cpu_s": round(progress.train_cpu_s[algo], 1),
            "steps_per_s": round(models[algo].num_timesteps / progress.train_wall_s[algo], 2),
            "eval_wall_s": round(progress.eval_wall_s[algo], 1),
            "peak_rss_mb": max(progress.rss_mb),
            "rss_first_mb": progress.rss_mb[0],
            "mean_load_1m": round(float(np.mean(progress.load_1m)), 2),
            "segments": progress.segments,
        })
    return rows, progress.curves


# ------------------------------------------------------------------------------ summary


def summarize(rows: list[dict[str, Any]], env_ids: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[str]]:
    """Per environment: IQM and mean of each agent's final score (``final_window_return``) with 95% bootstrap
    intervals, SoftQ - SAC paired by seed, and the SoftQ/SAC training wall-clock ratio; the ratio over both
    environments too (stratified by environment). Also the sentences quoted in the table's notes."""
    by: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}  # (env, algo) -> seed -> row
    for r in rows:
        by.setdefault((r["env"], r["algo"]), {})[r["seed"]] = r
    summary, notes, ratios = [], [], {}
    for env_id in env_ids:
        seeds = sorted(set(by.get((env_id, "SAC"), {})) & set(by.get((env_id, "SoftQ"), {})))
        if not seeds:
            continue
        returns = {algo: np.array([by[env_id, algo][s]["final_window_return"] for s in seeds]) for algo in ALGOS}
        wall = {algo: np.array([by[env_id, algo][s]["train_wall_s"] for s in seeds]) for algo in ALGOS}
        ratios[env_id] = wall["SoftQ"] / wall["SAC"]
        for algo in ALGOS:
            q, m = bootstrap_ci(returns[algo], iqm), bootstrap_ci(returns[algo], mean)
            summary.append({
                "env": env_id, "quantity": f"{algo} final score", "seeds": len(seeds),
                "iqm": q.point, "iqm_low": q.low, "iqm_high": q.high, "mean": m.point, "mean_low": m.low,
                "mean_high": m.high,
            })
        diff = paired_difference_ci(returns["SoftQ"], returns["SAC"])
        ratio = bootstrap_ci(ratios[env_id], iqm)
        judged = verdict(diff) if len(seeds) > 1 else "n/a (1 seed)"
        summary.append({"env": env_id, "quantity": "SoftQ - SAC final score (paired)", "seeds": len(seeds),
                        "mean": diff.point, "mean_low": diff.low, "mean_high": diff.high, "verdict": judged})
        summary.append({"env": env_id, "quantity": "SoftQ / SAC training wall-clock", "seeds": len(seeds),
                        "iqm": ratio.point, "iqm_low": ratio.low, "iqm_high": ratio.high})
        notes.append(
            f"{env_id} (seeds {seeds}): SoftQ - SAC mean final score {diff} (95% CI, paired by seed): "
            f"{'SoftQ ' + judged if judged in ('higher', 'lower') else judged}; SoftQ/SAC training "
            f"wall-clock IQM {ratio} (target <= 1.5)."
        )
    if len(ratios) > 1:
        ratio = bootstrap_ci(ratios, iqm)
        summary.append({"env": "all (stratified)", "quantity": "SoftQ / SAC training wall-clock",
                        "seeds": sum(len(v) for v in ratios.values()),
                        "iqm": ratio.point, "iqm_low": ratio.low, "iqm_high": ratio.high})
    return summary, notes


def plot(curves: list[dict[str, Any]], env_ids: tuple[str, ...], path: Path) -> None:
    plt = pyplot()
    colors = {"SAC": "tab:orange", "SoftQ": "tab:blue"}
    env_ids = tuple(e for e in env_ids if any(c["env"] == e for c in curves))  # those with a finished run
    fig, axes = plt.subplots(2, len(env_ids), figsize=(5.5 * len(env_ids), 7), squeeze=False)
    for col, env_id in enumerate(env_ids):
        ret_ax, rss_ax = axes[0, col], axes[1, col]
        for algo in ALGOS:
            mine = [c for c in curves if (c["env"], c["algo"]) == (env_id, algo)]
            for seed in sorted({c["seed"] for c in mine}):
                pts = [c for c in mine if c["seed"] == seed]
                ret_ax.plot([c["step"] for c in pts], [c["eval_return"] for c in pts], color=colors[algo], alpha=0.8,
                            marker=".", label=f"{algo} seed {seed}")
                if algo == "SAC":  # RSS is the process's (both agents): one line per seed
                    rss_ax.plot([c["step"] for c in pts], [c["rss_mb"] for c in pts], marker=".", label=f"seed {seed}")
        ret_ax.set_title(env_id)
        ret_ax.set_xlabel("environment steps")
        ret_ax.set_ylabel("evaluation return (deterministic)")
        ret_ax.legend(fontsize=7)
        rss_ax.set_xlabel("environment steps")
        rss_ax.set_ylabel("process RSS (MiB, both agents)")
        rss_ax.set_ylim(bottom=0)  # from zero, so that flat memory looks flat
        rss_ax.legend(fontsize=7)
    save_figure(fig, path)


def configuration_notes(args: Args, key: str) -> tuple[str, ...]:
    return (
        f"Configuration digest `{key}`; {args.split} seeds {args.seeds} (held-out: {HELD_OUT_SEEDS}, "
        f"tuning: {TUNING_SEEDS}). SAC (rl-zoo3): `{agent_kwargs('SAC', args)}`. "
        f"SoftQ: `{agent_kwargs('SoftQ', args)}` on top of its defaults (SOFTQ_CONFIG = `{SOFTQ_CONFIG}`).",
        f"Both agents train side by side in one process, alternating {args.chunk}-step learn calls (ABBA), one torch "
        f"thread; train_wall_s/train_cpu_s time only the learn calls. final_window_return (the final score): the "
        f"mean of the evaluations in the last 10% of training (experiments.stats.final_window); final_return: mean "
        f"of {args.n_final_episodes} deterministic episodes at step {args.total_timesteps}; RSS is the process's "
        f"(both agents), sampled after every learn call; mean_load_1m: the 1-minute load average, sampled after "
        f"every chunk.",
    )


# ------------------------------------------------------------------------------ main


INTEGER = ("seed", "steps", "step", "episodes", "segments")
REAL = ("final_window_return", "final_return",
        "final_std", "best_return", "train_wall_s", "train_cpu_s", "steps_per_s", "eval_wall_s",
        "peak_rss_mb", "rss_first_mb", "mean_load_1m", "eval_return", "eval_std", "rss_mb")


def main(args: Args) -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    if args.quick:
        args = replace(args, **QUICK)
    args = check_args(args)
    device = pick_device(args.device)
    key = digest(args)
    out_dir = results_dir("mujoco" if args.split == "held_out" else "mujoco_tuning")
    if args.resume:
        keep = lambda r: r["config"] == key  # noqa: E731
        rows = read_rows(out_dir / "mujoco.csv", keep=keep, integer=INTEGER, real=REAL)
        curves = read_rows(out_dir / "curves.csv", keep=keep, integer=INTEGER, real=REAL)
        checkpoints = Path(args.checkpoint_dir) / key
        scratch = None
    else:
        rows, curves = [], []
        scratch = tempfile.TemporaryDirectory(prefix="ebrl-mujoco-")  # checkpoints still written, then dropped
        checkpoints = Path(scratch.name)
    try:
        for env_id in args.env_ids:
            for seed in args.seeds:
                if any((r["env"], r["seed"]) == (env_id, seed) for r in rows):
                    print(f"{env_id} seed {seed}: kept from an earlier run with configuration {key}", flush=True)
                    continue
                done = run_pair(env_id, seed, args, checkpoints)
                if done is None:
                    continue
                rows += [{**r, "config": key} for r in done[0]]
                curves += [{**c, "config": key} for c in done[1]]
                if args.resume:  # runs that another invocation (other seeds, in parallel) wrote meanwhile
                    rows = merge(rows, read_rows(out_dir / "mujoco.csv", keep=keep, integer=INTEGER, real=REAL),
                                 ("env", "algo", "seed"))
                    curves = merge(curves, read_rows(out_dir / "curves.csv", keep=keep, integer=INTEGER, real=REAL),
                                   ("env", "algo", "seed", "step"))
                write_results(rows, curves, args, key, device, out_dir)  # after every pair
        if rows:
            write_results(rows, curves, args, key, device, out_dir)  # also when every run was kept
    finally:
        if scratch is not None:
            scratch.cleanup()
    return rows


def write_results(rows: list[dict[str, Any]], curves: list[dict[str, Any]], args: Args, key: str,
                  device: torch.device, out_dir: Path) -> None:
    info = environment_info(device, packages=("stable-baselines3", "gymnasium", "mujoco"))
    env_ids = tuple(e for e in ENV_IDS if any(r["env"] == e for r in rows))
    for r in rows:  # the final score, from the run's curve (also for rows written before the column existed)
        curve = [(c["step"], c["eval_return"]) for c in curves if (c["env"], c["algo"], c["seed"]) ==
                 (r["env"], r["algo"], r["seed"])]
        r["final_window_return"] = final_window(curve, args.total_timesteps)
    summary, notes = summarize(rows, env_ids)
    rows = sorted(rows, key=lambda r: (r["env"], r["algo"], r["seed"]))
    write_table(out_dir, "mujoco", rows, title="MuJoCo: SoftQ against SAC (rl-zoo3 hyperparameters)",
                config=args, info=info, notes=configuration_notes(args, key))
    if summary:
        write_table(out_dir, "summary", summary,
                    title="MuJoCo: IQM and mean over seeds with 95% stratified bootstrap intervals",
                    config=args, info=info,
                    notes=(*notes, "Intervals: percentile bootstrap over seeds, 50,000 resamples "
                           "(experiments/stats.py); with fewer than 4 seeds the IQM is the mean. A paired difference "
                           "whose interval includes 0 is a tie."))
    write_table(out_dir, "curves", curves, title="MuJoCo learning curves (deterministic evaluation)")
    plot(curves, env_ids, out_dir / "mujoco.png")


if __name__ == "__main__":
    for row in main(parse_args(Args, description=__doc__.splitlines()[0])):
        print(row)
