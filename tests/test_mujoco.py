"""MuJoCo (the ``mujoco`` extra): SoftQ and SAC train on HalfCheetah-v5 and Hopper-v5, and experiments.mujoco runs.

- a few hundred steps of SoftQ on each environment (SAC as a control): the agent learns from its
  buffer (its critic changes), and acts within the action box with finite actions;
- ``experiments.mujoco --quick`` writes its tables and plot;
- a SoftQ run on a MuJoCo environment saved mid-episode with ``agents.save_run`` resumes exactly;
- a run stopped with ``--stop-at`` and resumed from its checkpoint gives the same learning curve and
  final returns as an uninterrupted run, and a finished run is kept rather than rerun;
- the configuration digest changes with SoftQ's configuration but not with where or which runs go.

Skipped only when ``mujoco`` is not installed (``pip install -e ".[mujoco]"``; CI installs it).
"""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mujoco") is None,
    reason="mujoco is not installed: pip install -e '.[mujoco]' (CI installs it)",
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5"])
@pytest.mark.parametrize("algo", ["SoftQ", "SAC"])
def test_a_few_hundred_steps_learn_and_act_within_the_box(algo, env_id):
    import gymnasium as gym
    from stable_baselines3 import SAC

    from agents import SoftQ

    cls = {"SoftQ": SoftQ, "SAC": SAC}[algo]
    env = gym.make(env_id)
    model = cls("MlpPolicy", env, learning_starts=100, batch_size=64, buffer_size=1_000, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.critic.parameters()]
    model.learn(300)
    assert model.num_timesteps == 300 and model.replay_buffer.size() == 300
    assert any(not torch.equal(b, p) for b, p in zip(before, model.critic.parameters(), strict=True))
    obs = np.stack([env.observation_space.sample() for _ in range(4)])
    for deterministic in (False, True):
        actions, _ = model.predict(obs, deterministic=deterministic)
        assert actions.shape == (4, *env.action_space.shape) and np.isfinite(actions).all()
        assert (actions >= env.action_space.low).all() and (actions <= env.action_space.high).all()


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5"])
def test_save_run_resumes_a_mujoco_run_mid_episode_exactly(env_id, tmp_path):
    # Gymnasium's MuJoCo envs pickle by constructor arguments (EzPickle): an unpickled env restarts in its
    # initial pose with an unseeded RNG. save_run keeps the simulation state, so the resumed run is the same.
    import gymnasium as gym

    from agents import SoftQ, load_run, save_run

    def make():
        return SoftQ("MlpPolicy", gym.make(env_id), policy_kwargs=dict(net_arch=[32]), learning_starts=50,
                     batch_size=32, buffer_size=1_000, seed=0, device="cpu")

    model = make().learn(120)  # mid-episode: MuJoCo episodes last 1,000 steps (Hopper's may end sooner)
    save_run(model, tmp_path / "run")
    model.learn(80, reset_num_timesteps=False)
    resumed = load_run(SoftQ, tmp_path / "run", device="cpu")
    resumed.learn(80, reset_num_timesteps=False)
    n = model.replay_buffer.size()
    assert n == resumed.replay_buffer.size() == 200
    assert np.array_equal(model.replay_buffer.observations[:n], resumed.replay_buffer.observations[:n])
    for a, b in zip(model.policy.parameters(), resumed.policy.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_quick_script_writes_tables_and_a_plot(tmp_path):
    pytest.importorskip("matplotlib")
    env = {**os.environ, "EBRL_RESULTS_ROOT": str(tmp_path), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "experiments.mujoco", "--quick"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "mujoco_tuning"  # --quick runs a tuning seed, never a held-out one
    assert {"mujoco.csv", "mujoco.md", "summary.md", "curves.csv", "mujoco.png"} <= {p.name for p in out.iterdir()}
    with open(out / "mujoco.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["env"], r["algo"]) for r in rows} == {(e, a) for e in ("HalfCheetah-v5", "Hopper-v5")
                                                     for a in ("SAC", "SoftQ")}
    assert all(int(r["steps"]) == 300 and float(r["peak_rss_mb"]) > 0 and float(r["train_wall_s"]) > 0 for r in rows)
    assert "load average" in (out / "mujoco.md").read_text()
    assert not any(tmp_path.rglob("model.zip"))  # without resume, checkpoints go to a scratch folder


def tiny(tmp_path: Path, **kwargs):
    from experiments.mujoco import Args

    return Args(env_ids=("Hopper-v5",), split="tuning", seeds=(100,), total_timesteps=200, learning_starts=50,
                chunk=50, eval_freq=100, n_eval_episodes=1, n_final_episodes=1, max_episode_steps=40,
                checkpoint_dir=str(tmp_path / "checkpoints"), **kwargs)


def curve_returns(rows):
    return [(r["algo"], r["step"], r["eval_return"]) for r in rows]


@pytest.mark.slow
def test_a_stopped_run_resumes_from_its_checkpoint_as_if_never_stopped(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    from experiments import _common
    from experiments.mujoco import main, read_rows

    monkeypatch.setattr(_common, "RESULTS_ROOT", tmp_path / "whole")
    whole = main(tiny(tmp_path / "a"))
    whole_curves = read_rows(tmp_path / "whole" / "mujoco_tuning" / "curves.csv", keep=lambda r: True,
                             integer=("step",), real=("eval_return",))

    monkeypatch.setattr(_common, "RESULTS_ROOT", tmp_path / "split")
    assert main(tiny(tmp_path / "b", stop_at=100)) == []  # stopped: checkpointed, nothing reported
    assert "stopped at step 100" in capsys.readouterr().out
    resumed = main(tiny(tmp_path / "b"))
    assert "resumed at step 100" in capsys.readouterr().out
    resumed_curves = read_rows(tmp_path / "split" / "mujoco_tuning" / "curves.csv", keep=lambda r: True,
                               integer=("step",), real=("eval_return",))
    assert [(r["algo"], r["final_return"]) for r in resumed] == [(r["algo"], r["final_return"]) for r in whole]
    assert curve_returns(resumed_curves) == curve_returns(whole_curves) and len(whole_curves) == 4
    assert [r["segments"] for r in resumed] == [2, 2] and [r["segments"] for r in whole] == [1, 1]

    again = main(tiny(tmp_path / "b"))  # finished: kept from the table, not rerun
    assert "kept from an earlier run" in capsys.readouterr().out
    assert [r["final_return"] for r in again] == [r["final_return"] for r in resumed]


def test_digest_follows_softq_configuration_not_where_or_which_runs_go(tmp_path, monkeypatch):
    from experiments import mujoco

    args = tiny(tmp_path)
    key = mujoco.digest(args)
    assert mujoco.digest(replace(args, seeds=(101,), stop_at=100, checkpoint_dir="elsewhere", resume=False)) == key
    assert mujoco.digest(replace(args, total_timesteps=300)) != key
    for algo in mujoco.ALGOS:  # building the agents leaves the configuration as it was (SB3 edits policy_kwargs)
        mujoco.make_agent(algo, "Hopper-v5", 100, args)
    assert mujoco.digest(args) == key
    monkeypatch.setitem(mujoco.SOFTQ_CONFIG, "alpha", 0.5)
    assert mujoco.digest(args) != key
    assert mujoco.agent_kwargs("SoftQ", args)["alpha"] == 0.5 and "alpha" not in mujoco.agent_kwargs("SAC", args)


def test_a_new_optional_agent_feature_leaves_the_digest_but_a_used_default_changes_it(tmp_path, monkeypatch):
    from experiments import mujoco

    args = tiny(tmp_path)
    key = mujoco.digest(args)
    real = mujoco.resolved_hyperparameters
    monkeypatch.setattr(mujoco, "resolved_hyperparameters", lambda algo, a: {**real(algo, a), "new_feature": None})
    assert mujoco.digest(args) == key
    monkeypatch.setattr(mujoco, "resolved_hyperparameters", lambda algo, a: {**real(algo, a), "tau": 0.01})
    assert mujoco.digest(args) != key


def test_the_committed_held_out_rows_were_made_at_the_current_configuration():
    """The README's MuJoCo rows are the current configuration's: a default that changes what a run does changes
    the digest, and this test then fails (rather than ``--resume`` silently training new runs beside the table)."""
    from experiments import mujoco

    with open(ROOT / "results" / "mujoco" / "mujoco.csv", newline="") as f:
        keys = {r["config"] for r in csv.DictReader(f)}
    assert keys == {mujoco.digest(mujoco.check_args(mujoco.Args()))}


def test_bad_options_are_refused_naming_them(tmp_path):
    from experiments.mujoco import check_args

    with pytest.raises(ValueError, match="held_out seeds"):
        check_args(replace(tiny(tmp_path), split="held_out"))  # seed 100 is a tuning seed
    with pytest.raises(ValueError, match="env_ids"):
        check_args(replace(tiny(tmp_path), env_ids=("Ant-v5",)))
    with pytest.raises(ValueError, match="multiples of chunk"):
        check_args(replace(tiny(tmp_path), eval_freq=75))
    with pytest.raises(ValueError, match="stop_at"):
        check_args(replace(tiny(tmp_path), stop_at=150))


def test_merge_keeps_mine_and_adds_only_the_runs_i_lack():
    from experiments.mujoco import merge

    mine = [{"env": "Hopper-v5", "seed": 0, "x": 1}]
    theirs = [{"env": "Hopper-v5", "seed": 0, "x": 2}, {"env": "Hopper-v5", "seed": 1, "x": 3}]
    assert merge(mine, theirs, ("env", "seed")) == [mine[0], theirs[1]]
