"""The ``ebrl`` command: train, evaluate and plot agents and energies from a shell.

Subcommands::

    ebrl demo                                   # SoftQ on ebrl/MultiGoal-v0: model, plot, summary
    ebrl train --algo sql --env Pendulum-v1 --steps 20000 --n-envs 4 --vec subproc
    ebrl train --algo ibc --env ebrl/Particle-v0 --epochs 100  # or --demos demos.npz on any Box env
    ebrl eval sql_Pendulum-v1.zip --env Pendulum-v1 --episodes 10
    ebrl sample --model model.pt --n 64 --out samples.png
    ebrl energy-plot --model model.pt --out energy.png
    ebrl bench --quick

User errors (an unknown environment id, an algorithm that does not suit the action space, a
missing file, a bad value) print one line, ``ebrl <command>: error: <what was expected>``, and
exit with status 2; anything else is a bug and keeps its traceback. Heavy imports (SB3, the
agents, matplotlib) happen inside the subcommands, so ``ebrl --help`` is quick.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

ALGOS = {"sql": "SoftQ", "softdqn": "SoftDQN", "ibc": "IBC"}
"""``--algo`` names and the agent class each one trains."""

SCRIPTED_EXPERTS = ("ebrl/Particle-v0",)
"""Environments whose scripted expert ``ebrl train --algo ibc`` uses when no ``--demos`` file is given."""

SCRIPTED_EXPERT_NOISE = 0.05
"""Std of the noise on the executed expert set-points (DART; the labels stay clean), as in experiments.ibc_particle."""

BENCHMARKS = ("bench_samplers", "bench_policy")
"""The benchmark scripts ``ebrl bench`` runs, from ``experiments/``."""


class UsageError(ValueError):
    """A bad command-line argument; the message names it and says what was expected."""


# --- helpers shared by the subcommands -------------------------------------------------------


def _pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend, or a clear ImportError."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError('plotting needs matplotlib: pip install "ebrl[plot]"') from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _existing_file(flag: str, path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{flag}: no such file '{path}'; expected the path of an existing file")
    return p


def _make_env(env_id: str):
    """``gym.make(env_id)`` after registering ebrl's environments (runs in SubprocVecEnv workers too)."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers ebrl/* ids)

    torch.set_num_threads(1)  # one torch thread per worker process
    return gym.make(env_id)


def _action_space(env_id: str):
    """The action space of ``env_id``, or a ``UsageError`` naming ``--env``."""
    import gymnasium as gym

    try:
        env = _make_env(env_id)
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


def _check_algo_suits(algo: str, env_id: str) -> None:
    """``sql`` and ``ibc`` need a Box action space (``ibc`` with finite bounds), ``softdqn`` a Discrete one."""
    from gymnasium import spaces

    space = _action_space(env_id)
    needed = spaces.Discrete if algo == "softdqn" else spaces.Box
    if not isinstance(space, needed):
        other = "softdqn (Discrete actions)" if needed is spaces.Box else "sql or ibc (Box actions)"
        raise UsageError(
            f"--algo {algo}: {ALGOS[algo]} needs a {needed.__name__} action space but {env_id} has {space}; "
            f"use --algo {other}"
        )
    if algo == "ibc" and not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
        raise UsageError(f"--algo ibc: IBC draws counter-examples in the action box, but {env_id} has {space} "
                         f"with infinite bounds; expected finite bounds")


def _progress_callback(total: int, *, enabled: bool):
    """An SB3 callback printing a one-line progress bar to stderr (no extra dependency)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Progress(BaseCallback):
        def _on_training_start(self) -> None:
            self.start = time.perf_counter()
            self.shown = -1

        def _on_step(self) -> bool:
            done = min(self.num_timesteps, total)
            percent = 100 * done // total
            if enabled and (percent != self.shown or done == total):
                self.shown = percent
                bar = "#" * (percent // 4) + "." * (25 - percent // 4)
                elapsed = time.perf_counter() - self.start
                print(f"\r[{bar}] {done}/{total} steps {elapsed:5.0f} s", end="", file=sys.stderr, flush=True)
            return True

        def _on_training_end(self) -> None:
            if enabled:
                print(file=sys.stderr, flush=True)

    return Progress()


def _algo_of_zip(path: Path) -> str:
    """``"sql"`` or ``"softdqn"``: the algorithm that saved an SB3 zip, read from its policy class."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            data = json.loads(z.read("data"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"MODEL: '{path}' is not an SB3 model zip ({exc}); expected a file saved by ebrl train"
        ) from exc
    module = str(data.get("policy_class", {}).get("__module__", ""))
    for algo, name in ALGOS.items():
        if module.startswith(f"agents.{name.lower()}."):
            return algo
    raise UsageError(f"MODEL: '{path}' was saved by policy module '{module}'; expected a SoftQ or SoftDQN model")


