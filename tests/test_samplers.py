"""Samplers are tested statistically against distributions with known moments.

Tolerances come from the sample size: with N independent chains, a mean estimate has standard
error sqrt(Σ_ii / N) and a covariance entry sqrt((Σ_ii Σ_jj + Σ_ij²) / N) (Gaussian fourth
moments). We allow 5 standard errors (a false alarm per entry has probability < 1e-6) plus, for
unadjusted Langevin only, a stated discretisation bias.
"""

from __future__ import annotations

import math

import pytest
import torch

from ebrl.energy import GaussianEnergy, GaussianMixtureEnergy, MLPEnergy
from ebrl.samplers import HMC, MALA, DivergenceError, Langevin, ReplayBuffer

CUDA = torch.cuda.is_available()


def correlated_gaussian(dim: int = 5, seed: int = 0, device: str = "cpu") -> GaussianEnergy:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=g)
    cov = a @ a.T / dim + 0.5 * torch.eye(dim)
    mean = torch.linspace(-2.0, 2.0, dim)
    return GaussianEnergy(mean, cov).to(device)


def assert_moments_match(x: torch.Tensor, target: GaussianEnergy, *, n_se: float = 5.0, bias: float = 0.0) -> None:
    n = x.shape[0]
    cov = target.covariance
    var = cov.diagonal()
    mean_tol = n_se * (var / n).sqrt() + bias
    assert ((x.mean(0) - target.mean).abs() <= mean_tol).all(), (x.mean(0), target.mean, mean_tol)
    cov_se = ((var[:, None] * var[None, :] + cov.square()) / n).sqrt()
    emp = torch.cov(x.T)
    assert ((emp - cov).abs() <= n_se * cov_se + bias).all(), (emp - cov).abs().max()


@pytest.mark.parametrize(
    "sampler",
    [MALA(step_size=0.15, n_steps=400), HMC(step_size=0.25, n_leapfrog=8, n_steps=60)],
    ids=["mala", "hmc"],
)
def test_metropolis_samplers_recover_5d_correlated_gaussian_mean_and_covariance(sampler):
    target = correlated_gaussian(dim=5)
    g = torch.Generator().manual_seed(1)
    # Start every chain far from the target (mean ranges over [-2, 2]), so this tests
    # convergence, not just stationarity.
    x0 = 3.0 * torch.randn(4000, 5, generator=g)
    tr = sampler.trace(target, x0, generator=g)
    assert 0.5 < float(tr.acceptance_rate.mean()) < 1.0
    assert_moments_match(tr.samples, target)


def test_langevin_small_step_recovers_gaussian_moments_up_to_stated_bias():
    target = correlated_gaussian(dim=5, seed=3)
    g = torch.Generator().manual_seed(2)
    x = Langevin(step_size=0.01, n_steps=1500)(target, torch.randn(4000, 5, generator=g), generator=g)
    # ULA's stationary covariance for a Gaussian is Σ(I - εΣ⁻¹/2)⁻¹: relative bias ≈ ε/2 · λ_max.
    lam_max = float(torch.linalg.eigvalsh(target.covariance).max())
    assert_moments_match(x, target, bias=0.01 / 2 * lam_max * 1.5)


def test_langevin_recovers_modes_and_weights_of_2d_mixture():
    # Overlapping enough that chains cross between modes within the run, so the weights are a
    # property of mixing, not of where the chains started (all start at one point).
    mix = GaussianMixtureEnergy(
        [[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]], stds=[0.9, 0.9, 0.9], weights=[0.5, 0.3, 0.2]
    )
    g = torch.Generator().manual_seed(4)
    n = 4000
    x = Langevin(step_size=0.02, n_steps=3000)(mix, torch.zeros(n, 2) + torch.tensor([2.0, 0.0]), generator=g)
    exact = mix.sample(200_000, generator=g)

    def assign(z: torch.Tensor) -> torch.Tensor:
        return mix.component_log_prob(z).argmax(-1)

    lab_x, lab_e = assign(x), assign(exact)
    for k in range(3):
        p = float((lab_e == k).float().mean())
        se = math.sqrt(p * (1 - p) / n)
        frac = float((lab_x == k).float().mean())
        assert abs(frac - p) < 5 * se + 0.01, (k, frac, p)  # + ULA bias at ε = 0.02
        # The mode: the mean of the samples attributed to component k.
        mode_x, mode_e = x[lab_x == k].mean(0), exact[lab_e == k].mean(0)
        assert (mode_x - mode_e).norm() < 5 * 0.9 / math.sqrt(p * n) + 0.05


