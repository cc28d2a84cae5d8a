"""Sampler benchmark: ebrl's Langevin against a bare autograd loop and torchebm, on one MLP energy.

Three implementations run 100 unadjusted Langevin steps, x ← x - ε∇E(x) + σξ, on the same
``MLPEnergy`` (two hidden layers of width 128, SiLU), with the same generator seed:

- ``bare``: a hand-written ``torch.autograd.grad`` loop over the module's ``forward``. It pays
  for the energy's forward and backward passes and nothing else: the floor.
- ``ebrl``: ``ebrl.samplers.Langevin``.
- ``torchebm``: ``torchebm.samplers.LangevinDynamics`` on a torchebm model wrapping the same
  module (``pip install torchebm --no-deps``; a benchmark baseline, never an ebrl dependency).

Each configuration is warmed up, then timed ``repeats`` times with the implementations
interleaved (bare, ebrl, torchebm, bare, ...) so that drifts in machine load hit all of them;
the table reports the median. On CUDA a second section times small batches (1 to 64 chains),
where the eager loop is bound by kernel launches, against ``Langevin(compile=True)``.

Achieved GFLOP/s count only the matrix products, analytically: per chain-step, forward
2(D·W + W·W + W) and the backward to the input the same again, with W = 128. Weight gradients
are excluded because ``autograd.grad`` with respect to x skips them; biases, activations and
the update are ignored. The fraction divides by a large fp32 ``torch.matmul``'s GFLOP/s
measured in the same run: the distance to the hardware limit.

A separate section (``--ais``; ``--no-langevin`` to run it alone) times annealed importance
sampling of log Z, ``ebrl.boltzmann.ais`` with 200 chains and 20,000 temperatures, on the digits RBM
with 64 hidden units (scikit-learn's RBM settings: pixels / 16, PCD-1, batch 10, learning rate
0.06, 20 epochs; it needs scikit-learn for the data), with 1 and 2 worker threads: the median wall
and process CPU time of ``ais_repeats`` runs, against a 5 s target on a quiet machine with 2
threads, and the machine's load average after each.

Run: ``python -m experiments.bench_samplers [--quick] [--device cpu|cuda|auto] [--threads N] [--ais]``;
writes ``results/bench_samplers/bench_samplers.{csv,md,png}`` (and ``ais.{csv,md}``).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ebrl._checks import seeded_init
from ebrl.boltzmann import BernoulliRBM, ais
from ebrl.energy import MLPEnergy
from ebrl.samplers import Langevin
from experiments._common import (
    environment_info,
    parse_args,
    pick_device,
    pyplot,
    results_dir,
    save_figure,
    synchronize,
    write_table,
)

IMPLEMENTATIONS = ("bare", "ebrl", "torchebm")
SMALL_BATCH_IMPLEMENTATIONS = ("bare", "ebrl", "ebrl compiled")
ALL_IMPLEMENTATIONS = ("bare", "ebrl", "torchebm", "ebrl compiled")
COLUMNS = (
    "section", "dim", "chains", "steps", "implementation", "status", "median_ms", "chain_steps_per_s",
    "gflop_per_s", "frac_of_matmul", "time_vs_bare", "time_vs_torchebm", "target", "meets_target",
    "warmup_s", "load_1min",
)


@dataclass(frozen=True)
class Args:
    """Configuration of the sampler benchmark."""

    quick: bool = field(default=False, metadata={"help": "smoke run: small sizes, few repeats (< 2 minutes)"})
    device: str = field(default="auto", metadata={"help": "cpu, cuda or auto (CUDA when available)"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads (torch.set_num_threads)"})
    dims: tuple[int, ...] = field(default=(2, 64), metadata={"help": "state dimensions D"})
    chains: tuple[int, ...] = field(default=(1024, 16384), metadata={"help": "chain counts of the main section"})
    small_chains: tuple[int, ...] = field(
        default=(1, 16, 64), metadata={"help": "chain counts of the GPU small-batch section"}
    )
    n_steps: int = field(default=100, metadata={"help": "Langevin steps per run"})
    repeats: int = field(default=5, metadata={"help": "timed runs per implementation (median reported)"})
    small_repeats: int = field(default=10, metadata={"help": "timed runs in the small-batch section"})
    width: int = field(default=128, metadata={"help": "hidden width W of the two-layer MLP energy"})
    step_size: float = field(default=0.01, metadata={"help": "ε; the noise is σ = √(2ε), exact Langevin at T = 1"})
    matmul_size: int = field(default=2048, metadata={"help": "N of the N×N fp32 reference matmul"})
    seed: int = field(default=0, metadata={"help": "seed of the energy's weights, x0 and every sampler"})
    out: str = field(default="", metadata={"help": "results root (default: the repository's results/)"})
    langevin: bool = field(default=True, metadata={"help": "run the Langevin sections"})
    ais: bool = field(default=False, metadata={"help": "also time AIS on the 64-hidden digits RBM (ais.csv/.md)"})
    ais_chains: int = field(default=200, metadata={"help": "AIS chains"})
    ais_temperatures: int = field(default=20_000, metadata={"help": "AIS temperatures"})
    ais_workers: tuple[int, ...] = field(default=(1, 2), metadata={"help": "AIS worker threads to time"})
    ais_repeats: int = field(default=3, metadata={"help": "timed AIS runs per worker count (median reported)"})


# Smoke sizes. The small-batch section keeps one chain count: each new shape compiles anew.
QUICK: dict[str, Any] = {"chains": (64, 512), "small_chains": (1,), "repeats": 2, "small_repeats": 3,
                         "matmul_size": 1024}


def flops_per_chain_step(dim: int, width: int) -> int:
    """Matmul FLOPs of one forward and one backward-to-input pass of the D→W→W→1 MLP, per chain."""
    return 4 * (dim * width + width * width + width)


def matmul_gflops(size: int, device: torch.device, *, repeats: int = 7) -> float:
    """GFLOP/s of an fp32 ``size × size`` matmul (median of ``repeats`` after a warm-up)."""
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, generator=g, device=device)
    b = torch.randn(size, size, generator=g, device=device)
    torch.matmul(a, b)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.matmul(a, b)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def bare_langevin(
    energy: MLPEnergy, x0: Tensor, *, n_steps: int, step_size: float, noise_scale: float,
    generator: torch.Generator,
) -> Tensor:
    """The floor: Langevin as a user writes it, around the module's forward and ``autograd.grad``."""
    x = x0
    for _ in range(n_steps):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy.forward(x).sum(), x)
        with torch.no_grad():
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x - step_size * grad + noise_scale * noise
    return x


