"""Implicit BC: the InfoNCE objective, the derivative-free optimiser, multimodal inference, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents import IBC, EnergyInference
from ebrl.energy import StateActionEnergy, UniformBox
from ebrl.rl import ActionBox, ContinuousBoltzmannPolicy
from ebrl.rl.dfo import DerivativeFreeOptimizer
from ebrl.samplers import Langevin
from ebrl.training import InfoNCE

OBS_SPACE = spaces.Box(0.0, 1.0, (1,), np.float32)
ACT_SPACE = spaces.Box(-1.0, 1.0, (1,), np.float32)


def bimodal_demos(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Any state in [0, 1]; half the experts act -0.5, half +0.5 (noise 0.05)."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(0, 1, (n, 1)).astype(np.float32)
    side = np.where(rng.random(n) < 0.5, 0.5, -0.5)[:, None]
    return obs, (side + 0.05 * rng.standard_normal((n, 1))).astype(np.float32)


@pytest.fixture(scope="module")
def trained() -> IBC:
    obs, act = bimodal_demos(512, seed=0)
    model = IBC(
        OBS_SPACE, ACT_SPACE, hidden=(32, 32), n_negatives=64, seed=0,
        inference=EnergyInference(deterministic="dfo", stochastic="dfo", dfo_samples=256, alpha=1.0),
    )
    model.learn(obs, act, epochs=40, batch_size=64, lr=1e-2)
    return model


class MockEnergy:
    """E(s, a) = ‖a - c(s)‖², with c(s) = (s_0, -s_0 / 2): known minimum per state."""

    def __call__(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        centre = torch.stack([obs[:, 0], -obs[:, 0] / 2], dim=-1).unsqueeze(1)  # (B, 1, 2)
        return (act - centre).pow(2).sum(-1)  # (B, N)


class TwoWellEnergy:
    """E(s, a) = 20 · min(‖a - 0.5‖², ‖a + 0.5‖²) per action dim: two equal minima at ±0.5."""

    def __call__(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return 20 * torch.minimum((act - 0.5).pow(2), (act + 0.5).pow(2)).sum(-1)  # (B, N)


@pytest.mark.slow
def test_infonce_training_prefers_expert_actions_over_their_average_and_the_walls(trained):
    obs = torch.full((3, 1), 0.3)
    grid = torch.tensor([[-0.5], [0.0], [0.5]]).expand(3, 3, 1).contiguous()  # (B=3, N=3, A=1)
    with torch.no_grad():
        e = trained.energy(obs, grid)[0]  # (3,): E at -0.5, 0 (the MSE average), +0.5
        walls = trained.energy(obs[:1], torch.tensor([[[-1.0], [1.0]]]))[0]
    assert e[0] < e[1] - 1.0 and e[2] < e[1] - 1.0
    assert float(walls.min()) > float(e[[0, 2]].max()) + 1.0


@pytest.mark.slow
def test_dfo_inference_of_trained_energy_keeps_both_modes(trained):
    obs = torch.full((100, 1), 0.7)
    act, _ = trained.policy.dfo.population(trained.energy, obs, generator=torch.Generator().manual_seed(0))
    # 100 x 256 candidates, each after the last noise step of sd 0.33 · 0.5² · 2 = 0.165: if they were
    # resampled at the modes exactly, P(|ξ| < 0.2) = 0.77; 0.6 leaves room for the learned wells' width.
    assert float((act.abs() - 0.5).abs().lt(0.2).float().mean()) > 0.6
    # Both modes survive: resampling sharpens the learned split like exp(-(K+1)·ΔE), so the minority
    # share may drop well below 1/2 when the two learned wells differ slightly, but a collapsed
    # optimiser would leave (almost) none there.
    assert 0.05 < float((act > 0).float().mean()) < 0.95


def test_dfo_finds_known_minimum_of_mock_energy_within_0_1():
    box = ActionBox((-1.0, -1.0), (1.0, 1.0))
    obs = torch.linspace(-0.8, 0.8, 9).unsqueeze(1)  # (9, 1)
    a = DerivativeFreeOptimizer(box, n_samples=512, n_iters=3, temperature=0.01).minimize(
        MockEnergy(), obs, generator=torch.Generator().manual_seed(0)
    )
    target = torch.stack([obs[:, 0], -obs[:, 0] / 2], dim=-1)
    assert float((a - target).norm(dim=-1).max()) < 0.1


@pytest.mark.parametrize("method", ["dfo", "langevin"])
def test_inference_keeps_both_modes_of_a_symmetric_two_well_energy(method):
    box, g = ActionBox((-1.0,), (1.0,)), torch.Generator().manual_seed(1)
    obs = torch.zeros(2000, 1)
    if method == "dfo":
        a = DerivativeFreeOptimizer(box, n_samples=64, temperature=1.0).sample(TwoWellEnergy(), obs, generator=g)
    else:
        a = ContinuousBoltzmannPolicy(box).sample(TwoWellEnergy(), obs, alpha=1.0, generator=g)[:, 0]
    frac = float((a > 0).float().mean())
    # 2000 draws of a fair coin: sd = sqrt(0.25 / 2000) = 0.011; 0.06 is > 5 sd.
    assert abs(frac - 0.5) < 0.06
    assert float((a.abs() - 0.5).abs().median()) < 0.15


def test_dfo_same_generator_seed_is_reproducible_and_leaves_global_rng_untouched():
    dfo, obs = DerivativeFreeOptimizer(ActionBox((-1.0,), (1.0,)), n_samples=32), torch.zeros(5, 1)
    state = torch.random.get_rng_state()
    a1 = dfo.sample(TwoWellEnergy(), obs, generator=torch.Generator().manual_seed(3))
    a2 = dfo.sample(TwoWellEnergy(), obs, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2)
    assert torch.equal(state, torch.random.get_rng_state())


def test_ibc_training_is_reproducible_with_a_seed():
    obs, act = bimodal_demos(64, seed=2)
    weights = []
    for _ in range(2):
        model = IBC(OBS_SPACE, ACT_SPACE, hidden=(8,), n_negatives=8, seed=5)
        model.learn(obs, act, epochs=2, batch_size=32)
        weights.append(torch.cat([p.detach().flatten() for p in model.energy.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_gradient_penalty_and_langevin_counter_examples_give_finite_loss_and_gradients():
    box = ActionBox((-1.0,), (1.0,))
    objective = InfoNCE(
        UniformBox(box.low, box.high), n_negatives=8,
        sampler=Langevin(step_size=0.01, n_steps=3, bounds=((-1.0,), (1.0,))), grad_penalty=1.0, grad_margin=0.0,
    )
    energy = StateActionEnergy(1, 1, (16,))
    x = torch.rand(4, 2)
    loss, metrics = objective(energy, x, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and float(metrics["grad_penalty"]) > 0  # margin 0: any slope is penalised
    assert all(torch.isfinite(p.grad).all() for p in energy.parameters())


def test_bad_demonstrations_raise_value_errors_naming_the_argument():
    model = IBC(OBS_SPACE, ACT_SPACE, hidden=(8,), n_negatives=4, seed=0)
    obs, act = bimodal_demos(10, seed=0)
    with pytest.raises(ValueError, match="observations"):
        model.learn(np.zeros((10, 3), np.float32), act, epochs=1)
    with pytest.raises(ValueError, match="actions"):
        model.learn(obs, np.zeros((10, 2), np.float32), epochs=1)
    with pytest.raises(ValueError, match="observations is empty"):
        model.learn(np.zeros((0, 1), np.float32), np.zeros((0, 1), np.float32), epochs=1)
    with pytest.raises(ValueError, match="same number of rows"):
        model.learn(obs[:5], act, epochs=1)
    with pytest.raises(ValueError, match="action space"):
        model.learn(obs, act + 5.0, epochs=1)
    with pytest.raises(ValueError, match="noise_shrink"):
        DerivativeFreeOptimizer(ActionBox((-1.0,), (1.0,)), noise_shrink=2.0)


class RecordingEnergy(StateActionEnergy):
    """A StateActionEnergy that keeps the last candidate actions it scored."""

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        self.candidates = act.detach().clone()  # (B, 1 + N, A)
        return super().forward(obs, act)


def test_local_counter_examples_sit_around_the_demonstration_and_the_rest_stay_uniform():
    box = ActionBox((-1.0, -1.0), (1.0, 1.0))
    n, frac, sigma = 40, 0.25, 0.02
    objective = InfoNCE(UniformBox(box.low, box.high), n_negatives=n, local_fraction=frac, local_noise=sigma)
    assert objective.n_local == 10
    energy = RecordingEnergy(1, 2, (8,))
    b = 500
    demo = torch.tensor([0.3, -0.4])
    x = torch.cat([torch.rand(b, 1), demo.expand(b, 2)], dim=1)  # rows [obs, act]
    objective(energy, x, generator=torch.Generator().manual_seed(0))
    cand = energy.candidates  # (B, 1 + N, 2)
    assert torch.equal(cand[:, 0], demo.expand(b, 2))  # the positive comes first
    uniform, local = cand[:, 1 : 1 + n - 10].reshape(-1, 2), cand[:, 1 + n - 10 :].reshape(-1, 2)
    # Uniform on [-1, 1]: mean 0, std 1/sqrt(3); local: mean a*, std sigma * width = 0.04 (clamping
    # never bites 0.6 from the walls). Tolerances: 5 standard errors of the sample mean / std.
    m = uniform.shape[0]
    assert torch.allclose(uniform.mean(0), torch.zeros(2), atol=5 / np.sqrt(3 * m))
    assert torch.allclose(uniform.std(0), torch.full((2,), 1 / np.sqrt(3)), atol=5 * 0.3 / np.sqrt(m))
    k = local.shape[0]
    assert torch.allclose(local.mean(0), demo, atol=5 * 0.04 / np.sqrt(k))
    assert torch.allclose(local.std(0), torch.full((2,), 0.04), atol=5 * 0.04 / np.sqrt(2 * k))


def test_local_counter_examples_are_clamped_into_the_box_and_bad_settings_are_refused():
    box = ActionBox((0.0,), (1.0,))
    energy = RecordingEnergy(1, 1, (8,))
    x = torch.tensor([[0.5, 1.0]]).repeat(200, 1)  # a demonstration on the upper wall
    InfoNCE(UniformBox(box.low, box.high), n_negatives=8, local_fraction=0.5, local_noise=0.2)(
        energy, x, generator=torch.Generator().manual_seed(1)
    )
    local = energy.candidates[:, 5:]
    assert float(local.max()) <= 1.0 and float(local.min()) >= 0.0
    assert float((local == 1.0).float().mean()) > 0.3  # about half the draws land past the wall
    with pytest.raises(ValueError, match="local_fraction"):
        InfoNCE(UniformBox(box.low, box.high), local_fraction=1.0)
    with pytest.raises(ValueError, match="local_noise"):
        InfoNCE(UniformBox(box.low, box.high), local_fraction=0.5, local_noise=0.0)


def test_the_device_argument_is_checked_and_cpu_and_auto_train_alike_on_a_cpu_machine():
    """``device="cpu"`` is the default and keeps the CPU random streams; a device that cannot be used is refused
    naming the argument."""
    obs, act = bimodal_demos(64, seed=2)
    weights = []
    for device in ("cpu", torch.device("cpu")) + (() if torch.cuda.is_available() else ("auto",)):
        model = IBC(OBS_SPACE, ACT_SPACE, hidden=(8,), n_negatives=8, seed=5, device=device)
        model.learn(obs, act, epochs=1, batch_size=32)
        weights.append(torch.cat([p.detach().flatten() for p in model.energy.parameters()]))
    assert all(torch.equal(w, weights[0]) for w in weights)
    with pytest.raises(ValueError, match="device must be"):
        IBC(OBS_SPACE, ACT_SPACE, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            IBC(OBS_SPACE, ACT_SPACE, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA; the CPU version of this test always runs")
def test_ibc_trains_and_acts_on_cuda_reproducibly_and_like_the_cpu_model():
    obs, act = bimodal_demos(512, seed=0)
    models = []
    for device in ("cuda", "cuda", "cpu"):
        model = IBC(OBS_SPACE, ACT_SPACE, hidden=(32, 32), n_negatives=64, seed=0, device=device,
                    inference=EnergyInference(deterministic="dfo", stochastic="dfo", dfo_samples=256, alpha=1.0))
        history = model.learn(obs, act, epochs=40, batch_size=64, lr=1e-2)
        models.append((model, history))
    (gpu, first), (_, second), (cpu, _) = models
    assert next(gpu.energy.parameters()).device.type == "cuda"
    # seeded: the CUDA run repeats itself (up to the rounding of non-deterministic CUDA reductions)
    np.testing.assert_allclose(first.epoch_loss, second.epoch_loss, rtol=1e-4)
    # both devices learn the two modes: the deterministic action sits near -0.5 or +0.5, never at their average
    for model in (gpu, cpu):
        actions, _ = model.predict(np.linspace(0, 1, 32, dtype=np.float32)[:, None], deterministic=True)
        assert actions.shape == (32, 1) and np.all(np.abs(np.abs(actions) - 0.5) < 0.2)
