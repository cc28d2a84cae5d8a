"""experiments.stats: IQM, stratified percentile-bootstrap intervals and paired differences, on known answers.

- the IQM of arrays whose trimmed middle is known by hand, and agreement with scipy's ``trim_mean``
  (rliable's definition) on random arrays of every length from 1 to 12;
- the 95% interval of the mean covers the true mean of a normal sample at its nominal rate: over
  R = 600 samples of n = 40, the coverage lies within 3 binomial standard deviations
  (3·sqrt(0.95·0.05/600) = 0.027) of 0.95, less the percentile bootstrap's known small-sample
  undercoverage (about 1 point at n = 40);
- stratification keeps each task's number of runs: tasks whose runs are constant give an interval of
  zero width, which pooled (unstratified) resampling would not;
- paired differences cancel what a seed's pair shares; ties when the interval includes zero;
- a run's final score is the mean of the evaluations in its last 10% (at least two), on known curves;
- agreement with rliable's ``get_interval_estimates`` when rliable is installed (not a dependency).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from experiments.stats import (
    Interval,
    bootstrap_ci,
    final_window,
    iqm,
    is_tie,
    mean,
    paired_difference_ci,
    paired_differences,
    verdict,
)


def test_iqm_of_known_arrays_drops_the_outer_quarters():
    assert iqm(np.arange(1, 9)) == pytest.approx(4.5)  # keeps 3, 4, 5, 6
    assert iqm([100.0, 1.0, 2.0, 3.0, -50.0, 4.0, 5.0, 6.0]) == pytest.approx(3.5)  # outliers cut: 2, 3, 4, 5
    assert iqm([1.0, 2.0, 30.0]) == pytest.approx(11.0)  # n < 4: nothing cut, the mean (as rliable's)
    assert iqm([7.0]) == pytest.approx(7.0)
    # Along an axis: each row separately.
    np.testing.assert_allclose(iqm(np.array([[1.0, 2.0, 3.0, 40.0], [4.0, 4.0, 0.0, 8.0]]), axis=1), [2.5, 4.0])


def test_iqm_agrees_with_scipy_trim_mean_for_every_length():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in range(1, 13):
        x = rng.standard_cauchy(n)
        assert iqm(x) == pytest.approx(stats.trim_mean(x, 0.25)), n


def test_statistics_reject_empty_input():
    with pytest.raises(ValueError, match="at least one"):
        iqm([])
    with pytest.raises(ValueError, match="at least one"):
        mean(np.zeros((3, 0)), axis=-1)


def test_bootstrap_interval_of_the_mean_covers_a_normal_mean_at_its_nominal_rate():
    rng = np.random.default_rng(1)
    repetitions, n, true_mean = 600, 40, 3.0
    covered = 0
    for r in range(repetitions):
        sample = rng.normal(true_mean, 2.0, size=n)
        ci = bootstrap_ci(sample, mean, reps=2_000, seed=r)
        assert ci.low <= ci.point <= ci.high
        covered += ci.includes(true_mean)
    coverage = covered / repetitions
    tolerance = 3 * np.sqrt(0.95 * 0.05 / repetitions)
    assert 0.95 - 0.01 - tolerance <= coverage <= 0.95 + tolerance, coverage


def test_bootstrap_interval_width_matches_the_normal_theory_interval():
    # For n = 400 normal values the percentile interval of the mean approaches ±1.96·s/√n.
    sample = np.random.default_rng(2).normal(0.0, 1.0, size=400)
    ci = bootstrap_ci(sample, mean, reps=20_000, seed=0)
    half_width = 1.96 * sample.std(ddof=1) / np.sqrt(sample.size)
    assert ci.point == pytest.approx(sample.mean())
    assert (ci.high - ci.low) / 2 == pytest.approx(half_width, rel=0.05)


def test_bootstrap_is_reproducible_by_seed_and_leaves_the_global_rng_alone():
    sample = np.arange(10.0) ** 2
    state = np.random.get_state()  # noqa: NPY002  (checking that the global RNG is untouched)
    first = bootstrap_ci(sample, reps=1_000, seed=5)
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # noqa: NPY002
    assert bootstrap_ci(sample, reps=1_000, seed=5) == first
    assert bootstrap_ci(sample, reps=1_000, seed=6) != first


def test_stratified_bootstrap_keeps_each_tasks_share_of_runs():
    # Within each task the runs are constant, so every stratified resample is the same pool: zero width.
    # Resampling the 6 pooled runs without strata would mix the tasks' shares and give a wide interval.
    scores = {"a": [0.0, 0.0, 0.0], "b": [10.0, 10.0, 10.0]}
    ci = bootstrap_ci(scores, mean, reps=5_000)
    assert ci.point == ci.low == ci.high == pytest.approx(5.0)
    pooled = bootstrap_ci([0.0, 0.0, 0.0, 10.0, 10.0, 10.0], mean, reps=5_000)
    assert pooled.high - pooled.low > 5.0
    # Tasks of different sizes: the point estimate is the statistic over all runs.
    uneven = bootstrap_ci({"a": [1.0, 2.0], "b": [3.0, 4.0, 5.0, 6.0]}, iqm, reps=100)
    assert uneven.point == pytest.approx(3.5)


def test_paired_difference_cancels_what_a_seeds_pair_shares():
    seed_luck = np.array([-300.0, 50.0, 900.0, 120.0])  # large, shared by both runs of a seed
    a, b = seed_luck + 10.0, seed_luck
    ci = paired_difference_ci(a, b, reps=2_000)
    assert ci.point == ci.low == ci.high == pytest.approx(10.0)
    assert verdict(ci) == "higher" and not is_tie(ci)
    assert verdict(paired_difference_ci(b, a, reps=2_000)) == "lower"
    # Unpaired, the same gap is lost in the seeds' spread.
    assert bootstrap_ci(a, mean, reps=2_000).includes(float(b.mean()))


def test_an_interval_writes_a_point_at_rounding_error_from_zero_as_zero():
    assert str(Interval(point=-4.626e-18, low=-0.04, high=0.03, confidence=0.95)) == "0 [-0.04, 0.03]"
    assert str(Interval(point=-5.364e-05, low=-1e-4, high=-1e-5, confidence=0.95)) == "-5.364e-05 [-0.0001, -1e-05]"
    assert str(Interval(point=1.0, low=1.0, high=1.0, confidence=0.95)) == "1 [1, 1]"


def test_a_difference_whose_interval_includes_zero_is_a_tie():
    assert is_tie(Interval(point=0.3, low=-0.1, high=0.7, confidence=0.95))
    assert is_tie(Interval(point=0.0, low=0.0, high=0.0, confidence=0.95))
    assert verdict(Interval(point=-2.0, low=-3.0, high=0.0, confidence=0.95)) == "tie"
    noise = np.random.default_rng(3).normal(size=(2, 30))
    assert verdict(paired_difference_ci(noise[0], noise[1], reps=5_000)) == "tie"


def test_paired_differences_by_task_and_their_errors():
    d = paired_differences({"x": [3.0, 4.0], "y": [1.0]}, {"x": [1.0, 1.0], "y": [2.0]})
    assert set(d) == {"x", "y"}
    np.testing.assert_allclose(d["x"], [2.0, 3.0])
    np.testing.assert_allclose(d["y"], [-1.0])
    with pytest.raises(ValueError, match="same tasks"):
        paired_differences({"x": [1.0]}, {"z": [1.0]})
    with pytest.raises(ValueError, match="one shape"):
        paired_differences([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="both"):
        paired_differences({"x": [1.0]}, [1.0])


def test_bootstrap_rejects_bad_input_naming_it():
    with pytest.raises(ValueError, match="finite"):
        bootstrap_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        bootstrap_ci({"a": []})
    with pytest.raises(ValueError, match="non-empty 1-D"):
        bootstrap_ci(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="at least one task"):
        bootstrap_ci({})
    with pytest.raises(ValueError, match="reps"):
        bootstrap_ci([1.0, 2.0], reps=0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=1.0)
    with pytest.raises(ValueError, match="reduce"):
        bootstrap_ci([1.0, 2.0], statistic=lambda x, axis=-1: x, reps=10)


@pytest.mark.skipif(importlib.util.find_spec("rliable") is None, reason="rliable is not installed (not a dependency)")
def test_agrees_with_rliable_stratified_bootstrap():
    from rliable import library, metrics

    rng = np.random.default_rng(4)
    matrix = rng.normal([[0.0, 5.0, -2.0]], [[1.0, 3.0, 0.5]], size=(10, 3))  # (runs, tasks)
    points, intervals = library.get_interval_estimates(
        {"x": matrix}, lambda m: np.array([metrics.aggregate_iqm(m)]), reps=50_000,
        random_state=np.random.RandomState(0),
    )
    ours = bootstrap_ci({str(t): matrix[:, t] for t in range(3)}, iqm, reps=50_000, seed=0)
    assert ours.point == pytest.approx(points["x"][0])
    width = ours.high - ours.low
    # Two independent sets of 50,000 resamples: the percentiles agree to about 1% of the width.
    assert ours.low == pytest.approx(intervals["x"][0, 0], abs=0.03 * width)
    assert ours.high == pytest.approx(intervals["x"][1, 0], abs=0.03 * width)


def test_final_score_is_the_mean_of_the_last_tenth_of_the_curve_and_at_least_two_evaluations():
    curve = [(step, float(step // 1000)) for step in range(1000, 20_001, 1000)]  # evaluations 1 .. 20
    assert final_window(curve, 20_000) == pytest.approx((18 + 19 + 20) / 3)  # steps 18,000-20,000
    sparse = [(5_000, 1.0), (10_000, 2.0), (15_000, 3.0), (20_000, 7.0)]  # one evaluation in the window
    assert final_window(sparse, 20_000) == pytest.approx(5.0)  # the last two
    assert final_window(sparse, 20_000, fraction=0.5) == pytest.approx((2 + 3 + 7) / 3)
    with pytest.raises(ValueError, match="at least 2 evaluations"):
        final_window([(20_000, 1.0)], 20_000)
    with pytest.raises(ValueError, match="fraction"):
        final_window(sparse, 20_000, fraction=0.0)