def torchebm_langevin(
    energy: MLPEnergy, *, n_steps: int, step_size: float, noise_scale: float
) -> Callable[[Tensor, torch.Generator], Tensor] | str:
    """torchebm's ``LangevinDynamics`` on the same module, or why it is unavailable.

    torchebm's update is x - η∇E + s·√(2η)·ξ, so s = σ / √(2ε) gives the same chain.
    """
    try:
        from torchebm.core import BaseModel
        from torchebm.samplers import LangevinDynamics
    except ImportError as exc:
        return f"unavailable: {exc} (pip install torchebm --no-deps)"

    class SameEnergy(BaseModel):
        def __init__(self) -> None:
            super().__init__()
            self.energy = energy

        def forward(self, x: Tensor) -> Tensor:
            return self.energy.forward(x)

    param = next(energy.parameters())
    dynamics = LangevinDynamics(
        SameEnergy(), step_size=step_size, noise_scale=noise_scale / math.sqrt(2 * step_size),
        dtype=param.dtype, device=param.device,
    )

    def run(x0: Tensor, generator: torch.Generator) -> Tensor:
        return dynamics.sample(x=x0, n_steps=n_steps, generator=generator)

    return run


def _runners(
    names: Sequence[str], energy: MLPEnergy, x0: Tensor, *, n_steps: int, step_size: float, seed: int
) -> dict[str, Callable[[], Tensor] | str]:
    """A zero-argument run per implementation (each with a fresh generator of one seed), or a reason."""
    sigma = math.sqrt(2 * step_size)

    def generator() -> torch.Generator:
        return torch.Generator(device=x0.device).manual_seed(seed)

    ebrl_sampler = Langevin(step_size=step_size, n_steps=n_steps, noise_scale=sigma)
    compiled_sampler = replace(ebrl_sampler, compile=True)
    runners: dict[str, Callable[[], Tensor] | str] = {}
    for name in names:
        if name == "bare":
            runners[name] = lambda: bare_langevin(
                energy, x0, n_steps=n_steps, step_size=step_size, noise_scale=sigma, generator=generator()
            )
        elif name == "ebrl":
            runners[name] = lambda: ebrl_sampler(energy, x0, generator=generator())
        elif name == "ebrl compiled":
            runners[name] = lambda: compiled_sampler(energy, x0, generator=generator())
        elif name == "torchebm":
            run = torchebm_langevin(energy, n_steps=n_steps, step_size=step_size, noise_scale=sigma)
            runners[name] = run if isinstance(run, str) else (lambda run=run: run(x0, generator()))
        else:
            raise ValueError(f"unknown implementation '{name}'; expected one of {ALL_IMPLEMENTATIONS}")
    return runners


