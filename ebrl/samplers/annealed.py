"""Annealed Langevin dynamics over a noise-conditional energy (Song & Ermon 2019)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ebrl._checks import (
    DivergenceError,
    check_finite,
    check_int,
    check_positive,
    check_tensor,
    resolve_generator,
)
from ebrl.energy.noise_conditional import NoiseConditionalEnergy, NoiseConditionalEnergyFn, check_sigmas
from ebrl.samplers.base import SamplerTrace, energy_and_grad


@dataclass(frozen=True)
class AnnealedLangevin:
    """Annealed Langevin dynamics: Langevin on p_σ for each noise level σ_1 > ... > σ_L in turn.

    For a noise-conditional energy E(x, σ) (``ebrl.energy.NoiseConditionalEnergy``), each level i
    runs ``n_steps_each`` unadjusted Langevin steps on exp(-E(·, σ_i)/T) with the step scaled to
    the level::

        α_i = step_size · (σ_i / σ_L)²
        x ← x - α_i ∇_x E(x, σ_i) + √(2 α_i T) · ξ,    ξ ~ N(0, I)

    and, with ``denoise=True``, ends with one Tweedie step at the last level,
    x ← x - σ_L² ∇_x E(x, σ_L), the posterior mean E[x_clean | x] (Jolicoeur-Martineau et al.
    2021), which removes the σ_L noise that the last level leaves in the samples.

    Why this recipe (rather than one Langevin chain on a single energy): at a large σ the smoothed
    density p_σ is nearly Gaussian, so chains started anywhere mix between modes and settle in
    proportion to the modes' masses; each smaller σ then refines the samples from the level before,
    whose distribution is already close to the new target. A single chain on the data energy needs
    exponentially long to cross between separated modes, and gets the mode weights wrong.

    The step size is in units of E (the step multiplies ∇E); the temperature only scales the noise.
    With α_i ∝ σ_i², the signal-to-noise ratio of the update is the same at every level (Song &
    Ermon's choice). ``step_size`` is α_L, the step at the last (smallest) level.

    The call has the samplers' contract with a noise-conditional energy in place of an energy::

        x = AnnealedLangevin(sigmas, n_steps_each=100, step_size=1e-4)(energy, x0, generator=g)

    where ``energy`` is a ``NoiseConditionalEnergy``, ``model.given(labels)`` for class-conditional
    samples, or any function ``(x (B, *event), sigma (B,)) -> (B,)``. The loop makes no host
    synchronisation and no per-chain Python loop; the only synchronisation checks, after the loop,
    that every chain stayed finite, and a divergence raises ``DivergenceError`` naming the step
    and the noise level.

    Args:
        sigmas: the noise levels σ_1 > ... > σ_L > 0, largest first (e.g. ``geometric_sigmas``).
        n_steps_each: Langevin steps per level, >= 1.
        step_size: α_L > 0, the step at the last level.
        temperature: T > 0.
        denoise: end with the Tweedie step at σ_L.
    """

    sigmas: tuple[float, ...]
    n_steps_each: int = 100
    step_size: float = 1e-4
    temperature: float = 1.0
    denoise: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigmas", check_sigmas("sigmas", self.sigmas))
        check_int("n_steps_each", self.n_steps_each)
        check_positive("step_size", self.step_size)
        check_positive("temperature", self.temperature)
        if not isinstance(self.denoise, bool):
            raise TypeError(f"denoise must be a bool, got {type(self.denoise).__name__}")

    @property
    def n_steps(self) -> int:
        """Langevin updates in all, ``len(sigmas) * n_steps_each`` (the Tweedie step not counted)."""
        return len(self.sigmas) * self.n_steps_each

    def schedule(self) -> list[tuple[float, float, float]]:
        """``[(σ_i, step α_i, noise scale √(2 α_i T))]`` per level, as Python floats."""
        last = self.sigmas[-1]
        out = []
        for sigma in self.sigmas:
            alpha = self.step_size * (sigma / last) ** 2
            out.append((sigma, alpha, (2 * alpha * self.temperature) ** 0.5))
        return out

    def __call__(
        self, energy: NoiseConditionalEnergyFn, x0: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Run the chains from ``x0 (B, *event)`` through every level; return the final states ``(B, *event)``."""
        x, _ = self._run(energy, x0, generator=generator, record=False)
        return x

    def trace(
        self, energy: NoiseConditionalEnergyFn, x0: Tensor, *, generator: torch.Generator | None = None
    ) -> SamplerTrace:
        """Run like ``__call__`` and return a ``SamplerTrace``.

        ``energies`` is ``(n_steps + 1, B)``: row k is E(x_k, σ) at the level of step k + 1 (the last
        row at σ_L), so energies are comparable within a level only. ``acceptance_rate`` is all
        ones: unadjusted Langevin accepts every move.
        """
        x, energies = self._run(energy, x0, generator=generator, record=True)
        assert energies is not None
        accepted = torch.ones(x.shape[0], device=x.device, dtype=x.dtype)
        return SamplerTrace(x, torch.stack(energies), accepted)

    def _run(
        self, energy: NoiseConditionalEnergyFn, x0: Tensor, *, generator: torch.Generator | None, record: bool
    ) -> tuple[Tensor, list[Tensor] | None]:
        if not callable(energy):
            raise TypeError(
                f"energy must be a NoiseConditionalEnergy or a function (x, sigma) -> (B,), got {type(energy).__name__}"
            )
        check_tensor("x0", x0, min_dim=1)
        if isinstance(energy, NoiseConditionalEnergy):
            energy.check_input(x0)
            energy = energy.forward
        check_finite("x0", x0)
        gen = resolve_generator(generator, x0.device)
        x = x0.detach()
        batch = x.shape[0]
        sentinels: list[Tensor] = []
        energies: list[Tensor] | None = [] if record else None
        levels = []
        for sigma, alpha, noise_scale in self.schedule():
            level = x.new_full((batch,), sigma)  # (B,)
            levels.append(level)

            def fn(z: Tensor, level: Tensor = level) -> Tensor:
                return energy(z, level)

            for _ in range(self.n_steps_each):
                e, total, grad = energy_and_grad(fn, x)  # (B,), (), (B, *event)
                sentinels.append(total)
                if energies is not None:
                    energies.append(e)
                noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
                x = torch.add(x, grad, alpha=-alpha).add_(noise, alpha=noise_scale)
        last = levels[-1]
        e, total, grad = energy_and_grad(lambda z: energy(z, last), x)  # at the final state, σ_L
        sentinels.append(total)
        if energies is not None:
            energies.append(e)
        if self.denoise:
            x = x - self.sigmas[-1] ** 2 * grad
        self._raise_if_diverged(sentinels, x)
        return x, energies

    def _raise_if_diverged(self, sentinels: list[Tensor], x: Tensor) -> None:
        """Check the per-step energy sums and the final states once; raise naming the first bad step."""
        s = torch.stack(sentinels)  # (n_steps + 1,): sentinel k is the energy sum after k updates
        bad = torch.cat([~torch.isfinite(s), ~torch.isfinite(x).all().reshape(1)])  # (n_steps + 2,)
        if not bool(bad.any()):  # the only synchronisation of the whole run
            return
        step = int(bad.to(torch.int8).argmax())
        if step == 0:
            raise ValueError(
                "AnnealedLangevin: the energy is not finite at x0 (at the first noise level); start the chains "
                "where E(x0, σ_1) is finite"
            )
        n = self.n_steps
        if step > n:
            where = (
                f"in the final Tweedie step at σ = {self.sigmas[-1]:.4g}" if self.denoise
                else f"at step {n} of {n} (noise level {len(self.sigmas)} of {len(self.sigmas)})"
            )
            raise DivergenceError(
                f"AnnealedLangevin diverged {where}: a chain reached a non-finite state (NaN or inf). "
                f"Lower step_size (now {self.step_size})."
            )
        i = (step - 1) // self.n_steps_each
        raise DivergenceError(
            f"AnnealedLangevin diverged at step {step} of {n} (noise level {i + 1} of {len(self.sigmas)}, "
            f"σ = {self.sigmas[i]:.4g}): a chain reached a non-finite energy or state (NaN or inf). "
            f"Lower step_size (now {self.step_size}; the step at level i is step_size · (σ_i / σ_L)²)."
        )
