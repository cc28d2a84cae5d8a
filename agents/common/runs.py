"""``save_run`` / ``load_run``, which stop and resume an off-policy training run exactly."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import secrets
import shutil
from pathlib import Path
from typing import Any, TypeVar

import cloudpickle
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

import ebrl
from agents.common.generator import PolicyGenerator
from ebrl.checkpoint import CheckpointError

RUN_FILES = ("model.zip", "replay_buffer.pkl", "state.pkl")
"""What ``save_run`` writes, besides ``manifest.json`` (their SHA-256 digests)."""

SelfAlgorithm = TypeVar("SelfAlgorithm", bound=BaseAlgorithm)


def _rng_state(model: BaseAlgorithm) -> dict[str, Any]:
    """Every random stream a learning run draws from, outside the environment."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002  (SB3's replay buffer samples from the legacy global RNG)
        "torch": torch.get_rng_state(),
        "action_space": model.action_space.np_random.bit_generator.state,  # random actions before learning_starts
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    rng = getattr(model.policy, "rng", None)
    if isinstance(rng, PolicyGenerator):
        state["policy"] = rng.get_state()
    return state


def _set_rng_state(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])
    model.action_space.np_random.bit_generator.state = state["action_space"]
    rng = getattr(model.policy, "rng", None)
    if "policy" in state and isinstance(rng, PolicyGenerator):
        rng.set_state(state["policy"])


def _simulators(env: Any) -> list[Any]:
    """The MuJoCo environments (``gymnasium.envs.mujoco.MujocoEnv``, unwrapped) inside a ``DummyVecEnv``, or
    ``None`` for each sub-environment that is not one."""
    found = []
    for sub in getattr(env, "envs", []):
        base = getattr(sub, "unwrapped", sub)
        is_mujoco = any(c.__module__.startswith("gymnasium.envs.mujoco") for c in type(base).__mro__)
        found.append(base if is_mujoco and hasattr(base, "data") else None)
    return found


def _simulator_states(env: Any) -> list[Any]:
    """What pickling drops from each MuJoCo sub-environment: Gymnasium pickles them by their constructor
    arguments (``EzPickle``), so an unpickled one restarts in its initial pose with an unseeded RNG. This keeps
    MuJoCo's integration state (``mj_getState`` with ``mjSTATE_INTEGRATION``: all that ``mj_step`` reads) and
    the environment's ``np_random``; ``None`` for other sub-environments."""
    states: list[Any] = []
    for base in _simulators(env):
        if base is None:
            states.append(None)
            continue
        import mujoco  # the optional extra: present whenever a MuJoCo environment exists

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(base.model, spec))
        mujoco.mj_getState(base.model, base.data, physics, spec)
        states.append({"physics": physics, "np_random": base._np_random})
    return states


