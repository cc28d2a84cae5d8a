"""Energies: the output contract, the neural models, and analytic energies' stated normalisers and moments."""

from __future__ import annotations

import math

import pytest
import torch

from ebrl.energy import (
    ConvEnergy,
    Energy,
    GaussianEnergy,
    GaussianMixtureEnergy,
    MLPEnergy,
    RingEnergy,
    StateActionEnergy,
    UniformBox,
)


def grid_log_integral(energy: Energy, lim: float, n: int = 801) -> float:
    """log ∫ exp(-E) over [-lim, lim]² by the trapezoid rule, in float64."""
    xs = torch.linspace(-lim, lim, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(xs, xs, indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)
    with torch.no_grad():
        e = energy.double()(pts).reshape(n, n)
    w = torch.ones(n, dtype=torch.float64)
    w[0] = w[-1] = 0.5
    h = float(xs[1] - xs[0])
    return math.log(float((w[:, None] * w[None, :] * torch.exp(-e)).sum()) * h * h)


def test_gaussian_log_partition_matches_numerical_integration():
    g = GaussianEnergy([0.5, -0.3], [[1.0, 0.4], [0.4, 0.5]])
    assert abs(grid_log_integral(g, 8.0) - float(g.log_partition)) < 1e-6


def test_mixture_is_normalised_and_ring_log_partition_matches_integration():
    mix = GaussianMixtureEnergy([[-1.0, 0.0], [1.5, 1.0]], stds=[0.5, 0.8], weights=[2.0, 1.0])
    assert abs(grid_log_integral(mix, 8.0)) < 1e-6
    ring = RingEnergy(radius=2.0, width=0.3)
    assert abs(grid_log_integral(ring, 4.5, n=1201) - float(ring.log_partition)) < 1e-5


@pytest.mark.parametrize(
    "energy",
    [
        GaussianEnergy([1.0, -2.0], [[2.0, 0.8], [0.8, 1.0]]),
        GaussianMixtureEnergy([[-2.0, 0.0], [2.0, 1.0], [0.0, 3.0]], stds=[0.5, 1.0, 0.3], weights=[1, 2, 1]),
        RingEnergy(radius=1.5, width=0.2),
    ],
    ids=["gaussian", "mixture", "ring"],
)
def test_exact_samples_match_stated_mean_and_covariance(energy):
    n = 100_000
    x = energy.sample(n, generator=torch.Generator().manual_seed(0))
    cov = energy.covariance
    se = (cov.diagonal() / n).sqrt()
    assert ((x.mean(0) - energy.mean).abs() < 5 * se).all()
    # Covariance entries: standard error below sqrt(2)·max variance/√n for these light-tailed laws.
    assert (torch.cov(x.T) - cov).abs().max() < 5 * math.sqrt(2) * float(cov.diagonal().max()) / math.sqrt(n) * 2


def test_log_prob_is_minus_energy_minus_log_partition():
    g = GaussianEnergy([0.0, 0.0, 0.0], torch.eye(3) * 2)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    ref = torch.distributions.MultivariateNormal(torch.zeros(3), torch.eye(3) * 2).log_prob(x)
    assert torch.allclose(g.log_prob(x), ref, atol=1e-5)


def test_uniform_box_samples_inside_and_has_log_volume_density():
    box = UniformBox(-1.0, 2.0, dim=3)
    x = box.sample(1000, generator=torch.Generator().manual_seed(0))
    assert ((x >= -1) & (x <= 2)).all()
    assert torch.allclose(box.log_prob(x), torch.full((1000,), -3 * math.log(3.0)))
    assert box.log_prob(torch.tensor([[3.0, 0.0, 0.0]])).item() == -math.inf


def test_mlp_energy_maps_batch_to_vector_and_score_is_minus_gradient():
    e = MLPEnergy(4, (16, 16))
    x = torch.randn(7, 4, generator=torch.Generator().manual_seed(0))
    assert e(x).shape == (7,)
    x_req = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(e(x_req).sum(), x_req)
    with torch.no_grad():  # score enables gradients itself
        s = e.score(x, temperature=2.0)
    assert torch.allclose(s, -g / 2.0)


def test_gaussian_score_is_exact():
    g = GaussianEnergy([1.0, 0.0], [[1.0, 0.5], [0.5, 2.0]])
    x = torch.randn(10, 2, generator=torch.Generator().manual_seed(0))
    exact = -(x - g.mean) @ torch.linalg.inv(g.covariance)
    assert torch.allclose(g.score(x), exact, atol=1e-5)


def test_energy_with_wrong_output_shape_raises_naming_the_shapes():
    class Bad(Energy):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x  # (B, D) instead of (B,)

    with pytest.raises(ValueError, match=r"returned shape \(3, 2\) for input of shape \(3, 2\); expected .*\(3,\)"):
        Bad()(torch.zeros(3, 2))


def test_energy_with_non_finite_output_raises():
    class NaNEnergy(Energy):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.sum(-1) * math.nan

    with pytest.raises(ValueError, match="non-finite"):
        NaNEnergy()(torch.zeros(3, 2))


@pytest.mark.parametrize(
    ("energy", "x", "match"),
    [
        (MLPEnergy(3), torch.zeros(4, 2), r"expects x of shape \(B, 3\), got \(4, 2\)"),
        (MLPEnergy(3), torch.zeros(0, 3), "non-empty batch"),
        (MLPEnergy(3), torch.tensor([[1.0, math.nan, 0.0]]), None),
        (ConvEnergy(1, (4,)), torch.zeros(2, 3, 8, 8), r"expects images of shape \(B, 1, H, W\)"),
        (ConvEnergy(1, (4,)), torch.zeros(2, 8, 8), r"expects images of shape"),
    ],
)
def test_neural_energies_reject_bad_inputs(energy, x, match):
    if match is None:  # NaN input: the output is NaN, which the output check catches
        with pytest.raises(ValueError, match="non-finite"):
            energy(x)
    else:
        with pytest.raises(ValueError, match=match):
            energy(x)


def test_mlp_energy_rejects_bad_constructor_arguments():
    with pytest.raises(ValueError, match="activation"):
        MLPEnergy(2, activation="sigmoidish")
    with pytest.raises(ValueError, match="in_features"):
        MLPEnergy(0)
    with pytest.raises(ValueError, match="hidden"):
        MLPEnergy(2, hidden=())


def test_conv_energy_handles_any_image_size_and_spectral_norm_bounds_layers():
    e = ConvEnergy(3, (8, 16), spectral_norm=True)
    assert e(torch.randn(2, 3, 8, 8)).shape == (2,)
    assert e(torch.randn(2, 3, 16, 12)).shape == (2,)
    e.train()
    for _ in range(20):  # power iterations converge during forward passes in training mode
        e(torch.randn(2, 3, 8, 8))
    e.eval()
    w = e.head.weight
    assert float(torch.linalg.matrix_norm(w.detach(), ord=2)) == pytest.approx(1.0, abs=1e-3)


def test_state_action_energy_scores_candidates_like_single_actions():
    sa = StateActionEnergy(3, 2, (16, 16))
    g = torch.Generator().manual_seed(0)
    obs, acts = torch.randn(4, 3, generator=g), torch.randn(4, 5, 2, generator=g)
    many = sa(obs, acts)  # (4, 5)
    assert many.shape == (4, 5)
    one_by_one = torch.stack([sa(obs, acts[:, j]) for j in range(5)], dim=1)
    assert torch.allclose(many, one_by_one, atol=1e-6)
    # The split first layer equals one linear layer over the concatenation [obs, act].
    w = torch.cat([sa.obs_in.weight, sa.act_in.weight], dim=1)
    h = torch.nn.functional.silu(torch.cat([obs, acts[:, 0]], -1) @ w.T + sa.obs_in.bias)
    assert torch.allclose(sa.body(h).squeeze(-1), many[:, 0], atol=1e-6)
    # at(): a flattened (B*N, A) energy for samplers, row b*N + j is candidate j of state b.
    flat = sa.at(obs, 5)(acts.reshape(20, 2))
    assert torch.allclose(flat.reshape(4, 5), many, atol=1e-6)


@pytest.mark.parametrize(
    ("obs", "act", "match"),
    [
        (torch.zeros(4, 2), torch.zeros(4, 2), r"obs must have shape \(B, 3\)"),
        (torch.zeros(4, 3), torch.zeros(5, 2), r"act must have shape"),
        (torch.zeros(4, 3), torch.zeros(4, 6, 3), r"act must have shape"),
        (torch.zeros(4, 3), torch.full((4, 2), math.inf), "non-finite"),
    ],
)
def test_state_action_energy_rejects_bad_inputs(obs, act, match):
    with pytest.raises(ValueError, match=match):
        StateActionEnergy(3, 2, (8,))(obs, act)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mean": [0.0, 0.0], "covariance": [[1.0, 2.0], [2.0, 1.0]]}, "positive definite"),
        ({"mean": [0.0, 0.0], "covariance": [[1.0, 0.5], [0.0, 1.0]]}, "symmetric"),
        ({"mean": [0.0, 0.0], "covariance": [[1.0]]}, r"covariance must have shape \(2, 2\)"),
        ({"mean": [0.0, math.nan], "covariance": [[1.0, 0.0], [0.0, 1.0]]}, "mean contains"),
    ],
)
def test_gaussian_energy_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianEnergy(**kwargs)


def test_mixture_rejects_bad_parameters():
    with pytest.raises(ValueError, match="exactly one of"):
        GaussianMixtureEnergy([[0.0, 0.0]])
    with pytest.raises(ValueError, match="weights"):
        GaussianMixtureEnergy([[0.0, 0.0], [1.0, 1.0]], stds=[1.0, 1.0], weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="stds"):
        GaussianMixtureEnergy([[0.0, 0.0]], stds=[0.0])
    with pytest.raises(ValueError, match="radius"):
        RingEnergy(radius=-1.0)


def test_analytic_sampling_is_seeded_and_leaves_global_rng_untouched():
    ring = RingEnergy()
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a = ring.sample(50, generator=torch.Generator().manual_seed(3))
    b = ring.sample(50, generator=torch.Generator().manual_seed(3))
    ring.sample(50)
    assert torch.equal(a, b)
    assert torch.equal(before, torch.get_rng_state())
