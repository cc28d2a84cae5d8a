"""Losses on energies: contrastive divergence, NCE and InfoNCE.

Each takes energies already computed by the caller (so any model, conditional or not, can use
them) and returns a scalar to minimise. Lower energy means more probable throughout.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ebrl._checks import check_positive
from ebrl.losses._validate import check_energies, check_same_device, check_same_shape

SETTLED = 50.0
"""How far (in nats) a classifier's term may be settled before its gradient is cut: a term whose weight in the
gradient is below e^-50 keeps that value, without gradient. Otherwise, once an energy separates data from
counter-examples by about 90 nats or more, those weights underflow in the backward pass into denormal floats, on
which CPU arithmetic runs many times slower (``experiments/bench_denormals.py``). The loss changes by less than
e^-50 per term, below float32's and float64's resolution of any loss of order one."""


def contrastive_divergence(e_pos: Tensor, e_neg: Tensor, *, l2: float = 0.0) -> Tensor:
    """Contrastive divergence with IGEBM's energy regulariser (Du & Mordatch 2019)::

        L = mean(e_pos) - mean(e_neg) + l2 · (mean(e_pos²) + mean(e_neg²))

    Its gradient in the parameters is the maximum-likelihood gradient E_data[∇E] - E_model[∇E]
    when ``e_neg`` are energies of samples from the model, computed at *detached* samples (the
    sampler's output), so gradients flow into the parameters only through the energies. The L2
    term keeps the energies near zero, which stops them from drifting without bound.

    Args:
        e_pos: energies of data, shape ``(B,)``.
        e_neg: energies of model samples (negatives), shape ``(M,)``; M may differ from B.
        l2: weight of the regulariser, >= 0.

    Returns:
        The scalar loss, shape ``()``.
    """
    e_pos = check_energies("e_pos", e_pos, shape="(B,)", ndim=1)
    e_neg = check_energies("e_neg", e_neg, shape="(M,)", ndim=1)
    check_same_device({"e_pos": e_pos, "e_neg": e_neg})
    l2 = check_positive("l2", l2, allow_zero=True)
    loss = e_pos.mean() - e_neg.mean()
    if l2 > 0:
        loss = loss + l2 * (e_pos.square().mean() + e_neg.square().mean())
    return loss


def nce(e_data: Tensor, e_noise: Tensor, log_q_data: Tensor, log_q_noise: Tensor) -> Tensor:
    """Noise-contrastive estimation (Gutmann & Hyvärinen 2010), logistic form.

    The model is the unnormalised density exp(-E(x)); the energy's own constant (e.g. its last
    bias) plays the role of log Z, and NCE learns it, so a trained model is self-normalised:
    exp(-E) integrates to about one. With ν = M / B noise samples per data sample, the
    classifier logit is G(x) = -E(x) - log q(x) - log ν and the loss is::

        L = mean_i softplus(-G(x_i)) + ν · mean_j softplus(G(y_j))

    i.e. -log σ(G) on data and -log(1 - σ(G)) on noise, written with softplus for stability. A term already
    below e^-50 keeps that value without gradient (``SETTLED``: no denormal gradients on the CPU).

    Args:
        e_data: energies of data, shape ``(B,)``.
        e_noise: energies of noise samples, shape ``(M,)``.
        log_q_data: normalised noise log-density at the data, shape ``(B,)``. Must be finite:
            NCE needs the noise to cover the data.
        log_q_noise: noise log-density at the noise samples, shape ``(M,)``.

    Returns:
        The scalar loss, shape ``()``.
    """
    e_data = check_energies("e_data", e_data, shape="(B,)", ndim=1)
    e_noise = check_energies("e_noise", e_noise, shape="(M,)", ndim=1)
    log_q_data = check_energies("log_q_data", log_q_data, shape="(B,)", ndim=1)
    log_q_noise = check_energies("log_q_noise", log_q_noise, shape="(M,)", ndim=1)
    check_same_device({"e_data": e_data, "e_noise": e_noise, "log_q_data": log_q_data, "log_q_noise": log_q_noise})
    check_same_shape("e_data", e_data, "log_q_data", log_q_data)
    check_same_shape("e_noise", e_noise, "log_q_noise", log_q_noise)
    nu = e_noise.shape[0] / e_data.shape[0]
    g_data = -e_data - log_q_data - math.log(nu)  # (B,)
    g_noise = -e_noise - log_q_noise - math.log(nu)  # (M,)
    # softplus(z) for z < -SETTLED is below e^-50, as is its gradient σ(z): kept at the floor without gradient.
    return (F.softplus(torch.clamp(-g_data, min=-SETTLED)).mean()
            + nu * F.softplus(torch.clamp(g_noise, min=-SETTLED)).mean())


def info_nce(e_pos: Tensor, e_neg: Tensor, *, temperature: float = 1.0) -> Tensor:
    """InfoNCE with counter-examples, as in implicit behavioural cloning (Florence et al. 2021).

    Each positive competes with its own N counter-examples; the loss is the cross-entropy of
    picking the positive from the softmax over logits -E/T::

        L = mean_b [ E_b,0 / T + log Σ_{k=0..N} exp(-E_b,k / T) ],   E_b,0 = e_pos[b]

    A counter-example whose softmax weight is below e^-50 counts at that weight, without gradient (``SETTLED``:
    no denormal gradients on the CPU); the positive's term is always exact.

    Args:
        e_pos: energies of the positives, shape ``(B,)``.
        e_neg: energies of the counter-examples, shape ``(B, N)``, N >= 1.
        temperature: T > 0.

    Returns:
        The scalar loss, shape ``()``.
    """
    e_pos = check_energies("e_pos", e_pos, shape="(B,)", ndim=1)
    e_neg = check_energies("e_neg", e_neg, shape="(B, N)", ndim=2)
    check_same_device({"e_pos": e_pos, "e_neg": e_neg})
    if e_neg.shape[0] != e_pos.shape[0]:
        raise ValueError(
            f"e_pos has shape {tuple(e_pos.shape)} but e_neg has shape {tuple(e_neg.shape)}; "
            f"expected e_neg of shape (B, N) with B={e_pos.shape[0]}"
        )
    temperature = check_positive("temperature", temperature)
    energies = torch.cat([e_pos.unsqueeze(1), e_neg], dim=1)  # (B, 1) + (B, N) -> (B, N+1)
    logits = -energies / temperature  # (B, N+1)
    # A counter-example more than SETTLED nats below the row's best logit keeps that floor, without gradient (its
    # softmax weight, its gradient, is below e^-50); the positive is never floored (its gradient is p - 1).
    floor = logits.detach().amax(dim=1, keepdim=True) - SETTLED  # (B, 1)
    logits = torch.cat([logits[:, :1], torch.maximum(logits[:, 1:], floor)], dim=1)  # (B, N+1)
    target = torch.zeros(e_pos.shape[0], dtype=torch.long, device=e_pos.device)  # (B,): positive at index 0
    return F.cross_entropy(logits, target)
