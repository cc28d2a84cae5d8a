"""The trainer and the objectives: CD/PCD learn a multimodal density, training is reproducible
and leaves the global RNG alone, progress and TensorBoard output work, divergence names the
step, and bad input raises the promised error.
"""

from __future__ import annotations

import copy
import math
import re
import sys
import warnings

import pytest
import torch

from ebrl.boltzmann import BernoulliRBM, GibbsCD
from ebrl.energy import (
    Energy,
    GaussianEnergy,
    GaussianMixtureEnergy,
    MLPEnergy,
    StateActionEnergy,
    UniformBox,
)
from ebrl.losses import info_nce
from ebrl.samplers import DivergenceError, Langevin, ReplayBuffer
from ebrl.training import CD, DSM, NCE, PCD, SSM, InfoNCE, TrainHistory, fit, median_bandwidth, squared_mmd

CUDA = torch.cuda.is_available()


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def seeded(factory, seed: int):
    """Build a module with initial weights fixed by ``seed``, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def four_modes() -> GaussianMixtureEnergy:
    return GaussianMixtureEnergy([[-1.5, -1.5], [-1.5, 1.5], [1.5, -1.5], [1.5, 1.5]], stds=[0.35] * 4)


# --- CD and PCD learn a multimodal density --------------------------------------------------


def assert_samples_beat_fitted_gaussian(samples: torch.Tensor, train: torch.Tensor, held_out: torch.Tensor, g) -> None:
    """The model's MMD² to held-out data is below a fitted Gaussian's, by a significant margin.

    The bandwidth 0.5 is near the modes' width (0.35), where the mixture and a Gaussian differ.
    The null spread of the MMD² estimate is measured by permutation: split the pooled model
    samples and held-out data at random 50 times; the gap must exceed 5 of those standard
    deviations (measured ≈ 0.0007, against a gap of ≈ 0.09).
    """
    n = held_out.shape[0]
    fitted = GaussianEnergy(train.mean(0), torch.cov(train.T)).sample(n, generator=g)
    mmd_model = float(squared_mmd(samples, held_out, bandwidth=0.5))
    mmd_gauss = float(squared_mmd(fitted, held_out, bandwidth=0.5))
    pool = torch.cat([samples, held_out])  # (2n, 2)
    null = []
    for _ in range(50):
        perm = torch.randperm(2 * n, generator=g)
        null.append(float(squared_mmd(pool[perm[:n]], pool[perm[n:]], bandwidth=0.5)))
    null_sd = float(torch.tensor(null).std())
    assert mmd_gauss - mmd_model > 5 * null_sd, (mmd_model, mmd_gauss, null_sd)
    # Every mode is found: each quadrant holds at least 15% of the samples (true share 25%;
    # the binomial s.e. at n = 1000 is 1.4%, so 15% also leaves room for model error).
    quadrant = (samples[:, 0] > 0).long() * 2 + (samples[:, 1] > 0).long()  # (n,)
    assert (quadrant.bincount(minlength=4) >= 0.15 * n).all(), quadrant.bincount(minlength=4)


def sample_from_noise(energy: Energy, g: torch.Generator) -> torch.Tensor:
    x0 = UniformBox(-3.0, 3.0, dim=2).sample(1000, generator=g)
    return Langevin(step_size=0.01, n_steps=500)(energy, x0, generator=g)


@pytest.mark.slow
def test_cd_trained_mlp_samples_beat_a_fitted_gaussian_in_mmd():
    g = gen(0)
    target = four_modes()
    train, held_out = target.sample(2000, generator=g), target.sample(1000, generator=g)
    energy = seeded(lambda: MLPEnergy(2, (64, 64)), 0)
    objective = CD(Langevin(step_size=0.01, n_steps=20), l2=0.1)
    hist = fit(energy, train, objective, epochs=25, batch_size=128, lr=1e-3, generator=g)
    # CD pushes data energies below the sampler's: the last epoch's mean gap is negative.
    assert sum(hist.metrics["e_pos"][-16:]) < sum(hist.metrics["e_neg"][-16:])
    assert_samples_beat_fitted_gaussian(sample_from_noise(energy, g), train, held_out, g)


@pytest.mark.slow
def test_pcd_trained_mlp_samples_beat_a_fitted_gaussian_in_mmd():
    g = gen(1)
    target = four_modes()
    train, held_out = target.sample(2000, generator=g), target.sample(1000, generator=g)
    energy = seeded(lambda: MLPEnergy(2, (64, 64)), 0)
    buffer = ReplayBuffer(2000, (2,), low=-3.0, high=3.0, generator=g)
    objective = PCD(Langevin(step_size=0.01, n_steps=20), buffer, l2=0.1)
    fit(energy, train, objective, epochs=25, batch_size=128, lr=1e-3, generator=g)
    assert_samples_beat_fitted_gaussian(sample_from_noise(energy, g), train, held_out, g)
    # The persistent chains themselves are model samples too.
    assert_samples_beat_fitted_gaussian(buffer.buffer[:1000], train, held_out, g)


# --- objectives -----------------------------------------------------------------------------


def test_pcd_advances_the_buffer_and_uses_detached_negatives():
    g = gen(2)
    energy = MLPEnergy(2, (16,))
    buffer = ReplayBuffer(64, (2,), generator=g)
    before = buffer.buffer.clone()
    objective = PCD(Langevin(step_size=0.01, n_steps=5), buffer)
    loss, metrics = objective(energy, torch.randn(32, 2, generator=g), generator=g)
    assert not torch.equal(before, buffer.buffer)
    assert not buffer.buffer.requires_grad
    assert set(metrics) == {"e_pos", "e_neg"}
    loss.backward()  # the graph reaches the parameters only through the energies
    assert energy.net[0].weight.grad is not None


def test_cd_from_noise_starts_chains_at_the_noise():
    energy = MLPEnergy(2, (16,))
    noise = UniformBox(5.0, 6.0, dim=2)  # far from the data: negatives must start (and stay) near it
    x = torch.zeros(8, 2)
    loss, metrics = CD(Langevin(step_size=1e-4, n_steps=1), init="noise", noise=noise)(energy, x, generator=gen(3))
    with torch.no_grad():
        e_noise = energy(noise.sample(8, generator=gen(3)))
    torch.testing.assert_close(metrics["e_neg"], e_noise.mean(), atol=1e-2, rtol=0)
    torch.testing.assert_close(loss, metrics["e_pos"] - metrics["e_neg"])


def test_info_nce_objective_on_an_energy_over_x_matches_the_loss():
    energy = MLPEnergy(2, (16,))
    noise = UniformBox(-1.0, 1.0, dim=2)
    x = torch.randn(4, 2, generator=gen(4))
    loss, metrics = InfoNCE(noise, n_negatives=3, temperature=0.5)(energy, x, generator=gen(5))
    neg = noise.sample(12, generator=gen(5))  # the objective's first draw: (B*N, 2)
    with torch.no_grad():
        expected = info_nce(energy(x), energy(neg).reshape(4, 3), temperature=0.5)
    torch.testing.assert_close(loss.detach(), expected)
    assert 0.0 <= float(metrics["top1"]) <= 1.0


def test_info_nce_local_counter_examples_and_gradient_penalty_on_an_energy_over_x():
    seen = []

    class Recording(MLPEnergy):
        def forward(self, x):
            seen.append(x.detach().clone())
            return super().forward(x)

    energy = Recording(2, (16,))
    objective = InfoNCE(UniformBox(-1.0, 1.0, dim=2), n_negatives=4, local_fraction=0.5, local_noise=0.01,
                        grad_penalty=1.0, grad_margin=0.0)
    assert objective.n_local == 2
    x = torch.full((256, 2), 0.25)
    loss, metrics = objective(energy, x, generator=gen(6))
    loss.backward()
    neg = seen[-1].reshape(256, 4, 2)  # the counter-examples, scored after the positives
    local, uniform = neg[:, 2:].reshape(-1, 2), neg[:, :2].reshape(-1, 2)
    # Local: mean x, sd 0.01 * width 2 = 0.02; uniform on [-1, 1]: sd 1/sqrt(3). Tolerances: 5 standard errors.
    m = local.shape[0]
    assert torch.allclose(local.mean(0), x[0], atol=5 * 0.02 / m**0.5)
    assert torch.allclose(uniform.std(0), torch.full((2,), 3**-0.5), atol=5 * 0.3 / m**0.5)
    assert float(metrics["grad_penalty"]) > 0  # margin 0: any slope is penalised
    assert all(torch.isfinite(p.grad).all() for p in energy.parameters())
    with pytest.raises(TypeError, match="UniformBox"):
        InfoNCE(GaussianEnergy(torch.zeros(2), torch.eye(2)), local_fraction=0.5)


def test_objectives_are_frozen_configurations():
    objective = DSM(0.1)
    with pytest.raises(AttributeError):
        objective.sigma = 0.2


# --- the trainer ----------------------------------------------------------------------------


def small_problem() -> tuple[MLPEnergy, torch.Tensor]:
    energy = seeded(lambda: MLPEnergy(2, (16, 16)), 0)
    data = four_modes().sample(256, generator=gen(6))
    return energy, data


def test_fit_same_generator_seed_gives_identical_parameters():
    energy, data = small_problem()
    a, b, c = copy.deepcopy(energy), copy.deepcopy(energy), copy.deepcopy(energy)
    objective = CD(Langevin(step_size=0.01, n_steps=5), l2=0.1)  # shuffling and sampling both random
    hist_a = fit(a, data, objective, epochs=2, batch_size=64, generator=gen(7))
    hist_b = fit(b, data, objective, epochs=2, batch_size=64, generator=gen(7))
    fit(c, data, objective, epochs=2, batch_size=64, generator=gen(8))
    assert hist_a.loss == hist_b.loss
    assert all(torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(), strict=True))


@pytest.mark.parametrize("objective", [
    CD(Langevin(step_size=0.01, n_steps=3)),
    DSM(0.1),
    SSM(2),
    NCE(GaussianEnergy([0.0, 0.0], [[4.0, 0.0], [0.0, 4.0]]), ratio=2),
    InfoNCE(UniformBox(-3.0, 3.0, dim=2), n_negatives=4),
    PCD(Langevin(step_size=0.01, n_steps=3), ReplayBuffer(128, (2,), generator=gen(0))),
], ids=["cd", "dsm", "ssm", "nce", "infonce", "pcd"])
def test_fit_leaves_global_rng_untouched(objective):
    energy, data = small_problem()
    state = torch.get_rng_state()
    fit(energy, data, objective, epochs=1, batch_size=64, generator=gen(9))
    fit(energy, data, objective, epochs=1, batch_size=64)  # a fresh OS-seeded generator
    assert torch.equal(state, torch.get_rng_state())


def test_fit_records_one_loss_and_metric_per_step():
    energy, data = small_problem()
    hist = fit(energy, data[:250], CD(Langevin(step_size=0.01, n_steps=2)), epochs=3, batch_size=64, generator=gen(10))
    assert isinstance(hist, TrainHistory)
    assert hist.steps == 3 * math.ceil(250 / 64) == len(hist.metrics["e_pos"]) == len(hist.metrics["e_neg"])
    assert len(hist.epoch_loss) == 3
    assert all(math.isfinite(v) for v in hist.loss)


def test_fit_steps_the_given_optimizer_instead_of_its_default():
    energy, data = small_problem()
    before = copy.deepcopy(energy.state_dict())
    frozen = torch.optim.SGD(energy.parameters(), lr=0.0)  # a no-op optimizer: nothing may change
    fit(energy, data, DSM(0.3), epochs=1, batch_size=64, optimizer=frozen, generator=gen(11))
    assert all(torch.equal(before[k], v) for k, v in energy.state_dict().items())
    fit(energy, data, DSM(0.3), epochs=1, batch_size=64, generator=gen(11))  # the default Adam moves them
    assert not all(torch.equal(before[k], v) for k, v in energy.state_dict().items())


def test_fit_moves_data_to_the_energy_dtype():
    energy, data = small_problem()
    energy = energy.double()
    fit(energy, data.float(), DSM(0.3), epochs=1, batch_size=64, generator=gen(12))
    assert all(p.dtype == torch.float64 for p in energy.parameters())


def test_fit_shows_a_progress_bar(capsys):
    energy, data = small_problem()
    fit(energy, data, DSM(0.3), epochs=2, batch_size=64, progress_bar=True, log_interval=2, generator=gen(13))
    err = capsys.readouterr().err
    assert "8/8" in err  # 2 epochs x 4 steps, shown by tqdm on stderr
    assert "loss=" in err


def test_fit_without_shuffle_visits_rows_in_order_steps_the_scheduler_and_calls_back_each_epoch():
    energy, data = small_problem()
    seen, epochs = [], []

    def objective(e, x, *, generator=None):
        seen.append(x.clone())
        return DSM(0.3)(e, x, generator=generator)

    opt = torch.optim.SGD(energy.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    history = fit(energy, data, objective, epochs=2, batch_size=64, optimizer=opt, scheduler=scheduler,
                  shuffle=False, generator=gen(14), callback=lambda epoch, e: epochs.append((epoch, e is energy)))
    assert history.steps == 8 and epochs == [(0, True), (1, True)]
    assert all(torch.equal(b, data[64 * (i % 4) : 64 * (i % 4 + 1)]) for i, b in enumerate(seen))  # stored order
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** (8 // 3))  # stepped once per step
    with pytest.raises(ValueError, match="scheduler must schedule the optimizer"):
        fit(energy, data, DSM(0.3), epochs=1, optimizer=torch.optim.SGD(energy.parameters(), lr=0.1),
            scheduler=scheduler, generator=gen(15))
    with pytest.raises(TypeError, match="shuffle must be a bool"):
        fit(energy, data, DSM(0.3), epochs=1, shuffle="no", generator=gen(15))


def test_fit_requires_a_bool_progress_bar():
    energy, data = small_problem()
    with pytest.raises(TypeError, match="progress_bar must be a bool, got str"):
        fit(energy, data, DSM(0.3), epochs=1, progress_bar="yes", generator=gen(13))


def test_fit_writes_tensorboard_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    energy, data = small_problem()
    fit(energy, data, CD(Langevin(step_size=0.01, n_steps=2)), epochs=2, batch_size=64,
        tensorboard_log=str(tmp_path), log_interval=2, generator=gen(14))
    assert list(tmp_path.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4, 6, 8]
    assert len(events.Scalars("train/e_neg")) == 4
    assert [e.step for e in events.Scalars("train/epoch_loss")] == [1, 2]


@pytest.mark.parametrize(("module", "option", "extra"), [
    ("tqdm.auto", {"progress_bar": True}, "ebrl[progress]"),
    ("torch.utils.tensorboard", {"tensorboard_log": "unused"}, "ebrl[tensorboard]"),
])
def test_missing_optional_dependency_names_the_extra(monkeypatch, module, option, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    energy, data = small_problem()
    with pytest.raises(ImportError, match=re.escape(f'pip install "{extra}"')):
        fit(energy, data, DSM(0.3), epochs=1, generator=gen(0), **option)


class NaNAfter(Energy):
    """An MLP energy whose forward returns NaN from call ``k + 1`` on."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.inner = MLPEnergy(2, (8,))
        self.k, self.calls = k, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        e = self.inner.forward(x)
        return e * math.nan if self.calls > self.k else e


