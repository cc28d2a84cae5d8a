"""Helpers of experiments.generate_digits: the inpainting baseline, the novelty distance, the tuning rule, the CIs."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("sklearn")

from experiments.generate_digits import (
    TUNING_GRID,
    Args,
    bootstrap_ci,
    choose_setting,
    gaussian_conditional,
    left_half_mask,
    nn_distance,
    psnr_hidden,
)


def test_gaussian_conditional_is_the_conditional_mean_of_the_fitted_gaussian():
    # Pixels x ~ N(μ, A Aᵀ + s² I). The baseline fits a Gaussian (sample mean, sample covariance + 1e-3 I) and
    # returns E[hidden | visible] under it, clipped to [0, 1]; the visible pixels are returned unchanged.
    rng = np.random.default_rng(0)
    a = rng.normal(size=(64, 64)) * 0.05
    chol = np.linalg.cholesky(a @ a.T + 0.05 * np.eye(64))
    mu = rng.uniform(0.3, 0.7, size=64)
    train = (mu + rng.normal(size=(5000, 64)) @ chol.T).astype(np.float32).reshape(-1, 1, 8, 8)
    test = (mu + rng.normal(size=(200, 64)) @ chol.T).astype(np.float32).reshape(-1, 1, 8, 8)
    mask = left_half_mask().numpy()
    out = gaussian_conditional(train, test, mask).reshape(200, 64)
    flat, obs = train.reshape(5000, 64).astype(np.float64), test.reshape(200, 64).astype(np.float64)
    m, cov = flat.mean(0), np.cov(flat, rowvar=False) + 1e-3 * np.eye(64)
    h, v = mask.reshape(-1), ~mask.reshape(-1)
    expected = m[h] + (obs[:, v] - m[v]) @ np.linalg.inv(cov[np.ix_(v, v)]) @ cov[np.ix_(v, h)]
    np.testing.assert_allclose(out[:, h], np.clip(expected, 0, 1), atol=1e-4)
    np.testing.assert_array_equal(out[:, v], np.clip(obs[:, v], 0, 1).astype(np.float32))  # digits lie in [0, 1]
    # and it uses the visible pixels: closer to the truth than the mean image
    mean_only = np.broadcast_to(m.astype(np.float32), (200, 64)).reshape(test.shape)
    assert psnr_hidden(out.reshape(test.shape), test, mask) > psnr_hidden(mean_only, test, mask) + 1.0


def test_psnr_counts_only_the_hidden_pixels():
    truth = np.zeros((2, 1, 8, 8), dtype=np.float32)
    estimate = truth.copy()
    estimate[..., 4:] = 1.0  # wrong everywhere on the visible half: ignored
    estimate[..., :4] = 0.1  # off by 0.1 on the hidden half: MSE 0.01, PSNR 20 dB
    assert psnr_hidden(estimate, truth, left_half_mask().numpy()) == pytest.approx(20.0)


def test_nn_distance_is_zero_for_copies_and_the_offset_for_shifted_copies():
    train = np.random.default_rng(0).uniform(size=(30, 1, 8, 8)).astype(np.float32)
    assert nn_distance(train[:10], train) == 0.0
    assert nn_distance(train[:10] + 0.01, train) == pytest.approx(0.08, rel=1e-3)  # √64 · 0.01 (float32 distances)


def test_bootstrap_ci_brackets_the_mean_and_is_degenerate_for_equal_values():
    mean, lo, hi = bootstrap_ci([1.0, 2.0, 3.0, 4.0], 2000)
    assert lo < mean == 2.5 < hi
    assert bootstrap_ci([0.5, 0.5, 0.5], 100) == (0.5, 0.5, 0.5)


def test_choose_setting_takes_the_lowest_mean_validation_mmd_and_needs_every_setting(tmp_path):
    args = replace(Args(), tuning_seeds=(10, 11))
    rows = []
    for i, setting in enumerate(TUNING_GRID):
        for seed in args.tuning_seeds:
            best = i == 2
            rows.append({"seed": seed, **setting, "mmd2": 0.0005 if best else 0.002 + i * 1e-4,
                         "ancestral_mmd2": 0.003 if best else 0.002})
    with open(tmp_path / "generate_digits_tuning.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    chosen = choose_setting(tmp_path, args)
    assert chosen == {k: TUNING_GRID[2][k] for k in chosen}  # (0.0005 + 0.003) / 2 is the lowest mean
    with pytest.raises(ValueError, match="lacks the setting"):
        choose_setting(tmp_path, replace(args, tuning_seeds=(10, 11, 12)))
    with pytest.raises(ValueError, match="--tune"):
        choose_setting(tmp_path / "missing", args)
