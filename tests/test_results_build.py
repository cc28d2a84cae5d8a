"""RESULTS.md and the pooled tables are built from the per-seed rows under a results root."""

from __future__ import annotations

from pathlib import Path

from experiments._headlines import pendulum_pooled, write_pooled
from experiments.all import build_results


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_a_history_folder_opens_with_its_history_note(tmp_path):
    write(tmp_path / "classic_discrete_history/classic_discrete.md", "# Runs\n\n| a |\n|---|\n| 1 |\n")
    write(tmp_path / "classic_discrete_history/HISTORY.md", "# History: not a held-out result\n")
    out = build_results(tmp_path, tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    section = out[out.index("## classic_discrete_history"):]
    assert section.index("History: not a held-out result") < section.index("Runs")


def test_pooled_pendulum_pairs_seeds_across_folders_and_calls_a_tie(tmp_path):
    header = "algo,seed,final_return,final_std,best_return,train_seconds,env_steps_per_s\n"
    runs = {"pendulum/pendulum.csv": (0, 1, 2), "pendulum_seeds_3_4/pendulum/pendulum.csv": (3, 4),
            "pendulum_seed_5/pendulum/pendulum.csv": (5,)}
    for name, seeds in runs.items():
        rows = [f"SAC,{s},{-150 - s},1,1,100,1\nSoftQ,{s},{-150 - s + (1 if s % 2 else -1)},1,1,150,1\n" for s in seeds]
        write(tmp_path / name, header + "".join(rows) + "SAC,mean,-1,,,100,\n")  # a summary row: ignored
    table = pendulum_pooled(tmp_path)
    assert [r["seed"] for r in table[:-1]] == [0, 1, 2, 3, 4, 5]
    assert [r["SoftQ - SAC"] for r in table[:-1]] == ["-1", "1", "-1", "1", "-1", "1"]
    summary = table[-1]
    assert summary["seed"] == "mean of 6 [95% CI]" and str(summary["SoftQ - SAC"]).startswith("tie: difference 0 [")
    assert str(summary["wall-clock ratio SoftQ / SAC"]).startswith("1.50 [1.50, 1.50]")
    (md,) = write_pooled(tmp_path)
    assert md == tmp_path / "pooled/pendulum_seeds_0_5.md" and "mean of 6" in md.read_text(encoding="utf-8")
