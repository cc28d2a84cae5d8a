"""Every experiment's ``main()`` runs end to end at a tiny budget and writes its tables into a temporary root.

These are the scripts whose tables the README and RESULTS.md quote. Each runs with its own ``QUICK``
settings shrunk further (``TINY``), with ``results_dir`` pointed at ``tmp_path`` (as
``EBRL_RESULTS_ROOT`` does for a subprocess), so nothing is written into the checkout. The checks are on
what the tables promise: a CSV and a Markdown table per output, the same rows in both, the configuration
and the machine load recorded, and the numbers that ``main()`` returns written to the CSV.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
from pathlib import Path

import pytest
import torch

from experiments import _common

TINY: dict[str, dict[str, object]] = {
    "multigoal": {"total_timesteps": 120, "n_eval_episodes": 1},
    "pendulum": {"total_timesteps": 200, "eval_freq": 100, "timing_chunk": 100, "n_eval_episodes": 1},
    "classic_discrete": {"step_fraction": 0.01, "eval_freq": 250, "n_eval_episodes": 1},
    "ibc_particle": {"n_demos": 6, "epochs": 1, "n_negatives": 8, "hidden": 16, "dfo_samples": 32,
                     "langevin_particles": 4, "langevin_levels": 2, "n_eval_episodes": 1},
    "denoise_digits": {"sigmas": (0.2,), "hidden": (16, 16), "epochs": 2, "eval_every": 1, "map_steps": 3,
                       "pm_steps": 3, "pm_snapshots": 1, "kde_bandwidths": (0.1,), "filter_widths": (0.5,)},
    "anomaly": {"digits": (0,), "dsm_epochs": 1, "pcd_epochs": 1, "mlp_hidden": (8, 8)},
    "generate_digits": {"pcd_epochs": 1, "pcd_steps": 2, "eval_steps": 2, "dsm_epochs": 1, "walk_steps": 3,
                        "pcd_buffer": 100, "ncsn_epochs": 1, "ncsn_levels": 2, "ncsn_steps_each": 1, "n_samples": 40,
                        "inpaint_draws": 1, "n_bootstrap": 20},
    "rbm_digits": {"sizes": (8,), "epochs": 1, "tuned_chains": 10, "ais_chains": 10, "ais_temperatures": 50,
                   "ais_timing_temperatures": 50, "large_samples": 200, "large_hidden": 8, "large_epochs": 1},
    "priors": {"total_timesteps": 60, "n_demos": 2, "prior_epochs": 1, "n_eval_episodes": 1},
    "softdqn_alpha_update": {"quick": True},
    "mountaincar": {"total_timesteps": 200, "eval_freq": 100, "n_eval_episodes": 1, "n_demos": 1, "references": True},
}
"""Per script: settings beyond its ``QUICK`` ones (fields a script does not have are skipped)."""


def tiny_args(module: object, name: str) -> object:
    """The script's ``Args`` with its ``QUICK`` settings and ``TINY[name]`` on top (quick flag off)."""
    fields = {f.name for f in dataclasses.fields(module.Args)}
    settings = {**getattr(module, "QUICK", {}), **TINY[name]}
    return module.Args(**{k: v for k, v in settings.items() if k in fields})


