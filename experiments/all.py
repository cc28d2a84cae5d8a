"""Re-run every experiment and rebuild ``RESULTS.md`` from the tables in ``results/*/``.

Each experiment script (``experiments/<name>.py``, except this one, ``sweep``, ``stats`` and the
``_`` helpers) runs as ``python -m experiments.<name> [--quick]`` in its own process, one after the
other; a failing script is reported and the others still run. ``RESULTS.md`` then gathers, per
experiment, the setting and the baseline (the first line of the script's docstring), every
Markdown table the script wrote (each carries its configuration, seeds, versions and device) and
its plots. The run log (script, exit status, seconds) goes to ``results/all/``. A folder holding a
``HISTORY.md`` is history (runs made before the script fixed its protocol): its section says so first.
The README's results table is then recomputed from the per-seed rows (``experiments/_headlines.py``).

``--quick`` runs write everything under ``results/quick/`` instead (the scripts' tables, the run
log, and ``results/quick/RESULTS.md``), so a smoke run never overwrites a full result.

Run: ``python -m experiments.all --quick`` (reduced budgets; within 20 minutes on 2 CPU cores),
``python -m experiments.all`` (full budgets: hours), or ``python -m experiments.all --no-run``
(only rebuild ``RESULTS.md`` from the results already on disk).
"""

from __future__ import annotations

import ast
import datetime
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from experiments._common import RESULTS_ROOT, environment_info, parse_args, results_dir, write_table
from experiments._headlines import update_readme, write_pooled

ROOT = Path(__file__).resolve().parent.parent
SKIP = {"all", "stats", "sweep", "compare_auto_alpha", "gpu_check"}
"""Modules of ``experiments/`` that are not experiments (``stats`` is the scripts' statistics library; ``gpu_check``
runs the CUDA tests and benchmarks, on a GPU machine only)."""

NOT_EXPERIMENTS = {"all", "quick"}
"""Folders of ``results/`` that hold no experiment's tables: the run log and the smoke runs."""


POOLED_SETTING = ("Tables pooled across result folders by `experiments/_headlines.py` from their per-seed rows "
                  "(rebuilt by `python -m experiments.all --no-run`).")


@dataclass
class Args:
    """Configuration of the full re-run (every field is a command-line option)."""

    quick: bool = field(default=False, metadata={"help": "reduced budgets: pass --quick to every experiment"})
    run: bool = field(default=True, metadata={"help": "run the experiments; --no-run only rebuilds RESULTS.md"})
    only: tuple[str, ...] = field(default=(), metadata={"help": "run only these experiments (default: all)"})


def experiment_names(folder: Path = ROOT / "experiments") -> list[str]:
    """The experiment scripts in ``folder``, sorted: every ``<name>.py`` but ``_*`` and ``SKIP``."""
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_") and p.stem not in SKIP)


def setting(name: str, folder: Path = ROOT / "experiments") -> str:
    """The first line of ``experiments/<name>.py``'s docstring: what is measured, against which baseline."""
    path = folder / f"{name}.py"
    if not path.is_file():
        return "(no script in experiments/)"
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.splitlines()[0] if doc else "(the script has no docstring)"


def base_experiment(name: str, experiments: list[str]) -> str | None:
    """The script a ``results/<name>/`` folder comes from: ``name`` itself, or the longest script name
    that ``name`` extends with ``_<suffix>`` (``classic_discrete_more_seeds`` -> ``classic_discrete``)."""
    matches = [e for e in experiments if name == e or name.startswith(e + "_")]
    return max(matches, key=len) if matches else None


