"""``Langevin(compile=True)`` must be a faster route to the same chain, never a different sampler.

The eager sampler is the reference: for one generator seed the compiled path must return the
same samples, the same trace and the same errors. Float64 keeps the rounding of the fused
kernels (differently ordered sums) near 1e-16 per step, so a tolerance of 1e-10 after a few steps
separates rounding from any real difference in noise order, schedule or bounds, which would show
up at the size of a step (>= 1e-3).

Each test resets dynamo first, so tests do not share compiled graphs or count against one
another's ``torch._dynamo.config.recompile_limit``. Tests monkeypatch ``CHUNK_STEPS`` to 2 so
that a handful of steps exercises several chunks and a shorter last chunk, with small graphs.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from ebrl.energy import MLPEnergy
from ebrl.samplers import DivergenceError, Langevin
from ebrl.samplers import compiled as compiled_module

CUDA = torch.cuda.is_available()
HAS_CXX = any(shutil.which(c) is not None for c in ("g++", "c++", "clang++"))
pytestmark = [
    pytest.mark.slow,  # the first compile in a process takes several seconds
    pytest.mark.skipif(not HAS_CXX, reason="torch.compile on CPU needs a C++ compiler"),
]
ATOL = 1e-10


@pytest.fixture(autouse=True)
def fresh_dynamo(monkeypatch):
    torch._dynamo.reset()
    monkeypatch.setattr(compiled_module, "CHUNK_STEPS", 2)


def mlp(dim: int, seed: int = 0) -> MLPEnergy:
    torch.manual_seed(seed)  # parameter init only; the samplers below never touch the global RNG
    return MLPEnergy(dim, hidden=(16, 16)).double()


def start(n: int = 5, dim: int = 3) -> torch.Tensor:
    """Most tests share one shape, dtype and energy size, so the compiled graphs repeat and
    inductor's cache serves them: a compile costs seconds on a CPU."""
    return torch.randn(n, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


def run(sampler: Langevin, energy, x0: torch.Tensor, seed: int = 1) -> torch.Tensor:
    return sampler(energy, x0, generator=torch.Generator().manual_seed(seed))


def test_compiled_langevin_gives_the_eager_samples_for_the_same_seed():
    energy, x0 = mlp(3), start()
    eager = Langevin(step_size=0.05, n_steps=5)
    rng = torch.get_rng_state()
    out = run(Langevin(step_size=0.05, n_steps=5, compile=True), energy, x0)  # chunks of 2, 2, 1 steps
    assert torch.equal(torch.get_rng_state(), rng)
    assert out.dtype == torch.float64 and out.shape == x0.shape
    torch.testing.assert_close(out, run(eager, energy, x0), rtol=0, atol=ATOL)
    assert not torch.allclose(out, run(eager, energy, x0, seed=2), atol=1e-3)  # the seed matters


def test_compiled_langevin_trace_matches_eager_with_clip_bounds_annealing_and_temperature():
    energy, x0 = mlp(3), 0.2 * start()
    kwargs = {
        "step_size": 0.3, "step_size_final": 0.05, "n_steps": 4, "temperature": 0.5, "grad_clip": 0.2,
        "bounds": ((-0.6, -0.4, -0.5), (0.6, 0.4, 0.5)), "boundary": "reflect",
    }
    compiled = Langevin(**kwargs, compile=True).trace(energy, x0, generator=torch.Generator().manual_seed(1))
    eager = Langevin(**kwargs).trace(energy, x0, generator=torch.Generator().manual_seed(1))
    assert compiled.energies.shape == (5, 5)  # (n_steps + 1, B)
    for got, want in zip(compiled, eager, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=ATOL)
    assert (compiled.samples.abs() <= torch.tensor([0.6, 0.4, 0.5], dtype=x0.dtype)).all()
    assert not torch.allclose(compiled.samples, x0, atol=1e-3)  # the chains moved


def test_compiled_langevin_follows_in_place_weight_updates():
    # An optimiser updates parameters in place between sampler calls; a compiled graph must read
    # the new values, not constants captured at compile time.
    energy, x0 = mlp(3), start()
    sampler, eager = Langevin(step_size=0.05, n_steps=4, compile=True), Langevin(step_size=0.05, n_steps=4)
    before = run(sampler, energy, x0)
    with torch.no_grad():
        for p in energy.parameters():
            p.mul_(3.0)
    after = run(sampler, energy, x0)
    torch.testing.assert_close(after, run(eager, energy, x0), rtol=0, atol=ATOL)
    assert not torch.allclose(before, after, atol=1e-3)


def test_compiled_langevin_conditions_on_the_state_a_fresh_closure_captures():
    # RL action sampling: a new closure over a new state at every call must use that state.
    body = mlp(5)

    def conditioned(obs: torch.Tensor):
        def energy(a: torch.Tensor) -> torch.Tensor:
            return body.forward(torch.cat([obs, a], dim=1))  # (B, O + A) -> (B,)

        return energy

    a0 = start()
    sampler, eager = Langevin(step_size=0.05, n_steps=4, compile=True), Langevin(step_size=0.05, n_steps=4)
    results = []
    for seed in (10, 11):
        energy = conditioned(torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))
        got = run(sampler, energy, a0)
        torch.testing.assert_close(got, run(eager, energy, a0), rtol=0, atol=ATOL)
        results.append(got)
    assert not torch.allclose(results[0], results[1], atol=1e-3)


