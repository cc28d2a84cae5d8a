"""Statistics over seeds: interquartile mean, stratified bootstrap confidence intervals, paired differences.

The method is rliable's (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice"):

- the **interquartile mean** (IQM) drops the lowest and the highest 25% of the runs and averages the
  rest. As in rliable (``scipy.stats.trim_mean(x, 0.25)``), ``floor(n / 4)`` runs are cut at each end,
  so with fewer than 4 runs nothing is cut and the IQM is the mean;
- a **95% confidence interval** is the percentile bootstrap over runs: resample the runs with
  replacement ``reps`` times, compute the statistic on each resample, and take its 2.5% and 97.5%
  percentiles. When several tasks are aggregated, the resampling is **stratified by task**: each
  task's runs are resampled among themselves, so every resample keeps each task's number of runs;
- a run's **final score** is the mean of its evaluations in the last :data:`FINAL_WINDOW` (10%) of
  training, at least two of them (:func:`final_window`), so that one lucky or unlucky evaluation does
  not decide it;
- for two agents whose runs pair by seed (trained on the same seed, side by side), the interval of the
  **paired difference** bootstraps the per-seed differences ``a - b``; an interval that includes zero
  is a **tie** (:func:`verdict`).

Scores are given as one 1-D array of runs (one task) or as a mapping from task name to a 1-D array of
that task's runs (tasks may have different numbers of runs). Everything is NumPy; randomness comes
only from ``seed`` (a fresh ``numpy.random.Generator``), never from the global RNG.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

Statistic = Callable[..., np.ndarray]
"""A statistic over runs: ``f(x, axis=-1)`` reduces the runs axis of ``x``, e.g. :func:`iqm` or :func:`mean`."""

Scores = ArrayLike | Mapping[str, ArrayLike]
"""One task's runs (a 1-D array), or task name -> that task's runs."""


FINAL_WINDOW = 0.1
"""The fraction of training, at its end, whose evaluations make a run's final score (:func:`final_window`)."""


def final_window(curve: Sequence[tuple[int, float]], total: int, fraction: float = FINAL_WINDOW) -> float:
    """A run's final score: the mean evaluation over the last ``fraction`` of its ``total`` steps.

    ``curve``: ``(step, evaluation)`` pairs in training order. The window holds the evaluations at
    ``step >= (1 - fraction) * total``; when it holds fewer than two (evaluations sparser than the
    window), the last two evaluations are the window. Raises ``ValueError`` for fewer than two
    evaluations, since one evaluation is not a final score.
    """
    if len(curve) < 2:
        raise ValueError(f"a final score needs at least 2 evaluations, got {len(curve)}: evaluate more often")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    window = [value for step, value in curve if step >= (1.0 - fraction) * total]
    if len(window) < 2:
        window = [value for _, value in curve[-2:]]
    return float(np.mean(window))


