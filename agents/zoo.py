"""Train and replay SoftQ and SoftDQN with rl-zoo3's own machinery (its training loop, Optuna search and enjoy).

``python -m agents.zoo --algo softq --env Pendulum-v1 [rl-zoo3 train flags]`` is ``python -m rl_zoo3.train`` with
``softq`` and ``softdqn`` added to rl-zoo3's algorithms and Optuna samplers. Every flag of rl-zoo3's ``train``
works (``-n``, ``--eval-freq``, ``-optimize``, ``--n-trials``, ``--conf-file``, ``-f``, ``--seed``, ...); without
``--conf-file`` the hyperparameters come from this repository's ``hyperparams/<algo>.yml``.
``python -m agents.zoo enjoy --algo softq --env Pendulum-v1 -f logs`` runs rl-zoo3's ``enjoy`` (replay a saved
model) the same way. ebrl's environments (``ebrl/...``) are registered.

Needs the ``zoo`` extra (``pip install "ebrl[zoo]"``): rl-zoo3 is not a runtime dependency.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import envs  # noqa: F401  (registers ebrl's environment ids for rl-zoo3's --env)
from agents.softdqn import SoftDQN
from agents.softq import SoftQ

ZOO_ALGOS = {"softq": SoftQ, "softdqn": SoftDQN}
"""rl-zoo3 ``--algo`` names of ebrl's agents."""

HYPERPARAMS = Path(__file__).resolve().parent.parent / "hyperparams"
"""The repository's ``hyperparams/`` folder: ``softq.yml`` and ``softdqn.yml`` in rl-zoo3's format."""


def _rl_zoo3() -> Any:
    try:
        import rl_zoo3.hyperparams_opt
        import rl_zoo3.utils
    except ImportError as e:
        raise ImportError('agents.zoo needs rl-zoo3: pip install "ebrl[zoo]" (or pip install rl_zoo3)') from e
    return rl_zoo3


def sample_softq_params(trial: Any, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
    """Optuna search space for SoftQ: SAC's in rl-zoo3 (γ, learning rate, batch size, train_freq, τ, net_arch).

    The temperature is learnt (``alpha="auto"``) unless the YAML entry fixes it.
    """
    zoo = _rl_zoo3()
    one_minus_gamma = trial.suggest_float("one_minus_gamma", 0.0001, 0.03, log=True)
    params: dict[str, Any] = {
        "one_minus_gamma": one_minus_gamma,
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 0.002, log=True),
        "batch_size_pow": trial.suggest_int("batch_size_pow", 5, 9),
        "train_freq": trial.suggest_int("train_freq", 1, 10),
        "tau": trial.suggest_float("tau", 0.001, 0.08, log=True),
        "net_arch": trial.suggest_categorical("net_arch", ["small", "medium", "big"]),
    }
    trial.set_user_attr("gamma", 1 - one_minus_gamma)
    if additional_args["using_her_replay_buffer"]:
        params = zoo.hyperparams_opt.sample_her_params(trial, params, additional_args["her_kwargs"])
    return zoo.hyperparams_opt.convert_offpolicy_params(params)


def sample_softdqn_params(trial: Any, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
    """Optuna search space for SoftDQN: DQN's (rl-zoo3's) without ε-greedy, and the soft double-Q target."""
    zoo = _rl_zoo3()
    one_minus_gamma = trial.suggest_float("one_minus_gamma", 0.0001, 0.03, log=True)
    train_freq = trial.suggest_int("train_freq", 1, 10)
    params: dict[str, Any] = {
        "one_minus_gamma": one_minus_gamma,
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 0.002, log=True),
        "batch_size_pow": trial.suggest_int("batch_size_pow", 5, 9),
        "train_freq": train_freq,
        "subsample_steps": trial.suggest_int("subsample_steps", 1, min(train_freq, 8)),
        "target_update_interval": trial.suggest_int("target_update_interval", 1, 20000, log=True),
        "double_q": trial.suggest_categorical("double_q", [False, True]),
        "net_arch": trial.suggest_categorical("net_arch", ["small", "medium", "big"]),
    }
    trial.set_user_attr("gamma", 1 - one_minus_gamma)
    if additional_args["using_her_replay_buffer"]:
        params = zoo.hyperparams_opt.sample_her_params(trial, params, additional_args["her_kwargs"])
    return zoo.hyperparams_opt.convert_offpolicy_params(params)


def register() -> None:
    """Add ``softq`` and ``softdqn`` to rl-zoo3's algorithms, Optuna samplers and converters (idempotent).

    rl-zoo3's ``train``, ``enjoy`` and ``ExperimentManager`` read these dictionaries, so after ``register()`` its
    own entry points accept ``--algo softq`` and ``--algo softdqn``.
    """
    zoo = _rl_zoo3()
    zoo.utils.ALGOS.update(ZOO_ALGOS)
    zoo.hyperparams_opt.HYPERPARAMS_SAMPLER.update(softq=sample_softq_params, softdqn=sample_softdqn_params)
    convert = zoo.hyperparams_opt.convert_offpolicy_params
    zoo.hyperparams_opt.HYPERPARAMS_CONVERTER.update(softq=convert, softdqn=convert)


def _with_default_conf(argv: list[str]) -> list[str]:
    """``argv`` plus ``--conf-file hyperparams/<algo>.yml`` for ebrl's agents when no config file is given."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--algo")
    parser.add_argument("-conf", "--conf-file")
    known, _ = parser.parse_known_args(argv)
    if known.algo not in ZOO_ALGOS or known.conf_file is not None:
        return argv
    path = HYPERPARAMS / f"{known.algo}.yml"
    if not path.is_file():
        raise FileNotFoundError(
            f"--conf-file: no hyperparameter file was given and {path} does not exist (it ships in ebrl's "
            f"repository, not in the wheel); pass --conf-file PATH to a YAML file in rl-zoo3's format"
        )
    return [*argv, "--conf-file", str(path)]


def main(argv: Sequence[str] | None = None) -> None:
    """``[train|enjoy] <rl-zoo3 flags>``: rl-zoo3's ``train`` (the default) or ``enjoy`` with ebrl's agents."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = "train"
    if args and args[0] in ("train", "enjoy"):
        command, args = args[0], args[1:]
    register()
    if command == "train":
        from rl_zoo3.train import train as run

        args = _with_default_conf(args)
    else:
        from rl_zoo3.enjoy import enjoy as run
    saved = sys.argv
    sys.argv = [f"agents.zoo {command}", *args]  # rl-zoo3's entry points parse sys.argv
    try:
        run()
    finally:
        sys.argv = saved


if __name__ == "__main__":
    main()