@pytest.mark.parametrize(("objective", "k", "step", "cause"), [
    # DSM calls the energy once per step: NaN on call 4 -> a NaN loss at step 4.
    (DSM(0.1), 3, 4, "the loss is nan"),
    # CD with 3 Langevin steps calls it 5 times per step (data, 3 chain steps, negatives):
    # in step 2, call 6 is the data energy and calls 7, 8, 9 are the chain after 0, 1, 2 updates.
    (CD(Langevin(step_size=0.01, n_steps=3)), 5, 2, "not finite .* on the data batch"),
    (CD(Langevin(step_size=0.01, n_steps=3)), 8, 2, "Langevin diverged at step 2 of 3"),
], ids=["loss", "energy", "sampler"])
def test_fit_divergence_raises_naming_the_step(objective, k, step, cause):
    data = torch.randn(64, 2, generator=gen(15))
    with pytest.raises(DivergenceError, match=rf"training diverged at step {step} \(epoch 1\): .*{cause}"):
        fit(NaNAfter(k), data, objective, epochs=1, batch_size=8, generator=gen(16))


def test_fit_divergence_stops_before_the_update():
    energy = NaNAfter(1)
    before = copy.deepcopy(energy.state_dict())
    with pytest.raises(DivergenceError, match="step 2"):
        fit(energy, torch.randn(16, 2, generator=gen(17)), DSM(0.1), epochs=1, batch_size=8, lr=1e-2, generator=gen(18))
    changed = [not torch.equal(before[k], v) for k, v in energy.state_dict().items()]
    assert any(changed)  # step 1 was applied...
    # ...and the NaN step was not: every parameter is still finite.
    assert all(torch.isfinite(p).all() for p in energy.parameters())


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_fit_on_cuda_moves_cpu_data_to_the_energy_device():
    energy, data = small_problem()
    energy = energy.cuda()
    g = torch.Generator(device="cuda").manual_seed(0)
    objective = PCD(Langevin(step_size=0.01, n_steps=3), ReplayBuffer(64, (2,), device="cuda", generator=g))
    hist = fit(energy, data, objective, epochs=1, batch_size=64, generator=g)
    assert all(math.isfinite(v) for v in hist.loss)


