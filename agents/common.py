"""Pieces shared by the ebrl agents: action-space checks, finite transitions and losses, the
sampling generator that is seeded through SB3's ``seed=`` but never pickled, and ``save_run`` /
``load_run``, which stop and resume a training run exactly."""

from __future__ import annotations

import hashlib
import json
import math
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
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm, maybe_make_env
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import GymEnv

import ebrl
from ebrl._checks import DivergenceError
from ebrl.checkpoint import CheckpointError
from ebrl.rl.priors import StatePrior


def check_action_space(env: GymEnv | str | None, *, algo: str, expected: type[spaces.Space], verbose: int) -> Any:
    """Make ``env`` if it is an id, and require its action space to be ``expected``.

    SB3 itself asserts; this raises ``ValueError`` naming the space instead. A ``Box`` must also have
    finite bounds. Returns the (made) env; ``None`` passes through (loading a model without an env).
    """
    if env is None:
        return None
    env = maybe_make_env(env, verbose)
    space = env.action_space
    if not isinstance(space, expected):
        raise ValueError(
            f"{algo} supports {expected.__name__} action spaces only, got {space} "
            f"({type(space).__name__}); use "
            f"{'SoftDQN for Discrete' if expected is spaces.Box else 'SoftQ for Box'} actions"
        )
    if isinstance(space, spaces.Box) and len(space.shape) != 1:
        raise ValueError(
            f"{algo} needs a 1-D Box of actions, got action_space {space} of shape {space.shape}; wrap the env so that "
            f"it takes flat actions (e.g. a gymnasium.ActionWrapper whose action(a) reshapes a to {space.shape})"
        )
    if isinstance(space, spaces.Box) and not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError(
            f"{algo} needs finite action bounds, got action_space {space} with low={space.low.tolist()} "
            f"and high={space.high.tolist()}; rescale the actions to a bounded box (e.g. RescaleAction)"
        )
    return env


def check_value_prior(value_prior: StatePrior | None, observation_space: spaces.Space) -> StatePrior | None:
    """Require a ``StatePrior`` over the flattened observations (or ``None``) and freeze it."""
    if value_prior is None:
        return None
    if not isinstance(value_prior, StatePrior):
        raise TypeError(f"value_prior must be an ebrl.rl.priors.StatePrior or None, got {type(value_prior).__name__}")
    obs_dim = int(spaces.flatdim(observation_space))
    if value_prior.obs_dim != obs_dim:
        raise ValueError(
            f"value_prior was trained on observations of size {value_prior.obs_dim}, but the observations "
            f"have size {obs_dim}"
        )
    return value_prior.requires_grad_(False)


def _non_finite(name: str, value: np.ndarray | dict[str, np.ndarray]) -> str | None:
    items = value.items() if isinstance(value, dict) else [("", value)]
    for key, arr in items:
        arr = np.asarray(arr)
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            where = np.argwhere(~np.isfinite(arr))[:, 0]  # env indices of the bad rows
            label = f"{name}[{key!r}]" if key else name
            return f"{label} is non-finite (NaN or inf) in env(s) {sorted(set(where.tolist()))}: {arr.tolist()}"
    return None


def check_finite_transition(
    last_obs: np.ndarray | dict[str, np.ndarray] | None,
    new_obs: np.ndarray | dict[str, np.ndarray],
    rewards: np.ndarray,
    infos: list[dict[str, Any]],
) -> None:
    """Raise ``ValueError`` if a reward or an observation about to enter the replay buffer is not finite."""
    checks: list[tuple[str, Any]] = [("reward", rewards), ("observation", new_obs)]
    if last_obs is not None:
        checks.append(("observation", last_obs))
    checks += [
        ("terminal observation", info["terminal_observation"])
        for info in infos
        if info.get("terminal_observation") is not None
    ]
    for name, value in checks:
        problem = _non_finite(name, value)
        if problem is not None:
            raise ValueError(
                f"the environment returned a transition that cannot enter the replay buffer: {problem}; "
                f"expected finite rewards and observations"
            )


def check_finite_loss(name: str, value: float, *, n_updates: int) -> float:
    """Raise ``DivergenceError`` when a training loss is NaN or inf (instead of training on NaN)."""
    if not math.isfinite(value):
        raise DivergenceError(
            f"{name} is {value} at gradient update {n_updates}; lower learning_rate, raise alpha, or "
            f"rescale the rewards"
        )
    return value


