"""The ``ebrl`` command: each subcommand writes what it promises and prints where, and user errors
are one line on stderr with exit status 2 and no traceback. Budgets are tiny (a few hundred
environment steps): these tests check the plumbing, not what the agents learn.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from ebrl.boltzmann import BernoulliRBM
from ebrl.checkpoint import save_model
from ebrl.cli import main
from ebrl.cli import sample as cli_sample
from ebrl.cli._common import UsageError
from ebrl.cli.bench import run_benchmarks
from ebrl.energy import MLPEnergy


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line, no traceback
    assert lines[0].startswith("ebrl ") and "error:" in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def energy_2d(tmp_path_factory) -> Path:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        energy = MLPEnergy(2, (16,))
    path = tmp_path_factory.mktemp("models") / "energy.pt"
    save_model(energy, path)
    return path


@pytest.fixture(scope="module")
def rbm_4x4(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "rbm.pt"
    save_model(BernoulliRBM(n_visible=16, n_hidden=8), path)
    return path


@pytest.mark.slow
def test_demo_saves_model_plot_and_summary_and_prints_their_paths(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    code, out, _ = run(capsys, "demo", "--steps", "110", "--episodes", "2", "--out", str(out_dir), "--no-progress")
    assert code == 0
    for name in ("softq_multigoal.zip", "trajectories.png", "summary.json"):
        assert (out_dir / name).is_file()
        assert str(out_dir / name) in out
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["steps"] == 110 and summary["episodes"] == 2
    assert 0 <= summary["goals_reached"] <= 4
    assert "Goals reached:" in out


@pytest.mark.slow
def test_train_with_subprocess_envs_then_eval_detects_softdqn(tmp_path, capsys):
    model = tmp_path / "dqn.zip"
    code, out, _ = run(
        capsys, "train", "--algo", "softdqn", "--env", "CartPole-v1", "--steps", "200",
        "--n-envs", "2", "--vec", "subproc", "--out", str(model), "--no-progress",
    )
    assert code == 0 and model.is_file() and str(model) in out
    code, out, _ = run(capsys, "eval", str(model), "--env", "CartPole-v1", "--episodes", "2")
    assert code == 0
    assert out.startswith("SoftDQN on CartPole-v1: mean return") and "±" in out


@pytest.mark.slow
def test_train_sql_then_eval_detects_softq(tmp_path, capsys):
    model = tmp_path / "sql.zip"
    code, _, _ = run(
        capsys, "train", "--algo", "sql", "--env", "ebrl/MultiGoal-v0", "--steps", "120", "--out", str(model),
        "--no-progress", "--tensorboard", str(tmp_path / "tb"),
    )
    assert code == 0 and model.is_file()
    assert any((tmp_path / "tb").rglob("events.out.tfevents.*"))
    code, out, _ = run(capsys, "eval", str(model), "--env", "ebrl/MultiGoal-v0", "--episodes", "1")
    assert code == 0 and out.startswith("SoftQ on ebrl/MultiGoal-v0: mean return")
    png = tmp_path / "slice.png"  # E(s, a) over the 2-D action box at the origin
    code, out, _ = run(
        capsys, "energy-plot", "--model", str(model), "--obs", "0", "0", "--grid", "15", "--out", str(png)
    )
    assert code == 0 and png.stat().st_size > 0 and str(png) in out
    code, _, err = run(capsys, "energy-plot", "--model", str(model), "--obs", "0", "--out", str(png))
    assert_user_error(code, err, "--obs", "expected 2 numbers")


@pytest.mark.slow
def test_train_ibc_from_the_scripted_expert_or_an_npz_then_eval_loads_the_energy_policy(tmp_path, capsys):
    policy = tmp_path / "ibc.pt"
    code, out, _ = run(
        capsys, "train", "--algo", "ibc", "--env", "ebrl/Particle-v0", "--n-demos", "5", "--epochs", "2",
        "--out", str(policy), "--no-progress",
    )
    assert code == 0 and policy.is_file() and str(policy) in out
    assert "Collected 5 scripted-expert episodes" in out
    code, out, _ = run(capsys, "eval", str(policy), "--env", "ebrl/Particle-v0", "--episodes", "2", "--deterministic")
    assert code == 0 and out.startswith("EnergyPolicy on ebrl/Particle-v0: mean return"), out
    # Any Box environment, with demonstrations from a file: Pendulum's 3-D observations, 1-D actions.
    rng = np.random.default_rng(0)
    demos = tmp_path / "demos.npz"
    obs = rng.uniform(-1, 1, (64, 3)).astype(np.float32)
    np.savez(demos, observations=obs, actions=np.clip(obs[:, :1], -2, 2))
    code, out, _ = run(capsys, "train", "--algo", "ibc", "--env", "Pendulum-v1", "--demos", str(demos),
                       "--epochs", "1", "--out", str(tmp_path / "p.pt"), "--no-progress")
    assert code == 0 and (tmp_path / "p.pt").is_file()
    code, _, err = run(capsys, "eval", str(tmp_path / "p.pt"), "--env", "CartPole-v1")
    assert_user_error(code, err, "--env", "observation shape")


def test_ibc_user_errors_are_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "train", "--algo", "ibc", "--env", "Pendulum-v1")
    assert_user_error(code, err, "--demos", "no scripted expert")
    code, _, err = run(capsys, "train", "--algo", "ibc", "--env", "CartPole-v1")
    assert_user_error(code, err, "--algo ibc", "Discrete")
    bad = tmp_path / "bad.npz"
    np.savez(bad, obs=np.zeros((3, 3)))
    code, _, err = run(capsys, "train", "--algo", "ibc", "--env", "Pendulum-v1", "--demos", str(bad))
    assert_user_error(code, err, "--demos", "'observations'")
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, observations=np.zeros((4, 5), np.float32), actions=np.zeros((4, 1), np.float32))
    code, _, err = run(capsys, "train", "--algo", "ibc", "--env", "Pendulum-v1", "--demos", str(wrong))
    assert_user_error(code, err, "observations")
    code, _, err = run(capsys, "train", "--algo", "ibc", "--env", "ebrl/Particle-v0", "--epochs", "0")
    assert_user_error(code, err, "--epochs")
    # SoftQ and SoftDQN take demonstrations with rewards and episode ends (a Minari dataset), never silently ignored
    code, _, err = run(capsys, "train", "--algo", "softq", "--env", "Pendulum-v1", "--demos", str(wrong))
    assert_user_error(code, err, "--demos", "needs rewards and episode ends")
    code, _, err = run(capsys, "train", "--algo", "softdqn", "--env", "CartPole-v1", "--demos", "ebrl/none-v0",
                       "--steps", "10", "--no-progress")
    assert_user_error(code, err, "--demos")
    not_policy = tmp_path / "x.pt"
    torch.save({"a": 1}, not_policy)
    code, _, err = run(capsys, "eval", str(not_policy), "--env", "Pendulum-v1")
    assert_user_error(code, err, "MODEL", "EnergyPolicy")


def test_unknown_env_id_is_a_one_line_error(capsys):
    code, _, err = run(capsys, "train", "--algo", "sql", "--env", "NoSuchEnv-v0", "--steps", "10")
    assert_user_error(code, err, "--env", "NoSuchEnv-v0")


def test_algo_that_does_not_suit_the_action_space_is_a_one_line_error(capsys):
    code, _, err = run(capsys, "train", "--algo", "sql", "--env", "CartPole-v1", "--steps", "10")
    assert_user_error(code, err, "--algo sql", "Discrete", "softdqn")
    code, _, err = run(capsys, "train", "--algo", "softdqn", "--env", "Pendulum-v1", "--steps", "10")
    assert_user_error(code, err, "--algo softdqn", "Box")


def test_missing_files_are_one_line_errors(tmp_path, capsys):
    code, _, err = run(capsys, "eval", str(tmp_path / "none.zip"), "--env", "CartPole-v1")
    assert_user_error(code, err, "MODEL", "none.zip")
    code, _, err = run(capsys, "sample", "--model", str(tmp_path / "none.pt"))
    assert_user_error(code, err, "--model", "none.pt")


def test_a_file_that_is_not_a_model_zip_is_a_one_line_error(tmp_path, capsys):
    bogus = tmp_path / "bogus.zip"
    bogus.write_text("not a zip")
    code, _, err = run(capsys, "eval", str(bogus), "--env", "CartPole-v1")
    assert_user_error(code, err, "MODEL", "not an SB3 model zip")


def test_sample_draws_a_scatter_for_2d_energies_and_an_image_grid_for_rbms(tmp_path, capsys, energy_2d, rbm_4x4):
    points = tmp_path / "points.png"
    code, out, _ = run(capsys, "sample", "--model", str(energy_2d), "--n", "32", "--steps", "20",
                       "--out", str(points))
    assert code == 0 and points.stat().st_size > 0 and "Langevin" in out
    grid = tmp_path / "grid.png"
    code, out, _ = run(capsys, "sample", "--model", str(rbm_4x4), "--n", "9", "--steps", "10", "--out", str(grid))
    assert code == 0 and grid.stat().st_size > 0 and "Gibbs" in out


def test_energy_plot_draws_2d_energies_and_rejects_other_event_shapes(tmp_path, capsys, energy_2d, rbm_4x4):
    png = tmp_path / "energy.png"
    code, out, _ = run(capsys, "energy-plot", "--model", str(energy_2d), "--out", str(png), "--grid", "20")
    assert code == 0 and png.stat().st_size > 0 and str(png) in out
    code, _, err = run(capsys, "energy-plot", "--model", str(rbm_4x4), "--out", str(tmp_path / "x.png"))
    assert_user_error(code, err, "--model", "(16,)")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_console_script_exits_2_without_traceback_on_a_user_error():
    script = Path(sys.executable).with_name("ebrl")
    if not script.is_file():
        pytest.skip("the ebrl console script is not installed (pip install -e .)")
    done = subprocess.run(
        [str(script), "train", "--algo", "sql", "--env", "CartPole-v1"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "--algo sql" in done.stderr
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "demo" in done.stdout and "energy-plot" in done.stdout


def test_softq_is_the_algo_name_and_sql_its_alias(capsys):
    for algo in ("softq", "sql"):
        code, _, err = run(capsys, "train", "--algo", algo, "--env", "CartPole-v1", "--steps", "10")
        assert_user_error(code, err, f"--algo {algo}", "SoftQ", "Discrete", "softdqn")


@pytest.mark.parametrize("error", [ValueError("a bug"), RuntimeError("a bug"), ImportError("a bug")])
def test_errors_that_are_not_user_errors_keep_their_traceback(monkeypatch, tmp_path, energy_2d, error):
    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(cli_sample, "draw_samples", broken)
    with pytest.raises(type(error), match="a bug"):
        main(["sample", "--model", str(energy_2d), "--out", str(tmp_path / "x.png")])


def test_a_damaged_checkpoint_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    code, _, err = run(capsys, "sample", "--model", str(bad))
    assert_user_error(code, err, "bad.pt", "corrupt")


def test_bench_outside_a_source_checkout_says_it_is_a_developer_command(tmp_path, capsys):
    with pytest.raises(UsageError, match="developer command"):
        run_benchmarks(["bench_samplers"], root=tmp_path)


# --- python -m experiments.all --no-run: the results page is rebuilt from the tables on disk ---------


def test_results_page_gathers_every_table_and_plot_main_table_first(tmp_path):
    from experiments.all import build_results

    folder = tmp_path / "results" / "toy"
    folder.mkdir(parents=True)
    (folder / "aaa_runs.md").write_text("# Every seed\n\n| seed | x |\n|---|---|\n| 0 | 1 |\n")
    (folder / "toy.md").write_text("# Toy: x against a baseline\n\n| method | x |\n|---|---|\n| ebrl | 2 |\n")
    (folder / "toy.png").write_bytes(b"\x89PNG")
    (tmp_path / "results" / "empty").mkdir()  # no tables: left out
    page = build_results(tmp_path / "results", tmp_path / "RESULTS.md").read_text()
    assert "## toy" in page and "empty" not in page
    assert page.index("### Toy: x against a baseline") < page.index("### Every seed")  # the main table first
    assert "| ebrl | 2 |" in page and "| 0 | 1 |" in page
    assert "![toy: toy](results/toy/toy.png)" in page
    assert "**Setting and baseline.** (no script in experiments/)" in page


def test_results_page_names_the_script_of_a_supplementary_run_in_a_nested_folder(tmp_path):
    from experiments.all import base_experiment, build_results, setting

    assert base_experiment("classic_discrete_more_seeds", ["classic", "classic_discrete"]) == "classic_discrete"
    assert base_experiment("classic_discrete", ["classic_discrete"]) == "classic_discrete"
    assert base_experiment("classicx", ["classic"]) is None
    folder = tmp_path / "results" / "priors_longer" / "priors"  # written with EBRL_RESULTS_ROOT=results/priors_longer
    folder.mkdir(parents=True)
    (folder / "priors.md").write_text("# Longer priors run\n\n| x |\n|---|\n| 3 |\n")
    (folder / "priors.png").write_bytes(b"\x89PNG")
    page = build_results(tmp_path / "results", tmp_path / "RESULTS.md").read_text()
    assert "## priors_longer" in page and "### Longer priors run" in page and "| 3 |" in page
    assert f"**Setting and baseline.** {setting('priors')}" in page
    assert "A supplementary run of `experiments.priors`" in page and "python -m experiments.priors_longer" not in page
    assert "![priors_longer: priors](results/priors_longer/priors/priors.png)" in page


def test_results_page_from_the_repository_names_each_experiments_setting(tmp_path):
    from experiments.all import RESULTS_ROOT, build_results, experiment_names, setting

    if not RESULTS_ROOT.is_dir():
        pytest.skip("no results/ in this checkout")
    page = build_results(RESULTS_ROOT, tmp_path / "RESULTS.md").read_text()
    present = [p.name for p in RESULTS_ROOT.iterdir() if p.is_dir() and p.name not in ("all", "quick")
               and any(p.rglob("*.md"))]
    for name in present:
        assert f"## {name}\n" in page
        if name in experiment_names():
            assert setting(name) in page and not setting(name).startswith("(")


@pytest.mark.slow
def test_quick_runs_write_under_results_quick_and_never_touch_full_results(tmp_path, monkeypatch):
    import experiments.all as runner

    full = tmp_path / "results"
    (full / "bench_policy").mkdir(parents=True)
    (full / "bench_policy" / "bench_policy.md").write_text("# the full result\n")
    monkeypatch.setattr(runner, "RESULTS_ROOT", full)
    page = runner.main(runner.Args(quick=True, only=("bench_policy",)))
    assert page == full / "quick" / "RESULTS.md"
    assert (full / "bench_policy" / "bench_policy.md").read_text() == "# the full result\n"
    assert any((full / "quick" / "bench_policy").glob("*.md")) and (full / "quick" / "all" / "runs.md").is_file()
    assert "quick: True" in page.read_text() and "| bench_policy | True | ok |" in page.read_text()


def test_all_rejects_an_unknown_experiment_name():
    from experiments.all import Args
    from experiments.all import main as run_all

    with pytest.raises(ValueError, match="--only"):
        run_all(Args(run=True, only=("no_such_experiment",)))


# --- experiments/sweep.py: the Optuna sweep resumes from its SQLite study ---------------------------


@pytest.mark.slow
def test_sweep_starts_from_the_baseline_and_resumes_from_its_sqlite_study(tmp_path):
    pytest.importorskip("optuna")
    from experiments.sweep import BASELINE, Args
    from experiments.sweep import main as sweep

    args = Args(env_id="ebrl/MultiGoal-v0", n_trials=2, total_timesteps=60, n_chunks=2, n_eval_episodes=1,
                out_dir=str(tmp_path))
    rows = sweep(args)
    assert len(rows) == 2 and (tmp_path / "sweep.db").is_file() and (tmp_path / "sweep.md").is_file()
    first = min(rows, key=lambda r: r["trial"])
    assert first["baseline"] and {k: first[k] for k in BASELINE} == BASELINE
    rows = sweep(Args(**{**args.__dict__, "n_trials": 3}))  # the same study, one more trial
    assert sorted(r["trial"] for r in rows) == [0, 1, 2]
    assert sum(r["baseline"] for r in rows) == 1


# --- --n-envs K --vec subproc: the agents learn from K environment processes -----------------------


class ThreeArmedBandit(gym.Env):
    """Arms 0 and 2 pay 1, arm 1 pays 0; one step per episode."""

    observation_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    action_space = spaces.Discrete(3)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(1, dtype=np.float32), float(int(action) != 1), True, False, {}


@pytest.mark.slow
def test_softdqn_learns_the_soft_optimal_policy_from_two_subprocess_envs():
    # As tests/test_agents.py's single-env check: with α = 0.2 the soft-optimal policy is
    # softmax(Q/α) with Q = (1, 0, 1), each good arm 1/(2 + e^-5) ≈ 0.497 and the bad arm 0.007.
    # Here two SubprocVecEnv workers fill the replay buffer (two gradient steps per vector step).
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from agents import SoftDQN

    venv = make_vec_env(ThreeArmedBandit, n_envs=2, seed=0, vec_env_cls=SubprocVecEnv)
    try:
        model = SoftDQN("MlpPolicy", venv, alpha=0.2, learning_rate=3e-3, learning_starts=50, batch_size=32,
                        train_freq=1, gradient_steps=2, target_update_interval=50,
                        policy_kwargs=dict(net_arch=[32]), seed=0)
        model.learn(600)
    finally:
        venv.close()
    assert model.replay_buffer.n_envs == 2 and model.num_timesteps >= 600
    with torch.no_grad():
        e = model.policy.energies(torch.zeros(1, 1))
        p = model.policy.boltzmann.probs(e, alpha=model.policy.alpha_tensor)[0].numpy()
    assert p[0] > 0.35 and p[2] > 0.35 and p[1] < 0.1, p


class ThreeActionEnv(gym.Env):
    """2-D observations, 3-D actions in [-1, 1]^3: the energy-plot slice of a model with more than 2 actions."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 0.0, False, True, {}


