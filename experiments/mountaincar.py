"""Energy priors on a standard sparse task that no one here designed: ``MountainCarContinuous-v0``.

Arms, each for ``total_timesteps`` environment steps (the same budget for every arm):

- ``SAC``: stable-baselines3's SAC with its default hyperparameters;
- ``SAC-zoo``: SAC with rl-zoo3's hyperparameters tuned for this task (``hyperparams/sac.yml``, rl-zoo3's own
  entry: gSDE exploration, γ = 0.9999, a fixed entropy coefficient of 0.1, 64-wide networks; its budget,
  50,000 steps, is this experiment's);
- ``SAC+demos``: SAC (defaults) with the demonstrations' transitions (their environment rewards) added to its
  replay buffer before training, where they stay for the whole run: the standard way to give an off-policy
  learner demonstrations, and the baseline for what the prior adds beyond the data it was fitted to;
- ``SoftQ``: ebrl's SoftQ with its defaults;
- ``SAC+shaping``, ``SoftQ+shaping``: the best state prior of ``experiments.priors``: ``EnergyShaping``
  with Φ = max(-E/T - c, floor), E an ``MLPEnergy`` fitted by NCE (against the uniform density on the
  observation box) to demonstration states drawn ∝ γ_d^(T - t), and c the mean potential of the
  demonstrations' last states (T = 1, floor -3, as chosen on SparseGoal's tuning seed);
- ``SoftQ+ibc``: SoftQ whose critics are residuals on a frozen state-action energy trained by implicit BC
  (InfoNCE) on the demonstrations, Q_i = -E_ibc(s, a)/T_a + Q_net,i(s, a) (``SoftQ(action_prior=)``), with
  T_a = 1: SoftQ's learnt α starts at 1, so its first policy is implicit BC's own. This is the mechanism that
  carried into learning on SparseGoal (``experiments.priors``' ``ibc_residual``; a warm start did not), chosen
  before any run here.

Demonstrations come from a scripted energy-pumping controller: push in the direction of the velocity
(a = +1 if v >= 0 else -1), which reaches the flag from any start.

Every ``eval_freq`` steps the deterministic policy runs ``n_eval_episodes`` episodes; a mean return of at
least 90 is the task's solved threshold. Runs are resumable: every evaluation also saves the run
(``agents.save_run``: weights, replay buffer, env and random states) under ``runs/mountaincar/`` (ignored
by git), and finished runs are rows in ``results/mountaincar/runs.csv``; running the same command again
continues unfinished runs where they stopped and skips finished ones.

Seeds: the held-out seeds 0-4 (no setting here was tuned on them: SAC's and SoftQ's are their defaults, and
the prior's settings are ``experiments.priors``' with the temperature and demonstration discount fixed below
before any run). ``SAC-zoo`` and ``SAC+demos`` were added as baselines after the first five arms had run on
seeds 0-2; neither has a setting of its own to tune (rl-zoo3's entry and SAC's defaults), and nothing of the
other arms changed, so they run on the same seeds. Seeds 3 and 4 were added later, with the configuration
unchanged, to reach five seeds; they run the arms of the headline comparison (``HEADLINE_ARMS``), while the
three arms that never produced a solving evaluation on seeds 0-2 (SAC, SAC+shaping, SoftQ+shaping) stay at
those three seeds, for the CPU time.

Run: ``python -m experiments.mountaincar`` (``--arms``, ``--seeds``, ``--total-timesteps``; ``--quick`` for
a smoke run into results/quick/).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from torch import Tensor, nn

from agents import IBC, SoftQ, add_demonstrations, load_run, save_run
from ebrl._checks import seeded_init
from ebrl.energy import MLPEnergy, UniformBox
from ebrl.rl.priors import StateActionPrior, StatePrior
from ebrl.training import NCE, fit
from envs.wrappers import EnergyShaping
from experiments import stats
from experiments._common import (
    RESULTS_ROOT,
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

ENV_ID = "MountainCarContinuous-v0"
ARMS = ("SAC", "SoftQ", "SAC+shaping", "SoftQ+shaping", "SoftQ+ibc", "SAC-zoo", "SAC+demos")
HEADLINE_ARMS = ("SoftQ+ibc", "SoftQ", "SAC-zoo", "SAC+demos")
"""The arms run on every held-out seed: the prior, the same agent without it, and the two standard baselines."""
SOLVED_RETURN = 90.0
"""MountainCarContinuous-v0's solved threshold (gymnasium's ``reward_threshold``)."""
RUNS_ROOT = Path(__file__).resolve().parent.parent / "runs" / "mountaincar"
NOT_IN_DIGEST = ("seeds", "arms", "run", "references", "quick")
"""Settings that choose which runs go and what is written, not how a run trains: left out of the rows' digest."""