def _load_agent(path: Path, env: Any = None):
    """A SoftQ or SoftDQN from an SB3 zip, or an ``EnergyPolicy`` (``ebrl train --algo ibc``) from a ``.pt``."""
    from agents import EnergyPolicy, SoftDQN, SoftQ

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
    cls = SoftQ if _algo_of_zip(path) == "sql" else SoftDQN
    try:
        return cls.load(path, env=env, device="cpu")
    except ValueError as exc:  # SB3's space check
        raise UsageError(f"--env: {exc}; expected the environment the model was trained on") from exc


# --- demo ---------------------------------------------------------------------------------------


def _multigoal_rollouts(model: Any, n: int, *, seed: int) -> list[dict[str, Any]]:
    """``n`` stochastic episodes from the origin: path ``(T+1, 2)``, return, goal reached (-1: none)."""
    env = _make_env("ebrl/MultiGoal-v0")
    model.set_random_seed(seed)
    episodes = []
    for i in range(n):
        obs, _ = env.reset(seed=seed + i, options={"start": (0.0, 0.0)})
        path, ret, goal, done = [obs], 0.0, -1, False
        while not done:
            action, _ = model.predict(obs, deterministic=False)
            obs, reward, terminated, truncated, info = env.step(action)
            path.append(obs)
            ret += float(reward)
            goal = int(info["goal"]) if terminated else goal
            done = terminated or truncated
        episodes.append({"path": np.array(path), "return": ret, "goal": goal})
    env.close()
    return episodes


def _plot_multigoal(episodes: list[dict[str, Any]], path: Path, *, title: str) -> None:
    """Trajectories over MultiGoal's reward landscape (brighter = higher reward, lower energy)."""
    import envs

    plt = _pyplot()
    grid = np.linspace(-7, 7, 201)
    x, y = np.meshgrid(grid, grid)
    cost = ((np.stack([x, y], -1)[:, :, None, :] - envs.GOALS) ** 2).sum(-1).min(-1)  # (201, 201, 4) -> (201, 201)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.contourf(x, y, -cost, levels=20, cmap="viridis")
    for ep in episodes:
        ax.plot(ep["path"][:, 0], ep["path"][:, 1], color="white", lw=0.9)
    ax.scatter(envs.GOALS[:, 0], envs.GOALS[:, 1], c="red", s=40, zorder=3)
    ax.set_title(title)
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def cmd_demo(args: argparse.Namespace) -> None:
    from agents import SoftQ

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"Training SoftQ on ebrl/MultiGoal-v0 for {args.steps} steps (seed {args.seed}) ...", flush=True)
    start = time.perf_counter()
    model = SoftQ(
        "MlpPolicy",
        _make_env("ebrl/MultiGoal-v0"),
        alpha=1.0,
        reward_scale=0.1,
        policy_kwargs={"net_arch": [128, 128]},
        seed=args.seed,
        device="cpu",
    )
    model.learn(args.steps, callback=_progress_callback(args.steps, enabled=args.progress))
    train_s = time.perf_counter() - start
    episodes = _multigoal_rollouts(model, args.episodes, seed=1000 + args.seed)
    goals = sorted({ep["goal"] for ep in episodes} - {-1})
    returns = np.array([ep["return"] for ep in episodes])
    summary = {
        "env": "ebrl/MultiGoal-v0",
        "algo": "SoftQ",
        "steps": args.steps,
        "seed": args.seed,
        "episodes": args.episodes,
        "goals_reached": len(goals),
        "goals": goals,
        "episodes_at_goal": int(sum(ep["goal"] >= 0 for ep in episodes)),
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "train_seconds": round(train_s, 1),
    }
    model_path, plot_path, summary_path = out / "softq_multigoal.zip", out / "trajectories.png", out / "summary.json"
    model.save(model_path)
    _plot_multigoal(
        episodes, plot_path, title=f"SoftQ, {args.steps} steps: {len(goals)}/4 goals ({args.episodes} episodes)"
    )
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"Goals reached: {len(goals)}/4 {goals} in {summary['episodes_at_goal']}/{args.episodes} stochastic episodes "
        f"from the origin; return {summary['mean_return']:.1f} ± {summary['std_return']:.1f}; "
        f"trained in {train_s:.0f} s"
    )
    print(f"Model:        {model_path}")
    print(f"Trajectories: {plot_path}")
    print(f"Summary:      {summary_path}")
    print(f"Evaluate again: ebrl eval {model_path} --env ebrl/MultiGoal-v0 --episodes 20")


