"""Partition functions and likelihoods of Boltzmann models: exact enumeration and AIS.

With p(v) = exp(-F(v)) / Z, the log-likelihood of data is -F(v) - log Z. ``exact_log_partition``
sums over every configuration of the smaller layer (small models only); ``ais_log_partition``
estimates log Z by annealed importance sampling (Neal 2001) from a base-rate model, as in
Salakhutdinov & Murray (2008), for models of any size.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ebrl._checks import as_float_tensor, check_int, check_probability, resolve_generator
from ebrl.boltzmann._utils import Uniforms, as_data, bernoulli, binary_configurations
from ebrl.boltzmann.base import BoltzmannModel
from ebrl.boltzmann.bm import BoltzmannMachine
from ebrl.boltzmann.rbm import BernoulliRBM, GaussianBernoulliRBM

Schedule = Literal["linear", "piecewise"]

_ROWS_PER_CHUNK = 1 << 22  # (configurations x units) elements evaluated at once by the enumerations


def _float64(model: BoltzmannModel) -> BoltzmannModel:
    """A float64 copy of ``model`` without gradients (the original is left as it is)."""
    return copy.deepcopy(model).to(torch.float64).requires_grad_(False)


def _logsumexp_over_configurations(n: int, fn: Callable[[Tensor], Tensor], *, device: torch.device) -> float:
    """log Σ_x exp(fn(x)) over the 2**n binary configurations x of n units, chunked, in float64."""
    chunk = max(1, _ROWS_PER_CHUNK // max(n, 1))
    parts = []
    for start in range(0, 1 << n, chunk):
        x = binary_configurations(n, start, min(start + chunk, 1 << n), device=device, dtype=torch.float64)
        parts.append(torch.logsumexp(fn(x), 0))
    return float(torch.logsumexp(torch.stack(parts), 0))


def exact_log_partition(model: BoltzmannModel, *, max_units: int = 25) -> float:
    """log Z by summing over every configuration of the smaller layer, in float64.

    - ``BernoulliRBM``: over h ∈ {0,1}^H when H <= V, with
      log Z = log Σ_h exp(cᵀh + Σ_i softplus(b_i + (Wh)_i)); otherwise over v, with -F(v).
    - ``GaussianBernoulliRBM``: over h (the visibles are integrated in closed form),
      log Z = Σ_i ½ log(2πσ_i²) + log Σ_h exp(cᵀh + Σ_i ((b_i + (Wh)_i)² - b_i²) / (2σ_i²)).
    - ``BoltzmannMachine``: over all 2**N states, with -E(s).

    Vectorised and chunked (memory stays bounded), so 2**20 configurations take about a second.

    Args:
        model: the model.
        max_units: refuse layers larger than this (2**max_units configurations), >= 1.

    Raises:
        ValueError: the layer to enumerate has more than ``max_units`` units.
        TypeError: not a supported model.
    """
    check_int("max_units", max_units)
    if not isinstance(model, (BernoulliRBM, GaussianBernoulliRBM, BoltzmannMachine)):
        raise TypeError(f"model must be a BernoulliRBM, GaussianBernoulliRBM or BoltzmannMachine for "
                        f"exact_log_partition, got {type(model).__name__}")
    m = _float64(model)
    device = next(m.parameters()).device
    with torch.no_grad():
        if isinstance(m, BernoulliRBM):
            n = min(m.n_visible, m.n_hidden)
            _check_enumerable(n, max_units, "the smaller layer of the RBM")
            if m.n_hidden <= m.n_visible:
                w, b, c = m.weight, m.visible_bias, m.hidden_bias
                return _logsumexp_over_configurations(
                    n, lambda h: h @ c + F.softplus(torch.addmm(b, h, w.T)).sum(1), device=device
                )
            return _logsumexp_over_configurations(n, lambda v: -m.forward(v), device=device)
        if isinstance(m, GaussianBernoulliRBM):
            _check_enumerable(m.n_hidden, max_units, "the hidden layer of the Gaussian-Bernoulli RBM")
            w, b, c, var = m.weight, m.visible_bias, m.hidden_bias, m.variance

            def log_weight(h: Tensor) -> Tensor:
                mean = torch.addmm(b, h, w.T)  # (M, V): b + Wh
                return h @ c + ((mean.square() - b.square()) / (2 * var)).sum(1)

            gauss = 0.5 * float(torch.log(2 * math.pi * var).sum())
            return gauss + _logsumexp_over_configurations(m.n_hidden, log_weight, device=device)
        # BoltzmannMachine
        _check_enumerable(m.n_units, max_units, "the Boltzmann machine")
        return _logsumexp_over_configurations(m.n_units, lambda s: -m.forward(s), device=device)


def _check_enumerable(n: int, max_units: int, what: str) -> None:
    if n > max_units:
        raise ValueError(
            f"{what} has {n} units: enumerating 2**{n} configurations exceeds max_units={max_units}; "
            f"use ais_log_partition instead"
        )


def beta_schedule(n_temperatures: int, kind: Schedule = "linear") -> Tensor:
    """Inverse temperatures 0 = β_0 < β_1 < ... < β_K = 1 for AIS, ``(n_temperatures + 1,)`` float64.

    - ``"linear"``: evenly spaced.
    - ``"piecewise"``: the shape of Salakhutdinov & Murray (2008): steps of 1e-3 on [0, 0.5],
      1e-4 on [0.5, 0.9] and 1e-5 on [0.9, 1] (14,500 intermediate distributions), rescaled to
      ``n_temperatures``: 500/14500 of them on [0, 0.5], 4000/14500 on [0.5, 0.9] and the rest,
      more than two thirds, on [0.9, 1], where the distributions change fastest for trained RBMs.

    Args:
        n_temperatures: K, the number of intermediate distributions after the base (the last
            one is the model), >= 1; ``"piecewise"`` needs K >= 3.
        kind: ``"linear"`` or ``"piecewise"``.
    """
    check_int("n_temperatures", n_temperatures)
    k = n_temperatures
    if kind == "linear":
        return torch.linspace(0.0, 1.0, k + 1, dtype=torch.float64)
    if kind == "piecewise":
        if k < 3:
            raise ValueError(f"the piecewise schedule needs n_temperatures >= 3, got {k}")
        n1 = max(1, round(k * 500 / 14500))
        n2 = max(1, round(k * 4000 / 14500))
        n3 = k - n1 - n2
        return torch.cat([
            torch.linspace(0.0, 0.5, n1 + 1, dtype=torch.float64)[:-1],
            torch.linspace(0.5, 0.9, n2 + 1, dtype=torch.float64)[:-1],
            torch.linspace(0.9, 1.0, n3 + 1, dtype=torch.float64),
        ])
    raise ValueError(
        f"kind (the AIS schedule) must be 'linear' or 'piecewise' (or pass ais a tensor of inverse "
        f"temperatures as schedule), got {kind!r}"
    )


def _check_betas(betas: Tensor, n_temperatures: int) -> Tensor:
    betas = as_float_tensor("schedule", betas, dtype=torch.float64).cpu()
    if betas.dim() != 1 or betas.shape[0] != n_temperatures + 1:
        raise ValueError(
            f"schedule must hold n_temperatures + 1 = {n_temperatures + 1} inverse temperatures from 0 to 1, "
            f"got shape {tuple(betas.shape)}"
        )
    if not (bool(torch.isfinite(betas).all()) and float(betas[0]) == 0.0 and float(betas[-1]) == 1.0):
        raise ValueError("schedule must start at 0 and end at 1 and be finite")
    if bool((betas[1:] < betas[:-1]).any()):
        raise ValueError("schedule must be non-decreasing")
    return betas


class AISResult(NamedTuple):
    """The outcome of one AIS run.

    Attributes:
        log_z: the estimate log Ẑ = log Z_0 + log mean_i w_i.
        stderr: its standard error by the delta method (see ``ais``).
        log_weights: log w_i of every chain, ``(n_chains,)`` float64.
        log_z_base: log Z_0 of the base distribution (exact).
        effective_sample_size: (Σ w)² / Σ w², between 1 and ``n_chains``.
    """

    log_z: float
    stderr: float
    log_weights: Tensor
    log_z_base: float
    effective_sample_size: float


def ais(
    model: BoltzmannModel,
    n_chains: int = 100,
    n_temperatures: int = 10_000,
    *,
    schedule: Schedule | Sequence[float] | Tensor = "linear",
    data: object | None = None,
    base_rate_epsilon: float = 1e-3,
    n_workers: int = 1,
    generator: torch.Generator | None = None,
) -> AISResult:
    """Annealed importance sampling of log Z for a ``BernoulliRBM`` or a ``GaussianBernoulliRBM``.

    The intermediate distributions interpolate a base model p_0 and the RBM p_K = p,

        p*_k(v) = p*_0(v)^(1-β_k) p*(v)^β_k   (the hidden units summed out),

    and each chain carries the weight w = Π_k p*_k(v_k) / p*_{k-1}(v_k), where v_k comes from
    v_{k-1} by one block-Gibbs step that leaves p_{k-1} invariant (Neal 2001). For an RBM this is
    an RBM with scaled parameters, so

        log p*_k(v) = (1-β_k) b_0ᵀv + β_k bᵀv + Σ_j softplus(β_k (c_j + (vW)_j))   (Bernoulli),

    whose base (β = 0) is independent Bernoulli units with biases b_0 times 2^H hidden states:
    log Z_0 = H log 2 + Σ_i softplus(b_0,i). The base-rate model of Salakhutdinov & Murray
    (2008) takes b_0 from the data marginals p_i, b_0,i = log(p_i / (1 - p_i)), with p_i clipped
    to [ε, 1-ε]; without data b_0 = 0. For a Gaussian-Bernoulli RBM the base keeps the visible
    Gaussian N(b, σ²) and switches the couplings off.

    log Ẑ = log Z_0 + log mean(w) is unbiased in Z, not in log Z; it tends to underestimate
    log Z when the weights have high variance. Its standard error follows from the delta
    method: with M chains, var(Ẑ/Z_0) ≈ s²_w / M, so se(log Ẑ) ≈ s_w / (√M · mean(w)), computed
    from the normalised weights w_i / max w. It understates the error when the weights'
    distribution is heavy-tailed (a low effective sample size is the warning sign).

    The loop over temperatures is vectorised over chains, makes no host synchronisation and runs
    under ``torch.inference_mode`` (fewer dispatcher layers per kernel than ``no_grad``). It
    computes in the model's dtype (float32 is fast and accurate to about 1e-3 nats; use a
    float64 model for more) and accumulates the log-weights in float64.

    Args:
        model: a ``BernoulliRBM`` or ``GaussianBernoulliRBM``.
        n_chains: M independent AIS runs, >= 2.
        n_temperatures: K intermediate distributions, >= 1.
        schedule: ``"linear"``, ``"piecewise"`` (see ``beta_schedule``), or the inverse
            temperatures themselves, ``K + 1`` non-decreasing values from 0 to 1.
        data: Bernoulli RBMs only: training data ``(N, V)`` or its marginal means ``(V,)`` for
            the base-rate model; ``None`` gives the uniform base (b_0 = 0).
        base_rate_epsilon: ε, the clipping of the base-rate marginals, in (0, 0.5).
        n_workers: split the chains into this many groups, each run by its own thread with its
            own generator seeded from ``generator``; torch and NumPy release the GIL in their
            kernels, so on a multi-core CPU the groups run in parallel. Results depend on
            ``n_workers`` (the random streams differ), not on timing. This is the one source of
            parallelism: while ``ais`` runs, torch's intra-op thread count is set to 1 (and
            restored after), since the loop's kernels are too small to split. Workers pay off only
            when each group's kernels outweigh the Python loop, which holds the GIL between them: on
            the 64 x 64 digits RBM with 200 chains and 20,000 temperatures, one worker took 2.7 s and
            two took 5.9 s on a quiet 2-core machine (``experiments.bench_samplers --ais``).
        generator: the only source of randomness (fresh OS-seeded one when ``None``).
    """
    if not isinstance(model, (BernoulliRBM, GaussianBernoulliRBM)):
        raise TypeError(f"model must be a BernoulliRBM or GaussianBernoulliRBM for ais, got {type(model).__name__}")
    check_int("n_chains", n_chains, minimum=2)
    check_int("n_temperatures", n_temperatures)
    check_probability("base_rate_epsilon", base_rate_epsilon)
    if not 0 < base_rate_epsilon < 0.5:
        raise ValueError(f"base_rate_epsilon must be in (0, 0.5), got {base_rate_epsilon}")
    betas = beta_schedule(n_temperatures, schedule) if isinstance(schedule, str) else schedule
    beta_list = _check_betas(betas, n_temperatures).tolist()  # Python floats: no device reads in the loop
    check_int("n_workers", n_workers)
    if n_workers > n_chains:
        raise ValueError(f"n_workers must be at most n_chains = {n_chains}, got {n_workers}")
    p = next(model.parameters())
    gen = resolve_generator(generator, p.device)
    run: Callable[[int, torch.Generator], tuple[Tensor, float]]
    if isinstance(model, BernoulliRBM):
        base_bias = _base_rate_bias(model, data, base_rate_epsilon)
        run = functools.partial(_ais_bernoulli, model, base_bias, beta_list)
    else:  # GaussianBernoulliRBM
        if data is not None:
            raise ValueError("data is not used for a GaussianBernoulliRBM (its base keeps the model's "
                             "visible Gaussian); pass data=None")
        run = functools.partial(_ais_gaussian, model, beta_list)
    with _one_intra_op_thread():
        if n_workers == 1:
            with torch.inference_mode():
                log_w, log_z0 = run(n_chains, gen)
        else:
            log_w, log_z0 = _run_in_threads(run, n_chains, n_workers, gen)
    if not bool(torch.isfinite(log_w).all()):
        raise ValueError("AIS produced non-finite log-weights; check the model's parameters for NaN or inf")
    log_w = log_w.clone()  # an ordinary tensor: made in inference mode, it could not be modified in place
    log_mean_w = torch.logsumexp(log_w, 0) - math.log(n_chains)
    r = torch.exp(log_w - log_w.max())  # normalised weights, max 1: (M,)
    stderr = float(r.std() / (r.mean() * math.sqrt(n_chains)))
    ess = float(r.sum().square() / r.square().sum())
    return AISResult(log_z0 + float(log_mean_w), stderr, log_w, log_z0, ess)


@contextlib.contextmanager
def _one_intra_op_thread() -> Iterator[None]:
    """Run torch's CPU kernels on one intra-op thread inside the block, then restore the setting.

    The AIS loop launches a few small kernels per temperature; splitting each over intra-op
    threads costs far more than it gives (with 2 threads, 2 to 30 times more CPU time, measured on
    the 64 x 64 digits RBM). Parallelism comes from ``n_workers`` instead.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_in_threads(
    run: Callable[[int, torch.Generator], tuple[Tensor, float]], n_chains: int, n_workers: int, gen: torch.Generator
) -> tuple[Tensor, float]:
    """Run ``run(m, generator)`` on ``n_workers`` groups of chains in threads; concatenate the log-weights."""
    sizes = [n_chains // n_workers + (i < n_chains % n_workers) for i in range(n_workers)]
    seeds = torch.randint(2**62, (n_workers,), generator=gen, device=gen.device).tolist()
    gens = [torch.Generator(device=gen.device).manual_seed(int(seed)) for seed in seeds]

    def work(m: int, g: torch.Generator) -> tuple[Tensor, float]:
        with torch.inference_mode():  # grad mode is per thread
            return run(m, g)

    with ThreadPoolExecutor(n_workers) as pool:
        results = list(pool.map(work, sizes, gens))
    return torch.cat([log_w for log_w, _ in results]), results[0][1]


def ais_log_partition(
    model: BoltzmannModel,
    n_chains: int = 100,
    n_temperatures: int = 10_000,
    *,
    schedule: Schedule | Sequence[float] | Tensor = "linear",
    data: object | None = None,
    base_rate_epsilon: float = 1e-3,
    n_workers: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """AIS estimate of log Z and its standard error, ``(log_z, stderr)``; see ``ais``, which also
    returns the per-chain weights and the effective sample size."""
    result = ais(
        model, n_chains, n_temperatures, schedule=schedule, data=data, base_rate_epsilon=base_rate_epsilon,
        n_workers=n_workers, generator=generator,
    )
    return result.log_z, result.stderr


def _base_rate_bias(model: BernoulliRBM, data: object | None, eps: float) -> Tensor:
    """Visible biases b_0 ``(V,)`` of the base-rate model: logit of the clipped data marginals."""
    p = model.visible_bias
    if data is None:
        return torch.zeros_like(p)
    if not isinstance(data, Tensor):
        try:
            data = np.asarray(data)
        except (TypeError, ValueError) as exc:  # e.g. ragged rows
            raise TypeError(f"data must be a numeric array (N, V) or marginals (V,), got {exc}") from exc
    if data.ndim == 1:  # the marginals themselves
        marg = as_data("data", data.reshape(1, -1), width=model.n_visible, values="unit", device=p.device,
                       dtype=p.dtype)[0]
    else:
        marg = as_data("data", data, width=model.n_visible, values="unit", device=p.device, dtype=p.dtype).mean(0)
    marg = marg.clamp(eps, 1 - eps)
    return torch.log(marg) - torch.log1p(-marg)


_SIGMOID_RANGE = {torch.float32: 80.0, torch.float64: 700.0}
"""|x| below which σ(-x) is a normal (not denormal, not zero) number of the dtype."""


def _ais_bernoulli(
    model: BernoulliRBM, b0: Tensor, betas: list[float], n_chains: int, gen: torch.Generator
) -> tuple[Tensor, float]:
    """The AIS chains of a Bernoulli RBM: per-chain log-weights ``(M,)`` float64 and log Z_0.

    The hidden term of each weight increment comes from sigmoids, which the hidden draw needs
    anyway, instead of from two softplus evaluations (softplus(x) = -log σ(-x))::

        Σ_j softplus(β_k a_j) - softplus(β_{k-1} a_j) = log Π_j σ(-β_{k-1} a_j) / σ(-β_k a_j),

    which is also precise: each ratio is accurate to a few ulps whatever the size of a_j. The
    product is safe while the increment stays well inside the dtype's exponent range,
    |increment| <= max_k(β_k - β_{k-1}) Σ_j (|c_j| + Σ_i |W_ij|) < 60; beyond (very coarse
    schedules), the logs are summed instead. σ(-|a|) must stay a normal number: when the bound max_j |c_j| + Σ_i |W_ij|
    on the pre-activations a = c + vW is too large for float32, the loop runs in float64.
    """
    w, b, c = model.weight.detach(), model.visible_bias.detach(), model.hidden_bias.detach()
    reach = c.abs() + w.abs().sum(0)  # (H,): bound on |a_j| for binary v
    bound, total = float(reach.max()), float(reach.sum())
    dtype = w.dtype if w.dtype == torch.float64 or bound < _SIGMOID_RANGE[torch.float32] else torch.float64
    if bound >= _SIGMOID_RANGE[torch.float64]:
        raise ValueError(f"the RBM's hidden pre-activations reach {bound:.0f} in magnitude; AIS needs them below "
                         f"{_SIGMOID_RANGE[torch.float64]:.0f}")
    use_product = max(bk - bp for bp, bk in itertools.pairwise(betas)) * total < 60.0
    w, b, c, b0 = (t.to(dtype) for t in (w, b, c, b0))
    uniforms = Uniforms(gen, device=w.device, dtype=dtype)
    w_t = w.T.contiguous()  # (H, V)
    d = b - b0  # (V,): visible logits at β are b0 + β (d + hWᵀ)
    log_z0 = model.n_hidden * math.log(2.0) + float(F.softplus(b0.double()).sum())
    v = torch.lt(uniforms((n_chains, model.n_visible)), torch.sigmoid(b0)).to(dtype)  # (M, V) exact draws from p_0
    log_w = torch.zeros(n_chains, dtype=torch.float64, device=w.device)
    neg_pairs = -torch.tensor(list(itertools.pairwise(betas)), dtype=dtype, device=w.device)  # (K, 2): -β_{k-1}, -β_k
    neg_pairs = neg_pairs.flip(1).view(-1, 2, 1, 1)  # (K, 2, 1, 1): -β_k, -β_{k-1}
    n_temperatures = len(betas) - 1
    for k in range(1, n_temperatures + 1):
        beta, d_beta = betas[k], betas[k] - betas[k - 1]
        a = torch.addmm(c, v, w)  # (M, H): c + vW
        s = torch.mul(a, neg_pairs[k - 1]).sigmoid_()  # (2, M, H): σ(-β_k a), σ(-β_{k-1} a)
        ratio = torch.div(s[1], s[0])  # (M, H): exp(softplus(β_k a) - softplus(β_{k-1} a))
        inc = ratio.prod(1).log_() if use_product else ratio.log_().sum(1)  # (M,)
        log_w.add_(inc).add_(torch.mv(v, d), alpha=d_beta)  # + (β_k - β_{k-1}) (b - b0)ᵀv
        if k == n_temperatures:
            break
        u = uniforms(a.shape)
        h = torch.gt(u, s[0], out=u)  # (M, H) ~ p_k(h | v): P(u > σ(-β_k a)) = σ(β_k a)
        logits = torch.addmm(torch.add(b0, d, alpha=beta), h, w_t, alpha=beta)  # (M, V): b0 + β_k (d + hWᵀ)
        u = uniforms(logits.shape)
        v = torch.lt(u, logits.sigmoid_(), out=u)  # (M, V) ~ p_k(v | h)
    return log_w, log_z0


def _ais_gaussian(
    model: GaussianBernoulliRBM, betas: list[float], n_chains: int, gen: torch.Generator
) -> tuple[Tensor, float]:
    """The AIS chains of a Gaussian-Bernoulli RBM: per-chain log-weights ``(M,)`` float64 and log Z_0.

    At inverse temperature β the model is the GB-RBM with W scaled by β and c by β; the base
    (β = 0) is N(b, σ²) times 2^H uniform hidden states.
    """
    w, b, c = model.weight.detach(), model.visible_bias.detach(), model.hidden_bias.detach()
    var = model.variance.detach()
    sigma = var.sqrt()
    w_t = w.T.contiguous()  # (H, V)
    w_scaled = w / var[:, None]  # (V, H): hidden input is c + vᵀ(W / σ²)
    log_z0 = model.n_hidden * math.log(2.0) + 0.5 * float(torch.log(2 * math.pi * var.double()).sum())
    noise = torch.randn((n_chains, model.n_visible), generator=gen, device=w.device, dtype=w.dtype)
    v = noise.mul_(sigma).add_(b)  # (M, V) exact draws from p_0
    log_w = torch.zeros(n_chains, dtype=torch.float64, device=w.device)
    n_temperatures = len(betas) - 1
    for k in range(1, n_temperatures + 1):
        beta, beta_prev = betas[k], betas[k - 1]
        a = torch.addmm(c, v, w_scaled)  # (M, H)
        x = a * beta
        log_w += (F.softplus(x) - F.softplus(a * beta_prev)).sum(1)
        if k == n_temperatures:
            break
        h = bernoulli(x.sigmoid_(), gen)  # (M, H)
        noise = torch.randn(v.shape, generator=gen, device=v.device, dtype=v.dtype)
        v = torch.addmm(b, h, w_t, alpha=beta).addcmul_(noise, sigma)  # (M, V) ~ N(b + β Wh, σ²)
    return log_w, log_z0


def log_likelihood(model: BoltzmannModel, X: object, log_z: float) -> Tensor:
    """log p(x) = -F(x) - log Z for each row of ``X (B, V)``, ``(B,)`` float64.

    ``log_z`` comes from ``exact_log_partition`` or ``ais_log_partition``. Binary models need
    binary ``X``; the free energy is evaluated in float64.
    """
    if not isinstance(model, BoltzmannModel):
        raise TypeError(f"model must be a BoltzmannModel (e.g. a BernoulliRBM), got {type(model).__name__}")
    if isinstance(log_z, bool) or not isinstance(log_z, (int, float)) or not math.isfinite(log_z):
        raise ValueError(f"log_z must be a finite number, got {log_z!r}")
    m = _float64(model)
    x = m.as_data("X", X)
    with torch.no_grad():
        return -m.forward(x) - log_z


def pseudo_log_likelihood(model: BoltzmannModel, X: object) -> Tensor:
    """The log pseudo-likelihood Σ_i log p(x_i | x_-i) of each row of binary ``X (B, V)``, ``(B,)`` float64.

    Each term is log σ(F(x⁽ⁱ⁾) - F(x)), with x⁽ⁱ⁾ equal to x with bit i flipped. This sums all V
    terms; scikit-learn's ``BernoulliRBM.score_samples`` estimates the same quantity as V times
    one randomly chosen term (see ``ebrl.boltzmann.sklearn``).
    """
    if not isinstance(model, (BernoulliRBM, BoltzmannMachine)):
        raise TypeError(f"pseudo_log_likelihood needs binary units (BernoulliRBM, BoltzmannMachine), "
                        f"got {type(model).__name__}")
    m = _float64(model)
    x = m.as_data("X", X)
    n_vis = m.n_visible
    chunk = max(1, _ROWS_PER_CHUNK // (n_vis * n_vis))
    out = []
    with torch.no_grad():
        for xc in x.split(chunk):
            f = m.forward(xc)  # (b,)
            flipped = xc[:, None, :] + torch.diag_embed(1 - 2 * xc)  # (b, V, V): row i has bit i flipped
            f_flip = m.forward(flipped.reshape(-1, n_vis)).view(xc.shape[0], n_vis)  # (b, V)
            out.append(F.logsigmoid(f_flip - f[:, None]).sum(1))
    return torch.cat(out)