def run_experiment(name: str, *, quick: bool, results_root: Path = RESULTS_ROOT) -> dict[str, object]:
    """Run one experiment in its own process, writing under ``results_root``; return its log row."""
    cmd = [sys.executable, "-m", f"experiments.{name}", *(["--quick"] if quick else [])]
    print(f"$ {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    env = {**os.environ, "EBRL_RESULTS_ROOT": str(results_root)}
    done = subprocess.run(cmd, cwd=ROOT, check=False, env=env)
    seconds = time.perf_counter() - start
    status = "ok" if done.returncode == 0 else f"failed (exit status {done.returncode})"
    print(f"  {name}: {status} in {seconds:.0f} s", flush=True)
    return {"experiment": name, "quick": quick, "status": status, "seconds": round(seconds, 1)}


def _demote(markdown: str, levels: int) -> str:
    """Push every ATX heading ``levels`` deeper, so a script's page nests under its section."""
    return re.sub(r"^(#{1,6}) ", lambda m: "#" * min(6, len(m.group(1)) + levels) + " ", markdown, flags=re.M)


def build_results(results_root: Path = RESULTS_ROOT, out: Path = ROOT / "RESULTS.md") -> Path:
    """Write ``out`` from the ``*.md`` tables and ``*.png`` plots under ``results_root/<name>/``."""
    names = sorted(
        p.name for p in results_root.iterdir() if p.is_dir() and p.name not in NOT_EXPERIMENTS and any(p.rglob("*.md"))
    )
    scripts = experiment_names()
    if not names:
        raise ValueError(f"no results to gather: {results_root} has no <experiment>/*.md tables")
    rel = Path(os.path.relpath(results_root, out.parent))  # image links relative to the page
    lines = [
        "# Results",
        "",
        "Generated by `python -m experiments.all` from the tables in `results/`; do not edit by hand. "
        "Each section names the setting and the baseline measured in the same run; the tables carry the "
        "configuration (budgets, seeds) and the environment (versions, device, machine load) they were measured "
        "in. A table whose configuration says `quick: True` is a smoke run at a reduced budget, not a result.",
        "",
        f"Rebuilt {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
    ]
    log = results_root / "all" / "runs.md"
    if log.is_file():
        lines += [_demote(log.read_text(encoding="utf-8").strip(), 1), ""]
    lines += ["## Contents", ""] + [f"- [{n}](#{n})" for n in names] + [""]
    for name in names:
        folder = results_root / name
        base = base_experiment(name, scripts)
        about = POOLED_SETTING if name == "pooled" else setting(base or name)
        lines += [f"## {name}", "", f"**Setting and baseline.** {about}", ""]
        if base == name:
            lines += [f"Reproduce: `python -m experiments.{name}` (`--quick` for a smoke run).", ""]
        elif base is not None:
            lines += [f"A supplementary run of `experiments.{base}` (other settings or seeds: its configuration "
                      "below and the README say how it was made).", ""]
        main_stem = base or name
        # HISTORY.md (why these runs are history, not results) first, then the main table, then the others.
        tables = sorted(folder.rglob("*.md"), key=lambda p: (p.name != "HISTORY.md", p.stem != main_stem,
                                                            p.relative_to(folder).as_posix()))
        for table in tables:  # the main table first
            lines += [_demote(table.read_text(encoding="utf-8").strip(), 2), ""]
        for png in sorted(folder.rglob("*.png")):
            lines += [f"![{name}: {png.stem}]({(rel / name / png.relative_to(folder)).as_posix()})", ""]
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


def main(args: Args) -> Path:
    names = experiment_names()
    unknown = sorted(set(args.only) - set(names))
    if unknown:
        raise ValueError(f"--only: unknown experiments {unknown}; expected some of {names}")
    root = RESULTS_ROOT / "quick" if args.quick else RESULTS_ROOT
    if args.run:
        rows = [run_experiment(name, quick=args.quick, results_root=root) for name in (args.only or names)]
        write_table(
            results_dir("all", root=root), "runs", rows,
            title="Run log of the last `python -m experiments.all" + (" --quick`" if args.quick else "`"),
            info=environment_info(),
            notes=(f"Total: {sum(float(r['seconds']) for r in rows) / 60:.1f} minutes.",),
        )
    if root == RESULTS_ROOT:
        write_pooled(root)  # before RESULTS.md, which quotes them
    out = build_results(root, ROOT / "RESULTS.md" if root == RESULTS_ROOT else root / "RESULTS.md")
    print(f"Wrote {out}")
    if root == RESULTS_ROOT:
        changed = update_readme(ROOT / "README.md", root)
        print("README.md results table " + ("rewritten" if changed else "unchanged"))
    return out


if __name__ == "__main__":
    main(parse_args(Args, description=__doc__.splitlines()[0]))
