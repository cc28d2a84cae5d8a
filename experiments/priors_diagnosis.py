"""Why found goals do not become policies on SparseGoal: the rewards each prior pays, measured without training.

For each seed, the priors of ``experiments.priors`` (the state energy Φ = -E/T fitted to demonstrations,
with and without the goal offset, and the novelty density fitted online to a random policy's states, as
early in training) are read along three behaviours:

- ``reach``: the noiseless controller, straight into the goal;
- ``hover``: the same controller to the last demonstrated state before the goal, then standing still
  until the time limit;
- ``random``: uniform random actions (mean over 20 episodes).

Figures (``diagnosis.csv``):

- Φ along a demonstrated path (start, last state before the goal), and Φ's range over a 21 x 21 grid;
- ``enter_minus_stay``: at the last state before the goal, the reward of entering the goal minus that of
  standing still one step, r + F(s, goal) - F(s, s) = 1 - γΦ(s) for shaping (Φ of the absorbing state is
  0): what a critic that starts at 0 sees as the advantage of finishing;
- the discounted return of each behaviour under each reward, counting only what the episode pays (the
  bootstrapped tail after the time limit is not added: a critic that starts at 0 sees none at first).

Run: ``python -m experiments.priors_diagnosis`` (writes ``results/priors/diagnosis.{csv,md}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import envs  # noqa: F401  (registers the ebrl environments)
from ebrl._checks import seeded_init
from ebrl.energy import MLPEnergy
from ebrl.rl.priors import StatePrior
from envs.wrappers import EnergyNovelty
from experiments import priors
from experiments._common import environment_info, parse_args, results_dir, write_table

ENV_ID = priors.ENV_ID


@dataclass
class Args:
    """Configuration of the diagnosis (the priors' settings are ``experiments.priors.Args``' defaults)."""

    seeds: tuple[int, ...] = field(default=priors.HELD_OUT_SEEDS, metadata={"help": "seeds of the priors"})
    novelty_steps: int = field(default=3_000, metadata={"help": "random-policy steps that fit the novelty density"})
    quick: bool = field(default=False, metadata={"help": "smoke run: tiny priors"})


def rollout(policy: str, demo: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, bool]:
    """States ``(T + 1, 2)``, raw rewards ``(T,)`` and whether the episode terminated, for one behaviour."""
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    base = env.unwrapped
    base._pos = demo["obs"][0].astype(np.float64)
    stop = demo["obs"][-1]
    states, rewards = [demo["obs"][0]], []
    for t in range(100):
        obs = states[-1]
        if policy == "random":
            act = rng.uniform(-1, 1, 2)
        elif policy == "reach":
            act = np.clip((base.goal - obs) / base.speed, -1, 1)
        else:  # hover: to the last demonstrated state, then stand still
            act = np.clip((stop - obs) / base.speed, -1, 1)
        obs, reward, terminated, truncated, _ = env.step(act.astype(np.float32))
        states.append(obs)
        rewards.append(reward)
        if terminated or truncated or t == 99:
            return np.stack(states), np.asarray(rewards, float), bool(terminated)
    raise AssertionError("unreachable")


def discounted(x: np.ndarray, gamma: float) -> float:
    return float((gamma ** np.arange(len(x)) * x).sum())


def shaped_rewards(
    phi: StatePrior, states: np.ndarray, rewards: np.ndarray, terminated: bool, gamma: float
) -> np.ndarray:
    with torch.no_grad():
        p = phi(torch.as_tensor(states, dtype=torch.float32)).numpy().astype(float)  # (T + 1,)
    if terminated:
        p[-1] = 0.0  # the absorbing state
    return rewards + gamma * p[1:] - p[:-1]


def novelty_model(args: Args, seed: int, nonpositive: bool) -> EnergyNovelty:
    """The novelty wrapper after ``novelty_steps`` random-policy steps (its density fitted online)."""
    g = torch.Generator().manual_seed(seed)
    with seeded_init(g):
        density = MLPEnergy(2, (32, 32))
    env = EnergyNovelty(gym.make(ENV_ID), density, priors.Args().novelty_coef, nonpositive=nonpositive, seed=seed)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    for _ in range(args.novelty_steps):
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        if terminated or truncated:
            env.reset()
    return env


def diagnose(args: Args, seed: int) -> list[dict[str, Any]]:
    pargs = priors.Args(**(priors.QUICK if args.quick else {}))
    gamma = pargs.gamma
    demos = priors.demonstrations(pargs, seed)
    raw = priors.fit_state_prior(pargs, demos, seed)
    potentials = {name: priors.variant_prior(name, pargs, demos, raw)
                  for name in ("shaping", "shaping_offset", "shaping_bounded")}
    grid = torch.tensor([[a, b] for a in np.linspace(-1, 1, 21) for b in np.linspace(-1, 1, 21)], dtype=torch.float32)
    rng = np.random.default_rng(seed)
    behaviours = {name: [rollout(name, demos[0], rng) for _ in range(20 if name == "random" else 1)]
                  for name in ("reach", "hover", "random")}
    novelty = {flag: novelty_model(args, seed, flag) for flag in (False, True)}
    rows = []
    for reward_name in ("raw", *potentials, "novelty", "novelty_nonpositive"):
        row: dict[str, Any] = {"seed": seed, "reward": reward_name}
        if reward_name in potentials:
            phi = potentials[reward_name]
            with torch.no_grad():
                path = phi(torch.as_tensor(demos[0]["obs"])).numpy()
                on_grid = phi(grid).numpy()
            row.update({"phi_start": path[0], "phi_last": path[-1], "phi_grid_min": on_grid.min(),
                        "phi_grid_median": float(np.median(on_grid)), "phi_grid_max": on_grid.max()})
            row["enter_minus_stay"] = 1.0 - gamma * float(path[-1])  # (1 - Φ(s)) - (γΦ(s) - Φ(s))
        elif reward_name.startswith("novelty"):
            env = novelty[reward_name == "novelty_nonpositive"]
            last = demos[0]["obs"][-1]
            goal_state = behaviours["reach"][0][0][-1]
            row["enter_minus_stay"] = 1.0 + env.bonus(goal_state) - env.bonus(last)
            row["bonus_last_state"] = env.bonus(last)
            row["bonus_start"] = env.bonus(demos[0]["obs"][0])
        else:
            row["enter_minus_stay"] = 1.0
        for name, episodes in behaviours.items():
            returns = []
            for states, rewards, terminated in episodes:
                if reward_name == "raw":
                    r = rewards
                elif reward_name in potentials:
                    r = shaped_rewards(potentials[reward_name], states, rewards, terminated, gamma)
                else:
                    env = novelty[reward_name == "novelty_nonpositive"]
                    r = rewards + np.array([env.bonus(s) for s in states[1:]])
                returns.append(discounted(r, gamma))
            row[f"return_{name}"] = float(np.mean(returns))
        row["reach_beats_hover"] = row["return_reach"] > row["return_hover"]
        rows.append(row)
    return rows


def main(args: Args) -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    if args.quick:
        args = replace(args, seeds=args.seeds[:1], novelty_steps=200)
    rows = [row for seed in args.seeds for row in diagnose(args, seed)]
    out = results_dir("quick") if args.quick else results_dir("priors")
    write_table(
        out, "diagnosis", rows, title="SparseGoal: what each reward pays before anything is learnt",
        config=args, info=environment_info(),
        notes=("enter_minus_stay: at the last demonstrated state before the goal, the reward of entering minus "
               "that of standing still one step (1 - γΦ(s) under shaping). return_*: discounted return of "
               "each behaviour (reach the goal; hover just outside it until the time limit; random), with no "
               "bootstrapped tail. Priors as in experiments.priors (20 demonstrations, T = 2, floor -1 for "
               "shaping_bounded); novelty density fitted online to a random policy's states.",),
    )
    for row in rows:
        print(row)
    return rows


if __name__ == "__main__":
    main(parse_args(Args, description=__doc__.splitlines()[0]))