@dataclass
class Args:
    """Configuration of the MountainCar experiment (every field is a command-line option)."""

    seeds: tuple[int, ...] = field(default=(0, 1, 2, 3, 4), metadata={"help": "held-out seeds"})
    arms: tuple[str, ...] = field(default=ARMS, metadata={"help": f"of {ARMS}"})
    total_timesteps: int = field(default=50_000, metadata={"help": "environment steps per run (every arm)"})
    eval_freq: int = field(default=5_000, metadata={"help": "environment steps between evaluations and saves"})
    n_eval_episodes: int = field(default=5, metadata={"help": "deterministic episodes per evaluation"})
    n_demos: int = field(default=10, metadata={"help": "scripted energy-pumping demonstrations"})
    demo_discount: float = field(default=0.98, metadata={"help": "demo state t is drawn ∝ demo_discount^(T - t)"})
    prior_temperature: float = field(default=1.0, metadata={"help": "T in Φ = -E/T"})
    prior_floor: float = field(default=-3.0, metadata={"help": "lower bound of Φ (as in experiments.priors)"})
    prior_epochs: int = field(default=100, metadata={"help": "NCE epochs of the state prior"})
    ibc_epochs: int = field(default=50, metadata={"help": "InfoNCE epochs of the state-action prior"})
    run: bool = field(default=True, metadata={"help": "--no-run: only rebuild the tables (unfinished runs included)"})
    references: bool = field(
        default=False, metadata={"help": "also evaluate the scripted controller and implicit BC alone (references.md)"}
    )
    quick: bool = field(default=False, metadata={"help": "smoke run into results/quick/"})


QUICK = {"seeds": (0,), "total_timesteps": 400, "eval_freq": 200, "n_eval_episodes": 1, "n_demos": 2,
         "prior_epochs": 2, "ibc_epochs": 2}


class BoxScaled(nn.Module):
    """E(2 (x - low) / (high - low) - 1): an energy over the observation box rescaled to [-1, 1]^O."""

    def __init__(self, energy: nn.Module, low: np.ndarray, high: np.ndarray) -> None:
        super().__init__()
        self.energy = energy
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))

    def forward(self, obs: Tensor) -> Tensor:
        return self.energy(2 * (obs - self.low) / (self.high - self.low) - 1)  # (B, O) -> (B,)


class EnergyPumping:
    """The scripted controller of the demonstrations, with SB3's ``predict``: a = +1 if v >= 0 else -1."""

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return np.array([1.0 if obs[1] >= 0 else -1.0], np.float32), None


def demonstrations(args: Args, seed: int) -> list[dict[str, Any]]:
    """``n_demos`` episodes of the energy-pumping controller: obs ``(T, 2)``, act ``(T, 1)``, rew ``(T,)``, the
    final obs ``(2,)`` and whether the episode terminated (reached the flag) rather than timed out."""
    env = gym.make(ENV_ID)
    episodes = []
    for episode in range(args.n_demos):
        obs, _ = env.reset(seed=10_000 * seed + episode)
        rows: dict[str, list[Any]] = {"obs": [], "act": [], "rew": []}
        while True:
            act, _ = EnergyPumping().predict(obs)
            rows["obs"].append(obs)
            rows["act"].append(act)
            obs, reward, terminated, truncated, _ = env.step(act)
            rows["rew"].append(float(reward))
            if terminated or truncated:
                break
        episodes.append({"obs": np.stack(rows["obs"]), "act": np.stack(rows["act"]),
                         "rew": np.asarray(rows["rew"], np.float32), "last": obs, "terminated": bool(terminated)})
    return episodes


def as_episodes(demos: list[dict[str, Any]]) -> list[dict[str, np.ndarray]]:
    """The demonstrations as episodes for ``agents.add_demonstrations`` (Minari's fields): each ends at its last
    step, by reaching the flag (a termination) or by the time limit (a truncation)."""
    episodes = []
    for d in demos:
        last = np.arange(len(d["act"])) == len(d["act"]) - 1  # (T,)
        episodes.append({"observations": np.concatenate([d["obs"], d["last"][None]]), "actions": d["act"],
                         "rewards": d["rew"], "terminations": last & d["terminated"],
                         "truncations": last & (not d["terminated"])})
    return episodes