def table_rows(md: Path) -> int:
    """Data rows of the first Markdown table in ``md``."""
    lines = [line for line in md.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    return len(lines) - 2


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_experiment_main_writes_its_tables_into_the_results_root(name, tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "RESULTS_ROOT", tmp_path)
    monkeypatch.setenv("EBRL_RESULTS_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # anything written relative to the working directory lands here too
    module = importlib.import_module(f"experiments.{name}")
    if hasattr(module, "RUNS_ROOT"):  # resumable runs' checkpoints: into the temporary root too
        monkeypatch.setattr(module, "RUNS_ROOT", tmp_path / "runs")
    threads = torch.get_num_threads()
    try:
        returned = module.main(tiny_args(module, name))
    finally:
        torch.set_num_threads(threads)  # main() sets the script's thread count; keep other tests' intact
    out = tmp_path / name if name != "generate_digits" else tmp_path / module.Args().results_name
    tables = sorted(out.rglob("*.csv"))
    assert tables, f"{name}.main() wrote no CSV under {out}"
    for path in tables:
        md = path.with_suffix(".md")
        assert md.is_file(), f"{path.name} has no Markdown table beside it"
        with open(path, newline="") as f:
            n = sum(1 for _ in csv.DictReader(f))
        assert n >= 1 and table_rows(md) == n, f"{md.name}: {table_rows(md)} table rows, {path.name}: {n} rows"
    main_md = out / f"{name}.md"
    if main_md.is_file():
        text = main_md.read_text(encoding="utf-8")
        assert "load average" in text and "## Configuration" in text, f"{main_md.name} lacks its configuration"
    if isinstance(returned, list) and returned and isinstance(returned[0], dict):
        first = {k: v for k, v in returned[0].items() if isinstance(v, str | int)}
        written = "\n".join(p.read_text(encoding="utf-8") for p in tables)
        assert all(str(v) in written for v in first.values()), f"{name}: the first returned row is not in a CSV"


def test_sb3_training_leaves_no_log_folder_in_the_system_temporary_directory():
    import tempfile

    from stable_baselines3 import DQN

    before = set(Path(tempfile.gettempdir()).glob("SB3-*"))
    DQN("MlpPolicy", "CartPole-v1", learning_starts=8, policy_kwargs={"net_arch": [4]}, seed=0).learn(16)
    assert set(Path(tempfile.gettempdir()).glob("SB3-*")) == before


@pytest.mark.slow
def test_pendulum_no_run_rebuilds_the_tables_from_rows_that_two_invocations_wrote(tmp_path, monkeypatch):
    """Seeds run by another invocation (into another root) join the table: their rows are appended to the CSVs
    and ``--no-run`` recomputes every final score and the paired summary from the rows, without training."""
    from experiments import pendulum, stats

    threads = torch.get_num_threads()
    try:
        for seed, root in ((0, tmp_path / "a"), (1, tmp_path / "b")):
            monkeypatch.setattr(_common, "RESULTS_ROOT", root)
            pendulum.main(dataclasses.replace(tiny_args(pendulum, "pendulum"), seeds=(seed,)))
        for name in ("pendulum.csv", "curves.csv"):  # append b's rows to a's (what a merge of two roots does)
            extra = (tmp_path / "b/pendulum" / name).read_text(encoding="utf-8").splitlines()[1:]
            with open(tmp_path / "a/pendulum" / name, "a", encoding="utf-8") as f:
                f.write("\n".join(extra) + "\n")
        monkeypatch.setattr(_common, "RESULTS_ROOT", tmp_path / "a")
        monkeypatch.setattr(pendulum, "run_seed", lambda *a: pytest.fail("--no-run trained"))
        rows = pendulum.main(dataclasses.replace(tiny_args(pendulum, "pendulum"), run=False))
    finally:
        torch.set_num_threads(threads)
    per_seed = [r for r in rows if "algo" in r]
    assert sorted((r["algo"], r["seed"]) for r in per_seed) == [("SAC", 0), ("SAC", 1), ("SoftQ", 0), ("SoftQ", 1)]
    with open(tmp_path / "a/pendulum/curves.csv", newline="") as f:
        curves = list(csv.DictReader(f))
    for r in per_seed:
        mine = [(int(c["step"]), float(c["eval_return"])) for c in curves
                if (c["algo"], int(c["seed"])) == (r["algo"], r["seed"])]
        assert r["final_window_return"] == pytest.approx(stats.final_window(mine, 200))
    diff = next(r for r in rows if r.get("quantity", "").startswith("SoftQ - SAC"))
    assert diff["seeds"] == 2
    text = (tmp_path / "a/pendulum/pendulum.md").read_text(encoding="utf-8")
    assert "- seeds: `(0, 1)`" in text and "Rebuilt from this folder's rows" in text


@pytest.mark.slow
def test_ibc_particle_invocations_on_other_seeds_merge_their_rows(tmp_path, monkeypatch):
    """Parallel ``--resume`` invocations on other seeds: one that started before another wrote its run still keeps
    that run in the table it writes (without the merge, the last writer's table would drop it)."""
    monkeypatch.setattr(_common, "RESULTS_ROOT", tmp_path)
    module = importlib.import_module("experiments.ibc_particle")
    args = dataclasses.replace(tiny_args(module, "ibc_particle"), resume=True)
    threads = torch.get_num_threads()
    real, calls = module.earlier_rows, []

    def started_before_the_other_wrote(out_dir, a):
        calls.append(a.seeds)
        return [] if len(calls) == 1 else real(out_dir, a)  # the read at start finds nothing

    try:
        module.main(dataclasses.replace(args, seeds=(1,)))  # the other invocation: writes seed 1
        monkeypatch.setattr(module, "earlier_rows", started_before_the_other_wrote)
        module.main(dataclasses.replace(args, seeds=(0,)))
    finally:
        torch.set_num_threads(threads)
    with open(tmp_path / "ibc_particle" / "ibc_particle.csv", newline="") as f:
        seeds = {r["seed"] for r in csv.DictReader(f) if r["seed"].isdigit()}
    assert seeds == {"0", "1"}


@pytest.mark.slow
def test_multigoal_resume_adds_seeds_to_the_rows_of_the_same_configuration(tmp_path, monkeypatch):
    """``--resume --seeds 1`` keeps seed 0's rows of the same configuration and adds seed 1's; a run with another
    configuration does not keep them."""
    from experiments import multigoal

    monkeypatch.setattr(_common, "RESULTS_ROOT", tmp_path)
    monkeypatch.setenv("EBRL_RESULTS_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    args = tiny_args(multigoal, "multigoal")
    threads = torch.get_num_threads()
    try:
        first = multigoal.main(dataclasses.replace(args, seeds=(0,)))
        resumed = multigoal.main(dataclasses.replace(args, seeds=(1,), resume=True))
        rebuilt = multigoal.main(dataclasses.replace(args, seeds=(7,), run=False))  # trains nothing
        table = (tmp_path / "multigoal/multigoal.md").read_text(encoding="utf-8")
        with pytest.raises(ValueError, match="no rows of this configuration"):
            multigoal.main(dataclasses.replace(args, run=False, n_eval_episodes=3))
        other = multigoal.main(dataclasses.replace(args, seeds=(1,), resume=True, n_eval_episodes=2))
    finally:
        torch.set_num_threads(threads)
    assert {r["seed"] for r in first} == {0} and len({r["config"] for r in first}) == 1
    assert [r for r in resumed if r["seed"] == 0] == first  # kept as written, typed back
    assert sorted({r["seed"] for r in resumed}) == [0, 1] and len(resumed) == 2 * len(first)
    assert sorted(rebuilt, key=lambda r: (r["seed"], r["algo"], r["policy"])) == sorted(
        resumed, key=lambda r: (r["seed"], r["algo"], r["policy"]))
    assert "Seeds completed: [0, 1] (the table rebuilt from multigoal.csv by --no-run" in table
    assert {r["seed"] for r in other} == {1} and other[0]["config"] != first[0]["config"]
    with open(tmp_path / "multigoal/multigoal.csv", newline="") as f:
        assert [int(r["seed"]) for r in csv.DictReader(f)] == [r["seed"] for r in other]
