"""Action sampling of SoftQ's Boltzmann policy against SB3 SAC's actor: latency, and error against the exact policy.

Two measurements, each for 1, 16 and 1,024 states per call:

1. **Latency** of one call on twin critics of SAC's size (CUDA when present):
   - ``SoftQ stochastic``: the default, amortised sampler (``ebrl.rl.ActionSampler``: proposal draws
     importance-resampled towards π, then MALA moves);
   - ``SoftQ stochastic, no proposal``: tempered SMC from the uniform box (``amortized=False``);
   - ``SoftQ deterministic``: the best of the proposal's mean and 15 fixed-seed draws;
   - ``SoftQ stochastic, proposal`` and ``SoftQ deterministic, proposal`` (``sampler="proposal"``): the
     proposal network alone, one draw of q(·|s) or its mode tanh(μ(s)), as soft Q-learning's amortised
     sampler acts;
   - ``old stochastic`` and ``old deterministic``: the sampler these replaced (32 uniform candidates
     resampled ∝ exp(-E/α), then 8 Langevin steps of 0.01 in energy units; 256 candidates and 20 sign-gradient
     steps), rebuilt here from ``ebrl.samplers.Langevin`` as the baseline;
   - ``SAC actor`` and ``SAC actor, deterministic``: SB3 SAC's squashed-Gaussian actor forward, the baseline of
     every ratio (``x_sac_latency``: against the stochastic forward).
2. **Error** of the new and old stochastic samplers against the exact Boltzmann policy of
   Q(s, a) = -k/2 ‖a - 0.3‖² in 6-D at α = 0.5 (a product of truncated normals), for k = 5, 50, 500 and
   5,000: the largest per-dimension error of the mean and of the standard deviation, over at least 1,024
   draws gathered by repeated calls of the given size. (No proposal network exists for an analytic Q, so the
   new sampler runs from the uniform box here: the harder case.)

Writes ``results/bench_policy/bench_policy.{csv,md,png}`` and ``bench_policy_error.{csv,md}``.

Run: ``python -m experiments.bench_policy`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.sac.policies import SACPolicy

from agents.softq.policies import SoftQPolicy
from ebrl.rl import ActionBox, ActionSampler, ContinuousBoltzmannPolicy, SamplerWarning
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


@dataclass
class Args:
    """Configuration of the policy benchmark (every field is a command-line option)."""

    device: str = field(default="auto", metadata={"help": "'auto' (CUDA when present), 'cpu' or 'cuda[:i]'"})
    n_states: tuple[int, ...] = field(default=(1, 16, 1024), metadata={"help": "states per call"})
    obs_dim: int = field(default=17, metadata={"help": "observation dimension"})
    act_dim: int = field(default=6, metadata={"help": "action dimension"})
    width: int = field(default=256, metadata={"help": "hidden width (2 layers) of every network"})
    curvatures: tuple[float, ...] = field(default=(5.0, 50.0, 500.0, 5000.0), metadata={"help": "k of the error test"})
    repeats: int = field(default=50, metadata={"help": "timed calls per measurement"})
    warmup: int = field(default=5, metadata={"help": "untimed calls before timing"})
    seed: int = field(default=0, metadata={"help": "seed of the weights and the observations"})
    quick: bool = field(default=False, metadata={"help": "smoke run: 1 and 16 states, 5 repeats"})


QUICK = {"n_states": (1, 16), "repeats": 5, "warmup": 1, "curvatures": (50.0,)}

OLD_ALPHA = 0.5


def old_stochastic(energy: Any, obs: torch.Tensor, a_dim: int, alpha: float, gen: torch.Generator) -> torch.Tensor:
    """The replaced sampler: one of 32 uniform candidates drawn ∝ exp(-E/α), then 8 ULA steps of 0.01, ``(B, A)``."""
    b = obs.shape[0]
    cand = torch.rand((b, 32, a_dim), generator=gen, device=obs.device) * 2 - 1  # (B, 32, A)
    with torch.no_grad():
        logits = -energy(obs, cand) / alpha  # (B, 32)
    u = torch.rand(logits.shape, generator=gen, device=obs.device).clamp_min(1e-30)
    pick = (logits - torch.log(-torch.log(u))).argmax(dim=1)  # (B,) Gumbel-max
    a0 = cand[torch.arange(b, device=obs.device), pick]  # (B, A)
    chain = Langevin(step_size=0.01, n_steps=8, temperature=alpha, bounds=(-1.0, 1.0), boundary="reflect")
    return chain(lambda a: energy(obs, a[:, None, :])[:, 0], a0, generator=gen)


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


def latency_rows(args: Args, device: torch.device) -> list[dict[str, Any]]:
    obs_space = spaces.Box(-np.inf, np.inf, shape=(args.obs_dim,), dtype=np.float32)
    act_space = spaces.Box(-1.0, 1.0, shape=(args.act_dim,), dtype=np.float32)
    net_arch = [args.width, args.width]
    softq = SoftQPolicy(obs_space, act_space, lambda _: 3e-4, net_arch=net_arch).to(device)
    uniform = SoftQPolicy(obs_space, act_space, lambda _: 3e-4, net_arch=net_arch).to(device)
    uniform.configure(ActionSampler(), amortized=False)
    uniform.load_state_dict(softq.state_dict(), strict=False)
    fast = SoftQPolicy(obs_space, act_space, lambda _: 3e-4, net_arch=net_arch).to(device)
    fast.configure("proposal", amortized=True)
    fast.load_state_dict(softq.state_dict())
    sac = SACPolicy(obs_space, act_space, lambda _: 3e-4, net_arch=net_arch).to(device)
    softq.rng.reseed(args.seed)
    uniform.rng.reseed(args.seed)
    fast.rng.reseed(args.seed)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    old_mode = ContinuousBoltzmannPolicy(ActionBox.symmetric(args.act_dim), mode_steps=20)

    rows = []
    for n in args.n_states:
        obs = torch.randn(n, args.obs_dim, device=device, generator=gen)
        feats = softq.features(obs, softq.critic)
        candidates: dict[str, Callable[[], Any]] = {
            "SoftQ stochastic": lambda: softq._predict(obs, deterministic=False),  # noqa: B023
            "SoftQ stochastic, no proposal": lambda: uniform._predict(obs, deterministic=False),  # noqa: B023
            "SoftQ deterministic": lambda: softq._predict(obs, deterministic=True),  # noqa: B023
            "SoftQ stochastic, proposal": lambda: fast._predict(obs, deterministic=False),  # noqa: B023
            "SoftQ deterministic, proposal": lambda: fast._predict(obs, deterministic=True),  # noqa: B023
            "old stochastic": lambda: old_stochastic(softq.critic, feats, args.act_dim, OLD_ALPHA, gen),  # noqa: B023
            "old deterministic": lambda: old_mode.mode(softq.critic, feats, generator=gen),  # noqa: B023
            "SAC actor": lambda: sac.actor(obs, deterministic=False),  # noqa: B023
            "SAC actor, deterministic": lambda: sac.actor(obs, deterministic=True),  # noqa: B023
        }
        for name, fn in candidates.items():
            with torch.no_grad():
                start_cpu = time.process_time()
                latency = time_call(fn, device, repeats=args.repeats, warmup=args.warmup)
                cpu = (time.process_time() - start_cpu) / (args.repeats + args.warmup)
            rows.append({
                "policy": name,
                "n_states": n,
                "latency_ms": latency * 1e3,
                "cpu_ms_per_call": cpu * 1e3,
                "states_per_s": n / latency,
            })
    sac_latency = {r["n_states"]: r["latency_ms"] for r in rows if r["policy"] == "SAC actor"}
    for r in rows:
        r["x_sac_latency"] = r["latency_ms"] / sac_latency[r["n_states"]]
    return rows


def truncated_moments(k: float, alpha: float) -> tuple[float, float]:
    """Mean and sd of exp(-k (a - 0.3)²/(2α)) on [-1, 1], by quadrature on a fine grid."""
    a = np.linspace(-1.0, 1.0, 200_001)
    w = np.exp(-k * (a - 0.3) ** 2 / (2 * alpha))
    w /= w.sum()
    mean = float((a * w).sum())
    return mean, float(np.sqrt(((a - mean) ** 2 * w).sum()))


def error_rows(args: Args, device: torch.device) -> list[dict[str, Any]]:
    dim, alpha = args.act_dim, OLD_ALPHA
    gen = torch.Generator(device=device).manual_seed(args.seed)
    new = ContinuousBoltzmannPolicy(ActionBox.symmetric(dim))
    rows = []
    for k in args.curvatures:
        mean, sd = truncated_moments(k, alpha)

        def energy(obs: torch.Tensor, act: torch.Tensor, k: float = k) -> torch.Tensor:
            return k * (act - 0.3).square().sum(-1) / 2

        for n in args.n_states:
            obs = torch.zeros(n, 1, device=device)
            calls = max(1, -(-1024 // n))
            samplers: dict[str, Callable[[], torch.Tensor]] = {
                "new (ActionSampler, uniform start)": lambda: new.sample(
                    energy, obs, alpha=alpha, generator=gen  # noqa: B023
                )[:, 0],
                "old (32 candidates + 8 Langevin steps)": lambda: old_stochastic(
                    energy, obs, dim, alpha, gen  # noqa: B023
                ),
            }
            for name, draw in samplers.items():
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    a = torch.cat([draw() for _ in range(calls)]).double().cpu()  # (>= 1024, D)
                rows.append({
                    "sampler": name, "k": k, "n_states": n, "draws": a.shape[0],
                    "exact_mean": mean, "exact_sd": sd,
                    "max_mean_error": float((a.mean(0) - mean).abs().max()),
                    "max_sd_ratio_error": float((a.std(0) / sd - 1).abs().max()),
                    "warned": any(issubclass(w.category, SamplerWarning) for w in caught),
                })
    return rows


def main(args: Args) -> list[dict[str, Any]]:
    if args.quick:
        args = replace(args, **QUICK)
    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rows = latency_rows(args, device)
    errors = error_rows(args, device)
    out_dir = results_dir("bench_policy")
    plot(rows, device, str(out_dir / "bench_policy.png"))
    info = environment_info(device, packages=("stable-baselines3",))
    info = {**info, "load average (1 min)": f"{os.getloadavg()[0]:.2f}"}
    write_table(
        out_dir, "bench_policy", rows,
        title=f"Action sampling latency: SoftQ's Boltzmann policy, the replaced sampler, SAC's actor ({device.type})",
        config=args,
        info=info,
        notes=(f"Networks: twin critics / SAC actor of width {args.width}, obs_dim {args.obs_dim}, "
               f"act_dim {args.act_dim}. Median latency over {args.repeats} calls; CPU time per call includes "
               f"the warm-up calls.",),
    )
    write_table(
        out_dir, "bench_policy_error", errors,
        title=f"Sampler error against the exact Boltzmann policy, Q = -k/2 |a - 0.3|^2 in {args.act_dim}-D, "
        f"alpha = {OLD_ALPHA} ({device.type})",
        config=args,
        info=info,
        notes=("max_mean_error: the largest per-dimension |mean - exact mean|; max_sd_ratio_error: the largest "
               "per-dimension |sd / exact sd - 1|; warned: whether the sampler raised a SamplerWarning "
               "(the old one never warns).",),
    )
    return rows + errors


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