def test_energy_plot_slices_a_softq_with_more_actions_through_its_deterministic_action(tmp_path, capsys):
    from agents import SoftQ
    from ebrl.cli.energy_plot import action_energy_slice

    model = SoftQ("MlpPolicy", ThreeActionEnv(), policy_kwargs=dict(net_arch=[16]), seed=0)
    obs = np.array([0.2, -0.4], dtype=np.float32)
    coords, e = action_energy_slice(model, obs, 5, (2, 0))
    assert coords.shape == (25, 2) and e.shape == (25,) and torch.isfinite(e).all()
    # the held dimension (1) is the deterministic action's; dimensions 2 and 0 take the grid's coordinates
    with torch.no_grad():
        obs_t, _ = model.policy.obs_to_tensor(obs)
        base = model.policy._predict(obs_t, deterministic=True)[0]  # (3,)
        acts = base.repeat(25, 1)
        acts[:, 2], acts[:, 0] = coords[:, 0], coords[:, 1]
        expected = model.policy.critic(model.policy.features(obs_t, model.policy.critic), acts[None])[0]
    torch.testing.assert_close(e, expected)
    path = tmp_path / "m.zip"
    model.save(path)
    png = tmp_path / "slice.png"
    code, out, _ = run(capsys, "energy-plot", "--model", str(path), "--obs", "0.2", "-0.4", "--grid", "6",
                       "--dims", "2", "0", "--out", str(png))
    assert code == 0 and png.stat().st_size > 0 and "deterministic action" in out
    code, _, err = run(capsys, "energy-plot", "--model", str(path), "--obs", "0", "0", "--dims", "3", "--out",
                       str(png))
    assert_user_error(code, err, "--dims", "[0, 3)")