def bench_langevin(
    energy: MLPEnergy,
    x0: Tensor,
    *,
    implementations: Sequence[str] = IMPLEMENTATIONS,
    n_steps: int,
    step_size: float,
    repeats: int,
    matmul_gflop_per_s: float,
    section: str = "main",
    seed: int = 0,
) -> tuple[list[dict[str, Any]], dict[str, Tensor]]:
    """Time the implementations on one configuration; return table rows and each one's samples.

    Args:
        energy: the MLP energy all implementations share.
        x0: initial states ``(B, D)``, on the device to benchmark.
        implementations: names from ``"bare"``, ``"ebrl"``, ``"torchebm"``, ``"ebrl compiled"``.
        n_steps, step_size: the chain; the noise scale is √(2 ε).
        repeats: timed runs per implementation, interleaved; the median is reported.
        matmul_gflop_per_s: the reference for ``frac_of_matmul``.
        section: label of the table section.
        seed: seed of every run's generator.

    Returns:
        one row per implementation (columns ``COLUMNS``) and the samples ``(B, D)`` of each
        implementation that ran. A baseline (torchebm) that is missing or fails gets a row whose
        status says why; ebrl's own failures propagate.
    """
    device, (chains, dim) = x0.device, x0.shape
    width = energy.hidden[0]
    runners = _runners(implementations, energy, x0, n_steps=n_steps, step_size=step_size, seed=seed)
    status = {name: run if isinstance(run, str) else "ok" for name, run in runners.items()}
    samples: dict[str, Tensor] = {}
    warmup_s: dict[str, float] = {}
    for name, run in runners.items():
        if isinstance(run, str):
            continue
        # The compiled sampler compiles on call 1; on CUDA, graphs are recorded on call 2 and replayed from 3.
        n_warmup = 3 if name == "ebrl compiled" else 1
        start = time.perf_counter()
        try:
            for _ in range(n_warmup):
                samples[name] = run()
            synchronize(device)
        except Exception as exc:
            if name != "torchebm":
                raise
            status[name] = f"failed: {type(exc).__name__}: {exc}"
            continue
        warmup_s[name] = time.perf_counter() - start
    times: dict[str, list[float]] = {name: [] for name in samples}
    for _ in range(repeats):
        for name in times:  # interleaved: bare, ebrl, torchebm, bare, ...
            run = runners[name]
            assert not isinstance(run, str)
            synchronize(device)
            start = time.perf_counter()
            run()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    flops = flops_per_chain_step(dim, width) * chains * n_steps
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    rows = []
    for name in runners:
        row: dict[str, Any] = dict.fromkeys(COLUMNS, "")
        row.update(section=section, dim=dim, chains=chains, steps=n_steps, implementation=name,
                   status=status[name], load_1min=round(load, 2))
        if name in median:
            t = median[name]
            row.update(
                median_ms=1e3 * t, chain_steps_per_s=chains * n_steps / t, gflop_per_s=flops / t / 1e9,
                frac_of_matmul=flops / t / 1e9 / matmul_gflop_per_s, warmup_s=warmup_s[name],
            )
            if "bare" in median:
                row["time_vs_bare"] = t / median["bare"]
            if "torchebm" in median:
                row["time_vs_torchebm"] = t / median["torchebm"]
            row["target"], row["meets_target"] = _target(name, row, chains)
        rows.append(row)
    return rows, samples


def _target(name: str, row: dict[str, Any], chains: int) -> tuple[str, str]:
    """The issue's targets: ebrl within 1.05x (16,384 chains) or 1.10x (fewer) of bare and never
    slower than torchebm; the compiled sampler at least 3x faster than the eager bare loop."""
    if name == "ebrl":
        bound = 1.05 if chains >= 16384 else 1.10
        ok = row["time_vs_bare"] != "" and row["time_vs_bare"] <= bound
        target = f"≤ {bound} × bare"
        if row["time_vs_torchebm"] != "":
            ok = ok and row["time_vs_torchebm"] <= 1.0
            target += ", ≤ 1 × torchebm"
        return target, "yes" if ok else "no"
    if name == "ebrl compiled" and row["time_vs_bare"] != "":
        return "≤ 0.333 × bare (3× faster)", "yes" if row["time_vs_bare"] <= 1 / 3 else "no"
    return "", ""


AIS_TARGET_S = 5.0
"""AIS with 200 chains and 20,000 temperatures on the 64-hidden digits RBM: under 5 s (2 threads, quiet machine)."""


