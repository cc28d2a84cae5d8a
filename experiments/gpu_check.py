"""Every CUDA test and the GPU benchmarks in one bounded run, for a machine with a GPU.

CI has no GPU, so the CUDA paths (device moves, CUDA generators, compiled samplers, checkpoints loaded
across devices) are checked here, in one go when a GPU is lent:

1. ``pytest -m gpu tests``: every test marked ``gpu``; ``tests/conftest.py`` adds the marker to every test
   skipped without CUDA, so none is left out. The log keeps pytest's summary, with the reason of each skip.
2. ``experiments.bench_policy --device cuda``: the acting latency of SoftQ's policy sampler against SAC's
   actor at 1, 16 and 1,024 states, and each sampler's error against the exact Boltzmann policy.
3. ``experiments.bench_samplers --device cuda --quick``: Langevin chain-steps per second, ebrl against the
   bare loop (and torchebm when installed), with the run-to-run spread.

Each step runs in its own process under its own time limit (``*_timeout`` seconds; 7 minutes in all by
default), so the whole check ends within its budget: a step that runs out is recorded as timed out and
the next one still runs. Everything lands flat in ``--out`` (default ``results/gpu_check/``): ``gpu_check.csv``
and ``gpu_check.md`` (each step's command, status, seconds and, for pytest, the counts), ``pytest.log``, and
the benchmarks' Markdown tables and their main CSVs (8 files at most).

Run (on the GPU machine, from the repository root): ``python -m experiments.gpu_check``; with the
device tool, carrying the wheels that machine lacks (gymnasium, stable-baselines3, farama-notifications
in ``.whl/``): ``python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 python3 -m experiments.gpu_check --out $OUT``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from experiments._common import RESULTS_ROOT, environment_info, parse_args, write_table

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Args:
    """Configuration of the GPU check (every field is a command-line option)."""

    out: str = field(default="", metadata={"help": "output folder (default: results/gpu_check)"})
    pytest_timeout: int = field(default=180, metadata={"help": "seconds for the CUDA tests"})
    bench_policy_timeout: int = field(default=90, metadata={"help": "seconds for bench_policy"})
    bench_samplers_timeout: int = field(default=150, metadata={"help": "seconds for bench_samplers"})
    workers: int = field(default=4, metadata={"help": "pytest-xdist workers for the CUDA tests (0: one process)"})


def pytest_counts(output: str) -> dict[str, int]:
    """The counts of pytest's final summary line (``3 passed, 1 skipped, 2 failed in 4.2s``), by outcome."""
    lines = [line for line in output.splitlines() if re.search(r"\b(passed|failed|skipped|error|errors)\b", line)
             and re.search(r" in [\d.]+s", line)]
    if not lines:
        return {}
    return {outcome.rstrip("s") if outcome == "errors" else outcome: int(n)
            for n, outcome in re.findall(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?|deselected)",
                                         lines[-1])}


def run_step(name: str, cmd: list[str], timeout: int, *, env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run ``cmd`` from the repository root under ``timeout`` seconds; its output goes to ``log``."""
    print(f"$ {' '.join(cmd)}  (limit {timeout} s)", flush=True)
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        output, status = done.stdout + done.stderr, "ok" if done.returncode == 0 else f"exit status {done.returncode}"
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        output += (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        status = f"timed out after {timeout} s"
    seconds = time.perf_counter() - start
    log.write_text(output, encoding="utf-8")
    print(f"  {name}: {status} in {seconds:.0f} s", flush=True)
    return {"step": name, "status": status, "seconds": round(seconds, 1), "command": " ".join(cmd[1:])}


def main(args: Args) -> list[dict[str, Any]]:
    if not torch.cuda.is_available():
        raise ValueError("experiments.gpu_check needs CUDA (torch.cuda.is_available() is False); run it on a GPU "
                         "machine: the CPU checks run in the ordinary test suite")
    out = Path(args.out) if args.out else RESULTS_ROOT / "gpu_check"
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    env = {**os.environ, "EBRL_RESULTS_ROOT": str(scratch), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    py = sys.executable
    workers = ["-n", str(args.workers)] if args.workers > 0 else ["-p", "no:xdist"]
    rows = [run_step(
        "CUDA tests",
        [py, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider", "--continue-on-collection-errors",
         *workers, "-m", "gpu", "-rs", "tests"],
        args.pytest_timeout, env=env, log=out / "pytest.log",
    )]
    rows[0] |= pytest_counts((out / "pytest.log").read_text(encoding="utf-8"))
    for name, cmd, timeout in (
        ("bench_policy", [py, "-m", "experiments.bench_policy", "--device", "cuda", "--repeats", "30"],
         args.bench_policy_timeout),
        ("bench_samplers", [py, "-m", "experiments.bench_samplers", "--device", "cuda", "--quick", "--out",
                            str(scratch)], args.bench_samplers_timeout),
    ):
        log = scratch / f"{name}.log"
        rows.append(run_step(name, cmd, timeout, env=env, log=log))
        for table in (scratch / name).glob(f"{name}*.*"):
            if table.suffix == ".md" or table.name == f"{name}.csv":  # at most 8 files come back from the device
                shutil.copy(table, out / table.name)
        if rows[-1]["status"] != "ok":  # the log says why; keep its end beside the tables
            (out / "pytest.log").write_text((out / "pytest.log").read_text(encoding="utf-8")
                                            + f"\n\n==== {name} ({rows[-1]['status']}) ====\n"
                                            + log.read_text(encoding="utf-8")[-4000:], encoding="utf-8")
    shutil.rmtree(scratch, ignore_errors=True)
    write_table(out, "gpu_check", rows, title="GPU check: every CUDA test and the GPU benchmarks",
                config=args, info=environment_info(torch.device("cuda")),
                notes=("Each step ran in its own process under its own time limit; pytest's counts come from its "
                       "summary line (pytest.log holds the output with the reason of each skip). The benchmarks' "
                       "tables are bench_policy*.md and bench_samplers.md beside this one.",))
    return rows


if __name__ == "__main__":
    for row in main(parse_args(Args, description=__doc__.splitlines()[0])):
        print(row)
