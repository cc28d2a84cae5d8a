"""A fully connected (fully visible) binary Boltzmann machine."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ebrl._checks import check_int, check_positive, resolve_generator
from ebrl.boltzmann._utils import bernoulli
from ebrl.boltzmann.base import BoltzmannModel


class BoltzmannMachine(BoltzmannModel):
    """A fully connected Boltzmann machine over binary units s ∈ {0,1}^N::

        E(s) = -½ sᵀJs - bᵀs,     J symmetric with a zero diagonal,

    so p(s_i = 1 | s_-i) = σ(b_i + Σ_j J_ij s_j). There are no hidden units: the free energy is
    the energy. On a fully connected graph every pair of units interacts, so the only valid Gibbs
    schedule updates one unit at a time; ``gibbs_step`` is one sequential sweep over the units
    (a Python loop over units, vectorised over chains).

    J is parametrised by the strict upper triangle of ``weight`` (the lower triangle and the
    diagonal are ignored and get zero gradient), so it stays symmetric with zero diagonal under
    any update.

    Args:
        n_units: N >= 1.
        init_std: standard deviation of the initial couplings, >= 0.
        generator: draws the initial couplings (a fresh OS-seeded one when ``None``).

    Attributes:
        weight: raw parameter ``(N, N)``; use ``coupling`` for J.
        bias: b, ``(N,)``.
    """

    visible_values: ClassVar[str] = "binary"

    def __init__(self, n_units: int, *, init_std: float = 0.01, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.n_units = check_int("n_units", n_units)
        self.n_visible = self.n_units
        self.init_std = check_positive("init_std", init_std, allow_zero=True)
        self.event_shape = (self.n_units,)
        gen = resolve_generator(generator, torch.device("cpu"))
        w = self.init_std * torch.randn(n_units, n_units, generator=gen, dtype=torch.get_default_dtype())
        self.weight = nn.Parameter(torch.triu(w, diagonal=1))
        self.bias = nn.Parameter(torch.zeros(n_units))

    def get_config(self) -> dict[str, Any]:
        return {"n_units": self.n_units, "init_std": self.init_std}

    @property
    def coupling(self) -> Tensor:
        """J, ``(N, N)``: symmetric, zero diagonal."""
        upper = torch.triu(self.weight, diagonal=1)
        return upper + upper.T

    def forward(self, s: Tensor) -> Tensor:
        return -0.5 * ((s @ self.coupling) * s).sum(1) - s @ self.bias

    def gibbs_step(self, v: Tensor, *, generator: torch.Generator) -> Tensor:
        """One sequential sweep s_1, ..., s_N, each drawn from p(s_i | s_-i)."""
        j, b = self.coupling, self.bias
        s = v.clone()
        u = torch.rand(s.shape, generator=generator, device=s.device, dtype=s.dtype)  # (B, N), one per unit
        for i in range(self.n_units):
            p = torch.sigmoid(torch.mv(s, j[i]).add_(b[i]))  # (B,); J symmetric, J_ii = 0: s_i itself is ignored
            s[:, i] = torch.lt(u[:, i], p)
        return s

    def random_visible(self, n: int, *, generator: torch.Generator) -> Tensor:
        """Uniform random binary states ``(n, N)``."""
        b = self.bias
        return bernoulli(torch.full((n, self.n_units), 0.5, device=b.device, dtype=b.dtype), generator)
