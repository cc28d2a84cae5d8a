"""What every experiment script shares: arguments, device, the environment record and result tables.

An experiment writes into ``results/<name>/`` (``results_dir``) a CSV and a Markdown table of its
rows (``write_table``), with its configuration and the environment it ran in
(``environment_info``: versions, device, threads, machine load) recorded beside the numbers.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import statistics
import time
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

# Figures: every experiment draws with the library's helpers, imported from here.
from ebrl._checks import check_device
from ebrl.plots import pyplot as pyplot
from ebrl.plots import save_figure as save_figure

HYPERPARAMS = Path(__file__).resolve().parent.parent / "hyperparams"
"""The repository's rl-zoo3-format hyperparameter files (``hyperparams/<algo>.yml``)."""

RESULTS_ROOT = Path(os.environ.get("EBRL_RESULTS_ROOT") or Path(__file__).resolve().parent.parent / "results")
"""``results/`` at the repository root, or ``$EBRL_RESULTS_ROOT`` (``experiments.all --quick`` points its
smoke runs at ``results/quick/``, so they never overwrite full results)."""

T = TypeVar("T")


def zoo_entry(algo: str, env_id: str) -> dict[str, Any]:
    """The entry for ``env_id`` in ``hyperparams/<algo>.yml`` (rl-zoo3's format, ``policy_kwargs`` a mapping)."""
    import yaml

    entries = yaml.safe_load((HYPERPARAMS / f"{algo}.yml").read_text())
    if env_id not in entries:
        raise KeyError(f"env_id: hyperparams/{algo}.yml has no entry {env_id!r}; it has {sorted(entries)}")
    return dict(entries[env_id])


def results_dir(name: str, *, root: Path | None = None) -> Path:
    """``<root>/<name>/``, created if missing; ``root`` defaults to the repository's ``results/``."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a plain folder name, got '{name}'")
    path = (RESULTS_ROOT if root is None else Path(root)) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def pick_device(name: str) -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU; ``"cpu"`` and ``"cuda[:i]"`` are taken as given
    (``ValueError`` for CUDA on a machine without it)."""
    return check_device("device", name)


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device``, so that a wall-clock timing covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def package_version(name: str) -> str:
    """The installed version of distribution ``name``, or ``"not installed"``."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment_info(device: torch.device | str | None = None, *, packages: Sequence[str] = ()) -> dict[str, str]:
    """Versions, device, threads and machine load, as strings, to record beside results.

    Args:
        device: the device the experiment ran on (default: the CPU).
        packages: further distributions whose versions matter (baselines such as ``torchebm``).
    """
    device = torch.device("cpu" if device is None else device)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    info = {
        "date (UTC)": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": package_version("numpy"),
        "ebrl": package_version("ebrl"),
        **{name: package_version(name) for name in packages},
        "device": str(device),
        "device name": _device_name(device),
        "torch threads": str(torch.get_num_threads()),
        "cpu count": str(os.cpu_count()),
        "load average (1, 5, 15 min)": load,
    }
    if device.type == "cuda":
        info["cuda"] = str(torch.version.cuda)
    return info


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_table(
    out_dir: Path,
    name: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str,
    config: object | None = None,
    info: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Write ``rows`` to ``out_dir/name.csv`` and ``out_dir/name.md``; return both paths.

    Columns are the union of the rows' keys, in first-seen order; a missing cell is empty. The
    Markdown file has the title, the notes (one paragraph each), the table, then the
    configuration (a dataclass instance) and the environment (``environment_info()``).
    """
    if not rows:
        raise ValueError(f"write_table needs at least one row for '{name}'")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    csv_path, md_path = out_dir / f"{name}.csv", out_dir / f"{name}.md"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"# {title}", ""]
    for note in notes:
        lines += [note, ""]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
    if config is not None:
        if not dataclasses.is_dataclass(config):
            raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
        lines += ["", "## Configuration", ""]
        lines += [f"- {k}: `{v}`" for k, v in dataclasses.asdict(config).items()]
    if info is not None:
        lines += ["", "## Environment", ""]
        lines += [f"- {k}: {v}" for k, v in info.items()]
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.3g}"
    return str(value).replace("|", "\\|")


def config_digest(args: Any, *, exclude: Sequence[str] = (), exclude_prefixes: Sequence[str] = ()) -> str:
    """A 10-hex-digit SHA-256 digest of a dataclass's fields, less ``exclude`` and ``exclude_prefixes``.

    Rows carry it in a ``config`` column, so ``--resume`` keeps exactly the runs made with the same settings.
    """
    prefixes = tuple(exclude_prefixes)
    fields = {k: v for k, v in dataclasses.asdict(args).items() if k not in exclude and not k.startswith(prefixes)}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]