def state_prior(args: Args, demos: list[dict[str, Any]], seed: int) -> StatePrior:
    """Φ = -E/T - c: NCE on discounted demonstration states (in the rescaled box), c = Φ's mean at the ends."""
    space = gym.make(ENV_ID).observation_space
    rng = np.random.default_rng(seed)
    states = []
    for demo in demos:
        path = np.concatenate([demo["obs"], demo["last"][None]])  # (T + 1, 2)
        weights = args.demo_discount ** np.arange(len(path))[::-1]
        states.append(path[rng.choice(len(path), size=5 * len(path), p=weights / weights.sum())])
    g = torch.Generator().manual_seed(seed)
    with seeded_init(g):
        energy = BoxScaled(MLPEnergy(2, (64, 64)), space.low, space.high)
    data = 2 * (torch.as_tensor(np.concatenate(states)) - energy.low) / (energy.high - energy.low) - 1  # (N, 2)
    fit(energy.energy, data, NCE(UniformBox(-1.0, 1.0, dim=2), ratio=4), epochs=args.prior_epochs,
        batch_size=256, generator=g)
    energy.requires_grad_(False)
    prior = StatePrior(energy, 2, temperature=args.prior_temperature)
    with torch.no_grad():
        offset = float(prior(torch.as_tensor(np.stack([d["obs"][-1] for d in demos]))).mean())
    return StatePrior(energy, 2, temperature=args.prior_temperature, offset=offset, floor=args.prior_floor)


def implicit_bc(env: gym.Env, demos: list[dict[str, Any]], args: Args, seed: int) -> IBC:
    """The implicit-BC agent trained (InfoNCE) on the demonstrations, whose energy is ``SoftQ+ibc``'s prior."""
    ibc = IBC(env.observation_space, env.action_space, hidden=(256, 256), seed=seed)
    ibc.learn(np.concatenate([d["obs"] for d in demos]), np.concatenate([d["act"] for d in demos]),
              epochs=args.ibc_epochs)
    return ibc


def make_model(arm: str, seed: int, args: Args, demos: list[dict[str, Any]]) -> BaseAlgorithm:
    env: gym.Env = gym.make(ENV_ID)
    if arm.endswith("+shaping"):
        env = EnergyShaping(env, state_prior(args, demos, seed), gamma=0.99)
    buffer = max(args.total_timesteps, 1)  # holds the whole run, as SB3's default 1e6 would
    if arm == "SAC-zoo":
        zoo = zoo_entry("sac", ENV_ID)
        del zoo["n_timesteps"]  # the budget is total_timesteps, as for every arm (rl-zoo3's is the same 50,000)
        return SAC(zoo.pop("policy"), env, seed=seed, **zoo)
    if arm == "SAC+demos":
        model = SAC("MlpPolicy", env, buffer_size=buffer + sum(len(d["act"]) for d in demos), seed=seed)
        add_demonstrations(model, as_episodes(demos))
        return model
    if arm.startswith("SAC"):
        return SAC("MlpPolicy", env, buffer_size=buffer, seed=seed)
    if arm == "SoftQ+ibc":
        ibc = implicit_bc(env, demos, args, seed)
        prior = StateActionPrior(ibc.policy.energy.requires_grad_(False), temperature=1.0)  # α starts at 1
        return SoftQ("MlpPolicy", env, buffer_size=buffer, seed=seed, action_prior=prior)
    return SoftQ("MlpPolicy", env, buffer_size=buffer, seed=seed)


def references(args: Args, seed: int) -> list[dict[str, Any]]:
    """What the demonstrations and the state-action prior achieve alone, evaluated as the arms are: the scripted
    controller, and the implicit-BC policy that ``SoftQ+ibc``'s prior comes from (trained as in ``make_model``,
    acting by its lowest-energy action)."""
    torch.manual_seed(seed)
    demos = demonstrations(args, seed)
    ibc = implicit_bc(gym.make(ENV_ID), demos, args, seed)
    return [{"policy": name, "seed": seed, "eval_return": evaluate(policy, args, seed)}
            for name, policy in (("energy-pumping controller", EnergyPumping()), ("implicit BC alone", ibc))]


def evaluate(model: Any, args: Args, seed: int) -> float:
    """Mean raw return of the deterministic policy over ``n_eval_episodes``."""
    env = gym.make(ENV_ID)
    returns = []
    for episode in range(args.n_eval_episodes):
        obs, _ = env.reset(seed=90_000 + 1_000 * seed + episode)
        total, done = 0.0, False
        while not done:
            act, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(act)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def run_directory(arm: str, seed: int, digest: str) -> Path:
    """Where ``save_run`` keeps an unfinished run (its evaluations so far beside it, in ``.json``)."""
    return RUNS_ROOT / f"{arm.replace('+', '_')}_seed{seed}_{digest}"