def test_reflected_langevin_on_flat_energy_is_uniform_in_the_box():
    def flat(x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device) * x.sum(-1)

    g = torch.Generator().manual_seed(5)
    s = Langevin(step_size=0.05, n_steps=300, bounds=(0.0, 1.0), boundary="reflect")
    x = s(flat, torch.full((20000, 1), 0.05), generator=g)
    assert (x >= 0).all() and (x <= 1).all()
    counts = torch.histc(x, bins=10, min=0.0, max=1.0)
    expected = x.numel() / 10
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 33.7  # chi-square(9 dof) 0.9999 quantile


def test_clamped_langevin_stays_in_per_dimension_bounds():
    target = GaussianEnergy([5.0, -5.0], [[1.0, 0.0], [0.0, 1.0]])
    s = Langevin(step_size=0.1, n_steps=50, bounds=([-1.0, -2.0], [1.0, 2.0]))
    x = s(target, torch.zeros(500, 2), generator=torch.Generator().manual_seed(0))
    assert (x[:, 0].abs() <= 1.0).all() and (x[:, 1].abs() <= 2.0).all()
    # The energy pushes against the walls; clamping (unlike reflection) leaves a large share of
    # chains exactly on them. Drift 0.1·(5-1)=0.4 per step against noise √0.2≈0.45: about half.
    assert float((x[:, 0] == 1.0).float().mean()) > 0.5
    assert float((x[:, 1] == -2.0).float().mean()) > 0.5


def test_mala_with_bounds_samples_the_truncated_target():
    # A standard normal truncated to [0, 6]: the half-normal, mean sqrt(2/π), variance 1 - 2/π.
    target = GaussianEnergy([0.0], [[1.0]])
    g = torch.Generator().manual_seed(6)
    x = MALA(step_size=0.3, n_steps=300, bounds=(0.0, 6.0))(target, torch.rand(8000, 1, generator=g), generator=g)
    assert (x >= 0).all()
    se = math.sqrt((1 - 2 / math.pi) / 8000)
    assert abs(float(x.mean()) - math.sqrt(2 / math.pi)) < 5 * se


@pytest.mark.parametrize("sampler_cls", [MALA, HMC])
def test_temperature_scales_the_covariance(sampler_cls):
    target = GaussianEnergy([0.0, 0.0], [[1.0, 0.6], [0.6, 1.0]])
    temp = 2.5
    # HMC: trajectory time n_leapfrog·ε = 1 keeps ω·τ (ω = √λ of the precision: 0.79, 1.58) away
    # from π, where a trajectory maps x to -x and the chain would not mix (a known HMC pathology).
    extra = {"n_leapfrog": 5} if sampler_cls is HMC else {}
    s = sampler_cls(step_size=0.2, n_steps=200, temperature=temp, **extra)
    x = s(target, torch.zeros(6000, 2), generator=torch.Generator().manual_seed(7))
    scaled = GaussianEnergy([0.0, 0.0], (temp * target.covariance).tolist())
    assert_moments_match(x, scaled)


SAMPLERS = [
    Langevin(step_size=0.05, n_steps=20),
    Langevin(step_size=0.05, n_steps=20, grad_clip=0.1, bounds=(-1.0, 1.0), boundary="reflect"),
    MALA(step_size=0.1, n_steps=20),
    HMC(step_size=0.1, n_leapfrog=3, n_steps=10),
]
IDS = ["langevin", "langevin-clip-reflect", "mala", "hmc"]


@pytest.mark.parametrize("sampler", SAMPLERS, ids=IDS)
def test_sampler_same_generator_seed_is_reproducible(sampler):
    target = correlated_gaussian(dim=3)
    x0 = torch.zeros(64, 3)
    a = sampler(target, x0, generator=torch.Generator().manual_seed(11))
    b = sampler(target, x0, generator=torch.Generator().manual_seed(11))
    c = sampler(target, x0, generator=torch.Generator().manual_seed(12))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("sampler", SAMPLERS, ids=IDS)
def test_sampler_leaves_global_rng_untouched(sampler):
    target = correlated_gaussian(dim=3)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    sampler(target, torch.zeros(16, 3))  # no generator: a fresh OS-seeded one, not the global
    sampler.trace(target, torch.zeros(16, 3), generator=torch.Generator().manual_seed(0))
    assert torch.equal(before, torch.get_rng_state())


