"""Langevin-type samplers: unadjusted Langevin (ULA) and Metropolis-adjusted Langevin (MALA)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ebrl._checks import check_int, check_positive
from ebrl.samplers.base import (
    Boundary,
    Bounds,
    Sampler,
    apply_bounds,
    bounds_tensors,
    check_bounds,
    energy_and_grad,
    in_bounds,
    per_chain,
    prepare,
    raise_if_diverged,
)
from ebrl.samplers.compiled import run_compiled_langevin


@dataclass(frozen=True)
class Langevin(Sampler):
    """Unadjusted Langevin dynamics for p(x) ∝ exp(-E(x)/T).

    Update, for steps t = 0 .. n_steps-1::

        x ← x - ε_t · clip(∇E(x)) + σ_t · ξ,    ξ ~ N(0, I)

    with σ_t = √(2 ε_t T) by default, which makes the chain target exp(-E/T) as ε → 0. The step
    is in units of E and the temperature only scales the noise, so lowering T (a colder policy)
    never makes the drift unstable. Setting ``noise_scale`` decouples the noise from the step,
    the common heuristic of IGEBM and JEM (e.g. ``step_size=10, noise_scale=0.005`` on images),
    which no longer samples p exactly. To find low-energy points, anneal the step
    (``step_size_final``) at a low temperature.

    Example::

        from ebrl.energy import GaussianEnergy
        from ebrl.samplers import Langevin
        target = GaussianEnergy([0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]])
        g = torch.Generator().manual_seed(0)
        x = Langevin(step_size=0.01, n_steps=500)(target, torch.zeros(1024, 2), generator=g)

    Args:
        step_size: ε > 0 (the first step when ``step_size_final`` is set).
        n_steps: number of updates, >= 1.
        noise_scale: σ; ``None`` means √(2 ε_t T), exact Langevin.
        temperature: T > 0.
        grad_clip: clamp each gradient element to [-c, c] (IGEBM's stabiliser); ``None`` = off.
        bounds: ``(low, high)`` box, floats or per-dimension sequences; ``None`` = unbounded.
        boundary: ``"clamp"`` to the box or ``"reflect"`` at its walls.
        step_size_final: if set, ε_t decays geometrically from ``step_size`` to this value
            (annealed Langevin, useful for finding low-energy points).
        compile: run the loop through ``torch.compile`` (see ``ebrl.samplers.compiled``). It is
            for small batches on a GPU (1 to 64 chains, e.g. RL action sampling), where the eager
            loop is bound by kernel launches: on CUDA each chunk of 10 steps runs as one CUDA
            graph. Same samples as ``compile=False`` for the same generator, up to float
            rounding, and the same errors. The first call for each energy structure, batch shape,
            dtype and device compiles, which takes tens of seconds; on a CPU that compile time is
            mainly what it costs, and it pays off only over many calls. The energy must be
            traceable by ``torch.compile(fullgraph=True)``: no host synchronisation, so closures
            call ``Energy.forward``, not ``Energy.__call__``.
    """

    step_size: float = 0.01
    n_steps: int = 100
    noise_scale: float | None = None
    temperature: float = 1.0
    grad_clip: float | None = None
    bounds: Bounds | None = None
    boundary: Boundary = "clamp"
    step_size_final: float | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        check_positive("step_size", self.step_size)
        check_int("n_steps", self.n_steps)
        if self.noise_scale is not None:
            check_positive("noise_scale", self.noise_scale, allow_zero=True)
        check_positive("temperature", self.temperature)
        if self.grad_clip is not None:
            check_positive("grad_clip", self.grad_clip)
        if self.step_size_final is not None:
            check_positive("step_size_final", self.step_size_final)
        if self.boundary not in ("clamp", "reflect"):
            raise ValueError(f"boundary must be 'clamp' or 'reflect', got '{self.boundary}'")
        check_bounds(self.bounds)
        if not isinstance(self.compile, bool):
            raise TypeError(f"compile must be a bool, got {type(self.compile).__name__}")

    def schedule(self) -> list[tuple[float, float]]:
        """``[(step ε_t, noise scale σ_t)]`` for every step, as Python floats."""
        n, eps0 = self.n_steps, self.step_size
        eps_n = eps0 if self.step_size_final is None else self.step_size_final
        out = []
        for t in range(n):
            eps = eps0 * (eps_n / eps0) ** (t / max(n - 1, 1))
            sigma = math.sqrt(2 * eps * self.temperature) if self.noise_scale is None else self.noise_scale
            out.append((eps, sigma))
        return out

    def _run(self, energy, x0, *, generator, record):
        if self.compile:
            return run_compiled_langevin(self, energy, x0, generator=generator, record=record)
        fn, x, gen = prepare(energy, x0, generator)
        lohi = bounds_tensors(self.bounds, x)
        clip = self.grad_clip
        schedule = self.schedule()
        top = max(max(eps, sigma) for eps, sigma in schedule)
        if top > torch.finfo(x.dtype).max:
            raise ValueError(
                f"step_size {self.step_size} (or its noise scale {top}) overflows x0's dtype {x.dtype}; "
                f"lower step_size or use a wider dtype"
            )
        sentinels: list[Tensor] = []
        energies: list[Tensor] | None = [] if record else None
        for drift, sigma in schedule:
            e, total, grad = energy_and_grad(fn, x)  # (B,), (), (B, *event)
            sentinels.append(total)
            if energies is not None:
                energies.append(e)
            if clip is not None:
                grad = grad.clamp(-clip, clip)
            noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            x = torch.add(x, grad, alpha=-drift).add_(noise, alpha=sigma)
            x = apply_bounds(x, lohi, self.boundary)
        if energies is not None:
            e, total, _ = energy_and_grad(fn, x)
            sentinels.append(total)
            energies.append(e)
        raise_if_diverged(
            "Langevin", sentinels, n_steps=self.n_steps, final=x, allow_pos_inf=False,
            hint=f"Lower step_size (now {self.step_size}) or set grad_clip.",
        )
        accepted = torch.ones(x.shape[0], device=x.device, dtype=x.dtype) if record else None
        return x, energies, accepted


@dataclass(frozen=True)
class MALA(Sampler):
    """Metropolis-adjusted Langevin: a Langevin proposal corrected by an accept/reject step.

    The proposal is y = x - ε∇E(x) + √(2εT) ξ (the step in units of E, as in ``Langevin``),
    accepted with probability

        min(1, exp((E(x) - E(y))/T) · q(x | y) / q(y | x)),  q(y | x) ∝ exp(-‖y - x + ε∇E(x)‖² / 4εT),

    so the chain leaves exp(-E/T) exactly invariant at any step size. With ``bounds`` the target
    is truncated to the box: proposals outside it are rejected (clamping or reflecting would
    break detailed balance). Proposals with energy +inf are rejected; NaN or -inf, or a NaN
    gradient at a proposal of finite energy, raise ``DivergenceError``.

    Args:
        step_size: ε > 0.
        n_steps: number of proposals per chain, >= 1.
        temperature: T > 0.
        bounds: ``(low, high)``, or ``None``.
    """

    step_size: float = 0.01
    n_steps: int = 100
    temperature: float = 1.0
    bounds: Bounds | None = None

    def __post_init__(self) -> None:
        check_positive("step_size", self.step_size)
        check_int("n_steps", self.n_steps)
        check_positive("temperature", self.temperature)
        check_bounds(self.bounds)

    def _run(self, energy, x0, *, generator, record):
        fn, x, gen = prepare(energy, x0, generator)
        lohi = bounds_tensors(self.bounds, x)
        eps, temp = self.step_size, self.temperature
        e, total, grad = energy_and_grad(fn, x)  # (B,), (), (B, *event)
        sentinels, energies = [total], ([e] if record else None)
        n_accepted = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for _ in range(self.n_steps):
            noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            y = x - eps * grad + math.sqrt(2 * eps * temp) * noise
            e_y, total_y, grad_y = energy_and_grad(fn, y)
            # A NaN gradient at a proposal of finite energy is divergence too (it would make log_alpha NaN, a
            # silent rejection): it turns the sentinel NaN. Gradients at +inf proposals, which are rejected, are not
            # looked at. Free: no synchronisation.
            grad_nan = grad_y.isnan().flatten(1).any(1) & (e_y != math.inf)  # (B, *event) -> (B,)
            sentinels.append(torch.where(grad_nan.any(), math.nan, total_y))
            log_q_fwd = -0.5 * per_chain(noise.square())  # log q(y|x) + const: (B,)
            log_q_bwd = -per_chain((x - y + eps * grad_y).square()) / (4 * eps * temp)  # log q(x|y)
            log_alpha = (e - e_y) / temp + log_q_bwd - log_q_fwd  # (B,)
            log_unif = torch.rand(x.shape[0], generator=gen, device=x.device, dtype=x.dtype).log()
            accept = log_unif < log_alpha  # NaN or -inf log_alpha rejects
            inside = in_bounds(y, lohi)
            if inside is not None:
                accept = accept & inside
            mask = accept.view(-1, *([1] * (x.dim() - 1)))  # (B,) -> (B, 1, ..., 1)
            x = torch.where(mask, y, x)
            grad = torch.where(mask, grad_y, grad)
            e = torch.where(accept, e_y, e)
            n_accepted += accept
            if energies is not None:
                energies.append(e)
        raise_if_diverged(
            "MALA", sentinels, n_steps=self.n_steps, final=None, allow_pos_inf=True,
            hint=f"The energy (NaN or -inf) or its gradient (NaN) failed at a proposal; check the energy or lower "
            f"step_size (now {eps}).",
        )
        accepted = n_accepted / self.n_steps if record else None
        return x, energies, accepted