# --- train and eval -----------------------------------------------------------------------------


def _demonstrations(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """``(observations (T, O), actions (T, A))`` from ``--demos`` or the environment's scripted expert."""
    if args.demos is not None:
        path = _existing_file("--demos", args.demos)
        try:
            with np.load(path) as f:
                return np.asarray(f["observations"]), np.asarray(f["actions"])
        except (KeyError, ValueError, OSError) as exc:
            raise UsageError(
                f"--demos: cannot read '{path}' ({exc}); expected an .npz with arrays 'observations' (T, O) and "
                f"'actions' (T, A)"
            ) from exc
    if args.env not in SCRIPTED_EXPERTS:
        raise UsageError(
            f"--demos: {args.env} has no scripted expert; expected --demos PATH.npz (arrays 'observations' and "
            f"'actions'), or --env one of {', '.join(SCRIPTED_EXPERTS)}"
        )
    if args.n_demos < 1:
        raise UsageError(f"--n-demos: expected a positive number of expert episodes, got {args.n_demos}")
    from envs.particle import collect_demonstrations

    obs, act, expert = collect_demonstrations(
        _make_env(args.env).unwrapped, args.n_demos, seed=args.seed, execution_noise=SCRIPTED_EXPERT_NOISE
    )
    print(f"Collected {args.n_demos} scripted-expert episodes ({len(obs)} steps, expert success {expert:.0%} "
          f"with execution noise {SCRIPTED_EXPERT_NOISE})")
    return obs, act


def _train_ibc(args: argparse.Namespace) -> None:
    from agents import IBC

    if args.epochs < 1:
        raise UsageError(f"--epochs: expected a positive number of passes over the demonstrations, got {args.epochs}")
    torch.set_num_threads(args.threads)
    obs, act = _demonstrations(args)
    env = _make_env(args.env)
    model = IBC(env.observation_space, env.action_space, seed=args.seed)
    out = Path(args.out or f"ibc_{args.env.replace('/', '_')}.pt")
    print(f"Training IBC on {len(obs)} demonstration steps for {args.epochs} epochs", flush=True)
    start = time.perf_counter()
    history = model.learn(obs, act, epochs=args.epochs, progress_bar=args.progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    print(f"Trained in {time.perf_counter() - start:.0f} s (final InfoNCE loss {history.epoch_loss[-1]:.3f}); "
          f"policy saved to {out}")
    print(f"Evaluate: ebrl eval {out} --env {args.env} --episodes 10 --deterministic")


def cmd_train(args: argparse.Namespace) -> None:
    if args.algo == "ibc":
        _check_algo_suits(args.algo, args.env)
        _train_ibc(args)
        return
    if args.steps < 1:
        raise UsageError(f"--steps: expected a positive number of environment steps, got {args.steps}")
    if args.n_envs < 1:
        raise UsageError(f"--n-envs: expected a positive number of environments, got {args.n_envs}")
    _check_algo_suits(args.algo, args.env)  # before the slow imports, so a user error is quick

    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    from agents import SoftDQN, SoftQ

    torch.set_num_threads(args.threads)
    vec_cls = SubprocVecEnv if args.vec == "subproc" else DummyVecEnv
    env = make_vec_env(
        functools.partial(_make_env, args.env), n_envs=args.n_envs, seed=args.seed, vec_env_cls=vec_cls
    )
    cls = SoftQ if args.algo == "sql" else SoftDQN
    out = Path(args.out or f"{args.algo}_{args.env.replace('/', '_')}.zip")
    print(f"Training {cls.__name__} on {args.env} for {args.steps} steps ({args.n_envs} x {args.vec} envs)", flush=True)
    start = time.perf_counter()
    try:
        model = cls("MlpPolicy", env, seed=args.seed, device=args.device, tensorboard_log=args.tensorboard)
        model.learn(args.steps, callback=_progress_callback(args.steps, enabled=args.progress))
    finally:
        env.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    print(f"Trained in {time.perf_counter() - start:.0f} s; model saved to {out.with_suffix('.zip')}")
    print(f"Evaluate: ebrl eval {out.with_suffix('.zip')} --env {args.env} --episodes 10")


def cmd_eval(args: argparse.Namespace) -> None:
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    path = _existing_file("MODEL", args.model)
    if args.episodes < 1:
        raise UsageError(f"--episodes: expected a positive number of episodes, got {args.episodes}")
    _action_space(args.env)  # an unknown id fails here, naming --env
    torch.set_num_threads(args.threads)
    env = Monitor(_make_env(args.env))
    env.reset(seed=args.seed)
    model = _load_agent(path, env=env)
    if hasattr(model, "set_random_seed"):
        model.set_random_seed(args.seed)
    mean, std = evaluate_policy(model, env, n_eval_episodes=args.episodes, deterministic=args.deterministic)
    policy = "deterministic" if args.deterministic else "stochastic"
    print(f"{type(model).__name__} on {args.env}: mean return {mean:.2f} ± {std:.2f} over {args.episodes} episodes "
          f"({policy} policy)")


# --- sample and energy-plot ---------------------------------------------------------------------


def _load_energy(path: str):
    from ebrl.checkpoint import load_model

    return load_model(_existing_file("--model", path), map_location="cpu")


def _image_shape(event: tuple[int, ...]) -> tuple[int, ...] | None:
    """``(H, W)`` or ``(H, W, C)`` to show one sample as an image, or ``None`` if it is not image-like."""
    if len(event) == 2:
        return event
    if len(event) == 3 and event[0] in (1, 3):
        return event[1:] if event[0] == 1 else (*event[1:], 3)
    size = math.prod(event)
    side = math.isqrt(size)
    if len(event) == 1 and side * side == size and size > 2:
        return (side, side)
    return None


def cmd_sample(args: argparse.Namespace) -> None:
    from ebrl.boltzmann import DBN, BoltzmannModel
    from ebrl.samplers import Langevin

    if args.n < 1:
        raise UsageError(f"--n: expected a positive number of samples, got {args.n}")
    model = _load_energy(args.model)
    event = tuple(model.event_shape)
    g = torch.Generator().manual_seed(args.seed)
    if isinstance(model, (BoltzmannModel, DBN)):
        method = f"{args.steps} Gibbs sweeps"
        x = model.sample(args.n, n_steps=args.steps, generator=g)  # (n, V)
    else:
        method = f"{args.steps} Langevin steps of size {args.step_size}"
        x0 = args.init_std * torch.randn(args.n, *event, generator=g)  # (n, *event)
        x = Langevin(step_size=args.step_size, n_steps=args.steps)(model, x0, generator=g)
    x = x.detach().cpu()
    plt = _pyplot()
    image = _image_shape(event)
    if math.prod(event) == 2:
        fig, ax = plt.subplots(figsize=(5, 5))
        pts = x.reshape(args.n, 2).numpy()  # (n, *event) -> (n, 2)
        ax.scatter(pts[:, 0], pts[:, 1], s=6)
        ax.set_aspect("equal")
    elif image is not None:
        cols = math.ceil(math.sqrt(args.n))
        rows = math.ceil(args.n / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(cols, rows), squeeze=False)
        imgs = x.reshape(args.n, *event)
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i < args.n:
                img = imgs[i].permute(1, 2, 0) if len(image) == 3 and len(event) == 3 else imgs[i]
                ax.imshow(img.reshape(image).numpy(), cmap="gray")
    else:
        raise UsageError(
            f"--model: samples of event shape {event} cannot be drawn; expected 2-D points or square images"
        )
    fig.suptitle(f"{args.n} samples of {type(model).__name__} ({method})", fontsize=8)
    fig.savefig(args.out, dpi=100)
    plt.close(fig)
    print(f"Drew {args.n} samples of {type(model).__name__} by {method}; saved {args.out}")


def _plot_state_action_slice(args: argparse.Namespace) -> None:
    """E(s, a) = max_i E_i(s, a) of a SoftQ zip over its scaled action box [-1, 1]^A at one state."""
    path = _existing_file("--model", args.model)
    if _algo_of_zip(path) != "sql":
        raise UsageError("--model: a state-action slice needs a SoftQ (sql) zip; SoftDQN's actions are discrete")
    model = _load_agent(path)
    policy, act_dim = model.policy, model.action_space.shape[0]
    obs_dim = model.observation_space.shape
    if args.obs is None or len(args.obs) != math.prod(obs_dim):
        raise UsageError(f"--obs: expected {math.prod(obs_dim)} numbers, the state to slice at; got {args.obs}")
    if act_dim > 2:
        raise UsageError(f"--model: a state-action slice plots 1 or 2 action dimensions; this model has {act_dim}")
    grid = torch.linspace(-1.0, 1.0, args.grid)
    if act_dim == 1:
        acts = grid.reshape(1, -1, 1)  # (1, G, 1)
    else:
        aa, bb = torch.meshgrid(grid, grid, indexing="xy")  # (G, G) each
        acts = torch.stack([aa.reshape(-1), bb.reshape(-1)], dim=1).unsqueeze(0)  # (1, G*G, 2)
    obs = np.asarray(args.obs, dtype=np.float32).reshape(obs_dim)
    with torch.no_grad():
        obs_t, _ = policy.obs_to_tensor(obs)  # (1, *obs)
        e = policy.critic(policy.features(obs_t, policy.critic), acts)[0]  # (1, N) -> (N,)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.2))
    if act_dim == 1:
        ax.plot(grid.numpy(), e.numpy())
        ax.set_xlabel("action (scaled to [-1, 1])")
        ax.set_ylabel("E(s, a) = -Q(s, a)")
    else:
        cs = ax.contourf(aa.numpy(), bb.numpy(), e.reshape(args.grid, args.grid).numpy(), levels=30, cmap="viridis_r")
        fig.colorbar(cs, ax=ax, label="E(s, a) = -Q(s, a) (low = probable)")
        ax.set_aspect("equal")
    ax.set_title(f"SoftQ energy at s = {np.round(obs.reshape(-1), 3).tolist()}", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    plt.close(fig)
    print(f"State-action energy of SoftQ over its action box at s = {obs.reshape(-1).tolist()}; saved {args.out}")


def cmd_energy_plot(args: argparse.Namespace) -> None:
    if args.model.endswith(".zip"):
        _plot_state_action_slice(args)
        return
    model = _load_energy(args.model)
    event = tuple(model.event_shape)
    if event != (2,):
        raise UsageError(f"--model: energy-plot needs an energy over 2-D points, event shape (2,); got {event}")
    lo, hi = args.range
    if not lo < hi:
        raise UsageError(f"--range: expected LOW < HIGH, got {lo} {hi}")
    grid = torch.linspace(lo, hi, args.grid)
    xx, yy = torch.meshgrid(grid, grid, indexing="xy")  # (G, G) each
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)  # (G*G, 2)
    with torch.no_grad():
        e = model(pts).reshape(args.grid, args.grid)  # (G*G,) -> (G, G)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.2))
    cs = ax.contourf(xx.numpy(), yy.numpy(), e.numpy(), levels=30, cmap="viridis_r")
    fig.colorbar(cs, ax=ax, label="E(x) (low = probable)")
    ax.set_title(f"Energy of {type(model).__name__}")
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    plt.close(fig)
    print(f"Energy landscape of {type(model).__name__} on [{lo}, {hi}]²; saved {args.out}")


# --- bench ----------------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> None:
    root = Path(__file__).resolve().parent.parent
    names = args.only or list(BENCHMARKS)
    if not (root / "experiments" / "__init__.py").is_file():
        raise UsageError(f"ebrl bench runs experiments/ from a source checkout; none found at {root}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    for name in names:
        cmd = [sys.executable, "-m", f"experiments.{name}", *(["--quick"] if args.quick else [])]
        print(f"$ {' '.join(cmd[1:])}", flush=True)
        done = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"experiments.{name} failed with exit status {done.returncode}")
        for table in sorted((root / "results" / name).glob("*.md")):
            print(table.read_text())


# --- the parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ebrl", description="Energy-based models and soft Q-learning agents.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, *, progress: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if progress:
            p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                           help="show a progress bar on stderr")
        if name in ("demo", "train", "eval"):
            p.add_argument("--threads", type=int, default=1, help="torch threads in the main process")
        return p

    p = add("demo", "train SoftQ on ebrl/MultiGoal-v0, then save the model, a trajectory plot and a summary",
            progress=True)
    p.add_argument("--steps", type=int, default=3000, help="environment steps")
    p.add_argument("--episodes", type=int, default=10, help="evaluation episodes from the origin")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="ebrl-demo", help="output directory")
    p.set_defaults(func=cmd_demo)

    p = add("train", "train an agent on a Gymnasium environment and save an SB3 zip", progress=True)
    p.add_argument("--algo", choices=sorted(ALGOS), required=True,
                   help="sql = SoftQ (Box actions), softdqn = SoftDQN (Discrete actions), "
                        "ibc = implicit behavioural cloning from demonstrations (Box actions)")
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
    p.add_argument("--demos", default=None, metavar="NPZ",
                   help="ibc: demonstrations, an .npz with 'observations' (T, O) and 'actions' (T, A)")
    p.add_argument("--n-demos", type=int, default=1000, help="ibc without --demos: scripted-expert episodes")
    p.add_argument("--epochs", type=int, default=100, help="ibc: passes over the demonstrations")
    p.set_defaults(func=cmd_train)

    p = add("eval", "evaluate a saved SoftQ, SoftDQN or IBC model: mean return ± std")
    p.add_argument("model", metavar="MODEL",
                   help="an SB3 zip saved by ebrl train or ebrl demo, or an IBC policy (.pt) saved by ebrl train")
    p.add_argument("--env", required=True, help="Gymnasium id")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--deterministic", action="store_true", help="act by the policy's mode")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_eval)

    p = add("sample", "draw samples from a saved energy (Langevin) or Boltzmann machine (Gibbs); save a PNG")
    p.add_argument("--model", required=True, help="a checkpoint from ebrl.checkpoint.save_model")
    p.add_argument("--n", type=int, default=64, help="number of samples")
    p.add_argument("--out", default="samples.png")
    p.add_argument("--steps", type=int, default=500, help="Langevin steps or Gibbs sweeps")
    p.add_argument("--step-size", type=float, default=0.01, help="Langevin step size")
    p.add_argument("--init-std", type=float, default=1.0, help="std of the Gaussian the Langevin chains start from")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_sample)

    p = add("energy-plot", "plot a saved energy over 2-D points, or a SoftQ zip's E(s, a) over actions at one state")
    p.add_argument("--model", required=True,
                   help="a checkpoint from ebrl.checkpoint.save_model, or a SoftQ .zip (then give --obs)")
    p.add_argument("--obs", type=float, nargs="+", default=None, help="for a SoftQ zip: the state to slice at")
    p.add_argument("--out", default="energy.png")
    p.add_argument("--range", type=float, nargs=2, default=(-4.0, 4.0), metavar=("LOW", "HIGH"))
    p.add_argument("--grid", type=int, default=200, help="grid points per axis")
    p.set_defaults(func=cmd_energy_plot)

    p = add("bench", "run the benchmark scripts and print their Markdown tables")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, default=None, help="run only these benchmarks")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ebrl`` command; return the exit status (0, or 2 for a user error)."""
    import gymnasium as gym

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, ImportError, gym.error.Error) as exc:
        message = " ".join(str(exc).split())  # one line
        print(f"ebrl {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