class PolicyGenerator:
    """The ``torch.Generator`` a policy samples actions with, created on demand from a seed.

    SB3's ``seed=`` seeds it (through ``reseed``); ``seed=None`` draws the seed from OS entropy.
    The generator itself is never pickled: a copy or an unpickled policy restarts the stream from
    the seed. The global torch RNG is never used.
    """

    def __init__(self) -> None:
        self._seed: int | None = None
        self._generator: torch.Generator | None = None

    def reseed(self, seed: int | None) -> None:
        """Restart the stream from ``seed`` (decorrelated from ``torch.manual_seed(seed)``)."""
        self._seed = None if seed is None else int(np.random.SeedSequence(seed).generate_state(1)[0])
        self._generator = None

    def get(self, device: torch.device) -> torch.Generator:
        """The generator on ``device``, recreated from the seed if the device changed."""
        if self._generator is None or self._generator.device.type != device.type:
            self._generator = torch.Generator(device=device)
            if self._seed is None:
                self._generator.seed()
            else:
                self._generator.manual_seed(self._seed)
        return self._generator

    def __getstate__(self) -> dict[str, Any]:
        return {"_seed": self._seed, "_generator": None}

    def get_state(self) -> dict[str, Any]:
        """The seed and, once the stream has been drawn from, the generator's device and state."""
        g = self._generator
        return {
            "seed": self._seed,
            "device": None if g is None else g.device.type,
            "state": None if g is None else g.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue the stream saved by ``get_state`` (on another device type it restarts from the seed)."""
        self._seed, self._generator = state["seed"], None
        if state["state"] is not None:
            self._generator = torch.Generator(device=state["device"])
            self._generator.set_state(state["state"])


# ------------------------------------------------------------------------------ resuming runs

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
    RNGs) and the random states: Python's, NumPy's global one (SB3's replay buffer samples from
    it), torch's, the action space's (random actions before ``learning_starts``) and the
    policy's own sampling generator. ``load_run`` then resumes, and ``learn(n,
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
            cloudpickle.dump({"env": env, "rng": _rng_state(model)}, f)
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
    model = algo.load(directory / "model.zip", env=state["env"], device=device, force_reset=False)
    if not isinstance(model, OffPolicyAlgorithm):
        raise CheckpointError(f"'{directory}' holds a {type(model).__name__}, not an off-policy algorithm")
    model.load_replay_buffer(directory / "replay_buffer.pkl")
    _set_rng_state(model, state["rng"])
    return model


# ------------------------------------------------------------------------------ the temperature


def parse_alpha(alpha: float | str) -> tuple[bool, float]:
    """``(learnt, initial value)`` from SAC-style ``alpha``: a float > 0, ``"auto"`` or ``"auto_<init>"``."""
    if isinstance(alpha, str):
        if alpha == "auto":
            return True, 1.0
        if alpha.startswith("auto_"):
            try:
                init = float(alpha[len("auto_") :])
            except ValueError:
                init = math.nan
            if math.isfinite(init) and init > 0:
                return True, init
        raise ValueError(
            f"alpha must be a float > 0, 'auto' or 'auto_<initial value>' (e.g. 'auto_0.1'), got {alpha!r}"
        )
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
        raise TypeError(f"alpha must be a float > 0, 'auto' or 'auto_<initial value>', got {type(alpha).__name__}")
    if not (math.isfinite(float(alpha)) and float(alpha) > 0):
        raise ValueError(f"alpha must be a finite float > 0, 'auto' or 'auto_<initial value>', got {alpha!r}")
    return False, float(alpha)


def check_target_entropy(target_entropy: float | str) -> float | str:
    """``"auto"`` or a finite float (nats)."""
    if isinstance(target_entropy, str):
        if target_entropy != "auto":
            raise ValueError(f"target_entropy must be 'auto' or a finite float (nats), got {target_entropy!r}")
        return target_entropy
    if isinstance(target_entropy, bool) or not isinstance(target_entropy, (int, float, np.floating, np.integer)):
        raise TypeError(f"target_entropy must be 'auto' or a finite float (nats), got {type(target_entropy).__name__}")
    if not math.isfinite(float(target_entropy)):
        raise ValueError(f"target_entropy must be 'auto' or a finite float (nats), got {target_entropy!r}")
    return float(target_entropy)


class LearntTemperature:
    """The temperature α of a Boltzmann-policy agent: fixed, or learnt as SAC learns its entropy coefficient.

    Mixed into an SB3 algorithm whose policy has a scalar parameter ``log_alpha``: that parameter is the one
    place α lives, so the policy samples with exactly the α that the algorithm logs, sets and saves.

    - ``model.alpha`` reads α (a float); ``model.alpha = 0.1`` fixes it, ``model.alpha = "auto"`` (or
      ``"auto_0.1"``) learns it from the current (or given) value. ``Algo.load(path, alpha=...)`` does the same
      after loading.
    - With a learnt α, each gradient step also minimises log α · (H - H̄) (the dual of the entropy constraint
      H(π(·|s)) >= H̄, as in SAC), where H is the policy's entropy estimated on the batch and H̄ is
      ``target_entropy``.
    """

    policy: Any
    learning_rate: Any
    lr_schedule: Any
    _alpha_learnt: bool
    _alpha_init: float
    target_entropy: float | str
    alpha_optimizer: torch.optim.Optimizer | None

    def _init_temperature(self, alpha: float | str, target_entropy: float | str) -> None:
        self._alpha_learnt, self._alpha_init = parse_alpha(alpha)
        self.target_entropy = check_target_entropy(target_entropy)
        self.alpha_optimizer = None

    def _auto_target_entropy(self) -> float:
        """The default target entropy H̄ of this algorithm (nats)."""
        raise NotImplementedError

    def _setup_temperature(self) -> None:
        """After the policy exists: set log α and, for a learnt α, its optimiser; resolve ``"auto"``."""
        if self.target_entropy == "auto":
            self.target_entropy = self._auto_target_entropy()
        with torch.no_grad():
            self.policy.log_alpha.fill_(math.log(self._alpha_init))
        self._set_learnt(self._alpha_learnt)

    def _set_learnt(self, learnt: bool) -> None:
        self._alpha_learnt = learnt
        self.policy.log_alpha.requires_grad_(learnt)
        if learnt:
            self.alpha_optimizer = torch.optim.Adam([self.policy.log_alpha], lr=self.lr_schedule(1))
        else:
            self.alpha_optimizer = None

    @property
    def alpha(self) -> float:
        """The temperature α now (one host read)."""
        return float(self.policy.log_alpha.detach().exp())

    @alpha.setter
    def alpha(self, value: float | str) -> None:
        learnt, init = parse_alpha(value)
        if learnt and value == "auto":
            init = self.alpha  # keep learning from where it is
        self._alpha_init = init
        with torch.no_grad():
            self.policy.log_alpha.fill_(math.log(init))
        self._set_learnt(learnt)

    def _temperature_step(self, entropy: torch.Tensor) -> torch.Tensor:
        """One step of the dual on log α given the batch's entropies ``(B,)``; returns the loss ``()``."""
        assert isinstance(self.target_entropy, float), "target_entropy is resolved in _setup_temperature"
        loss = self.policy.log_alpha * (entropy.detach().mean() - self.target_entropy)
        if self.alpha_optimizer is not None:
            self.alpha_optimizer.zero_grad()
            loss.backward()
            self.alpha_optimizer.step()
        return loss.detach()

    def _temperature_save_params(self) -> list[str]:
        return ["alpha_optimizer"] if self.alpha_optimizer is not None else []

    @classmethod
    def load(
        cls,
        path,
        env=None,
        device="auto",
        custom_objects=None,
        print_system_info=False,
        force_reset=True,
        **kwargs,
    ):
        """SB3's ``load``; an ``alpha=`` override is applied to the policy (not only to an attribute)."""
        override = {name: kwargs.pop(name) for name in ("alpha", "target_entropy") if name in kwargs}
        model = super().load(  # type: ignore[misc]  # a mixin: BaseAlgorithm.load follows in the MRO
            path,
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **kwargs,
        )
        if "target_entropy" in override:
            target = check_target_entropy(override["target_entropy"])
            model.target_entropy = model._auto_target_entropy() if target == "auto" else target
        if "alpha" in override:
            model.alpha = override["alpha"]
        return model
