"""The README's quickstart runs: every ```python block in README.md is executed, in order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_is_short():
    assert len(README.read_text(encoding="utf-8")) <= 10_000, "README.md must stay at most 10,000 characters"


def test_readme_links_point_to_files_in_the_repository():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    assert local, "README.md links to its documentation pages"
    missing = [link for link in local if not (README.parent / link).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_readme_has_a_python_quickstart():
    assert BLOCKS, "README.md must contain at least one ```python quickstart block"


@pytest.mark.slow
def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for i, block in enumerate(BLOCKS):
        try:
            exec(compile(block, f"README.md[python block {i}]", "exec"), namespace)
        except Exception as exc:  # re-raise with the block, so a failure says which snippet broke
            raise AssertionError(f"README python block {i} failed:\n{block}") from exc


def test_readme_results_table_is_computed_from_the_results_folder():
    from experiments._headlines import END, START, render

    text = README.read_text(encoding="utf-8")
    assert START in text and END in text, "README.md must hold the generated results table between its markers"
    assert render(text) == text, (
        "README.md's results table differs from what experiments/_headlines.py computes from results/: "
        "run `python -m experiments.all --no-run`"
    )


def test_headline_verdict_is_a_tie_when_the_interval_includes_zero(tmp_path):
    from experiments._headlines import render, verdict
    from experiments.stats import Interval

    assert verdict(Interval(0.5, -0.1, 1.0, 0.95)).startswith("tie")
    assert verdict(Interval(0.5, 0.1, 1.0, 0.95)).startswith("ahead")
    assert verdict(Interval(-0.5, -1.0, -0.1, 0.95)).startswith("behind")
    assert verdict(Interval(-0.5, -1.0, -0.1, 0.95), higher_is_better=False).startswith("ahead")
    with pytest.raises(ValueError, match="headlines"):
        render("no markers here", tmp_path)


def test_a_held_out_run_short_of_its_declared_seeds_gets_no_verdict():
    from experiments._headlines import pending

    assert pending("ahead: difference 2 [1, 3]", 5, 5, False) == "ahead: difference 2 [1, 3]"
    assert pending("ahead: difference 2 [1, 3]", 2, 5, False) == (
        "no verdict until all 5 seeds have run (so far ahead, difference 2 [1, 3])")
    assert pending("tie: difference 0 [-1, 1]", 2, 5, True) == "tie: difference 0 [-1, 1]"  # history: as labelled


def test_mountaincar_row_counts_only_finished_runs_and_pairs_the_softq_arms(tmp_path):
    import csv

    from experiments._headlines import mountaincar
    from experiments.mountaincar import Args

    declared = len(Args().seeds)
    assert declared > 3  # the fixture below finishes fewer seeds than the experiment declares
    assert mountaincar(tmp_path) is None  # no results yet: no row
    rows = [  # arm, seed, final score, first solving evaluation, steps trained
        ("SoftQ+ibc", 0, 93.0, 15000, 50000), ("SoftQ+ibc", 1, 91.0, 20000, 50000), ("SoftQ+ibc", 2, 95.0, 5000, 20000),
        ("SoftQ", 0, -1.0, "", 50000), ("SoftQ", 1, 92.0, 45000, 50000), ("SAC", 0, -0.5, "", 50000),
    ]
    (tmp_path / "mountaincar").mkdir()
    with open(tmp_path / "mountaincar/runs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arm", "seed", "final_window_return", "steps_to_solving_eval", "steps_trained"])
        w.writerows(rows)
    h = mountaincar(tmp_path)
    assert h.ebrl == "SoftQ+ibc 92 [91, 93], solved 2 of 2, first at 15,000-20,000"  # seed 2 has not finished
    assert "SoftQ 45.5" in h.baseline and "solved 1 of 2, first at 45,000" in h.baseline
    assert h.baseline.endswith("; no solving evaluation on 1 seed: SAC")  # arms that never solved, together
    assert h.verdict.startswith(f"no verdict until all {declared} seeds have run; so far ")
    assert h.verdict.endswith("(SoftQ+ibc - SoftQ)")  # SoftQ is the best baseline: one comparison
    assert f"2 of {declared} held-out seeds" in h.task  # the seeds SoftQ+ibc finished
    with open(tmp_path / "mountaincar/runs.csv", "a", newline="") as f:  # a stronger baseline on seeds 0-2
        csv.writer(f).writerows([("SAC-zoo", s, v, 5000, 50000) for s, v in ((0, 94.0), (1, 93.0), (2, 92.0))])
    h = mountaincar(tmp_path)
    assert "SAC-zoo 93 [92, 94], solved 3 of 3, first at 5,000;" in h.baseline
    assert "(SoftQ+ibc - SAC-zoo)" in h.verdict and h.verdict.count("no verdict") == 1  # said once for the row
    with open(tmp_path / "mountaincar/references.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["policy", "seed", "eval_return"])
        w.writerows([("energy-pumping controller", 0, 89.0), ("implicit BC alone", 0, 95.0),
                     ("energy-pumping controller", 1, 89.0), ("implicit BC alone", 1, -50.0)])
    assert "IBC alone solved 1 of 2" in mountaincar(tmp_path).verdict
    with open(tmp_path / "mountaincar/runs.csv", "w", newline="") as f:  # every declared seed finished
        w = csv.writer(f)
        w.writerow(["arm", "seed", "final_window_return", "steps_to_solving_eval", "steps_trained"])
        w.writerows([("SoftQ+ibc", s, 93.0 + s / 10, 10000, 50000) for s in range(declared)]
                    + [("SoftQ", s, -s / 10, "", 50000) for s in range(declared)])
    h = mountaincar(tmp_path)
    assert h.verdict.startswith("ahead: difference") and "no verdict" not in h.verdict
    assert f", {declared} held-out seeds" in h.task


def test_ibc_row_adds_the_authors_pd_task_once_two_held_out_seeds_have_run_it(tmp_path):
    """Before the PD run the row says the task is not the IBC authors'; after, it gives the PD comparison instead,
    with no verdict until all held-out seeds have run."""
    import csv

    from experiments._headlines import ibc
    from experiments.ibc_particle import HELD_OUT_SEEDS, REPORTED_METHOD, TUNING_SEEDS

    def write(path, table):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["dim", "seed", "method", "success"])
            w.writerows([(2, seed, method, value) for seed, method, value in table])

    write(tmp_path / "ibc_particle/ibc_particle.csv",
          [(s, m, v) for s in HELD_OUT_SEEDS for m, v in ((REPORTED_METHOD, 0.9), ("MSE-BC", 0.1))])
    write(tmp_path / "ibc_particle_history/ibc_particle.csv",
          [(s, m, v) for s in TUNING_SEEDS for m, v in ((REPORTED_METHOD, 0.95), ("MSE-BC", 0.05))])
    assert "; not the IBC authors' particle task; lower than" in ibc(tmp_path).verdict
    pd = [(HELD_OUT_SEEDS[0], REPORTED_METHOD, 0.8), (HELD_OUT_SEEDS[0], "MSE-BC", 0.2)]
    write(tmp_path / "ibc_particle_pd/ibc_particle.csv", pd)  # one seed: not yet in the row
    assert "not the IBC authors' particle task" in ibc(tmp_path).verdict
    write(tmp_path / "ibc_particle_pd/ibc_particle.csv",
          [*pd, (HELD_OUT_SEEDS[1], REPORTED_METHOD, 0.6), (HELD_OUT_SEEDS[1], "MSE-BC", 0.0)])
    text = ibc(tmp_path).verdict
    assert "not the IBC authors'" not in text and text.index("lower than") < text.index("PD task")
    assert text.endswith(f"; IBC authors' PD task, 2 of {len(HELD_OUT_SEEDS)} held-out seeds (no verdict yet): 0.700 "
                         "[0.600, 0.800] against 0.100 [0, 0.200], so far ahead, difference 0.600 [0.600, 0.600]")
    write(tmp_path / "ibc_particle_pd/ibc_particle.csv",
          [(s, m, v) for s in HELD_OUT_SEEDS for m, v in ((REPORTED_METHOD, 0.8), ("MSE-BC", 0.1))])
    assert ibc(tmp_path).verdict.endswith(f"; IBC authors' PD task, {len(HELD_OUT_SEEDS)} held-out seeds: 0.800 "
                                          "[0.800, 0.800] against 0.100 [0.100, 0.100], ahead: difference 0.700 "
                                          "[0.700, 0.700]")


def test_per_seed_values_get_their_mean_and_interval_from_three_seeds_on():
    from experiments._headlines import per_seed
    from experiments.stats import bootstrap_ci, mean

    assert per_seed({0: 1.0, 1: 4.0, 7: 2.0}, [0, 1]) == "1 / 4"  # two seeds: no interval
    values = {0: 1.0, 1: 4.0, 2: 2.0, 3: 2.0}
    text = per_seed(values, [0, 1, 2, 3])
    i = bootstrap_ci([1.0, 4.0, 2.0, 2.0], mean)
    assert i.low < i.point == 2.25 < i.high
    assert text.startswith(f"2.25 [{i.low:.2f}") and text.endswith("(seeds 1 / 4 / 2 / 2)")
