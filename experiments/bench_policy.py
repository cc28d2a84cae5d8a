"""Action-sampling latency and throughput of SoftQ's Langevin policy against SB3 SAC's actor forward.

For 1, 16 and 1024 states, times one call of

- ``SoftQ stochastic``: importance-resampled start + ``langevin_steps`` Langevin steps on twin critics;
- ``SoftQ deterministic``: candidate scoring + gradient descent (``predict(deterministic=True)``);
- ``SoftQ stochastic, compiled``: the same through ``torch.compile`` (with ``--compile``; the
  compile time is reported separately and excluded from the latency);
- ``SAC actor``: SB3 SAC's squashed-Gaussian actor forward, the baseline;

with networks of the same width, on CUDA when present. Latency is the median over ``repeats`` calls
after ``warmup`` calls; throughput is states per second at that latency.

Writes ``results/bench_policy/bench_policy.{csv,md}``.

Run: ``python -m experiments.bench_policy`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.sac.policies import SACPolicy

from agents.softq.policies import SoftQPolicy
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


@dataclass
class Args:
    """Configuration of the policy benchmark (every field is a command-line option)."""

    device: str = field(default="auto", metadata={"help": "'auto' (CUDA when present), 'cpu' or 'cuda[:i]'"})
    n_states: tuple[int, ...] = field(default=(1, 16, 1024), metadata={"help": "states per call"})
    obs_dim: int = field(default=17, metadata={"help": "observation dimension"})
    act_dim: int = field(default=6, metadata={"help": "action dimension"})
    width: int = field(default=256, metadata={"help": "hidden width (2 layers) of every network"})
    langevin_steps: int = field(default=8, metadata={"help": "SoftQ Langevin steps per action"})
    n_proposals: int = field(default=32, metadata={"help": "SoftQ importance-resampling candidates per action"})
    repeats: int = field(default=50, metadata={"help": "timed calls per measurement"})
    warmup: int = field(default=5, metadata={"help": "untimed calls before timing"})
    compile: bool = field(default=False, metadata={"help": "also time the torch.compile'd Langevin loop"})
    seed: int = field(default=0, metadata={"help": "seed of the weights and the observations"})
    quick: bool = field(default=False, metadata={"help": "smoke run: 1 and 16 states, 5 repeats"})


QUICK = {"n_states": (1, 16), "repeats": 5, "warmup": 1}


def time_call(fn: Callable[[], Any], device: torch.device, *, repeats: int, warmup: int) -> float:
    """Median seconds per call of ``fn``."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(args: Args) -> list[dict[str, Any]]:
    if args.quick:
        args = replace(args, **QUICK)
    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    obs_space = spaces.Box(-np.inf, np.inf, shape=(args.obs_dim,), dtype=np.float32)
    act_space = spaces.Box(-1.0, 1.0, shape=(args.act_dim,), dtype=np.float32)
    net_arch = [args.width, args.width]
    softq = SoftQPolicy(obs_space, act_space, lambda _: 3e-4, net_arch=net_arch, langevin_steps=args.langevin_steps,
                        n_proposals=args.n_proposals).to(device)
    sac = SACPolicy(obs_space, act_space, lambda _: 3e-4, net_arch=net_arch).to(device)
    softq.rng.reseed(args.seed)
    gen = torch.Generator(device=device).manual_seed(args.seed)

    rows = []
    for n in args.n_states:
        obs = torch.randn(n, args.obs_dim, device=device, generator=gen)
        feats = softq.features(obs, softq.critic)
        compiled_pi = dataclasses.replace(softq.boltzmann, compile=True)
        candidates: dict[str, Callable[[], Any]] = {
            "SoftQ stochastic": lambda: softq._predict(obs, deterministic=False),  # noqa: B023
            "SoftQ deterministic": lambda: softq._predict(obs, deterministic=True),  # noqa: B023
            "SAC actor": lambda: sac.actor(obs, deterministic=False),  # noqa: B023
        }
        compile_s = None
        if args.compile:
            start = time.perf_counter()
            with torch.no_grad():
                compiled_pi.sample(softq.critic, feats, generator=gen)
            synchronize(device)
            compile_s = time.perf_counter() - start
            candidates["SoftQ stochastic, compiled"] = lambda: compiled_pi.sample(  # noqa: B023
                softq.critic, feats, generator=gen  # noqa: B023
            )
        for name, fn in candidates.items():
            with torch.no_grad():
                latency = time_call(fn, device, repeats=args.repeats, warmup=args.warmup)
            rows.append({
                "policy": name,
                "n_states": n,
                "latency_ms": latency * 1e3,
                "states_per_s": n / latency,
                "compile_s": "" if "compiled" not in name else round(compile_s or 0.0, 1),
            })
    sac_latency = {r["n_states"]: r["latency_ms"] for r in rows if r["policy"] == "SAC actor"}
    for r in rows:
        r["x_sac_latency"] = r["latency_ms"] / sac_latency[r["n_states"]]
    out_dir = results_dir("bench_policy")
    plot(rows, device, str(out_dir / "bench_policy.png"))
    write_table(
        out_dir, "bench_policy", rows,
        title=f"Action sampling: SoftQ's Langevin policy against SAC's actor ({device.type})",
        config=args,
        info=environment_info(device, packages=("stable-baselines3",)),
        notes=(f"Networks: twin critics / SAC actor of width {args.width}, obs_dim {args.obs_dim}, "
               f"act_dim {args.act_dim}. Median latency over {args.repeats} calls.",),
    )
    return rows


def plot(rows: list[dict[str, Any]], device: torch.device, path: str) -> None:
    """Latency per call against the number of states, one line per policy (log-log)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(r["policy"] for r in rows):
        pts = [r for r in rows if r["policy"] == name]
        ax.plot([r["n_states"] for r in pts], [r["latency_ms"] for r in pts], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("states per call")
    ax.set_ylabel("median latency per call (ms)")
    ax.set_title(f"Action sampling latency ({device.type})")
    ax.legend(fontsize=7)
    save_figure(fig, path)


if __name__ == "__main__":
    for row in main(parse_args(Args, description=__doc__.splitlines()[0])):
        print(row)