def run(arm: str, seed: int, args: Args, digest: str) -> list[dict[str, Any]]:
    """Train (or continue) one arm on one seed; returns its evaluations."""
    algo = SAC if arm.startswith("SAC") else SoftQ
    directory = run_directory(arm, seed, digest)
    progress = directory.with_suffix(".json")
    if (directory / "manifest.json").exists() and progress.exists():
        model = load_run(algo, directory, device="cpu")
        evals = json.loads(progress.read_text())
    else:
        torch.manual_seed(seed)
        model = make_model(arm, seed, args, demonstrations(args, seed))
        evals = []
    while model.num_timesteps < args.total_timesteps:
        start = time.perf_counter()
        model.learn(min(args.eval_freq, args.total_timesteps - model.num_timesteps), reset_num_timesteps=False)
        seconds = time.perf_counter() - start
        evals.append({"arm": arm, "seed": seed, "step": model.num_timesteps, "eval_return": evaluate(model, args, seed),
                      "train_seconds": round(seconds, 1), "load_1min": round(os.getloadavg()[0], 2)})
        print(evals[-1], flush=True)
        directory.parent.mkdir(parents=True, exist_ok=True)
        save_run(model, directory)
        progress.write_text(json.dumps(evals))
    return evals


def per_run(curves: list[dict[str, Any]], total: int) -> list[dict[str, Any]]:
    """One row per arm and seed: the final score (the mean of the evaluations in the last 10% of ``total``
    steps), the last and best evaluation, and the step of the first solving evaluation."""
    rows = []
    for arm, seed in dict.fromkeys((c["arm"], c["seed"]) for c in curves):
        mine = [c for c in curves if (c["arm"], c["seed"]) == (arm, seed)]
        solved = [c["step"] for c in mine if float(c["eval_return"]) >= SOLVED_RETURN]
        score = stats.final_window([(c["step"], float(c["eval_return"])) for c in mine], total) if len(mine) > 1 else ""
        rows.append({"arm": arm, "seed": seed, "final_window_return": score,
                     "final_eval_return": float(mine[-1]["eval_return"]),
                     "best_eval_return": max(float(c["eval_return"]) for c in mine),
                     "steps_to_solving_eval": solved[0] if solved else "", "steps_trained": mine[-1]["step"],
                     "train_seconds": round(sum(float(c["train_seconds"]) for c in mine), 1)})
    return rows


def summary(rows: list[dict[str, Any]], total: int) -> list[dict[str, Any]]:
    """Per arm, over the runs that finished ``total`` steps: the mean final score with its 95% bootstrap interval,
    and on how many seeds an evaluation, and the final score, solved the task; unfinished runs are counted apart."""
    out = []
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm and r["steps_trained"] >= total]
        unfinished = sum(r["arm"] == arm and r["steps_trained"] < total for r in rows)
        row: dict[str, Any] = {"arm": arm, "finished seeds": len(mine), "unfinished runs": unfinished}
        if mine:
            finals = np.array([r["final_window_return"] for r in mine])
            solved = sum(r["steps_to_solving_eval"] != "" for r in mine)
            row.update({"final score mean [95% CI]": str(stats.bootstrap_ci(finals, statistic=stats.mean, seed=0)),
                        "seeds with a solving evaluation": f"{solved}/{len(mine)}",
                        "seeds with a solving final score": f"{int((finals >= SOLVED_RETURN).sum())}/{len(mine)}"})
        out.append(row)
    return out


def differences(rows: list[dict[str, Any]], total: int, arm: str = "SoftQ+ibc") -> list[dict[str, Any]]:
    """``arm``'s final score minus every other arm's, paired by seed over the seeds both finished: the mean
    difference with its 95% bootstrap interval, and ``higher``/``lower``/``tie`` (a tie when it includes 0)."""
    def finals(name: str) -> dict[int, float]:
        return {r["seed"]: float(r["final_window_return"]) for r in rows
                if r["arm"] == name and r["steps_trained"] >= total}

    mine, out = finals(arm), []
    for other in dict.fromkeys(r["arm"] for r in rows):
        theirs = finals(other)
        seeds = sorted(set(mine) & set(theirs))
        if other == arm or len(seeds) < 2:
            continue
        diff = stats.paired_difference_ci([mine[s] for s in seeds], [theirs[s] for s in seeds])
        out.append({"comparison": f"{arm} - {other}", "paired seeds": len(seeds),
                    "difference [95% CI]": str(diff), "verdict": stats.verdict(diff)})
    return out


