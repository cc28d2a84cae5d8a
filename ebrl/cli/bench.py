"""``ebrl bench``: a developer command that runs the benchmark scripts of a source checkout.

The benchmarks are the ``experiments/bench_*.py`` scripts, which are not installed with the
package: from an installed ebrl, this command says so and exits with a one-line error. From a
checkout (``pip install -e .``) it runs each script and prints its Markdown table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from ebrl.cli._common import UsageError, add_command

BENCHMARKS = ("bench_samplers", "bench_policy")
"""The benchmark scripts ``ebrl bench`` runs, from ``experiments/``."""

CHECKOUT = Path(__file__).resolve().parents[2]
"""The source checkout this ebrl runs from, if it is one (it holds ``experiments/``)."""


def run_benchmarks(names: tuple[str, ...] | list[str] = BENCHMARKS, *, quick: bool = False,
                   root: Path = CHECKOUT) -> list[Path]:
    """Run ``python -m experiments.<name>`` for each name in ``root``; return the Markdown tables they wrote.

    Raises:
        UsageError: ``root`` is not a source checkout (no ``experiments/`` package).
        RuntimeError: a benchmark script failed.
    """
    if not (root / "experiments" / "__init__.py").is_file():
        raise UsageError(
            f"ebrl bench is a developer command: it runs experiments/ from a source checkout (pip install -e .); "
            f"none found at {root}"
        )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    tables = []
    for name in names:
        cmd = [sys.executable, "-m", f"experiments.{name}", *(["--quick"] if quick else [])]
        print(f"$ {' '.join(cmd[1:])}", flush=True)
        done = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"experiments.{name} failed with exit status {done.returncode}")
        tables.extend(sorted((root / "results" / name).glob("*.md")))
    return tables


def run(args: argparse.Namespace) -> None:
    for table in run_benchmarks(args.only or list(BENCHMARKS), quick=args.quick):
        print(table.read_text())


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "bench", "developer command, from a source checkout only: run the benchmark scripts "
                    "(experiments/bench_*.py) and print their Markdown tables")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, default=None, help="run only these benchmarks")
    p.set_defaults(func=run)
