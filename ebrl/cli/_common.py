"""What the ``ebrl`` commands share: the user-error type, environments, agents and a progress bar."""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback

import envs  # noqa: F401  (registers the ebrl/* environment ids)
from agents import EnergyPolicy, SoftDQN, SoftQ

ALGOS = {"softq": "SoftQ", "softdqn": "SoftDQN", "ibc": "IBC"}
"""``--algo`` names and the agent class each one trains."""

ALGO_ALIASES = {"sql": "softq"}
"""Other accepted ``--algo`` names (``sql``, soft Q-learning, is SoftQ's earlier name)."""


class UsageError(ValueError):
    """A bad command-line argument; the message names it and says what was expected."""


def canonical_algo(algo: str) -> str:
    """``softq``, ``softdqn`` or ``ibc`` for a ``--algo`` value (aliases resolved)."""
    return ALGO_ALIASES.get(algo, algo)


def require_positive(flag: str, value: int | float, what: str) -> None:
    """``UsageError`` naming ``flag`` unless ``value > 0``."""
    if not value > 0:
        raise UsageError(f"{flag}: expected a positive {what}, got {value}")


def existing_file(flag: str, path: str | Path) -> Path:
    """``path`` as a ``Path``, or a ``UsageError`` naming ``flag`` if no such file exists."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{flag}: no such file '{path}'; expected the path of an existing file")
    return p


def make_env(env_id: str) -> gym.Env:
    """``gym.make(env_id)`` with one torch thread (it also runs in SubprocVecEnv worker processes)."""
    torch.set_num_threads(1)
    return gym.make(env_id)


def action_space(env_id: str) -> gym.Space:
    """The action space of ``env_id``, or a ``UsageError`` naming ``--env``."""
    try:
        env = make_env(env_id)
    except gym.error.DependencyNotInstalled as exc:
        raise UsageError(f"--env {env_id}: {exc}") from exc
    except gym.error.Error as exc:
        raise UsageError(
            f"--env: unknown environment id '{env_id}' ({exc}); expected a registered Gymnasium id "
            f"such as Pendulum-v1, CartPole-v1 or ebrl/MultiGoal-v0"
        ) from exc
    space = env.action_space
    env.close()
    return space


def check_algo_suits(algo: str, env_id: str) -> None:
    """``softq`` and ``ibc`` need a Box action space (``ibc`` with finite bounds), ``softdqn`` a Discrete one.

    ``algo`` is the name as given (``sql`` included), so that messages repeat what the user typed.
    """
    space = action_space(env_id)
    name = canonical_algo(algo)
    needed = spaces.Discrete if name == "softdqn" else spaces.Box
    if not isinstance(space, needed):
        other = "softdqn (Discrete actions)" if needed is spaces.Box else "softq or ibc (Box actions)"
        raise UsageError(
            f"--algo {algo}: {ALGOS[name]} needs a {needed.__name__} action space but {env_id} has {space}; "
            f"use --algo {other}"
        )
    if name == "ibc":
        assert isinstance(space, spaces.Box)
        if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
            raise UsageError(f"--algo ibc: IBC draws counter-examples in the action box, but {env_id} has {space} "
                             f"with infinite bounds; expected finite bounds")


class ProgressBar(BaseCallback):
    """An SB3 callback printing a one-line progress bar to stderr (no extra dependency)."""

    def __init__(self, total: int, *, enabled: bool = True) -> None:
        super().__init__()
        self.total, self.enabled = total, enabled
        self.start, self.shown = 0.0, -1

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()
        self.shown = -1

    def _on_step(self) -> bool:
        done = min(self.num_timesteps, self.total)
        percent = 100 * done // self.total
        if self.enabled and (percent != self.shown or done == self.total):
            self.shown = percent
            bar = "#" * (percent // 4) + "." * (25 - percent // 4)
            elapsed = time.perf_counter() - self.start
            print(f"\r[{bar}] {done}/{self.total} steps {elapsed:5.0f} s", end="", file=sys.stderr, flush=True)
        return True

    def _on_training_end(self) -> None:
        if self.enabled:
            print(file=sys.stderr, flush=True)


def algo_of_zip(path: Path) -> str:
    """``"softq"`` or ``"softdqn"``: the algorithm that saved an SB3 zip, read from its policy class's module."""
    try:
        with zipfile.ZipFile(path) as z:
            data = json.loads(z.read("data"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"MODEL: '{path}' is not an SB3 model zip ({exc}); expected a file saved by ebrl train"
        ) from exc
    module = str(data.get("policy_class", {}).get("__module__", ""))
    for algo in ("softq", "softdqn"):
        if module.startswith(f"agents.{ALGOS[algo].lower()}."):
            return algo
    raise UsageError(f"MODEL: '{path}' was saved by policy module '{module}'; expected a SoftQ or SoftDQN model")


def load_agent(path: Path, env: gym.Env | None = None) -> Any:
    """A SoftQ or SoftDQN from an SB3 zip, or an ``EnergyPolicy`` (``ebrl train --algo ibc``) from a ``.pt``."""
    if path.suffix != ".zip":
        try:
            policy = EnergyPolicy.load(str(path), device="cpu")
        except Exception as exc:  # torch.load of a file that is not an EnergyPolicy: any of several errors
            raise UsageError(
                f"MODEL: '{path}' is not a SoftQ/SoftDQN zip or an EnergyPolicy file ({type(exc).__name__}: {exc}); "
                f"expected a file saved by ebrl train"
            ) from exc
        if env is not None and env.observation_space.shape != policy.observation_space.shape:
            raise UsageError(f"--env: observation shape {env.observation_space.shape} does not match the policy's "
                             f"{policy.observation_space.shape}; expected the environment the policy was trained on")
        return policy
    cls = SoftQ if algo_of_zip(path) == "softq" else SoftDQN
    try:
        return cls.load(path, env=env, device="cpu")
    except ValueError as exc:  # SB3's space check
        raise UsageError(f"--env: {exc}; expected the environment the model was trained on") from exc


def add_command(
    sub: argparse._SubParsersAction, name: str, help_text: str, *, threads: bool = False, progress: bool = False
) -> argparse.ArgumentParser:
    """A subcommand parser, with ``--threads`` (torch threads) and ``--progress`` when asked for."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    if progress:
        p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                       help="show a progress bar on stderr")
    if threads:
        p.add_argument("--threads", type=int, default=1, help="torch threads in the main process")
    return p