def digits_rbm(seed: int) -> tuple[BernoulliRBM, Tensor]:
    """The 64-hidden RBM of scikit-learn's settings on the digits (pixels / 16), and the binarised data."""
    from sklearn.datasets import load_digits  # the AIS section alone needs scikit-learn

    x = torch.as_tensor(load_digits().data / 16.0, dtype=torch.float32)  # (1797, 64)
    g = torch.Generator().manual_seed(seed)
    rbm = BernoulliRBM(64, 64, generator=g).fit(
        x, method="pcd", epochs=20, batch_size=10, learning_rate=0.06, soft=True, shuffle=False, generator=g
    )
    return rbm, (x > 0.5).float()


def bench_ais(args: Args) -> list[dict[str, Any]]:
    """Median wall and CPU seconds of ``ais`` per worker count, with the load average after each."""
    rbm, data = digits_rbm(args.seed)
    rows = []
    for workers in args.ais_workers:
        g = torch.Generator().manual_seed(args.seed)
        ais(rbm, args.ais_chains, 200, data=data, n_workers=workers, generator=g)  # warm-up
        walls, cpus, log_z = [], [], math.nan
        for _ in range(args.ais_repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            result = ais(rbm, args.ais_chains, args.ais_temperatures, data=data, n_workers=workers, generator=g)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            log_z = result.log_z
        wall_s = statistics.median(walls)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
        rows.append({
            "chains": args.ais_chains, "temperatures": args.ais_temperatures, "workers": workers,
            "median_wall_s": round(wall_s, 3), "min_wall_s": round(min(walls), 3),
            "median_cpu_s": round(statistics.median(cpus), 3), "log_z": round(log_z, 3),
            "target": f"< {AIS_TARGET_S:g} s (2 threads, quiet machine)",
            # A loaded machine (more runnable jobs than cores) slows the wall clock: only a pass is conclusive.
            "meets_target": "yes" if wall_s < AIS_TARGET_S else ("no" if load <= (os.cpu_count() or 1) else
                                                                  "unconfirmed (machine loaded)"),
            "load_1min": round(load, 2), "cpu_count": os.cpu_count(),
        })
        print(f"[ais] {args.ais_chains} chains x {args.ais_temperatures} temperatures, {workers} worker(s): "
              f"{wall_s:.2f} s wall (median of {args.ais_repeats}), load {load:.1f}")
    return rows


def make_energy(dim: int, width: int, seed: int, device: torch.device) -> MLPEnergy:
    """The energy all implementations share, D → W → W → 1 with SiLU, weights drawn from ``seed``."""
    with seeded_init(torch.Generator().manual_seed(seed)):
        return MLPEnergy(dim, hidden=(width, width), activation="silu").to(device)


def plot(rows: Sequence[dict[str, Any]], path: Path) -> str:
    """Bar chart of chain-steps/s per configuration and implementation; returns a note for the table."""
    try:
        plt = pyplot()
    except ImportError:
        return 'No PNG: matplotlib is not installed (pip install "ebrl[plot]").'
    ok = [r for r in rows if r["status"] == "ok"]
    sections = list(dict.fromkeys(r["section"] for r in ok))
    fig, axes = plt.subplots(1, len(sections), figsize=(6.5 * len(sections), 4.2), squeeze=False)
    for ax, section in zip(axes[0], sections, strict=True):
        sec = [r for r in ok if r["section"] == section]
        configs = list(dict.fromkeys((r["dim"], r["chains"]) for r in sec))
        names = list(dict.fromkeys(r["implementation"] for r in sec))
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            values = {(r["dim"], r["chains"]): r["chain_steps_per_s"] for r in sec if r["implementation"] == name}
            xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(configs))]
            ax.bar(xs, [values.get(c, 0.0) for c in configs], width=width, label=name)
        ax.set_xticks(range(len(configs)), [f"D={d}\nB={b}" for d, b in configs])
        ax.set_yscale("log")
        ax.set_ylabel("chain-steps / s (higher is better)")
        ax.set_title(section)
        ax.legend()
    save_figure(fig, path, dpi=120)
    return f"Chart: {path.name}."


