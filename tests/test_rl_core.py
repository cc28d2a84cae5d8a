"""Boltzmann policies and soft values of ebrl.rl, against exact answers."""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ebrl.rl import ActionBox, DiscreteBoltzmannPolicy

torch.set_num_threads(1)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def discrete(alpha: float) -> SimpleNamespace:
    """``DiscreteBoltzmannPolicy()`` with α bound to its methods (α is an argument of every call)."""
    pi = DiscreteBoltzmannPolicy()
    names = ("logits", "log_probs", "probs", "entropy", "soft_value", "policy_value", "sample")
    return SimpleNamespace(mode=pi.mode, **{m: functools.partial(getattr(pi, m), alpha=alpha) for m in names})


# --------------------------------------------------------------------------------------------
# Discrete


def test_discrete_probs_and_log_probs_match_manual_softmax():
    e = torch.randn(5, 4, generator=gen(), dtype=torch.float64) * 3
    alpha = 0.7
    w = np.exp(-e.numpy() / alpha)
    expected = w / w.sum(1, keepdims=True)
    pi = discrete(alpha)
    np.testing.assert_allclose(pi.probs(e).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(pi.log_probs(e).numpy(), np.log(expected), rtol=1e-12)


def test_discrete_entropy_matches_definition():
    e = torch.randn(6, 3, generator=gen(1), dtype=torch.float64)
    pi = discrete(0.3)
    p = pi.probs(e).numpy()
    np.testing.assert_allclose(pi.entropy(e).numpy(), -(p * np.log(p)).sum(1), rtol=1e-10)


def test_discrete_soft_value_matches_brute_force_and_is_stable_for_large_q():
    # E ~ 1000 with α = 0.01 would overflow exp(Q/α) computed naively; brute force in float64 after
    # shifting by the max, the textbook way.
    e = torch.randn(4, 5, generator=gen(2), dtype=torch.float64) + 1000.0
    alpha = 0.01
    q = -e.numpy()
    m = q.max(1, keepdims=True)
    brute = (m + alpha * np.log(np.exp((q - m) / alpha).sum(1, keepdims=True)))[:, 0]
    np.testing.assert_allclose(discrete(alpha).soft_value(e).numpy(), brute, rtol=1e-12)


def test_discrete_soft_value_is_expected_q_plus_alpha_entropy():
    e = torch.randn(7, 4, generator=gen(3), dtype=torch.float64)
    pi = discrete(0.5)
    expected = (pi.probs(e) * -e).sum(1) + 0.5 * pi.entropy(e)
    torch.testing.assert_close(pi.soft_value(e), expected)


def test_discrete_policy_value_is_the_soft_value_for_its_own_policy_and_smaller_for_others():
    e = torch.randn(64, 5, generator=gen(4), dtype=torch.float64)
    other = torch.randn(64, 5, generator=gen(5), dtype=torch.float64)
    pi = discrete(0.3)
    torch.testing.assert_close(pi.policy_value(e, e), pi.soft_value(e))
    manual = (pi.probs(other) * -e).sum(1) + 0.3 * pi.entropy(other)
    torch.testing.assert_close(pi.policy_value(e, other), manual)
    gap = pi.soft_value(e) - pi.policy_value(e, other)  # = α KL(π_other || π_e) >= 0
    assert bool((gap > 1e-9).all()), gap.min()


def test_discrete_policy_value_gives_masked_actions_no_weight_and_checks_shapes():
    pi = discrete(1.0)
    e = torch.tensor([[0.0, math.inf, 1.0]], dtype=torch.float64)
    v = pi.policy_value(e, e)
    assert torch.isfinite(v).all()
    torch.testing.assert_close(v, pi.soft_value(e))
    with pytest.raises(ValueError, match="policy_energies must have the shape"):
        pi.policy_value(e, torch.zeros(1, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="energies"):
        pi.policy_value(e, torch.full((1, 3), math.nan, dtype=torch.float64))


def test_discrete_soft_value_tends_to_max_q_as_alpha_shrinks():
    e = torch.tensor([[0.0, -1.0, 2.0]], dtype=torch.float64)
    v = discrete(1e-3).soft_value(e)
    assert abs(float(v) - 1.0) < 1e-6  # max Q = -min E = 1; the gap e^{-1000} is negligible


def test_discrete_samples_follow_the_softmax():
    e = torch.tensor([[0.0, 0.5, 1.0, 3.0]]).repeat(20_000, 1)  # (N, K), the same state N times
    pi = discrete(0.8)
    a = pi.sample(e, generator=gen())
    freq = torch.bincount(a, minlength=4).double() / len(a)
    p = pi.probs(e[:1])[0].double()
    # Each frequency is binomial: sd = sqrt(p(1-p)/N) <= 0.5/sqrt(20000) = 0.0035; allow 5 sd.
    sd = (p * (1 - p) / len(a)).sqrt()
    assert bool(((freq - p).abs() <= 5 * sd + 1e-12).all()), (freq, p)


def test_discrete_mode_is_the_lowest_energy_action():
    e = torch.tensor([[3.0, -1.0, 0.0], [0.0, 1.0, 2.0]])
    assert discrete(1.0).mode(e).tolist() == [1, 0]


def test_discrete_sample_is_reproducible_and_leaves_global_rng_untouched():
    e = torch.randn(100, 5, generator=gen())
    pi = discrete(1.0)
    state = torch.get_rng_state()
    a1, a2 = pi.sample(e, generator=gen(7)), pi.sample(e, generator=gen(7))
    pi.sample(e)  # generator=None: a fresh OS-seeded generator, not the global one
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a1, a2)
    assert not torch.equal(a1, pi.sample(e, generator=gen(8)))


@pytest.mark.parametrize("alpha", [0.0, -1.0, math.nan, math.inf])
def test_discrete_rejects_non_positive_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        discrete(alpha).probs(torch.zeros(1, 2))


def test_discrete_rejects_bad_energies():
    pi = discrete(1.0)
    with pytest.raises(ValueError, match="energies"):
        pi.probs(torch.zeros(3))
    with pytest.raises(ValueError, match="energies"):
        pi.probs(torch.zeros(2, 3, 4))
    with pytest.raises(TypeError, match="energies"):
        pi.probs(torch.zeros(2, 3, dtype=torch.int64))


# --------------------------------------------------------------------------------------------
# Action box


def test_action_box_log_volume_is_d_log_2_for_the_unit_box():
    assert ActionBox.symmetric(3).log_volume == pytest.approx(3 * math.log(2))
    assert ActionBox((0.0, -1.0), (0.5, 3.0)).log_volume == pytest.approx(math.log(0.5 * 4.0))


@pytest.mark.parametrize(
    ("low", "high", "name"),
    [((-1.0, -math.inf), (1.0, 1.0), "low"), ((-1.0,), (math.inf,), "high"), ((-1.0,), (math.nan,), "high")],
)
def test_action_box_rejects_infinite_bounds(low, high, name):
    with pytest.raises(ValueError, match=f"{name} must be finite"):
        ActionBox(low, high)


def test_action_box_rejects_empty_or_inverted_or_mismatched_bounds():
    with pytest.raises(ValueError, match="low < high"):
        ActionBox((0.0, 1.0), (1.0, 1.0))
    with pytest.raises(ValueError, match="same length"):
        ActionBox((0.0,), (1.0, 1.0))
    with pytest.raises(ValueError, match="at least one"):
        ActionBox((), ())




def test_newton_step_on_log_alpha_is_scale_free_and_meets_the_target_entropy():
    pi = DiscreteBoltzmannPolicy()
    energies = 5.0 * torch.randn(64, 10, generator=torch.Generator().manual_seed(0))
    target = 0.3
    for start in (-7.0, 0.0, 7.0):  # α from e^-7 to e^7
        steps = {}
        for scale in (1e-3, 1.0, 1e3):
            u = torch.tensor(start + math.log(scale))
            first = pi.log_alpha_newton_step(energies * scale, log_alpha=u, target_entropy=target) - math.log(scale)
            for _ in range(40):  # at most 14 clipped steps of 0.5, then Newton
                u = pi.log_alpha_newton_step(energies * scale, log_alpha=u, target_entropy=target)
            steps[scale] = float(first)
            assert abs(float(pi.entropy(energies * scale, alpha=u.exp()).mean()) - target) < 1e-4
        # scaling E and α together changes nothing (up to float32 rounding of log α)
        assert max(steps.values()) - min(steps.values()) < 1e-4, steps
    with pytest.raises(ValueError, match=r"target_entropy must lie in \(0, log K\)"):
        pi.log_alpha_newton_step(energies, log_alpha=torch.tensor(0.0), target_entropy=math.log(10))
