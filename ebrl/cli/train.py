"""``ebrl train``: SoftQ or SoftDQN on a Gymnasium environment, or IBC from demonstrations."""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from agents import IBC, SoftDQN, SoftQ, add_demonstrations
from ebrl.cli._common import (
    ALGO_ALIASES,
    ALGOS,
    ProgressBar,
    UsageError,
    add_command,
    canonical_algo,
    check_algo_suits,
    existing_file,
    make_env,
    require_positive,
)
from ebrl.demos import is_npz, load_minari, load_npz
from envs.particle import ParticleEnv, collect_demonstrations

SCRIPTED_EXPERTS = ("ebrl/Particle-v0",)
"""Environments whose scripted expert ``ebrl train --algo ibc`` uses when no ``--demos`` file is given."""

SCRIPTED_EXPERT_NOISE = 0.05
"""Std of the noise on the executed expert set-points (DART; the labels stay clean), as in experiments.ibc_particle."""


def train_agent(
    algo: str,
    env_id: str,
    *,
    steps: int,
    n_envs: int = 1,
    vec: str = "dummy",
    device: str = "auto",
    seed: int = 0,
    tensorboard: str | None = None,
    progress: bool = True,
    demos: str | None = None,
) -> SoftQ | SoftDQN:
    """A SoftQ (``algo="softq"``) or SoftDQN (``"softdqn"``) trained ``steps`` steps on ``n_envs`` ``env_id``s.

    ``vec="subproc"`` steps each environment in its own process (SB3's ``SubprocVecEnv``). ``demos``, the id of a
    local Minari dataset, puts its episodes in the replay buffer before training (``agents.add_demonstrations``).
    """
    if demos is not None and is_npz(demos):
        raise UsageError(f"--demos: {ALGOS[canonical_algo(algo)]} needs rewards and episode ends, which an .npz of "
                         "observations and actions lacks; expected the id of a Minari dataset in the local store")
    vec_cls = SubprocVecEnv if vec == "subproc" else DummyVecEnv
    env = make_vec_env(functools.partial(make_env, env_id), n_envs=n_envs, seed=seed, vec_env_cls=vec_cls)
    cls = SoftQ if canonical_algo(algo) == "softq" else SoftDQN
    try:
        model = cls("MlpPolicy", env, seed=seed, device=device, tensorboard_log=tensorboard)
        if demos is not None:
            try:
                n = add_demonstrations(model, demos)
            except (ValueError, ImportError) as exc:
                raise UsageError(f"--demos: {exc}") from exc
            print(f"Added {n} demonstration transitions from {demos} to the replay buffer", flush=True)
        model.learn(steps, callback=ProgressBar(steps, enabled=progress))
    finally:
        env.close()
    return model