def main(args: Args) -> list[dict[str, Any]]:
    if args.quick:
        args = replace(args, **QUICK)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    out_dir = results_dir("bench_samplers", root=Path(args.out) if args.out else None)
    info_start = environment_info(device, packages=("torchebm",))
    mm = matmul_gflops(args.matmul_size, device)
    print(f"device {device} ({info_start['device name']}), {args.threads} thread(s); "
          f"{args.matmul_size}² fp32 matmul: {mm:.1f} GFLOP/s; load {info_start['load average (1, 5, 15 min)']}")
    sections = [("main", args.chains, IMPLEMENTATIONS, args.repeats)] if args.langevin else []
    if device.type == "cuda" and args.langevin:
        sections.append(("gpu small batch", args.small_chains, SMALL_BATCH_IMPLEMENTATIONS, args.small_repeats))
    rows: list[dict[str, Any]] = []
    for section, chain_counts, names, repeats in sections:
        for dim in args.dims:
            # Each energy compiles its own graphs; a fresh dynamo cache keeps the sweep within
            # torch._dynamo.config.recompile_limit. Compile time is reported as warmup_s, not timed.
            torch._dynamo.reset()
            energy = make_energy(dim, args.width, args.seed, device)
            for chains in chain_counts:
                g = torch.Generator(device=device).manual_seed(args.seed)
                x0 = torch.randn(chains, dim, generator=g, device=device)  # (B, D)
                new, _ = bench_langevin(
                    energy, x0, implementations=names, n_steps=args.n_steps, step_size=args.step_size,
                    repeats=repeats, matmul_gflop_per_s=mm, section=section, seed=args.seed,
                )
                rows += new
                for r in new:
                    speed = f"{r['chain_steps_per_s']:>14,.0f}" if r["status"] == "ok" else r["status"]
                    ratio = f"  {r['time_vs_bare']:.3f}x bare time" if r["time_vs_bare"] != "" else ""
                    name = r["implementation"]
                    print(f"[{section}] D={dim:<3} B={chains:<6} {name:<14} {speed} chain-steps/s{ratio}")
    info = environment_info(device, packages=("torchebm",))
    info["load average at start (1, 5, 15 min)"] = info_start["load average (1, 5, 15 min)"]
    if args.ais:
        ais_rows = bench_ais(args)
        write_table(
            out_dir, "ais", ais_rows, title="AIS of log Z on the 64-hidden digits RBM", config=args,
            info=environment_info(device, packages=("scikit-learn",)),
            notes=[f"ebrl.boltzmann.ais, linear schedule, base-rate start from the binarised digits; median of "
                   f"{args.ais_repeats} runs after a warm-up, per number of worker threads (each on one intra-op "
                   f"thread). The target is {AIS_TARGET_S:g} s with 2 threads on a quiet machine: load_1min is "
                   f"the 1-minute load average after the runs, against cpu_count cores; a run on a machine "
                   f"whose load exceeds its free cores cannot confirm the target either way."],
        )
    if not rows:
        return []
    info["float32 matmul precision"] = torch.get_float32_matmul_precision()
    notes = [
        f"{args.n_steps} unadjusted Langevin steps, ε = {args.step_size}, σ = √(2ε), on one MLPEnergy "
        f"(D → {args.width} → {args.width} → 1, SiLU) shared by all implementations; median of "
        f"{args.repeats} interleaved runs after a warm-up (small-batch section: {args.small_repeats}).",
        "time_vs_bare and time_vs_torchebm are time ratios (lower is faster). Targets: ebrl ≤ 1.05 × bare at "
        "16,384 chains and ≤ 1.10 × bare below, never slower than torchebm; on a GPU, Langevin(compile=True) "
        "at least 3× faster than the eager bare loop for 1 to 64 chains.",
        f"GFLOP/s count matmul FLOPs only: 4·(D·{args.width} + {args.width}² + {args.width}) per chain-step "
        "(forward 2·(…), backward to the input the same again; autograd.grad w.r.t. x skips weight "
        "gradients; biases, activations and the update ignored). frac_of_matmul = achieved GFLOP/s ÷ "
        f"{mm:.1f} GFLOP/s of a {args.matmul_size}×{args.matmul_size} fp32 torch.matmul measured in this run.",
        "warmup_s is the wall time of the warm-up calls (for `ebrl compiled`, compilation and CUDA-graph "
        "recording); load_1min is os.getloadavg()[0] after each configuration.",
    ]
    if device.type != "cuda":
        notes.append("GPU small-batch section skipped: no CUDA device in this run (it needs one).")
    if args.quick:
        notes.append("QUICK smoke run: small sizes and few repeats; these figures are not the benchmark.")
    notes.append(plot(rows, out_dir / "bench_samplers.png"))
    _, md_path = write_table(
        out_dir, "bench_samplers", rows, title="Langevin sampler benchmark: ebrl vs a bare autograd loop vs torchebm",
        config=args, info=info, notes=notes,
    )
    print(f"wrote {md_path} (+ .csv, .png)")
    return rows


if __name__ == "__main__":
    main(parse_args(Args, description=__doc__.splitlines()[0]))