def test_compiled_langevin_divergence_names_the_same_step_as_eager():
    def quartic_well_upside_down(x: torch.Tensor) -> torch.Tensor:
        return -x.pow(4).sum(-1)  # x: 3 -> 111 -> 5.5e6 -> 6.7e20, whose energy is -inf in float32

    x0 = torch.full((4, 1), 3.0)
    messages = []
    for compile_ in (False, True):
        with pytest.raises(DivergenceError, match="diverged at step 3 of 4") as info:
            run(Langevin(step_size=1.0, n_steps=4, noise_scale=0.0, compile=compile_), quartic_well_upside_down, x0)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_compiled_langevin_reports_a_wrong_energy_shape_like_eager():
    with pytest.raises(ValueError, match=r"returned shape \(4, 1\) for input of shape \(4, 3\)"):
        run(Langevin(n_steps=2, compile=True), lambda x: x[:, :1], torch.zeros(4, 3))


def test_compiled_langevin_explains_an_energy_that_synchronises_with_the_host():
    energy = MLPEnergy(3)
    with pytest.raises(RuntimeError, match=r"call Energy\.forward, not Energy\.__call__"):
        run(Langevin(n_steps=2, compile=True), lambda x: energy(x), torch.zeros(4, 3))  # __call__ checks finiteness


def test_compiled_langevin_raises_instead_of_running_eagerly_past_the_recompile_limit():
    energy, x0 = mlp(3), start()
    sampler = Langevin(step_size=0.05, n_steps=2, compile=True)
    with torch._dynamo.config.patch(recompile_limit=1):
        run(sampler, energy, x0)
        with pytest.raises(RuntimeError, match="recompile_limit=1"):
            run(sampler, energy.float(), x0.float())  # a second variant


def test_compile_flag_must_be_a_bool():
    with pytest.raises(TypeError, match="compile must be a bool"):
        Langevin(compile="yes")


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA; the CPU tests above always run")
def test_compiled_langevin_on_cuda_matches_eager_and_keeps_earlier_results():
    energy = MLPEnergy(2).cuda()
    x0 = torch.randn(16, 2, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    sampler, eager = Langevin(step_size=0.02, n_steps=7, compile=True), Langevin(step_size=0.02, n_steps=7)

    def sample(seed: int) -> torch.Tensor:
        return sampler(energy, x0, generator=torch.Generator("cuda").manual_seed(seed))

    first = sample(1)
    kept = first.clone()
    for seed in (2, 3, 1):  # CUDA-graph replays reuse output buffers; earlier results must survive
        latest = sample(seed)
    torch.testing.assert_close(first, kept, rtol=0, atol=0)
    want = eager(energy, x0, generator=torch.Generator("cuda").manual_seed(1))
    torch.testing.assert_close(latest, want, rtol=1e-4, atol=1e-5)  # float32, fused kernels