def read_rows(
    path: Path, *, keep: Any, integer: Sequence[str] = (), real: Sequence[str] = (), boolean: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The rows of a CSV written by :func:`write_table` for which ``keep(row)`` holds, typed back.

    Empty cells stay ``""``; ``integer`` columns accept ``"7166.0"`` (an earlier table wrote a float).
    Returns ``[]`` when ``path`` does not exist.
    """
    if not path.exists():
        return []

    def parse(key: str, value: str) -> Any:
        if value == "":
            return value
        if key in integer:
            return int(float(value))
        if key in real:
            return float(value)
        if key in boolean:
            return value == "True"
        return value

    with open(path, newline="") as f:
        return [{k: parse(k, v) for k, v in r.items()} for r in csv.DictReader(f) if keep(r)]


def parse_args(cls: type[T], *, description: str, argv: Sequence[str] | None = None) -> T:
    """Build a command line from the fields of dataclass ``cls`` and parse it into an instance.

    ``--field-name VALUE`` for int, float and str fields (``choices`` from a ``Literal``), and for
    optional ones (``float | None``: left out, the field keeps its default ``None``),
    ``--field-name A B ...`` for tuples, ``--flag/--no-flag`` for bools. A field's
    ``metadata["help"]`` is its help text.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"cls must be a dataclass, got {cls!r}")
    hints = typing.get_type_hints(cls)
    parser = argparse.ArgumentParser(description=description)
    for f in dataclasses.fields(cls):
        hint, flag = hints[f.name], "--" + f.name.replace("_", "-")
        members = typing.get_args(hint)
        if type(None) in members and len(members) == 2:  # Optional[X] / X | None
            hint = next(m for m in members if m is not type(None))
        help_text = f.metadata.get("help", "").replace("%", "%%")  # argparse formats help with %
        if hint is bool:
            if f.name.startswith("no_"):  # argparse reads "--no-x" as the negation: the flag would set False
                raise TypeError(f"bool field '{f.name}' must not start with 'no_' (name it '{f.name[3:]}' with the "
                                "opposite default: --no-... sets it False)")
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag, dest=f.name, action=action, default=f.default, help=help_text)
        elif typing.get_origin(hint) is tuple:
            parser.add_argument(
                flag, dest=f.name, type=typing.get_args(hint)[0], nargs="+", default=f.default, help=help_text
            )
        elif typing.get_origin(hint) is typing.Literal:
            parser.add_argument(flag, dest=f.name, choices=typing.get_args(hint), default=f.default, help=help_text)
        elif hint in (int, float, str):
            parser.add_argument(flag, dest=f.name, type=hint, default=f.default, help=help_text)
        else:
            raise TypeError(f"parse_args cannot build an option for field '{f.name}' of type {hint}")
    parsed = vars(parser.parse_args(argv))
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in parsed.items()})


def merge(mine: list[dict[str, Any]], theirs: list[dict[str, Any]], by: tuple[str, ...]) -> list[dict[str, Any]]:
    """``mine`` and the rows of ``theirs`` whose ``by`` columns match none of ``mine``."""
    seen = {tuple(r[k] for k in by) for r in mine}
    return mine + [r for r in theirs if tuple(r[k] for k in by) not in seen]


def timed_rounds(
    calls: Mapping[str, Callable[[], object]], *, repeats: int, units: int, key: str, unit: str
) -> list[dict[str, Any]]:
    """Time every call once per round for ``repeats`` rounds, in the given order in even rounds and reversed in odd
    ones, so that a change of the machine's load falls on all alike. One row per call and round:
    ``{key: name, "round": r, f"cpu_ms_per_{unit}": ..., f"wall_ms_per_{unit}": ...}``, a call doing ``units``
    units of work."""
    names, rows = list(calls), []
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            cpu, wall = time.process_time(), time.perf_counter()
            calls[name]()
            rows.append({key: name, "round": round_,
                         f"cpu_ms_per_{unit}": 1e3 * (time.process_time() - cpu) / units,
                         f"wall_ms_per_{unit}": 1e3 * (time.perf_counter() - wall) / units})
    return rows


def round_ratio(rows: Sequence[Mapping[str, Any]], column: str, key: str, name: str, baseline: str) -> str:
    """``name``'s ``column`` over ``baseline``'s in the same round of ``timed_rounds``' rows (paired, so a load
    shared by the round cancels): ``"median [min, max]"`` over the rounds."""
    base = {r["round"]: r[column] for r in rows if r[key] == baseline}
    ratios = [r[column] / base[r["round"]] for r in rows if r[key] == name]
    return f"{statistics.median(ratios):.2f} [{min(ratios):.2f}, {max(ratios):.2f}]"