def demonstrations(
    env_id: str, *, demos: str | Path | None = None, n_demos: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(observations (T, O), actions (T, A))`` from an ``.npz`` file or a Minari dataset, or from ``env_id``'s
    scripted expert.

    ``demos`` is a path ending in ``.npz`` (arrays ``observations`` and ``actions``) or the id of a Minari dataset
    in Minari's local store (``ebrl.demos``); the shapes must fit ``env_id``'s spaces.
    """
    env = make_env(env_id)
    obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
    if demos is not None:
        if is_npz(demos):
            path = existing_file("--demos", demos)
            try:
                obs, act = load_npz(path)
            except (KeyError, ValueError, OSError) as exc:
                raise UsageError(
                    f"--demos: cannot read '{path}' ({exc}); expected an .npz with arrays 'observations' (T, O) and "
                    f"'actions' (T, A)"
                ) from exc
        else:
            try:
                obs, act = load_minari(str(demos))
            except (ValueError, ImportError) as exc:
                raise UsageError(f"--demos: {exc}") from exc
        for name, array, shape in (("observations", obs, obs_shape), ("actions", act, act_shape)):
            if shape is None or array.shape[1:] != shape or array.shape[0] < 1:
                raise UsageError(
                    f"--demos: '{name}' has shape {array.shape} but {env_id} has {name} of shape {shape}; expected "
                    f"(T, {', '.join(map(str, shape or ()))})"
                )
        if len(obs) != len(act):
            raise UsageError(f"--demos: {len(obs)} observations but {len(act)} actions; expected one action each")
        return obs, act
    if env_id not in SCRIPTED_EXPERTS:
        raise UsageError(
            f"--demos: {env_id} has no scripted expert; expected --demos PATH.npz (arrays 'observations' and "
            f"'actions'), or --env one of {', '.join(SCRIPTED_EXPERTS)}"
        )
    require_positive("--n-demos", n_demos, "number of expert episodes")
    particle = env.unwrapped
    assert isinstance(particle, ParticleEnv)  # the one scripted expert
    obs, act, expert = collect_demonstrations(particle, n_demos, seed=seed, execution_noise=SCRIPTED_EXPERT_NOISE)
    print(f"Collected {n_demos} scripted-expert episodes ({len(obs)} steps, expert success {expert:.0%} "
          f"with execution noise {SCRIPTED_EXPERT_NOISE})")
    return obs, act


def train_ibc(
    env_id: str, observations: np.ndarray, actions: np.ndarray, *, epochs: int, seed: int = 0, progress: bool = True
) -> tuple[IBC, Any]:
    """An ``IBC`` agent for ``env_id``'s spaces trained on the demonstrations; returns it and its history."""
    env = make_env(env_id)
    assert isinstance(env.action_space, spaces.Box)  # checked by check_algo_suits
    model = IBC(env.observation_space, env.action_space, seed=seed)
    history = model.learn(observations, actions, epochs=epochs, progress_bar=progress)
    return model, history


def _run_ibc(args: argparse.Namespace) -> None:
    require_positive("--epochs", args.epochs, "number of passes over the demonstrations")
    torch.set_num_threads(args.threads)
    obs, act = demonstrations(args.env, demos=args.demos, n_demos=args.n_demos, seed=args.seed)
    out = Path(args.out or f"ibc_{args.env.replace('/', '_')}.pt")
    print(f"Training IBC on {len(obs)} demonstration steps for {args.epochs} epochs", flush=True)
    start = time.perf_counter()
    model, history = train_ibc(args.env, obs, act, epochs=args.epochs, seed=args.seed, progress=args.progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    print(f"Trained in {time.perf_counter() - start:.0f} s (final InfoNCE loss {history.epoch_loss[-1]:.3f}); "
          f"policy saved to {out}")
    print(f"Evaluate: ebrl eval {out} --env {args.env} --episodes 10 --deterministic")


def run(args: argparse.Namespace) -> None:
    if canonical_algo(args.algo) == "ibc":
        check_algo_suits(args.algo, args.env)
        _run_ibc(args)
        return
    require_positive("--steps", args.steps, "number of environment steps")
    require_positive("--n-envs", args.n_envs, "number of environments")
    check_algo_suits(args.algo, args.env)
    torch.set_num_threads(args.threads)
    name = ALGOS[canonical_algo(args.algo)]
    out = Path(args.out or f"{args.algo}_{args.env.replace('/', '_')}.zip")
    print(f"Training {name} on {args.env} for {args.steps} steps ({args.n_envs} x {args.vec} envs)", flush=True)
    start = time.perf_counter()
    model = train_agent(args.algo, args.env, steps=args.steps, n_envs=args.n_envs, vec=args.vec, device=args.device,
                        seed=args.seed, tensorboard=args.tensorboard, progress=args.progress, demos=args.demos)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    print(f"Trained in {time.perf_counter() - start:.0f} s; model saved to {out.with_suffix('.zip')}")
    print(f"Evaluate: ebrl eval {out.with_suffix('.zip')} --env {args.env} --episodes 10")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "train", "train an agent on a Gymnasium environment and save an SB3 zip", threads=True,
                    progress=True)
    aliases = ", ".join(f"{old} = {new}" for old, new in ALGO_ALIASES.items())
    p.add_argument("--algo", choices=sorted([*ALGOS, *ALGO_ALIASES]), required=True,
                   help="softq = SoftQ (Box actions), softdqn = SoftDQN (Discrete actions), "
                        f"ibc = implicit behavioural cloning from demonstrations (Box actions); aliases: {aliases}")
    p.add_argument("--env", required=True, help="Gymnasium id, e.g. Pendulum-v1, CartPole-v1, ebrl/MultiGoal-v0")
    p.add_argument("--steps", type=int, default=20_000, help="environment steps (all envs together)")
    p.add_argument("--n-envs", type=int, default=1, help="parallel environments")
    p.add_argument("--vec", choices=("dummy", "subproc"), default="dummy",
                   help="dummy = in-process, subproc = one process per environment (SB3 SubprocVecEnv)")
    p.add_argument("--device", default="auto", help="torch device for the networks: auto, cpu, cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tensorboard", default=None, metavar="DIR", help="TensorBoard log directory")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="model file (default: <algo>_<env>.zip; ibc: <algo>_<env>.pt, an EnergyPolicy)")
    p.add_argument("--demos", default=None, metavar="NPZ_OR_MINARI_ID",
                   help="ibc: demonstrations, an .npz with 'observations' (T, O) and 'actions' (T, A), or the id of a "
                        "Minari dataset in Minari's local store; softq, softdqn: a Minari dataset id, whose episodes "
                        "go into the replay buffer before training")
    p.add_argument("--n-demos", type=int, default=1000, help="ibc without --demos: scripted-expert episodes")
    p.add_argument("--epochs", type=int, default=100, help="ibc: passes over the demonstrations")
    p.set_defaults(func=run)