@pytest.mark.parametrize("sampler", SAMPLERS, ids=IDS)
def test_trace_runs_the_same_chain_as_call_and_reports_diagnostics(sampler):
    target = correlated_gaussian(dim=3)
    x0 = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
    x = sampler(target, x0, generator=torch.Generator().manual_seed(1))
    tr = sampler.trace(target, x0, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(tr.samples, x)
    assert tr.energies.shape == (sampler.n_steps + 1, 32)
    assert torch.allclose(tr.energies[-1], target(tr.samples), atol=1e-5)
    assert torch.allclose(tr.energies[0], target(x0), atol=1e-5)
    assert tr.acceptance_rate.shape == (32,)
    assert ((tr.acceptance_rate >= 0) & (tr.acceptance_rate <= 1)).all()


@pytest.mark.parametrize("sampler", SAMPLERS, ids=IDS)
def test_sampler_output_follows_x0_dtype_and_works_under_no_grad(sampler):
    target = correlated_gaussian(dim=3).double()
    with torch.no_grad():
        x = sampler(target, torch.zeros(8, 3, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    assert x.dtype == torch.float64 and x.shape == (8, 3) and not x.requires_grad


def test_sampler_accepts_image_shaped_states_and_a_neural_energy():
    from ebrl.energy import ConvEnergy

    energy = ConvEnergy(1, (4, 8))
    x0 = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for s in SAMPLERS:
        assert s(energy, x0, generator=torch.Generator().manual_seed(0)).shape == (6, 1, 8, 8)


class NaNAfter(torch.nn.Module):
    """A quadratic energy that starts returning NaN after ``k`` calls."""

    def __init__(self, k: int, value: float = math.nan) -> None:
        super().__init__()
        self.k, self.calls, self.value = k, 0, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        e = 0.5 * x.square().sum(-1)
        return e * self.value if self.calls > self.k else e


@pytest.mark.parametrize(
    ("sampler", "k", "step"),
    [
        (Langevin(step_size=0.01, n_steps=30), 7, 7),  # calls 1..7 fine; the energy after 7 updates is NaN
        (MALA(step_size=0.01, n_steps=30), 5, 5),  # call 1 is x0; the 5th proposal is NaN
        (HMC(step_size=0.01, n_leapfrog=2, n_steps=30), 5, 3),  # 2 calls per trajectory: #6 ends trajectory 3
    ],
    ids=["langevin", "mala", "hmc"],
)
def test_divergent_chain_raises_naming_the_step(sampler, k, step):
    with pytest.raises(DivergenceError, match=rf"diverged at step {step} of 30"):
        sampler(NaNAfter(k), torch.zeros(4, 2), generator=torch.Generator().manual_seed(0))


def test_langevin_with_too_large_step_diverges_loudly():
    stiff = GaussianEnergy([0.0], [[1e-3]])
    with pytest.raises(DivergenceError, match="Lower step_size"):
        Langevin(step_size=10.0, n_steps=100)(stiff, torch.ones(10, 1), generator=torch.Generator().manual_seed(0))


def test_metropolis_rejects_positive_infinite_energy_without_error():
    # +inf energy means zero density: a valid "wall" that MALA must reject, not a divergence.
    def walled(x: torch.Tensor) -> torch.Tensor:
        e = 0.5 * x.square().sum(-1)
        return torch.where(x[:, 0] < 0, torch.full_like(e, math.inf), e)

    x = MALA(step_size=0.2, n_steps=200)(walled, torch.full((2000, 1), 0.5), generator=torch.Generator().manual_seed(0))
    assert (x >= 0).all()
    assert abs(float(x.mean()) - math.sqrt(2 / math.pi)) < 5 * math.sqrt((1 - 2 / math.pi) / 2000) + 0.02


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"step_size": -1.0}, "step_size"),
        ({"step_size": 0.0}, "step_size"),
        ({"n_steps": 0}, "n_steps"),
        ({"temperature": 0.0}, "temperature"),
        ({"grad_clip": -1.0}, "grad_clip"),
        ({"noise_scale": math.nan}, "noise_scale"),
        ({"bounds": (1.0, 0.0)}, "bounds"),
        ({"bounds": (-math.inf, 1.0)}, "bounds"),
        ({"bounds": (0.0,)}, "bounds"),
        ({"boundary": "wrap"}, "boundary"),
    ],
)
def test_langevin_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Langevin(**kwargs)


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (MALA, {"step_size": 0.0}, "step_size"),
        (HMC, {"n_leapfrog": 0}, "n_leapfrog"),
        (HMC, {"mass": -1.0}, "mass"),
        (HMC, {"n_steps": 1.5}, "n_steps"),
    ],
)
def test_metropolis_samplers_reject_bad_hyperparameters(cls, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cls(**kwargs)


@pytest.mark.parametrize("sampler", SAMPLERS, ids=IDS)
def test_sampler_rejects_bad_x0_and_bad_energies(sampler):
    target = correlated_gaussian(dim=3)
    with pytest.raises(ValueError, match="x0 contains 1 non-finite"):
        sampler(target, torch.tensor([[0.0, math.nan, 0.0]]))
    with pytest.raises(TypeError, match=r"x0 must be a torch\.Tensor"):
        sampler(target, [[0.0, 0.0, 0.0]])
    with pytest.raises(TypeError, match="floating-point"):
        sampler(target, torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="non-empty batch"):
        sampler(target, torch.zeros(0, 3))
    with pytest.raises(ValueError, match=r"returned shape \(4, 1\) for input of shape \(4, 3\)"):
        sampler(lambda x: x[:, :1], torch.zeros(4, 3))
    with pytest.raises(TypeError, match="energy must be callable"):
        sampler("not an energy", torch.zeros(4, 3))


def test_replay_buffer_restarts_the_stated_fraction_and_writes_back():
    g = torch.Generator().manual_seed(0)
    buf = ReplayBuffer(1000, (2,), reinit_prob=0.05, low=-1.0, high=1.0, generator=g)
    assert len(buf) == 1000 and (buf.buffer.abs() <= 1).all()
    buf.update(torch.arange(1000), torch.full((1000, 2), 5.0))  # mark every stored state
    x0, idx = buf.sample(20000, generator=g)
    restarted = (x0 != 5.0).all(-1).float().mean()
    assert abs(float(restarted) - 0.05) < 5 * math.sqrt(0.05 * 0.95 / 20000)
    buf.update(idx[:3], torch.zeros(3, 2))
    assert (buf.buffer[idx[:3]] == 0).all()
    assert buf.buffer.shape == (1000, 2)  # bounded: sampling and updates never grow it


def test_replay_buffer_with_langevin_is_persistent_cd_ready():
    target = correlated_gaussian(dim=2)
    g = torch.Generator().manual_seed(0)
    buf = ReplayBuffer(2000, (2,), reinit_prob=0.0, low=-4, high=4, generator=g)
    sampler = MALA(step_size=0.3, n_steps=20)
    for _ in range(30):  # persistent chains keep improving across calls
        x0, idx = buf.sample(2000, generator=g)
        buf.update(idx, sampler(target, x0, generator=g))
    # Not every slot is drawn each round, so only check the mean loosely.
    assert (buf.buffer.mean(0) - target.mean).abs().max() < 0.25


def test_replay_buffer_rejects_bad_input_and_round_trips_state():
    with pytest.raises(ValueError, match="reinit_prob"):
        ReplayBuffer(10, (2,), reinit_prob=1.5)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, (2,))
    buf = ReplayBuffer(10, (2,), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="update expects"):
        buf.update(torch.arange(3), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="non-finite"):
        buf.update(torch.arange(1), torch.tensor([[math.nan, 0.0]]))
    other = ReplayBuffer(10, (2,), generator=torch.Generator().manual_seed(1))
    other.load_state_dict(buf.state_dict())
    assert torch.equal(other.buffer, buf.buffer)
    with pytest.raises(ValueError, match="replay buffer state"):
        ReplayBuffer(5, (2,)).load_state_dict(buf.state_dict())
    torch.manual_seed(0)
    before = torch.get_rng_state()
    buf.sample(5)
    assert torch.equal(before, torch.get_rng_state())


