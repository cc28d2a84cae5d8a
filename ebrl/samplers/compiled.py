"""Unadjusted Langevin through ``torch.compile``: the engine behind ``Langevin(compile=True)``.

What it is for: small batches on a GPU (1 to 64 chains, e.g. RL action sampling), where the
eager loop is bound by kernel launches, not arithmetic. On CUDA the loop runs as CUDA graphs
(``mode="reduce-overhead"``), so each chunk of steps is one graph launch. On a CPU it mainly
costs compile time: tens of seconds per energy structure, batch shape and dtype (inductor
compiles C++ kernels), repaid only over many calls with small batches, where fused kernels and
the absent autograd bookkeeping help; large batches are dominated by the matrix products either
way.

How it works:

- The loop is cut into chunks of ``CHUNK_STEPS`` steps. Each chunk is unrolled and traced as one
  graph by ``torch.compile(fullgraph=True)``; the gradient comes from
  ``torch.func.grad_and_value``, which traces without graph breaks, unlike
  ``torch.autograd.grad``. Chunking bounds the compile time, which grows with the steps per
  graph, not with ``n_steps``, while a CUDA graph launch per chunk keeps the launches per step
  near 1 / ``CHUNK_STEPS``. (Unrolling all 100 steps compiled for minutes on a CPU; torch's
  ``scan`` compiles fast, but inductor lowers it to a host-side loop that CUDA graphs skip.)
- Every hyperparameter that is a number (step sizes, noise scales, the gradient clip, bounds)
  enters the graph as a tensor, so another step size or an annealed schedule reuses the same
  compiled graph.
- The noise is drawn outside the graph with the caller's generator, step by step in the eager
  sampler's order, so ``compile=True`` returns the same samples as ``compile=False`` for the
  same seed (up to float rounding of the fused kernels).
- Caching is torch.compile's own: one compiled function per mode, specialised by dynamo's
  guards on the energy's code and structure, the shapes, the dtype and the device. Parameters and
  tensors an energy closes over (an RL state) are graph inputs, so in-place weight updates and a
  fresh closure per call reuse the graph and are never served stale. dynamo compiles a function
  at most ``torch._dynamo.config.recompile_limit`` (default 8) times; beyond that the sampler
  raises instead of silently running eagerly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor

from ebrl._checks import check_energy_output
from ebrl.energy.base import EnergyFn
from ebrl.samplers.base import (
    Boundary,
    Bounds,
    apply_bounds,
    bounds_tensors,
    energy_and_grad,
    prepare,
    raise_if_diverged,
)


class LangevinSettings(Protocol):
    """What the compiled loop reads from a ``Langevin`` sampler (its caller, so not imported here)."""

    @property
    def n_steps(self) -> int: ...
    @property
    def step_size(self) -> float: ...
    @property
    def grad_clip(self) -> float | None: ...
    @property
    def bounds(self) -> Bounds | None: ...
    @property
    def boundary(self) -> Boundary: ...

    def schedule(self) -> list[tuple[float, float]]: ...

CHUNK_STEPS = 10
"""Steps unrolled into one compiled graph (the last chunk of a run may be shorter)."""

_COMPILED: dict[str, Callable[..., tuple[Tensor, Tensor, Tensor | None]]] = {}


def _langevin_chunk(
    fn: EnergyFn,
    x: Tensor,
    noise: Tensor,
    drift: Tensor,
    sigma: Tensor,
    clip: Tensor | None,
    lohi: tuple[Tensor, Tensor] | None,
    boundary: Boundary,
    record: bool,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """``K = noise.shape[0]`` Langevin steps, written to be traced by ``torch.compile``.

    Args:
        fn: the energy, ``(B, *event) -> (B,)``.
        x: chain states ``(B, *event)``.
        noise: standard normal draws ``(K, B, *event)``.
        drift, sigma: the step ε_t and noise scale σ_t of ``Langevin.schedule()`` for the K steps, ``(K,)``.
        clip: the gradient clip ``()``, or ``None``.
        lohi: broadcastable bounds, or ``None``.
        boundary: ``"clamp"`` or ``"reflect"``.
        record: also return the per-step energies.

    Returns:
        the states after K steps ``(B, *event)``, the energy sums before each step ``(K,)`` (the
        divergence sentinels) and, with ``record``, the energies before each step ``(K, B)``.
    """

    def total_energy(y: Tensor) -> tuple[Tensor, Tensor]:
        e = fn(y)
        check_energy_output(e, y.shape[:1], who="energy", input_shape=y.shape)
        return e.sum(), e

    value_and_grad = torch.func.grad_and_value(total_energy, has_aux=True)
    sums: list[Tensor] = []
    energies: list[Tensor] = []
    for t in range(noise.shape[0]):
        grad, (total, e) = value_and_grad(x)  # (B, *event), (), (B,)
        sums.append(total)
        energies.append(e)
        if clip is not None:
            grad = grad.clamp(-clip, clip)
        x = x - drift[t] * grad + sigma[t] * noise[t]
        x = apply_bounds(x, lohi, boundary)
    return x, torch.stack(sums), (torch.stack(energies) if record else None)  # (B, *event), (K,), (K, B)


def _compiled_chunk(mode: str) -> Callable[..., tuple[Tensor, Tensor, Tensor | None]]:
    if mode not in _COMPILED:
        _COMPILED[mode] = torch.compile(_langevin_chunk, fullgraph=True, mode=mode)
    return _COMPILED[mode]


def run_compiled_langevin(
    sampler: LangevinSettings,
    energy: EnergyFn,
    x0: Tensor,
    *,
    generator: torch.Generator | None,
    record: bool,
) -> tuple[Tensor, list[Tensor] | None, Tensor | None]:
    """``sampler._run`` through compiled chunks; same inputs, outputs and errors as the eager loop.

    Returns the final states ``(B, *event)``, with ``record`` the energies ``[(B,)] * (n_steps + 1)``
    and the acceptance rate (all ones), else ``None`` twice.
    """
    import torch._dynamo.exc as dynamo_exc

    fn, x, gen = prepare(energy, x0, generator)
    start_x = x
    dtype, device = x.dtype, x.device
    schedule = torch.tensor(sampler.schedule(), dtype=dtype).to(device)  # (n_steps, 2)
    drift, sigma = schedule.unbind(1)  # (n_steps,) each
    clip = None if sampler.grad_clip is None else torch.tensor(sampler.grad_clip, dtype=dtype, device=device)
    lohi = bounds_tensors(sampler.bounds, x)
    cuda_graphs = device.type == "cuda"
    chunk = _compiled_chunk("reduce-overhead" if cuda_graphs else "default")
    n_steps = sampler.n_steps
    sums: list[Tensor] = []
    energies: list[Tensor] = []
    try:
        with torch.no_grad():  # grad_and_value differentiates inside; nothing outside needs a graph
            for begin in range(0, n_steps, CHUNK_STEPS):
                k = min(CHUNK_STEPS, n_steps - begin)
                noise = torch.empty((k, *x.shape), dtype=dtype, device=device)  # (K, B, *event)
                for t in range(k):  # the eager sampler's draws, in its order
                    torch.randn(x.shape, generator=gen, out=noise[t])
                steps = slice(begin, begin + k)
                x, chunk_sums, chunk_energies = chunk(
                    fn, x, noise, drift[steps], sigma[steps], clip, lohi, sampler.boundary, record
                )
                if cuda_graphs:  # the next replay overwrites the graph's output buffers
                    x, chunk_sums = x.clone(), chunk_sums.clone()
                    chunk_energies = None if chunk_energies is None else chunk_energies.clone()
                sums.append(chunk_sums)
                if chunk_energies is not None:
                    energies.extend(chunk_energies.unbind(0))
    except dynamo_exc.FailOnRecompileLimitHit as exc:
        raise RuntimeError(
            "Langevin(compile=True): torch.compile has reached torch._dynamo.config.recompile_limit="
            f"{torch._dynamo.config.recompile_limit} compiled variants of the Langevin loop (energies, batch "
            "shapes, dtypes, devices or options); rather than run eagerly without saying so, this raises. "
            "Raise that limit or use compile=False"
        ) from exc
    except dynamo_exc.TorchDynamoException as exc:
        energy_and_grad(fn, start_x)  # raises the energy's own error (e.g. a wrong output shape) eagerly
        summary = (str(exc).strip().splitlines() or [""])[0]
        if isinstance(exc, dynamo_exc.BackendCompilerFailed):
            cause = "the compiler backend failed (on a CPU, inductor needs a working C++ compiler)"
        else:
            cause = (
                "the energy must be traceable without host synchronisation: inside closures call "
                "Energy.forward, not Energy.__call__ (whose finiteness check synchronises)"
            )
        raise RuntimeError(
            "Langevin(compile=True) could not compile the loop with torch.compile(fullgraph=True): "
            f"{type(exc).__name__}: {summary}. Likely cause: {cause}. Or use compile=False"
        ) from exc
    sentinels = list(torch.cat(sums).unbind(0))  # [()] * n_steps
    if record:
        e, total, _ = energy_and_grad(fn, x)
        sentinels.append(total)
        energies.append(e)
    raise_if_diverged(
        "Langevin", sentinels, n_steps=n_steps, final=x, allow_pos_inf=False,
        hint=f"Lower step_size (now {sampler.step_size}) or set grad_clip.",
    )
    if not record:
        return x, None, None
    return x, energies, torch.ones(x.shape[0], device=device, dtype=dtype)