def iqm(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """The interquartile mean along ``axis``: the mean of what is left after cutting ``floor(n/4)`` values at each end.

    This is ``scipy.stats.trim_mean(x, 0.25, axis)``, rliable's IQM. ``x``: any shape; the result
    drops ``axis`` (a 0-d array for 1-D input).
    """
    x = np.sort(np.asarray(x, dtype=float), axis=axis)
    n = x.shape[axis]
    if n == 0:
        raise ValueError("iqm needs at least one value along axis, got none")
    cut = n // 4
    return np.take(x, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def mean(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """The arithmetic mean along ``axis`` (a :data:`Statistic`, like :func:`iqm`)."""
    x = np.asarray(x, dtype=float)
    if x.shape[axis] == 0:
        raise ValueError("mean needs at least one value along axis, got none")
    return x.mean(axis=axis)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval ``[low, high]``."""

    point: float
    low: float
    high: float
    confidence: float

    def includes(self, value: float) -> bool:
        """Whether ``low <= value <= high``."""
        return self.low <= value <= self.high

    def __str__(self) -> str:
        # A point a billionth of the interval's width from zero is rounding error (a mean of differences that
        # cancel), written 0 rather than as -4.6e-18.
        point = 0.0 if abs(self.point) <= 1e-9 * (self.high - self.low) else self.point
        return f"{point:.4g} [{self.low:.4g}, {self.high:.4g}]"


def _strata(scores: Scores) -> list[np.ndarray]:
    """The runs of each task as 1-D float arrays, checked: finite, non-empty."""
    if isinstance(scores, Mapping):
        if not scores:
            raise ValueError("scores must hold at least one task, got an empty mapping")
        named = list(scores.items())
    else:
        named = [("scores", scores)]
    strata = []
    for name, runs in named:
        runs = np.asarray(runs, dtype=float)
        if runs.ndim != 1 or runs.size == 0:
            raise ValueError(f"the runs of '{name}' must be a non-empty 1-D array, got shape {runs.shape}")
        if not np.isfinite(runs).all():
            raise ValueError(f"the runs of '{name}' must be finite, got {runs.tolist()}")
        strata.append(runs)
    return strata


def bootstrap_ci(
    scores: Scores,
    statistic: Statistic = iqm,
    *,
    reps: int = 50_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """The statistic of the runs and its percentile-bootstrap confidence interval, stratified by task.

    Each resample draws, for every task, as many runs as it has, with replacement from its own runs;
    the statistic is computed over the pooled resample (all tasks' runs together), as rliable does
    for an aggregate such as the IQM over tasks. The point estimate is the statistic of the runs
    themselves.

    Args:
        scores: one task's runs (1-D), or task name -> that task's runs (1-D each).
        statistic: ``f(x, axis=-1)`` over the pooled runs, such as :func:`iqm` (default) or :func:`mean`.
        reps: bootstrap resamples (rliable's default: 50,000).
        confidence: the interval's coverage, in (0, 1).
        seed: seed of the resampling's ``numpy.random.Generator``.
    """
    if not isinstance(reps, int | np.integer) or reps < 1:
        raise ValueError(f"reps must be a positive integer, got {reps!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    strata = _strata(scores)
    rng = np.random.default_rng(seed)
    # One (reps, n_task) block of resampled runs per task, pooled along the runs axis: (reps, n_total).
    pooled = np.concatenate([runs[rng.integers(0, runs.size, size=(reps, runs.size))] for runs in strata], axis=1)
    replicates = np.asarray(statistic(pooled, axis=-1), dtype=float)  # (reps,)
    if replicates.shape != (reps,):
        raise ValueError(f"statistic must reduce (reps, runs) to (reps,), got shape {replicates.shape}")
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    point = float(statistic(np.concatenate(strata)[None, :], axis=-1)[0])
    return Interval(point=point, low=float(low), high=float(high), confidence=confidence)


def paired_differences(a: Scores, b: Scores) -> np.ndarray | dict[str, np.ndarray]:
    """``a - b`` run by run (runs pair by position, e.g. by seed), per task for mappings.

    Raises ``ValueError`` when the tasks or the numbers of runs differ.
    """
    if isinstance(a, Mapping) != isinstance(b, Mapping):
        raise ValueError("a and b must both be arrays of runs or both mappings of task -> runs")
    if isinstance(a, Mapping):
        if set(a) != set(b):
            raise ValueError(f"a and b must hold the same tasks, got {sorted(a)} and {sorted(b)}")
        return {task: paired_differences(a[task], b[task]) for task in a}
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"paired runs must be 1-D arrays of one shape, got {x.shape} and {y.shape}")
    return x - y


def paired_difference_ci(
    a: Scores,
    b: Scores,
    statistic: Statistic = mean,
    *,
    reps: int = 50_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """The statistic of the paired differences ``a - b`` (by seed) and its bootstrap interval.

    Resamples seeds, keeping each seed's pair together (so what the two runs of a seed share, such
    as the seed's luck and the machine's load, cancels), stratified by task for mappings. The
    default statistic is the mean difference. See :func:`bootstrap_ci` for the arguments.
    """
    return bootstrap_ci(paired_differences(a, b), statistic, reps=reps, confidence=confidence, seed=seed)


def is_tie(interval: Interval) -> bool:
    """Whether a difference's interval includes zero, so that neither side is shown to be better."""
    return interval.includes(0.0)


def verdict(interval: Interval) -> Literal["tie", "higher", "lower"]:
    """How ``a`` compares with ``b`` from the interval of ``a - b``: ``"tie"`` if it includes zero."""
    if is_tie(interval):
        return "tie"
    return "higher" if interval.low > 0 else "lower"