def test_langevin_annealed_schedule_finds_the_minimum_of_a_neural_energy():
    # IBC-style check: put a mock energy's minimum at a known point; annealed Langevin lands
    # within 0.1 of it.
    target = torch.tensor([0.3, -0.6])

    class Bowl(MLPEnergy):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 10 * (x - target).square().sum(-1) + 0 * super().forward(x)

    # At temperature 1e-3 the stationary spread is sqrt(T/20) ≈ 0.007, so annealed chains settle.
    s = Langevin(step_size=0.02, step_size_final=1e-3, n_steps=200, temperature=1e-3, bounds=(-1.0, 1.0))
    x = s(Bowl(2, (8,)), torch.rand(256, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1,
          generator=torch.Generator().manual_seed(1))
    assert ((x - target).norm(dim=-1) < 0.1).float().mean() > 0.99


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA; the CPU version of this test always runs")
@pytest.mark.parametrize(
    "sampler",
    [MALA(step_size=0.15, n_steps=400), HMC(step_size=0.25, n_leapfrog=8, n_steps=60)],
    ids=["mala", "hmc"],
)
def test_metropolis_samplers_recover_gaussian_on_cuda(sampler):
    target = correlated_gaussian(dim=5, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(1)
    x = sampler(target, 3.0 * torch.randn(4000, 5, generator=g, device="cuda"), generator=g)
    assert x.device.type == "cuda"
    assert_moments_match(x.cpu(), correlated_gaussian(dim=5))


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_cpu_generator_with_cuda_samples_is_rejected():
    with pytest.raises(ValueError, match="generator is on device"):
        Langevin(n_steps=2)(correlated_gaussian(3, device="cuda"), torch.zeros(2, 3, device="cuda"),
                            generator=torch.Generator())
