"""Energy value priors on a sparse-reward task: which priors turn a found goal into a solving policy.

Task: ``ebrl/SparseGoal-v0`` (reward 1 only at a small goal in the far corner, 100 steps per episode).
Priors, all from 20 scripted demonstrations (a noisy controller that heads for the goal):

- ``none``: the raw sparse reward.
- ``shaping``: ``EnergyShaping`` with Φ(s) = -E(s)/T, E an ``MLPEnergy`` fitted by NCE (against the
  uniform density on the arena) to demonstration states drawn ∝ γ_d^(T - t), so Φ rises towards the goal.
- ``shaping_offset``: the same Φ less its mean over the demonstrations' last states (``StatePrior(offset=)``),
  so Φ ≈ 0 where episodes end, like the absorbing state's potential.
- ``shaping_bounded``: the offset Φ bounded below by ``prior_floor`` (``StatePrior(floor=)``), so the
  shaped values stay within |floor| of the raw ones.
- ``novelty``: ``EnergyNovelty`` (a density of visited states fitted online; positive bonus where rare).
- ``novelty_nonpositive``: the same bonus shifted to be <= 0 (``EnergyNovelty(nonpositive=True)``).
- ``demos``: the raw reward, with the demonstrations' transitions in the replay buffer before learning.
- ``shaping_bounded_demos``: both.
- ``value_prior`` (SoftQ only): the critic is a residual on the bounded Φ, Q = Φ(s) + Q_net(s, a).
- ``ibc_warm_start`` (SoftQ only): a state-action energy trained by implicit BC (InfoNCE) on the
  demonstrations is copied into SoftQ's critics before learning (``EnergyPolicy.warm_start``).
- ``ibc_residual`` (SoftQ only): the same implicit-BC energy, frozen, as a state-action prior under both
  critics: Q_i = -E_ibc(s, a)/T_a + Q_net,i(s, a) (``SoftQ(action_prior=StateActionPrior(...))``), Q_net
  started at 0, with T_a = ``action_prior_temperature``.
- ``ibc_residual_demos`` (SoftQ only): ``ibc_residual`` with the demonstrations' transitions in the replay
  buffer before learning, as ``demos``.

Measured per run: environment steps to the first success during training, the number of rewarded
transitions that entered the replay buffer, the deterministic policy's success rate in ``n_eval_episodes``
evaluation episodes every ``eval_freq`` steps (steps to the first evaluation at >= 80%), and the final one.
At each evaluation the critic is read along a fixed demonstrated path (``curves.csv``): Q of the
demonstrated action at the start and at the last step (the one that enters the goal), Q of standing still
at that last state, each also with Φ(s) added back (a shaped critic learns Q - Φ).

Seeds: settings are chosen on ``TUNING_SEEDS`` (``--split tuning``, written to ``tuning.csv``); the
reported configuration is fixed in ``Args`` before the held-out ``HELD_OUT_SEEDS`` run (``runs.csv``).
Chosen on tuning seed 100 with SAC (before any held-out run): the initial temperature 0.01 for every arm
(started at 1, SAC's and SoftQ's soft value, about 15 after a few thousand steps, dwarfed the goal's reward of
1), T = 1 and floor -3 (at T = 2 with floor -1 the floor covered the start, which then had no shaping), and
the budget of 6,000 steps (the tuning run's first evaluation at 100% came at 4,500 steps; the earlier runs of
this experiment used 15,000). That configuration then failed on held-out seeds 0-2 with ``shaping_bounded``;
on tuning seed 101 ``shaping_bounded_demos`` (same settings) evaluated at 100% from 1,500 steps, and was
chosen as the next held-out variant before any held-out run of it.
The state-action prior (SoftQ, same settings): ``ibc_residual``'s T_a = 1/alpha_init = 100 was fixed before any run
(SoftQ's first policy is then implicit BC's own); on tuning seeds 100 and 101 it evaluated at 100% at 6,000 steps
(first at 1,500 and 3,000 steps), ``ibc_warm_start`` at 0% on seed 100 (nothing of it is tuned, so seed 101 was not
run) and ``none`` at 0% on both. SoftQ had not been run on the held-out seeds before, and both state-action variants
are the issue's own (a warm start or a residual on the implicit-BC energy), so they run on ``HELD_OUT_SEEDS``.
``value_prior`` (SoftQ with the bounded Φ of ``shaping_bounded`` under its critics) has nothing of its own to tune (Φ's
settings were chosen above, SoftQ's are the other SoftQ arms'); it runs on ``HELD_OUT_SEEDS`` as declared in the issue.
After the held-out runs, ``ibc_residual`` had solved held-out seeds 1 and 2 but fell from 100% to 40% at the last
evaluation of seed 0, so it missed the target of 80% on every seed. Three changes were then tried on tuning seeds
(``tuning.csv``), none on held-out seeds: ``ibc_residual_demos`` (the demonstrations in the buffer as well) ended
at 0% on tuning seeds 102 and 103; the residual with α fixed at ``alpha_init`` (``--no-learn-alpha``) at 0% on seed
101; the residual at 15,000 steps, the budget of this experiment's first runs, evaluated at 100% on seeds 101 and 102
from 6,000 and 9,000 steps on, to the end (the run on seeds 100 and 103 was stopped for time). ``NEXT_CONFIG``
(15,000 steps, SoftQ, ``ibc_residual`` against ``none``) is therefore judged on ``NEXT_HELD_OUT_SEEDS``
(``--split next``), fresh seeds declared here before any run on them.
Runs already in the CSV with the same configuration digest are skipped (resumable).

Writes ``results/priors/``: ``runs.{csv,md}`` (or ``tuning.{csv,md}``), ``curves.csv``, ``summary.md``
(mean success with 95% bootstrap intervals, paired differences against ``none``) and ``runs.png``.

Run: ``python -m experiments.priors`` (``--quick`` for a smoke run into ``results/quick/``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

import envs  # noqa: F401  (registers the ebrl environments)
from agents import IBC, EnergyPolicy, SoftQ
from ebrl._checks import seeded_init
from ebrl.energy import MLPEnergy, UniformBox
from ebrl.rl.priors import StateActionPrior, StatePrior
from ebrl.training import NCE, fit
from envs.wrappers import EnergyNovelty, EnergyShaping
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
)

ENV_ID = "ebrl/SparseGoal-v0"
TUNING_SEEDS = (100, 101, 102, 103)
"""Seeds on which the settings in ``Args`` were chosen; never reported as results."""
HELD_OUT_SEEDS = (0, 1, 2)
"""Seeds of the reported runs, run only after the configuration was fixed."""
NEXT_HELD_OUT_SEEDS = (3, 4, 5, 6, 7)
"""Fresh seeds for the configuration chosen after the runs on ``HELD_OUT_SEEDS`` (``NEXT_CONFIG``), declared before any
run on them (``--split next``): 3-5 first, then 6-7, the configuration unchanged, for five held-out seeds."""
NEXT_CONFIG: dict[str, Any] = {"total_timesteps": 15_000, "algos": ("SoftQ",), "variants": ("none", "ibc_residual")}
"""What ``--split next`` runs: the one reported configuration on ``NEXT_HELD_OUT_SEEDS``, fixed on the tuning seeds."""
SOLVED = 0.8
"""A solving evaluation: the deterministic policy reaches the goal in at least 80% of the episodes."""
VARIANTS = (
    "none", "shaping", "shaping_offset", "shaping_bounded", "novelty", "novelty_nonpositive", "demos",
    "shaping_bounded_demos", "value_prior", "ibc_warm_start", "ibc_residual", "ibc_residual_demos",
)
SHAPED = ("shaping", "shaping_offset", "shaping_bounded", "shaping_bounded_demos")
SOFTQ_ONLY = ("value_prior", "ibc_warm_start", "ibc_residual", "ibc_residual_demos")
IBC_VARIANTS = ("ibc_warm_start", "ibc_residual", "ibc_residual_demos")
WITH_DEMOS = ("demos", "shaping_bounded_demos", "ibc_residual_demos")
"""Variants whose replay buffer starts with the demonstrations (replayed through the run's own environment)."""


@dataclass
class Args:
    """Configuration of the priors experiment (every field is a command-line option)."""

    split: Literal["held_out", "next", "tuning"] = field(
        default="held_out",
        metadata={"help": "held_out: HELD_OUT_SEEDS; next: NEXT_CONFIG on NEXT_HELD_OUT_SEEDS (both into runs.csv); "
                          "tuning: TUNING_SEEDS (tuning.csv)"},
    )
    seeds: tuple[int, ...] = field(default=(), metadata={"help": "override the split's seeds"})
    total_timesteps: int = field(default=6_000, metadata={"help": "environment steps per run"})
    algos: tuple[str, ...] = field(default=("SAC", "SoftQ"), metadata={"help": "agents"})
    variants: tuple[str, ...] = field(default=("none", "shaping_bounded_demos"), metadata={"help": f"of {VARIANTS}"})
    gamma: float = field(default=0.99, metadata={"help": "the agents' discount (also the shaping's)"})
    alpha_init: float = field(default=0.01, metadata={"help": "initial learnt temperature, every arm"})
    learn_alpha: bool = field(default=True, metadata={"help": "--no-learn-alpha: keep the temperature at alpha_init"})
    n_demos: int = field(default=20, metadata={"help": "scripted demonstrations for the priors"})
    demo_noise: float = field(default=0.3, metadata={"help": "sd of the scripted controller's action noise"})
    demo_discount: float = field(default=0.9, metadata={"help": "demo state t is drawn ∝ demo_discount^(T - t)"})
    prior_temperature: float = field(default=1.0, metadata={"help": "T in Φ = -E/T"})
    prior_floor: float = field(default=-3.0, metadata={"help": "lower bound of the bounded Φ"})
    prior_epochs: int = field(default=200, metadata={"help": "NCE epochs for the state prior"})
    novelty_coef: float = field(default=0.05, metadata={"help": "novelty bonus scale"})
    ibc_epochs: int = field(default=100, metadata={"help": "InfoNCE epochs of the state-action prior"})
    action_prior_temperature: float = field(
        default=100.0, metadata={"help": "T_a in Ψ = -E_ibc/T_a (ibc_residual); 1/alpha_init starts at IBC's policy"}
    )
    eval_freq: int = field(default=1_500, metadata={"help": "environment steps between evaluations"})
    n_eval_episodes: int = field(default=20, metadata={"help": "deterministic episodes per evaluation"})
    resume: bool = field(default=True, metadata={"help": "skip runs already in the CSV with this configuration"})
    run: bool = field(default=True, metadata={"help": "--no-run: only rebuild the tables from the CSVs"})
    quick: bool = field(default=False, metadata={"help": "smoke run into results/quick/: 300 steps, tiny priors"})


QUICK = {"seeds": (0,), "total_timesteps": 300, "n_demos": 3, "prior_epochs": 2, "ibc_epochs": 2, "eval_freq": 150,
         "n_eval_episodes": 2}


# ------------------------------------------------------------------------------------------------
# Demonstrations and the priors fitted to them


def demonstrations(args: Args, seed: int) -> list[dict[str, np.ndarray]]:
    """``n_demos`` episodes of a noisy controller that heads for the goal: obs, act, next_obs ``(T, 2)``."""
    env = gym.make(ENV_ID).unwrapped
    rng = np.random.default_rng(seed)
    episodes = []
    for episode in range(args.n_demos):
        obs, _ = env.reset(seed=10_000 * seed + episode)
        rows: dict[str, list[np.ndarray]] = {"obs": [], "act": [], "next_obs": []}
        for _ in range(100):
            act = np.clip((env.goal - obs) / env.speed + rng.normal(0, args.demo_noise, 2), -1, 1).astype(np.float32)
            nxt, _, terminated, _, _ = env.step(act)
            for key, value in (("obs", obs), ("act", act), ("next_obs", nxt)):
                rows[key].append(value)
            obs = nxt
            if terminated:
                break
        episodes.append({k: np.stack(v) for k, v in rows.items()})
    return episodes


def fit_state_prior(args: Args, demos: list[dict[str, np.ndarray]], seed: int) -> StatePrior:
    """Φ = -E/T, E fitted by NCE to discounted demonstration states (no offset)."""
    rng = np.random.default_rng(seed)
    states = []
    for demo in demos:
        path = np.concatenate([demo["obs"], demo["next_obs"][-1:]])  # (T + 1, 2)
        weights = args.demo_discount ** np.arange(len(path))[::-1]  # (T + 1,): ∝ γ_d^(T - t)
        picks = rng.choice(len(path), size=20 * len(path), p=weights / weights.sum())
        states.append(path[picks])
    data = torch.as_tensor(np.concatenate(states), dtype=torch.float32)  # (N, 2)
    g = torch.Generator().manual_seed(seed)
    with seeded_init(g):
        energy = MLPEnergy(2, (64, 64))
    fit(energy, data, NCE(UniformBox(-1.0, 1.0, dim=2), ratio=4), epochs=args.prior_epochs, batch_size=256,
        generator=g)
    return StatePrior(energy.requires_grad_(False), 2, temperature=args.prior_temperature)


def with_goal_offset(prior: StatePrior, demos: list[dict[str, np.ndarray]], floor: float | None = None) -> StatePrior:
    """The same energy with ``offset`` = the mean potential of the demonstrations' last states (before the goal),
    and the given ``floor``."""
    last = torch.as_tensor(np.stack([d["obs"][-1] for d in demos]))  # (n_demos, 2)
    with torch.no_grad():
        offset = float(prior(last).mean())
    return StatePrior(prior.energy, prior.obs_dim, temperature=prior.temperature, offset=prior.offset + offset,
                      floor=floor)


def variant_prior(variant: str, args: Args, demos: list[dict[str, np.ndarray]], raw: StatePrior) -> StatePrior:
    """The potential a variant uses: raw Φ for ``shaping``, offset for ``shaping_offset``, else bounded."""
    if variant == "shaping":
        return raw
    return with_goal_offset(raw, demos, None if variant == "shaping_offset" else args.prior_floor)


def fit_ibc_energy(args: Args, demos: list[dict[str, np.ndarray]], seed: int, hidden: list[int]) -> EnergyPolicy:
    """An implicit-BC policy (InfoNCE against uniform negatives) on the demonstrations' (obs, act) pairs."""
    obs = np.concatenate([d["obs"] for d in demos])
    act = np.concatenate([d["act"] for d in demos])
    env = gym.make(ENV_ID)
    ibc = IBC(env.observation_space, env.action_space, hidden=tuple(hidden), seed=seed)
    ibc.learn(obs, act, epochs=args.ibc_epochs)
    return ibc.policy


# ------------------------------------------------------------------------------------------------
# Runs


def make_env(variant: str, prior: StatePrior, args: Args, seed: int) -> gym.Env:
    env = gym.make(ENV_ID)
    if variant in SHAPED:
        return EnergyShaping(env, prior, gamma=args.gamma)
    if variant in ("novelty", "novelty_nonpositive"):
        g = torch.Generator().manual_seed(seed)
        with seeded_init(g):
            density = MLPEnergy(2, (32, 32))
        return EnergyNovelty(env, density, args.novelty_coef, nonpositive=variant == "novelty_nonpositive", seed=seed)
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return env


def add_demos_to_buffer(model: BaseAlgorithm, env: gym.Env, demos: list[dict[str, np.ndarray]]) -> int:
    """Replay the demonstrated actions through ``env`` (so rewards are the run's own) into the replay buffer.

    The env is reset to each demonstration's start seed; returns the number of transitions added.
    """
    n = 0
    buffer = model.replay_buffer
    assert buffer is not None
    for demo in demos:
        env.reset()
        env.unwrapped._pos = demo["obs"][0].astype(np.float64)  # the demonstration's start
        obs = demo["obs"][0]
        for act in demo["act"]:
            nxt, reward, terminated, truncated, info = env.step(act)
            buffer.add(obs[None], np.asarray(nxt)[None], act[None], np.array([reward]), np.array([terminated]),
                       [{**info, "TimeLimit.truncated": truncated and not terminated}])
            n += 1
            obs = nxt
            if terminated or truncated:
                break
    return n


def critic_q(model: BaseAlgorithm, obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    """The critic's (pessimistic) Q of scaled actions ``act (B, A)`` at ``obs (B, O)``, ``(B,)``."""
    o = torch.as_tensor(obs, dtype=torch.float32)
    a = torch.as_tensor(act, dtype=torch.float32)
    with torch.no_grad():
        if isinstance(model, SAC):
            q1, q2 = model.critic(o, a)
            return torch.minimum(q1, q2).reshape(-1).numpy()
        if isinstance(model, SoftQ):
            return (-model.critic(o, a)).reshape(-1).numpy()
    raise TypeError(f"critic_q supports SAC and SoftQ, got {type(model).__name__}")


def temperature(model: BaseAlgorithm) -> float:
    """The agent's current temperature α (SAC's entropy coefficient)."""
    if isinstance(model, SAC):
        log_alpha = model.log_ent_coef
        return float(log_alpha.detach().exp()) if log_alpha is not None else float(model.ent_coef_tensor)
    if isinstance(model, SoftQ):
        return float(model.policy.alpha_tensor)
    raise TypeError(f"temperature supports SAC and SoftQ, got {type(model).__name__}")


def evaluate(model: BaseAlgorithm, n_episodes: int, seed: int) -> float:
    """Success rate of the deterministic policy on the raw task."""
    env = gym.make(ENV_ID)
    wins = 0
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=90_000 + 1_000 * seed + episode)
        while True:
            act, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(act)
            if terminated or truncated:
                wins += int(reward > 0.5)
                break
    return wins / n_episodes


class Monitor(BaseCallback):
    """First success, rewarded transitions and periodic evaluations, with the critic along a demonstrated path."""

    def __init__(self, args: Args, seed: int, path: dict[str, np.ndarray], phi: StatePrior | None) -> None:
        super().__init__()
        self.args, self.seed, self.path = args, seed, path
        self.first_success: int | None = None
        self.successes = 0
        self.evals: list[dict[str, Any]] = []
        with torch.no_grad():
            obs = torch.as_tensor(path["obs"])
            self.phi = np.zeros(len(obs)) if phi is None else phi(obs).numpy()  # (T,)

    def _on_step(self) -> bool:
        wins = sum(bool(info.get("is_success", False)) for info in self.locals["infos"])
        self.successes += wins
        if wins and self.first_success is None:
            self.first_success = self.num_timesteps
        if self.num_timesteps % self.args.eval_freq == 0:
            self.evaluate()
        return True

    def evaluate(self) -> None:
        obs, act = self.path["obs"], self.path["act"]
        q = critic_q(self.model, obs, act)  # (T,)
        q_stay = critic_q(self.model, obs[-1:], np.zeros_like(act[-1:]))[0]
        self.evals.append({
            "step": self.num_timesteps,
            "success_rate": evaluate(self.model, self.args.n_eval_episodes, self.seed),
            "q_start": float(q[0]), "q_enter": float(q[-1]), "q_stay": float(q_stay),
            "q_start_plus_phi": float(q[0] + self.phi[0]), "q_enter_plus_phi": float(q[-1] + self.phi[-1]),
            "q_stay_plus_phi": float(q_stay + self.phi[-1]),
            "successes_so_far": self.successes,
            "alpha": temperature(self.model),
        })
        print({"algo": type(self.model).__name__, "seed": self.seed, **self.evals[-1]}, flush=True)


def temperature_setting(args: Args) -> float | str:
    """SAC's ``ent_coef`` and SoftQ's ``alpha``: learnt from ``alpha_init``, or fixed at it."""
    return f"auto_{args.alpha_init}" if args.learn_alpha else args.alpha_init


def make_model(algo: str, variant: str, env: gym.Env, seed: int, prior: StatePrior, args: Args,
               action_prior: StateActionPrior | None = None) -> BaseAlgorithm:
    if algo == "SAC":
        if variant in SOFTQ_ONLY:
            raise ValueError(f"variant {variant!r} is for SoftQ only")
        return SAC("MlpPolicy", env, gamma=args.gamma, learning_starts=100, ent_coef=temperature_setting(args),
                   seed=seed)
    if algo != "SoftQ":
        raise ValueError(f"algo must be 'SAC' or 'SoftQ', got {algo!r}")
    return SoftQ("MlpPolicy", env, gamma=args.gamma, learning_starts=100, alpha=temperature_setting(args), seed=seed,
                 value_prior=prior if variant == "value_prior" else None, action_prior=action_prior,
                 policy_kwargs={"net_arch": [128, 128]})


def run(algo: str, variant: str, seed: int, args: Args) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    torch.manual_seed(seed)  # IBC and SB3 draw initial weights from the global RNG; SB3 seeds it again
    demos = demonstrations(args, seed)
    prior = variant_prior(variant, args, demos, fit_state_prior(args, demos, seed))
    env = make_env(variant, prior, args, seed)
    ibc = fit_ibc_energy(args, demos, seed, [128, 128]) if variant in IBC_VARIANTS else None
    action_prior = None
    if ibc is not None and variant in ("ibc_residual", "ibc_residual_demos"):
        action_prior = StateActionPrior(ibc.energy.requires_grad_(False), temperature=args.action_prior_temperature)
    model = make_model(algo, variant, env, seed, prior, args, action_prior)
    if ibc is not None and variant == "ibc_warm_start":
        ibc.warm_start(model)
    n_demo_transitions = 0
    if variant in WITH_DEMOS:
        n_demo_transitions = add_demos_to_buffer(model, make_env(variant, prior, args, seed + 1), demos)
    monitor = Monitor(args, seed, demos[0], prior if variant in SHAPED else None)
    at_start = evaluate(model, args.n_eval_episodes, seed)  # the prior's own policy, before any update
    start = time.perf_counter()
    model.learn(args.total_timesteps, callback=monitor)
    seconds = time.perf_counter() - start
    if not monitor.evals or monitor.evals[-1]["step"] != model.num_timesteps:
        monitor.evaluate()
    solving = [e["step"] for e in monitor.evals if e["success_rate"] >= SOLVED]
    row = {
        "algo": algo, "variant": variant, "seed": seed,
        "steps_to_first_success": monitor.first_success if monitor.first_success is not None else "",
        "rewarded_transitions": monitor.successes,
        "demo_transitions": n_demo_transitions,
        "steps_to_solving_eval": solving[0] if solving else "",
        "success_at_start": at_start,
        "final_success_rate": monitor.evals[-1]["success_rate"],
        "best_success_rate": max(e["success_rate"] for e in monitor.evals),
        "steps_trained": model.num_timesteps,
        "train_seconds": round(seconds, 1),
        "load_1min": round(os.getloadavg()[0], 2),
    }
    curves = [{"algo": algo, "variant": variant, "seed": seed, **e} for e in monitor.evals]
    return row, curves


# ------------------------------------------------------------------------------------------------
# Tables


def per_seed(rows: list[dict[str, Any]], algo: str, variant: str, config: str, column: str, empty: str) -> str:
    """``"seed: value"`` of ``column`` for each seed of one arm, in seed order; ``empty`` for a blank cell."""
    mine = sorted((r for r in rows if (r["algo"], r["variant"], r["config"]) == (algo, variant, config)),
                  key=lambda r: r["seed"])
    return ", ".join(f"{r['seed']}: {r.get(column, '') if r.get(column, '') != '' else empty}" for r in mine)


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (algo, variant, configuration): mean final success with a 95% bootstrap CI; paired difference
    to ``none`` of the same algorithm and configuration."""
    out = []
    for algo, variant, config in dict.fromkeys((r["algo"], r["variant"], r["config"]) for r in rows):
        def finals(v: str, algo: str = algo, config: str = config) -> dict[int, float]:
            return {r["seed"]: float(r["final_success_rate"]) for r in rows
                    if (r["algo"], r["variant"], r["config"]) == (algo, v, config)}

        mine, base = finals(variant), finals("none")
        ci = stats.bootstrap_ci(np.array(list(mine.values())), statistic=stats.mean, seed=0)
        common = sorted(set(mine) & set(base))
        diff = ""
        if variant != "none" and len(common) == 1:
            diff = f"{mine[common[0]] - base[common[0]]:+.2f} (one seed, {common}: no interval)"
        elif variant != "none" and common:
            d = stats.paired_difference_ci(np.array([mine[s] for s in common]), np.array([base[s] for s in common]),
                                           statistic=stats.mean, seed=0)
            diff = f"{d.point:+.2f} [{d.low:+.2f}, {d.high:+.2f}] ({stats.verdict(d)}, seeds {common})"
        out.append({
            "algo": algo, "variant": variant, "config": config, "seeds": len(mine),
            "final_success_mean [95% CI]": f"{ci.point:.2f} [{ci.low:.2f}, {ci.high:.2f}]",
            "seeds_solved (>= 80%)": f"{sum(v >= SOLVED for v in mine.values())}/{len(mine)}",
            "first solving eval, per seed": per_seed(rows, algo, variant, config, "steps_to_solving_eval", "never"),
            "success before learning, per seed": per_seed(rows, algo, variant, config, "success_at_start", "-"),
            "minus none, paired": diff,
        })
    return out


def plot(curves: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in dict.fromkeys((c["algo"], c["variant"]) for c in curves):
        mine = [c for c in curves if (c["algo"], c["variant"]) == key]
        for i, seed in enumerate(sorted({c["seed"] for c in mine})):
            pts = [(c["step"], c["success_rate"]) for c in mine if c["seed"] == seed]
            ax.plot(*zip(*pts, strict=True), marker="o", ms=3, alpha=0.8,
                    color=f"C{list(dict.fromkeys((c['algo'], c['variant']) for c in curves)).index(key) % 10}",
                    label=f"{key[0]} {key[1]}" if i == 0 else None)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("deterministic success rate")
    ax.set_title("SparseGoal: evaluation during training (one line per seed)")
    ax.legend(fontsize=6)
    save_figure(fig, str(path))


def main(args: Args) -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    if args.split == "next":
        args = replace(args, **NEXT_CONFIG)
    if args.quick:
        args = replace(args, **QUICK)
    seeds = args.seeds or {"tuning": TUNING_SEEDS, "next": NEXT_HELD_OUT_SEEDS}.get(args.split, HELD_OUT_SEEDS)
    out_dir = results_dir("priors", root=RESULTS_ROOT / "quick") if args.quick else results_dir("priors")
    name = "tuning" if args.split == "tuning" else "runs"
    # learn_alpha joined the settings after runs were made with it on: it enters the digest only when off
    stable = ("learn_alpha",) if args.learn_alpha else ()
    # likewise action_prior_temperature (only ibc_residual reads it): in the digest only when not its default
    if args.action_prior_temperature == Args.action_prior_temperature:
        stable = (*stable, "action_prior_temperature")
    digest = config_digest(args, exclude=("split", "seeds", "algos", "variants", "resume", "run", "quick", *stable))
    typed = {"integer": ("seed",), "real": ("final_success_rate", "best_success_rate")}
    # rows of other configurations stay in the files; only this configuration's count as done
    rows = read_rows(out_dir / f"{name}.csv", keep=lambda r: True, **typed)
    curves = read_rows(out_dir / f"{name}_curves.csv", keep=lambda r: True, integer=("seed", "step"),
                       real=("success_rate",))
    if not args.resume:
        rows = [r for r in rows if r["config"] != digest]
        curves = [c for c in curves if c["config"] != digest]
    done = {(r["algo"], r["variant"], r["seed"]) for r in rows if r["config"] == digest}
    for seed in seeds:
        for algo in args.algos:
            for variant in args.variants:
                if not args.run or (algo, variant, seed) in done or (algo == "SAC" and variant in SOFTQ_ONLY):
                    continue
                row, curve = run(algo, variant, seed, args)
                rows.append({**row, "config": digest})
                curves += [{**c, "config": digest} for c in curve]
                print(row, flush=True)
                write_results(rows, curves, args, out_dir, name)
    if rows:  # also rebuilds the tables from rows gathered elsewhere (runs made in parallel, then concatenated)
        write_results(rows, curves, args, out_dir, name)
    return rows


def write_results(rows: list[dict[str, Any]], curves: list[dict[str, Any]], args: Args, out_dir: Path,
                  name: str) -> None:
    info = environment_info(packages=("stable-baselines3", "gymnasium"))
    seeds = "tuning seeds (never reported)" if name == "tuning" else "held-out seeds"
    write_table(
        out_dir, name, rows,
        title=f"SparseGoal: SAC and SoftQ with energy priors ({seeds})",
        config=args, info=info,
        notes=(
            "steps_to_first_success: environment steps until the raw task first reports success in training "
            "(empty: never). rewarded_transitions: successes that entered the replay buffer during training. "
            f"steps_to_solving_eval: first evaluation (every {args.eval_freq} steps, {args.n_eval_episodes} "
            f"deterministic episodes) at >= {SOLVED:.0%} success (empty: none). success_at_start: the same "
            "evaluation before learning (empty in rows written before it was measured). final_success_rate: the last "
            "evaluation. load_1min: the machine's 1-minute load average when the run ended."
            + (" QUICK SMOKE RUN: figures meaningless." if args.quick else ""),
        ),
    )
    write_table(out_dir, f"{name}_curves", curves, title="SparseGoal: evaluations and critic values during training",
                notes=("q_*: the critic's Q along one demonstrated path (start; the step into the goal; standing "
                       "still at that last state); *_plus_phi adds Φ(s) back for shaped critics.",))
    write_table(out_dir, f"{name}_summary", summary(rows), title=f"SparseGoal: final success over {seeds}",
                notes=("Mean over seeds with a 95% percentile-bootstrap interval (experiments.stats); the paired "
                       "difference is against the same algorithm without a prior, on the seeds both ran; an "
                       "interval that includes 0 is a tie. First solving eval: steps to each seed's first "
                       f"evaluation at >= {SOLVED:.0%}. Success before learning: the same evaluation before any "
                       "update ('-': a run made before it was measured).",), config=args, info=info)
    plot(curves, out_dir / f"{name}.png")


if __name__ == "__main__":
    main(parse_args(Args, description=__doc__.splitlines()[0]))

