"""Hamiltonian Monte Carlo."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ebrl._checks import check_int, check_positive
from ebrl.samplers.base import (
    Bounds,
    Sampler,
    bounds_tensors,
    check_bounds,
    energy_and_grad,
    in_bounds,
    per_chain,
    prepare,
    raise_if_diverged,
)


@dataclass(frozen=True)
class HMC(Sampler):
    """Hamiltonian Monte Carlo: leapfrog trajectories with a Metropolis correction.

    Each of ``n_steps`` iterations draws a momentum p ~ N(0, mT I), integrates Hamilton's
    equations for H(x, p) = E(x) + ‖p‖²/2m with ``n_leapfrog`` leapfrog steps of size ε, and
    accepts the endpoint with probability min(1, exp((H_start - H_end)/T)); the joint target
    exp(-H/T) has exp(-E/T) as its marginal. As in ``Langevin``, ε is in units of E and the
    temperature only scales the momentum. The gradient at the current state is
    carried between iterations, so one iteration costs ``n_leapfrog`` gradient evaluations.
    With ``bounds`` the target is truncated to the box (endpoints outside are rejected).
    Endpoints of energy +inf are rejected; NaN or -inf energies, or a NaN gradient on a
    trajectory that ends at finite energy, raise ``DivergenceError`` (so does a trajectory that
    crosses a region of +inf energy, whose gradient there is NaN or infinite: use ``bounds`` for
    hard walls).

    Args:
        step_size: leapfrog ε > 0.
        n_leapfrog: leapfrog steps per trajectory, >= 1.
        n_steps: number of trajectories (Metropolis steps) per chain, >= 1.
        mass: scalar mass m > 0.
        temperature: T > 0.
        bounds: ``(low, high)``, or ``None``.
    """

    step_size: float = 0.1
    n_leapfrog: int = 10
    n_steps: int = 100
    mass: float = 1.0
    temperature: float = 1.0
    bounds: Bounds | None = None

    def __post_init__(self) -> None:
        check_positive("step_size", self.step_size)
        check_int("n_leapfrog", self.n_leapfrog)
        check_int("n_steps", self.n_steps)
        check_positive("mass", self.mass)
        check_positive("temperature", self.temperature)
        check_bounds(self.bounds)

    def _run(self, energy, x0, *, generator, record):
        fn, x, gen = prepare(energy, x0, generator)
        lohi = bounds_tensors(self.bounds, x)
        eps, m, temp = self.step_size, self.mass, self.temperature
        e, total, grad = energy_and_grad(fn, x)  # (B,), (), (B, *event)
        sentinels, energies = [total], ([e] if record else None)
        n_accepted = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for _ in range(self.n_steps):
            p = math.sqrt(m * temp) * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            h_start = e + per_chain(p.square()) / (2 * m)  # (B,)
            q, g = x, grad
            p = p - 0.5 * eps * g  # half step in momentum
            grad_nan = torch.zeros(x.shape[0], device=x.device, dtype=torch.bool)  # (B,)
            for k in range(self.n_leapfrog):
                q = q + (eps / m) * p  # full step in position
                e_q, total_q, g = energy_and_grad(fn, q)
                grad_nan = grad_nan | g.isnan().flatten(1).any(1)  # (B, *event) -> (B,)
                p = p - (eps if k < self.n_leapfrog - 1 else 0.5 * eps) * g
            # A NaN gradient on a trajectory that ends at finite energy is divergence too (it would make h_end NaN,
            # a silent rejection): it turns the sentinel NaN. Free: no synchronisation.
            sentinels.append(torch.where((grad_nan & (e_q != math.inf)).any(), math.nan, total_q))
            h_end = e_q + per_chain(p.square()) / (2 * m)
            log_unif = torch.rand(x.shape[0], generator=gen, device=x.device, dtype=x.dtype).log()
            accept = log_unif < (h_start - h_end) / temp  # NaN rejects
            inside = in_bounds(q, lohi)
            if inside is not None:
                accept = accept & inside
            mask = accept.view(-1, *([1] * (x.dim() - 1)))  # (B,) -> (B, 1, ..., 1)
            x = torch.where(mask, q, x)
            grad = torch.where(mask, g, grad)
            e = torch.where(accept, e_q, e)
            n_accepted += accept
            if energies is not None:
                energies.append(e)
        raise_if_diverged(
            "HMC", sentinels, n_steps=self.n_steps, final=None, allow_pos_inf=True,
            hint=f"A leapfrog trajectory blew up; lower step_size (now {eps}) or n_leapfrog.",
        )
        accepted = n_accepted / self.n_steps if record else None
        return x, energies, accepted
