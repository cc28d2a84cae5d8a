"""``ebrl eval``: the mean return of a saved SoftQ, SoftDQN or IBC model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, cast

import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from ebrl.cli._common import action_space, add_command, existing_file, load_agent, make_env, require_positive


def evaluate_model(
    path: str | Path, env_id: str, *, episodes: int = 10, deterministic: bool = False, seed: int = 0
) -> tuple[Any, float, float]:
    """``(model, mean return, std)`` of the model saved at ``path`` over ``episodes`` episodes of ``env_id``."""
    model_path = existing_file("MODEL", path)
    action_space(env_id)  # an unknown id fails here, naming --env
    env = Monitor(make_env(env_id))
    env.reset(seed=seed)
    model = load_agent(model_path, env=env)
    if hasattr(model, "set_random_seed"):
        model.set_random_seed(seed)
    mean, std = cast(tuple[float, float], evaluate_policy(model, env, n_eval_episodes=episodes,
                                                          deterministic=deterministic))
    return model, float(mean), float(std)


def run(args: argparse.Namespace) -> None:
    existing_file("MODEL", args.model)
    require_positive("--episodes", args.episodes, "number of episodes")
    torch.set_num_threads(args.threads)
    model, mean, std = evaluate_model(args.model, args.env, episodes=args.episodes, deterministic=args.deterministic,
                                      seed=args.seed)
    policy = "deterministic" if args.deterministic else "stochastic"
    print(f"{type(model).__name__} on {args.env}: mean return {mean:.2f} ± {std:.2f} over {args.episodes} episodes "
          f"({policy} policy)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "eval", "evaluate a saved SoftQ, SoftDQN or IBC model: mean return ± std", threads=True)
    p.add_argument("model", metavar="MODEL",
                   help="an SB3 zip saved by ebrl train or ebrl demo, or an IBC policy (.pt) saved by ebrl train")
    p.add_argument("--env", required=True, help="Gymnasium id")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--deterministic", action="store_true", help="act by the policy's mode")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)