# --- metrics --------------------------------------------------------------------------------


def test_squared_mmd_matches_the_unbiased_formula():
    g = gen(19)
    x, y = torch.randn(5, 2, generator=g), torch.randn(7, 2, generator=g) + 1

    def k(a, b):
        return math.exp(-float((a - b).square().sum()) / (2 * 0.8**2))

    xx = sum(k(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / 20
    yy = sum(k(y[i], y[j]) for i in range(7) for j in range(7) if i != j) / 42
    xy = sum(k(x[i], y[j]) for i in range(5) for j in range(7)) / 35
    assert abs(float(squared_mmd(x, y, bandwidth=0.8)) - (xx + yy - 2 * xy)) < 1e-5


def test_squared_mmd_separates_different_distributions():
    g = gen(20)
    a, b = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g)
    h = median_bandwidth(a)
    assert abs(float(squared_mmd(a, b, bandwidth=h))) < 0.01  # same law: ≈ 0 (s.e. ≈ 1/n)
    assert float(squared_mmd(a, b + 1.0, bandwidth=h)) > 0.1


# --- bad input -------------------------------------------------------------------------------

SMALL = MLPEnergy(2, (8,))
DATA = torch.zeros(16, 2)
LANGEVIN = Langevin(step_size=0.01, n_steps=2)


BAD_INPUTS = [
    ("empty_data", lambda: fit(SMALL, torch.zeros(0, 2), DSM(0.1)), ValueError, "data must have a non-empty"),
    ("nan_data", lambda: fit(SMALL, DATA + math.nan, DSM(0.1)), ValueError, "data contains 32 non-finite"),
    ("1d_data", lambda: fit(SMALL, torch.zeros(16), DSM(0.1)), ValueError, "data must have at least 2"),
    ("int_data", lambda: fit(SMALL, torch.zeros(16, 2, dtype=torch.long), DSM(0.1)), TypeError, "floating-point"),
    ("event_mismatch", lambda: fit(SMALL, torch.zeros(16, 3), DSM(0.1)), ValueError,
     r"data has shape \(16, 3\) but MLPEnergy expects \(N, 2\)"),
    ("state_action_rows", lambda: fit(StateActionEnergy(2, 1, (8,)), DATA, InfoNCE(UniformBox(-1.0, 1.0, dim=1))),
     ValueError, r"rows \[obs, act\] of shape \(N, 2 \+ 1\)"),
    ("state_action_cd", lambda: fit(StateActionEnergy(1, 1, (8,)), DATA, CD(LANGEVIN)),
     TypeError, "train a StateActionEnergy with InfoNCE"),
    ("not_module", lambda: fit(lambda x: x.sum(1), DATA, DSM(0.1)), TypeError, "energy must be a torch.nn.Module"),
    ("no_params", lambda: fit(GaussianEnergy([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]]), DATA, DSM(0.1)), ValueError,
     "no trainable parameters"),
    ("epochs", lambda: fit(SMALL, DATA, DSM(0.1), epochs=0), ValueError, "epochs must be"),
    ("batch_size", lambda: fit(SMALL, DATA, DSM(0.1), batch_size=1.5), TypeError, "batch_size must be an int"),
    ("lr", lambda: fit(SMALL, DATA, DSM(0.1), lr=-1.0), ValueError, "lr must be"),
    ("lr_and_optimizer",
     lambda: fit(SMALL, DATA, DSM(0.1), lr=1e-3, optimizer=torch.optim.SGD(SMALL.parameters(), 0.1)),
     ValueError, "not both"),
    ("objective", lambda: fit(SMALL, DATA, "cd"), TypeError, "objective must be callable"),
    ("generator_type", lambda: fit(SMALL, DATA, DSM(0.1), generator=42),
     TypeError, "generator must be a torch.Generator"),
    ("cd_sampler", lambda: CD("langevin"), TypeError, "sampler must be an ebrl Sampler"),
    ("cd_init", lambda: CD(LANGEVIN, init="buffer"), ValueError, "init must be 'data' or 'noise'"),
    ("cd_noise_missing", lambda: CD(LANGEVIN, init="noise"), ValueError, "init='noise' needs noise="),
    ("cd_noise_unused", lambda: CD(LANGEVIN, noise=UniformBox(-1.0, 1.0, dim=2)),
     ValueError, "only used with init='noise'"),
    ("cd_l2", lambda: CD(LANGEVIN, l2=-1.0), ValueError, "l2 must be"),
    ("pcd_buffer", lambda: PCD(LANGEVIN, "buffer"), TypeError, "buffer must be a ReplayBuffer"),
    ("pcd_buffer_shape", lambda: fit(SMALL, DATA, PCD(LANGEVIN, ReplayBuffer(8, (3,)))), ValueError,
     r"replay buffer holds states of shape \(3,\)"),
    ("dsm_sigma", lambda: DSM(0.0), ValueError, "sigma must be"),
    ("ssm_projections", lambda: SSM(0), ValueError, "n_projections"),
    ("nce_noise", lambda: NCE("gaussian"), TypeError, "noise must be a Distribution"),
    ("nce_ratio", lambda: NCE(UniformBox(-1.0, 1.0, dim=2), ratio=0), ValueError, "ratio must be"),
    ("nce_noise_support", lambda: fit(SMALL, DATA + 2.0, NCE(UniformBox(-1.0, 1.0, dim=2))), ValueError,
     "noise density is zero at 16 of 16 data points"),
    ("nce_noise_shape", lambda: fit(SMALL, DATA, NCE(UniformBox(-1.0, 1.0, dim=3))), ValueError,
     r"noise.sample\(16\) returned shape \(16, 3\); expected \(16, 2\)"),
    ("infonce_negatives", lambda: InfoNCE(UniformBox(-1.0, 1.0, dim=2), n_negatives=0), ValueError, "n_negatives"),
    ("infonce_temperature", lambda: InfoNCE(UniformBox(-1.0, 1.0, dim=2), temperature=-1.0), ValueError, "temperature"),
    ("mmd_shapes", lambda: squared_mmd(torch.zeros(4, 2), torch.zeros(4, 3), bandwidth=1.0), ValueError,
     r"x has shape \(4, 2\) but y has shape \(4, 3\)"),
    ("mmd_bandwidth", lambda: squared_mmd(torch.zeros(4, 2), torch.zeros(4, 2), bandwidth=0.0),
     ValueError, "bandwidth"),
    ("mmd_one_row", lambda: squared_mmd(torch.zeros(1, 2), torch.zeros(4, 2), bandwidth=1.0),
     ValueError, "at least 2 rows"),
]


