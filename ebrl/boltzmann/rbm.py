"""Restricted Boltzmann machines: binary-binary (``BernoulliRBM``) and Gaussian-binary (``GaussianBernoulliRBM``)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ebrl._checks import check_int, check_positive, resolve_generator
from ebrl.boltzmann._utils import bernoulli
from ebrl.boltzmann.base import BoltzmannModel


def _init_weight(n_visible: int, n_hidden: int, init_std: float, generator: torch.Generator | None) -> Tensor:
    gen = resolve_generator(generator, torch.device("cpu"))
    return init_std * torch.randn(n_visible, n_hidden, generator=gen, dtype=torch.get_default_dtype())


class BernoulliRBM(BoltzmannModel):
    """A restricted Boltzmann machine with binary visible and binary hidden units.

    Energy and free energy (p(v) ∝ exp(-F(v)), the library's sign)::

        E(v, h) = -bᵀv - cᵀh - vᵀWh,            v ∈ {0,1}^V, h ∈ {0,1}^H
        F(v)    = -bᵀv - Σ_j softplus(c_j + (vW)_j)

    with conditionals p(h_j = 1 | v) = σ(c_j + (vW)_j) and p(v_i = 1 | h) = σ(b_i + (Wh)_i).

    Example::

        from ebrl.boltzmann import BernoulliRBM, ais_log_partition, log_likelihood
        g = torch.Generator().manual_seed(0)
        rbm = BernoulliRBM(n_visible=64, n_hidden=128, generator=g).fit(X, method="pcd", epochs=20, generator=g)
        log_z, stderr = ais_log_partition(rbm, n_chains=256, n_temperatures=10_000, data=X, generator=g)
        ll = log_likelihood(rbm, X_test, log_z).mean()

    Args:
        n_visible: V >= 1.
        n_hidden: H >= 1.
        init_std: standard deviation of the initial weights (biases start at zero), >= 0.
        generator: draws the initial weights (a fresh OS-seeded one when ``None``).

    Attributes:
        weight: W, ``(V, H)``.
        visible_bias: b, ``(V,)``.
        hidden_bias: c, ``(H,)``.
    """

    visible_values: ClassVar[str] = "binary"

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.n_visible = check_int("n_visible", n_visible)
        self.n_hidden = check_int("n_hidden", n_hidden)
        self.init_std = check_positive("init_std", init_std, allow_zero=True)
        self.event_shape = (self.n_visible,)
        self.weight = nn.Parameter(_init_weight(self.n_visible, self.n_hidden, self.init_std, generator))
        self.visible_bias = nn.Parameter(torch.zeros(self.n_visible))
        self.hidden_bias = nn.Parameter(torch.zeros(self.n_hidden))

    def get_config(self) -> dict[str, Any]:
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden, "init_std": self.init_std}

    def forward(self, v: Tensor) -> Tensor:
        a = torch.addmm(self.hidden_bias, v, self.weight)  # (B, H)
        return -(v @ self.visible_bias) - F.softplus(a).sum(1)

    def energy(self, v: Tensor, h: Tensor) -> Tensor:
        """The joint energy E(v, h) ``(B,)`` of ``v (B, V)`` and ``h (B, H)``."""
        return -(v @ self.visible_bias) - (h @ self.hidden_bias) - ((v @ self.weight) * h).sum(1)

    def hidden_mean(self, v: Tensor) -> Tensor:
        """p(h = 1 | v), ``(B, H)``."""
        return torch.addmm(self.hidden_bias, v, self.weight).sigmoid_()

    def visible_mean(self, h: Tensor) -> Tensor:
        """p(v = 1 | h), ``(B, V)``."""
        return torch.addmm(self.visible_bias, h, self.weight.T).sigmoid_()

    def sample_hidden(self, v: Tensor, *, generator: torch.Generator) -> Tensor:
        """h ~ p(h | v), ``(B, H)`` of 0/1 values."""
        return bernoulli(self.hidden_mean(v), generator)

    def sample_visible(self, h: Tensor, *, generator: torch.Generator) -> Tensor:
        """v ~ p(v | h), ``(B, V)`` of 0/1 values."""
        return bernoulli(self.visible_mean(h), generator)

    def gibbs_step(self, v: Tensor, *, generator: torch.Generator) -> Tensor:
        """One block-Gibbs step v → h → v'."""
        return self.sample_visible(self.sample_hidden(v, generator=generator), generator=generator)

    def random_visible(self, n: int, *, generator: torch.Generator) -> Tensor:
        """Uniform random binary states ``(n, V)``."""
        p = self.visible_bias
        return bernoulli(torch.full((n, self.n_visible), 0.5, device=p.device, dtype=p.dtype), generator)

    def chain_start(self, v: Tensor, *, generator: torch.Generator) -> Tensor:
        # The chains of a BernoulliRBM hold hidden states h ~ p(h | v), as in scikit-learn.
        return self.sample_hidden(v, generator=generator)

    def cd_gradients(
        self, v_pos: Tensor, chains: Tensor | None, *, k: int, generator: torch.Generator, loss: bool = True
    ) -> tuple[Tensor | None, Tensor]:
        """CD-k / PCD in closed form; the chains hold hidden states. See ``BoltzmannModel.cd_gradients``.

        With batch means over the data (+, B rows) and the chains (-, M rows), the gradient of
        mean F(v₊) - mean F(v₋) is::

            ∂W = <v hᵀ>₋ - <v hᵀ>₊,   ∂b = <v>₋ - <v>₊,   ∂c = <h>₋ - <h>₊,

        where h enters as p(h = 1 | v), and the chains' new hidden states are drawn from the same
        p(h | v₋) (PCD with hidden-state chains, Tieleman 2008). Written in place into ``.grad``.

        The closed form needs no autograd, so it runs under ``torch.inference_mode`` (fewer
        dispatcher layers per kernel: about a tenth of a small model's step): the chains and the
        loss it returns are inference tensors (read them freely; ``clone()`` one outside
        inference mode to modify it in place). The gradients are written into ``.grad`` tensors
        made outside it.
        """
        w, b, c = self.weight, self.visible_bias, self.hidden_bias
        g_w, g_b, g_c = w.grad, b.grad, c.grad
        if g_w is None or g_b is None or g_c is None:
            g_w, g_b, g_c = _grad(w), _grad(b), _grad(c)
        with torch._C._InferenceMode(True):  # torch.inference_mode()'s guard, without its ~3 µs of Python
            return self._cd_closed_form(
                v_pos, chains, k=k, generator=generator, loss=loss, params=(w, b, c), grads=(g_w, g_b, g_c)
            )

    def _cd_closed_form(
        self,
        v_pos: Tensor,
        chains: Tensor | None,
        *,
        k: int,
        generator: torch.Generator,
        loss: bool,
        params: tuple[Tensor, Tensor, Tensor],
        grads: tuple[Tensor, Tensor, Tensor],
    ) -> tuple[Tensor | None, Tensor]:
        """The body of ``cd_gradients``: ``params`` are W, b and c, and ``grads`` their ``.grad``, written here.

        With the batch's B rows and the M chains stacked, ``vv = [v₊; v₋] (B+M, V)`` and
        ``hh = p(h | vv) (B+M, H)``, every term is a product with the signed weights
        ``s = [-1/B, ..., -1/B, 1/M, ..., 1/M] (B+M,)``::

            ∂W = vvᵀ diag(s) hh,   ∂b = vvᵀ s,   ∂c = hhᵀ s,

        so one matrix product gives both phases' hidden means and three more give the gradients. The
        chains' last sweep needs p(h | v₋) before p(h | v₊) is known only under PCD; CD-k starts its
        chains from h ~ p(h | v₊), so it computes the positive phase first (same formulas).
        """
        w, b, c = params
        n_pos, n_visible = v_pos.shape
        h_pos = a_pos = None
        if chains is None:  # CD-k: the chains start at h ~ p(h | v₊)
            a_pos = torch.addmm(c, v_pos, w)  # (B, H); kept for the loss
            h_pos = torch.sigmoid(a_pos) if loss else a_pos.sigmoid_()
            h = bernoulli(h_pos, generator)
        else:
            h = chains  # (M, H)
        for _ in range(k - 1):  # every sweep but the last: h → v → h
            h = bernoulli(torch.addmm(c, bernoulli(F.linear(h, w, b).sigmoid_(), generator), w).sigmoid_(), generator)
        n_neg = h.shape[0]
        # One draw of uniforms for the last sweep's two samples: v₋ (first V columns) and the new chains.
        u = torch.rand((n_neg, n_visible + self.n_hidden), generator=generator, device=w.device, dtype=w.dtype)
        p_neg = F.linear(h, w, b).sigmoid_()  # (M, V): p(v = 1 | h) = σ(b + h Wᵀ)
        vv = torch.cat((v_pos, torch.lt(u[:, :n_visible], p_neg, out=p_neg)))  # (B+M, V): [v₊; v₋ ~ p(v | h)]
        rows = slice(n_pos, None) if h_pos is not None else slice(None)  # CD-k has p(h | v₊) already
        a = torch.addmm(c, vv[rows], w)  # (B+M, H) or (M, H)
        hh = torch.sigmoid(a) if loss else a.sigmoid_()
        if h_pos is not None:
            hh = torch.cat((h_pos, hh))  # (B+M, H)
        # The new chains h ~ p(h | v₋), written over the uniforms they use: an (M, H) view of u.
        new_chains = torch.lt(u[:, n_visible:], hh[n_pos:], out=u[:, n_visible:])
        s = self._signed_weights(n_pos, n_neg, w)  # (B+M,)
        g_w, g_b, g_c = grads
        torch.mv(hh.t(), s, out=g_c)  # <h>₋ - <h>₊
        torch.mv(vv.t(), s, out=g_b)  # <v>₋ - <v>₊
        torch.mm(vv.t(), hh.mul_(s.unsqueeze(1)), out=g_w)  # <v hᵀ>₋ - <v hᵀ>₊
        # A NaN or inf in b reaches no other term (u < σ(NaN) is false: the samples just turn 0), so pass it on
        # (0 · b) for fit's gradient check, as autograd would; W and c reach every term through h.
        g_b.add_(b, alpha=0.0)
        if not loss:
            return None, new_chains
        # mean F(v₊) - mean F(v₋) with F(v) = -bᵀv - Σ_j softplus(a_j): bᵀ∂b plus the softplus terms' gap.
        a_all = a if a_pos is None else torch.cat((a_pos, a))  # (B+M, H)
        return torch.dot(b, g_b).add_(torch.dot(F.softplus(a_all).sum(1), s)), new_chains

    def _signed_weights(self, n_pos: int, n_neg: int, like: Tensor) -> Tensor:
        """``[-1/B] * B + [1/M] * M``, ``(B+M,)``, on ``like``'s device and dtype (cached: batch sizes repeat)."""
        cache: dict[tuple[Any, ...], Tensor] = self.__dict__.setdefault("_signed_weights_cache", {})
        key = (n_pos, n_neg, like.device, like.dtype)
        s = cache.get(key)
        if s is None:
            if len(cache) > 8:
                cache.clear()
            s = torch.full((n_pos + n_neg,), 1.0 / n_neg, device=like.device, dtype=like.dtype)
            s[:n_pos] = -1.0 / n_pos
            cache[key] = s
        return s


def _grad(p: Tensor) -> Tensor:
    """``p.grad``, created (zeros) on first use: the closed-form gradients are written into it."""
    if p.grad is None:
        p.grad = torch.zeros_like(p)
    return p.grad


class GaussianBernoulliRBM(BoltzmannModel):
    """An RBM with Gaussian visible units (variance σ², fixed or learned) and binary hidden units.

    With the parametrisation of Cho, Ilin & Raiko (2011)::

        E(v, h) = Σ_i (v_i - b_i)² / (2σ_i²) - cᵀh - Σ_ij (v_i / σ_i²) W_ij h_j
        F(v)    = Σ_i (v_i - b_i)² / (2σ_i²) - Σ_j softplus(c_j + ((v / σ²) W)_j)

    so p(h_j = 1 | v) = σ(c_j + ((v/σ²) W)_j) and p(v | h) = N(b + Wh, diag σ²). Learning σ by
    CD is known to be fragile; standardise the data and keep σ fixed at 1 unless you need it.

    Args:
        n_visible: V >= 1.
        n_hidden: H >= 1.
        learn_sigma: learn log σ (a parameter ``log_sigma``) or keep it fixed (a buffer).
        sigma: the initial (or fixed) standard deviation of every visible unit, > 0.
        init_std: standard deviation of the initial weights, >= 0.
        generator: draws the initial weights (a fresh OS-seeded one when ``None``).

    Attributes:
        weight: W ``(V, H)``; visible_bias: b ``(V,)``; hidden_bias: c ``(H,)``;
        log_sigma: log σ ``(V,)``.
    """

    visible_values: ClassVar[str] = "real"

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        learn_sigma: bool = False,
        sigma: float = 1.0,
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.n_visible = check_int("n_visible", n_visible)
        self.n_hidden = check_int("n_hidden", n_hidden)
        if not isinstance(learn_sigma, bool):
            raise TypeError(f"learn_sigma must be a bool, got {type(learn_sigma).__name__}")
        self.learn_sigma = learn_sigma
        self.sigma = check_positive("sigma", sigma)
        self.init_std = check_positive("init_std", init_std, allow_zero=True)
        self.event_shape = (self.n_visible,)
        self.weight = nn.Parameter(_init_weight(self.n_visible, self.n_hidden, self.init_std, generator))
        self.visible_bias = nn.Parameter(torch.zeros(self.n_visible))
        self.hidden_bias = nn.Parameter(torch.zeros(self.n_hidden))
        log_sigma = torch.full((self.n_visible,), math.log(self.sigma))
        if self.learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def get_config(self) -> dict[str, Any]:
        return {
            "n_visible": self.n_visible, "n_hidden": self.n_hidden, "learn_sigma": self.learn_sigma,
            "sigma": self.sigma, "init_std": self.init_std,
        }

    @property
    def variance(self) -> Tensor:
        """σ², ``(V,)``."""
        return torch.exp(2 * self.log_sigma)

    def forward(self, v: Tensor) -> Tensor:
        var = self.variance
        a = torch.addmm(self.hidden_bias, v / var, self.weight)  # (B, H)
        return ((v - self.visible_bias).square() / (2 * var)).sum(1) - F.softplus(a).sum(1)

    def energy(self, v: Tensor, h: Tensor) -> Tensor:
        """The joint energy E(v, h) ``(B,)`` of ``v (B, V)`` and ``h (B, H)``."""
        var = self.variance
        quad = ((v - self.visible_bias).square() / (2 * var)).sum(1)
        return quad - (h @ self.hidden_bias) - (((v / var) @ self.weight) * h).sum(1)

    def hidden_mean(self, v: Tensor) -> Tensor:
        """p(h = 1 | v), ``(B, H)``."""
        return torch.addmm(self.hidden_bias, v / self.variance, self.weight).sigmoid_()

    def visible_mean(self, h: Tensor) -> Tensor:
        """E[v | h] = b + Wh, ``(B, V)``."""
        return torch.addmm(self.visible_bias, h, self.weight.T)

    def sample_hidden(self, v: Tensor, *, generator: torch.Generator) -> Tensor:
        """h ~ p(h | v), ``(B, H)`` of 0/1 values."""
        return bernoulli(self.hidden_mean(v), generator)

    def sample_visible(self, h: Tensor, *, generator: torch.Generator) -> Tensor:
        """v ~ N(b + Wh, diag σ²), ``(B, V)``."""
        mean = self.visible_mean(h)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean.addcmul_(noise, self.log_sigma.exp())

    def gibbs_step(self, v: Tensor, *, generator: torch.Generator) -> Tensor:
        """One block-Gibbs step v → h → v'."""
        return self.sample_visible(self.sample_hidden(v, generator=generator), generator=generator)

    def random_visible(self, n: int, *, generator: torch.Generator) -> Tensor:
        """Draws from N(b, diag σ²), ``(n, V)``: the model with its couplings switched off."""
        b = self.visible_bias
        noise = torch.randn((n, self.n_visible), generator=generator, device=b.device, dtype=b.dtype)
        return noise.mul_(self.log_sigma.exp()).add_(b)