def _restore_simulators(env: Any, states: list[Any]) -> None:
    for base, state in zip(_simulators(env), states, strict=True):
        if state is None:
            continue
        import mujoco

        mujoco.mj_setState(base.model, base.data, state["physics"], mujoco.mjtState.mjSTATE_INTEGRATION)
        base._np_random = state["np_random"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_run(model: BaseAlgorithm, directory: str | os.PathLike) -> None:
    """Save everything an off-policy run needs to continue exactly where it stopped.

    ``model.save`` and ``model.save_replay_buffer`` keep the weights, the optimizer and the
    buffer, but ``Algo.load`` reseeds every generator from ``seed`` and needs a fresh env. This
    also stores, in ``state.pkl``, the env (the ``VecEnv`` with its episode in progress and its
    RNGs; for a MuJoCo environment also its simulation state, which Gymnasium's pickling drops)
    and the random states: Python's, NumPy's global one (SB3's replay buffer samples from it),
    torch's, the action space's (random actions before ``learning_starts``) and the policy's own
    sampling generator. ``load_run`` then resumes, and ``learn(n,
    reset_num_timesteps=False)`` continues the run bit for bit on the CPU, provided the
    learning-rate schedule is constant (SB3's progress counts from the start of each ``learn``).

    The directory is written completely under a temporary name and then renamed, with a
    ``manifest.json`` of SHA-256 digests that ``load_run`` checks before loading anything.
    The pickles run code when loaded, as SB3's replay buffer does: load only runs you trust.

    Args:
        model: an SB3 off-policy algorithm (``SoftQ``, ``SoftDQN``...) with an env.
        directory: the run directory to write; its parent must exist. An existing run there is
            replaced once the new one is complete.
    """
    if not isinstance(model, BaseAlgorithm):
        raise TypeError(f"model must be a stable-baselines3 algorithm, got {type(model).__name__}")
    env = model.get_env()
    if env is None:
        raise ValueError("save_run needs a model with an env (the env's state is part of the run)")
    if not isinstance(model, OffPolicyAlgorithm) or model.replay_buffer is None:
        raise ValueError(f"save_run is for off-policy algorithms with a replay buffer; {type(model).__name__} has none")
    directory = Path(directory)
    if not directory.parent.is_dir():
        raise FileNotFoundError(f"cannot save to '{directory}': the directory '{directory.parent}' does not exist")
    tmp = directory.parent / f".{directory.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    tmp.mkdir()
    try:
        model.save(tmp / "model.zip")
        model.save_replay_buffer(tmp / "replay_buffer.pkl")
        with (tmp / "state.pkl").open("wb") as f:
            cloudpickle.dump({"env": env, "simulators": _simulator_states(env), "rng": _rng_state(model)}, f)
        manifest = {
            "format": "ebrl-sb3-run",
            "format_version": 1,
            "ebrl_version": ebrl.__version__,
            "algorithm": f"{type(model).__module__}.{type(model).__qualname__}",
            "sha256": {name: _sha256(tmp / name) for name in RUN_FILES},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        for name in (*RUN_FILES, "manifest.json"):
            with (tmp / name).open("rb") as f:
                os.fsync(f.fileno())
        old = None
        if directory.exists():
            old = directory.parent / f".{directory.name}.{os.getpid()}.{secrets.token_hex(6)}.old"
            directory.rename(old)
        tmp.rename(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_run(
    algo: type[SelfAlgorithm], directory: str | os.PathLike, *, device: torch.device | str = "auto"
) -> SelfAlgorithm:
    """Resume a run saved by ``save_run``: the model with its env, replay buffer and random states.

    Every file is checked against the manifest's SHA-256 digest first, so a truncated or
    corrupted run raises ``ebrl.CheckpointError`` naming the file before anything is loaded.
    Continue with ``model.learn(n, reset_num_timesteps=False)``.

    Note that this sets the global Python, NumPy and torch RNG states, as SB3's own ``seed=``
    does: they are part of the run.

    Args:
        algo: the algorithm class that saved the run (e.g. ``SoftQ``).
        directory: the run directory.
        device: where to put the model, as for ``algo.load``.
    """
    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"no saved run at '{directory}' (no manifest.json; save it with save_run)")
    try:
        manifest = json.loads(manifest_path.read_text())
        digests = manifest["sha256"]
        saved_algo = manifest["algorithm"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"'{manifest_path}' is corrupt ({type(exc).__name__}: {exc})") from exc
    if saved_algo != f"{algo.__module__}.{algo.__qualname__}":
        raise CheckpointError(f"'{directory}' holds a run of {saved_algo}, not of {algo.__qualname__}")
    for name in RUN_FILES:
        path = directory / name
        if not path.is_file() or _sha256(path) != digests.get(name):
            raise CheckpointError(
                f"'{path}' is missing or corrupt: it does not match the SHA-256 digest in '{manifest_path}'; "
                f"nothing was loaded"
            )
    with (directory / "state.pkl").open("rb") as f:
        state = pickle.load(f)
    _restore_simulators(state["env"], state.get("simulators", [None] * len(_simulators(state["env"]))))
    model = algo.load(directory / "model.zip", env=state["env"], device=device, force_reset=False)
    if not isinstance(model, OffPolicyAlgorithm):
        raise CheckpointError(f"'{directory}' holds a {type(model).__name__}, not an off-policy algorithm")
    model.load_replay_buffer(directory / "replay_buffer.pkl")
    _set_rng_state(model, state["rng"])
    return model