@pytest.mark.parametrize(("call", "error", "match"), [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_trainer_inputs_raise_the_promised_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_fit_applies_fused_sgd_directly_bit_for_bit_as_its_step(momentum):
    """For objectives that write their gradients, fit calls a fused SGD's kernel itself; a step hook makes
    it fall back to ``optimizer.step()``. Both runs must agree bit for bit, momentum buffers included, and the
    scheduler must not warn that it stepped before the optimizer."""
    x = (torch.rand(20, 8, generator=gen(1)) < 0.4).float()

    def run(with_hook: bool):
        rbm = BernoulliRBM(8, 5, generator=gen(2))
        opt = torch.optim.SGD(rbm.parameters(), lr=0.05, momentum=momentum, weight_decay=1e-3, fused=True)
        steps: list[int] = []
        if with_hook:
            opt.register_step_post_hook(lambda *_: steps.append(1))
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 - step / 20)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fit(rbm, x, GibbsCD(1), epochs=2, batch_size=4, optimizer=opt, scheduler=scheduler, generator=gen(3))
        return rbm, opt, len(steps)

    direct, direct_opt, _ = run(with_hook=False)
    stepped, stepped_opt, n_steps = run(with_hook=True)
    assert n_steps == 10  # the hook saw every step: that run used optimizer.step() throughout
    for p, q in zip(direct.parameters(), stepped.parameters(), strict=True):
        assert torch.equal(p, q)
    for p, q in zip(direct.parameters(), stepped.parameters(), strict=True):
        a, b = direct_opt.state[p].get("momentum_buffer"), stepped_opt.state[q].get("momentum_buffer")
        assert (a is None and b is None) if momentum == 0 else torch.equal(a, b)
    assert direct_opt.param_groups[0]["lr"] == stepped_opt.param_groups[0]["lr"]