def main(args: Args) -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    if args.quick:
        args = replace(args, **QUICK)
    unknown = sorted(set(args.arms) - set(ARMS))
    if unknown:
        raise ValueError(f"arms must be among {ARMS}, got {unknown}")
    out_dir = results_dir("mountaincar", root=RESULTS_ROOT / "quick" if args.quick else None)
    digest = config_digest(args, exclude=NOT_IN_DIGEST)
    curves = read_rows(out_dir / "curves.csv", keep=lambda r: r["config"] == digest, integer=("seed", "step"),
                       real=("eval_return",))
    finished = {(c["arm"], c["seed"]) for c in curves if c["step"] >= args.total_timesteps}
    if args.references:
        refs = [r for seed in args.seeds for r in references(args, seed)]
        write_table(out_dir, "references", refs, title="MountainCarContinuous: the demonstrator and the prior alone",
                    config=args, info=environment_info(packages=("stable-baselines3", "gymnasium")),
                    notes=(f"Deterministic policy, the {args.n_eval_episodes} evaluation episodes of each seed "
                           f"(the arms' own); solving: mean return >= {SOLVED_RETURN:g}.",))
    if not args.run:  # the tables, with the evaluations of unfinished runs so far
        for seed in args.seeds:
            for arm in args.arms:
                progress = run_directory(arm, seed, digest).with_suffix(".json")
                if (arm, seed) not in finished and progress.exists():
                    curves += [{**e, "config": digest} for e in json.loads(progress.read_text())]
        if curves:
            write_results(curves, args, out_dir)
        return curves
    for seed in args.seeds:
        for arm in args.arms:
            if (arm, seed) in finished:
                continue
            evals = run(arm, seed, args, digest)
            curves = [c for c in curves if (c["arm"], c["seed"]) != (arm, seed)] + [{**e, "config": digest}
                                                                                      for e in evals]
            write_results(curves, args, out_dir)
    return curves


def write_results(curves: list[dict[str, Any]], args: Args, out_dir: Path) -> None:
    info = environment_info(packages=("stable-baselines3", "gymnasium"))
    rows = per_run(curves, args.total_timesteps)
    write_table(out_dir, "curves", curves, title="MountainCarContinuous: evaluations during training")
    write_table(out_dir, "runs", rows, title="MountainCarContinuous: per-seed results", config=args, info=info,
                notes=(f"Deterministic policy, {args.n_eval_episodes} episodes every {args.eval_freq} steps; "
                       f"solving: mean return >= {SOLVED_RETURN:g}; final_window_return (the final score): the mean "
                       f"of the evaluations in the last 10% of training (experiments.stats.final_window)."
                       + (" QUICK SMOKE RUN: figures meaningless." if args.quick else ""),))
    write_table(out_dir, "summary", summary(rows, args.total_timesteps),
                title="MountainCarContinuous: final score over seeds",
                notes=(f"Over the runs that finished {args.total_timesteps:,} steps: the mean final score with a 95% "
                       "percentile-bootstrap interval over seeds (experiments.stats). Unfinished runs (resumable) are "
                       "in runs.md with the steps they trained.",))
    paired = differences(rows, args.total_timesteps)
    if paired:
        write_table(out_dir, "differences", paired, title="MountainCarContinuous: SoftQ+ibc against each arm",
                    notes=("The final score of SoftQ+ibc minus the other arm's, paired by seed over the seeds both "
                           "finished: mean difference with a 95% percentile-bootstrap interval (experiments.stats); "
                           "a tie when the interval includes 0.",))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    arms = list(dict.fromkeys(c["arm"] for c in curves))
    for (arm, seed) in dict.fromkeys((c["arm"], c["seed"]) for c in curves):
        pts = [(c["step"], float(c["eval_return"])) for c in curves if (c["arm"], c["seed"]) == (arm, seed)]
        ax.plot(*zip(*pts, strict=True), marker="o", ms=3, color=f"C{arms.index(arm)}",
                label=arm if seed == min(c["seed"] for c in curves if c["arm"] == arm) else None)
    ax.axhline(SOLVED_RETURN, color="grey", ls="--", lw=1)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("deterministic evaluation return")
    ax.set_title("MountainCarContinuous-v0 (one line per seed)")
    ax.legend(fontsize=7)
    save_figure(fig, str(out_dir / "runs.png"))


if __name__ == "__main__":
    main(parse_args(Args, description=__doc__.splitlines()[0]))
