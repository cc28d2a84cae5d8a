"""Energy value priors on a sparse-reward task: SAC and SoftQ with and without shaping or novelty.

The prior: an ``MLPEnergy`` over states, fitted by NCE (against the uniform density on the arena)
to the states of scripted demonstrations, each state drawn with probability ∝ γ_d^(T - t) so the
density, and Φ(s) = -E(s)/T, rise towards the goal. Variants: ``none`` (the raw sparse reward),
``shaping`` (``EnergyShaping`` with Φ) and ``novelty`` (``EnergyNovelty``, a density of visited
states fitted online). Measured: environment steps to the first success during training and the
success rate of the final deterministic policy, over the seeds. Target: at least 2x fewer steps to
first success with the prior.

Writes ``results/priors/``: ``priors.csv``, ``priors.md`` and ``priors.png``.

Run: ``python -m experiments.priors`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy

import envs  # noqa: F401  (registers the ebrl environments)
from agents import SoftQ
from ebrl._checks import seeded_init
from ebrl.energy import MLPEnergy, UniformBox
from ebrl.rl.priors import StatePrior
from ebrl.training import NCE, fit
from envs.wrappers import EnergyNovelty, EnergyShaping
from experiments._common import environment_info, parse_args, pyplot, results_dir, save_figure, write_table

ENV_ID = "ebrl/SparseGoal-v0"


@dataclass
class Args:
    """Configuration of the priors experiment (every field is a command-line option)."""

    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"help": "training seeds"})
    total_timesteps: int = field(default=20_000, metadata={"help": "environment steps per run"})
    algos: tuple[str, ...] = field(default=("SAC", "SoftQ"), metadata={"help": "agents"})
    variants: tuple[str, ...] = field(default=("none", "shaping", "novelty"), metadata={"help": "reward variants"})
    gamma: float = field(default=0.99, metadata={"help": "the agents' discount (also the shaping's)"})
    n_demos: int = field(default=20, metadata={"help": "scripted demonstrations for the prior"})
    demo_discount: float = field(default=0.9, metadata={"help": "demo state t is drawn ∝ demo_discount^(T - t)"})
    prior_temperature: float = field(default=2.0, metadata={"help": "T in Φ = -E/T"})
    prior_epochs: int = field(default=200, metadata={"help": "NCE epochs for the prior"})
    novelty_coef: float = field(default=0.05, metadata={"help": "novelty bonus scale"})
    n_eval_episodes: int = field(default=20, metadata={"help": "final deterministic episodes"})
    stop_at_first_success: bool = field(
        default=False,
        metadata={"help": "end each run at its first success (measures only steps to first success; much cheaper)"},
    )
    quick: bool = field(default=False, metadata={"help": "smoke run: 300 steps, one seed, tiny prior"})


QUICK = {"seeds": (0,), "total_timesteps": 300, "n_demos": 5, "prior_epochs": 5, "n_eval_episodes": 2}


def fit_prior(args: Args, seed: int) -> StatePrior:
    """Φ = -E/T, E fitted by NCE to discounted demonstration states."""
    env = gym.make(ENV_ID).unwrapped
    rng = np.random.default_rng(seed)
    states = []
    for episode in range(args.n_demos):
        obs, _ = env.reset(seed=10_000 * seed + episode)
        path = [obs]
        for _ in range(100):
            direction = env.goal - obs
            obs, _, terminated, _, _ = env.step(np.clip(direction / env.speed, -1, 1) + rng.normal(0, 0.3, 2))
            path.append(obs)
            if terminated:
                break
        weights = args.demo_discount ** np.arange(len(path))[::-1]  # (T,): ∝ γ_d^(T - t)
        picks = rng.choice(len(path), size=20 * len(path), p=weights / weights.sum())
        states.append(np.stack(path)[picks])
    data = torch.as_tensor(np.concatenate(states), dtype=torch.float32)  # (N, 2)
    g = torch.Generator().manual_seed(seed)
    with seeded_init(g):
        energy = MLPEnergy(2, (64, 64))
    fit(energy, data, NCE(UniformBox(-1.0, 1.0, dim=2), ratio=4), epochs=args.prior_epochs, batch_size=256,
        generator=g)
    return StatePrior(energy.requires_grad_(False), 2, temperature=args.prior_temperature)


class FirstSuccess(BaseCallback):
    """Records the environment step of the first ``info["is_success"]`` of the raw task.

    With ``stop``, training ends at that step (SB3 stops when a callback returns False).
    """

    def __init__(self, stop: bool = False) -> None:
        super().__init__()
        self.stop = stop
        self.step: int | None = None

    def _on_step(self) -> bool:
        if self.step is None and any(info.get("is_success", False) for info in self.locals["infos"]):
            self.step = self.num_timesteps
        return not (self.stop and self.step is not None)


def make_env(variant: str, prior: StatePrior, args: Args, seed: int) -> gym.Env:
    env = gym.make(ENV_ID)
    if variant == "shaping":
        return EnergyShaping(env, prior, gamma=args.gamma)
    if variant == "novelty":
        g = torch.Generator().manual_seed(seed)
        with seeded_init(g):
            density = MLPEnergy(2, (32, 32))
        return EnergyNovelty(env, density, args.novelty_coef, seed=seed)
    if variant != "none":
        raise ValueError(f"variant must be 'none', 'shaping' or 'novelty', got {variant!r}")
    return env


def run(algo: str, variant: str, seed: int, prior: StatePrior, args: Args) -> dict[str, Any]:
    env = make_env(variant, prior, args, seed)
    if algo == "SAC":
        model = SAC("MlpPolicy", env, gamma=args.gamma, learning_starts=100, seed=seed)
    else:
        model = SoftQ("MlpPolicy", env, gamma=args.gamma, alpha=0.1, learning_starts=100,
                      policy_kwargs={"net_arch": [128, 128]}, seed=seed)
    callback = FirstSuccess(stop=args.stop_at_first_success)
    start = time.perf_counter()
    model.learn(args.total_timesteps, callback=callback)
    row = {
        "algo": algo, "variant": variant, "seed": seed,
        "steps_to_first_success": callback.step if callback.step is not None else f">{args.total_timesteps}",
        "steps_trained": model.num_timesteps,
        "train_seconds": round(time.perf_counter() - start, 1),
        "final_success_rate": "",  # not measured when the run stopped at its first success
    }
    if not args.stop_at_first_success:
        eval_env = gym.make(ENV_ID)
        eval_env.reset(seed=90_000 + seed)
        rewards, _ = evaluate_policy(model, eval_env, n_eval_episodes=args.n_eval_episodes, deterministic=True,
                                     return_episode_rewards=True, warn=False)
        row["final_success_rate"] = float(np.mean(np.asarray(rewards) > 0.5))
    return row


def plot(rows: list[dict[str, Any]], path: str, total: int) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    labels = sorted({(r["algo"], r["variant"]) for r in rows})
    for i, (algo, variant) in enumerate(labels):
        steps = [r["steps_to_first_success"] for r in rows if (r["algo"], r["variant"]) == (algo, variant)]
        ax.scatter([i] * len(steps), [s if isinstance(s, int) else total for s in steps])
    ax.set_xticks(range(len(labels)), [f"{a}\n{v}" for a, v in labels], fontsize=7)
    ax.set_ylabel(f"steps to first success (>{total} plotted at {total})")
    ax.set_title("Sparse goal: value priors")
    save_figure(fig, path)


def main(args: Args) -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    if args.quick:
        args = replace(args, **QUICK)
    out_dir = results_dir("priors")
    rows = []
    for seed in args.seeds:
        prior = fit_prior(args, seed)
        for algo in args.algos:
            for variant in args.variants:
                rows.append(run(algo, variant, seed, prior, args))
                print(rows[-1], flush=True)
                write_results(rows, args, out_dir)  # after every run: a run cut short keeps what it finished
    return rows


def write_results(rows: list[dict[str, Any]], args: Args, out_dir: Path) -> None:
    plot(rows, str(out_dir / "priors.png"), args.total_timesteps)
    write_table(
        out_dir, "priors", rows,
        title="Sparse goal: SAC and SoftQ with and without energy priors",
        config=args,
        info=environment_info(packages=("stable-baselines3", "gymnasium")),
        notes=(
            "steps_to_first_success counts environment steps until the raw task first reports success "
            "during training ('>N': never). final_success_rate: deterministic policy on the raw task"
            + (" (not measured: each run stopped at its first success)." if args.stop_at_first_success else ".")
            + f" Runs completed: {len(rows)} of {len(args.seeds) * len(args.algos) * len(args.variants)}."
            + (" QUICK SMOKE RUN: figures meaningless." if args.quick else ""),
        ),
    )


if __name__ == "__main__":
    main(parse_args(Args, description=__doc__.splitlines()[0]))
