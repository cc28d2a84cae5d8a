"""Sample-quality metrics for comparing generated samples with held-out data."""

from __future__ import annotations

import torch
from torch import Tensor

from ebrl._checks import check_finite, check_positive, check_tensor


def _check_pair(x: object, y: object) -> tuple[Tensor, Tensor]:
    x = check_finite("x", check_tensor("x", x, min_dim=2))
    y = check_finite("y", check_tensor("y", y, min_dim=2))
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"x has shape {tuple(x.shape)} but y has shape {tuple(y.shape)}; expected one event shape")
    return x.flatten(1), y.flatten(1)  # (n, D), (m, D)


def squared_mmd(x: Tensor, y: Tensor, *, bandwidth: float) -> Tensor:
    """Unbiased estimate of the squared maximum mean discrepancy with an RBF kernel.

    With k(a, b) = exp(-‖a - b‖² / 2h²) and samples x ``(n, *event)``, y ``(m, *event)``::

        MMD² = 1/(n(n-1)) Σ_{i≠i'} k(x_i, x_i') + 1/(m(m-1)) Σ_{j≠j'} k(y_j, y_j')
               - 2/(nm) Σ_{i,j} k(x_i, y_j)

    It is zero in expectation iff the distributions match, and it can be slightly negative.
    Compare two samples against the same reference with the same ``bandwidth``.

    Args:
        x, y: samples, each with at least two rows.
        bandwidth: h > 0; ``median_bandwidth(reference)`` is a common choice.

    Returns:
        The estimate, shape ``()``.
    """
    x, y = _check_pair(x, y)
    h = check_positive("bandwidth", bandwidth)
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"squared_mmd needs at least 2 rows in x and y, got {n} and {m}")

    def kernel(a: Tensor, b: Tensor) -> Tensor:
        return torch.exp(-torch.cdist(a, b).square() / (2 * h * h))  # (len(a), len(b))

    k_xx = (kernel(x, x).sum() - n) / (n * (n - 1))  # the diagonal is exactly 1
    k_yy = (kernel(y, y).sum() - m) / (m * (m - 1))
    return k_xx + k_yy - 2 * kernel(x, y).mean()


def median_bandwidth(x: Tensor) -> float:
    """The median heuristic: the median pairwise distance between the rows of x ``(n, *event)``."""
    x = check_finite("x", check_tensor("x", x, min_dim=2)).flatten(1)  # (n, D)
    if x.shape[0] < 2:
        raise ValueError(f"median_bandwidth needs at least 2 rows, got {x.shape[0]}")
    d = torch.pdist(x)  # (n(n-1)/2,)
    h = float(d.median())
    if h <= 0:
        raise ValueError("median_bandwidth: the median pairwise distance is 0 (the rows are mostly identical)")
    return h
