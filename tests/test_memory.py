"""Long runs keep memory flat: bounded replay buffers and chains, and no autograd graph kept alive.

Resident memory is read from /proc/self/statm (Linux) after a warm-up, so that the allocator's
pools, torch's kernels and SB3's logger are already in place; then the run goes on for many
more iterations and the growth must stay under ``BOUND_MB``. What legitimately grows in that
time is small: ``fit``'s history holds three floats per step (~100 bytes), 2000 steps ~0.2 MB.
A retained graph or an unbounded buffer grows by the chain states per step (32 x 2 floats x 5
Langevin steps, plus the saved activations of every energy call: several kB per step, tens of
MB over the run), so the bound separates the two. No timing is asserted.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys
import weakref

import numpy as np
import pytest
import torch

from agents import SoftDQN, SoftQ
from ebrl.energy import MLPEnergy
from ebrl.rl import ActionSampler
from ebrl.samplers import Langevin, ReplayBuffer
from ebrl.training import PCD, fit

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")

BOUND_MB = 20.0


def _libc_malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    return getattr(ctypes.CDLL(name), "malloc_trim", None)


_MALLOC_TRIM = _libc_malloc_trim()


def rss_mb() -> float:
    """Resident set size of this process in MB, after a full garbage collection.

    Freed heap is handed back to the OS first (``malloc_trim``): glibc otherwise keeps freed
    pages resident, and a later allocation that reuses them would not show in the reading. An
    earlier test that freed 100 MB once hid the negative control's 100 MB leak that way.
    """
    gc.collect()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_rss_reading_sees_a_leak_the_size_of_the_bound():
    # The negative control: the measurement does register memory that stays referenced.
    before = rss_mb()
    leak = [torch.ones(2**20) for _ in range(int(BOUND_MB) + 5)]  # 4 MB each: 100 MB
    assert rss_mb() - before > BOUND_MB
    del leak


class WatchedEnergy(torch.nn.Module):
    """An MLP energy that keeps a weak reference to every input it is called with."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.inner = MLPEnergy(2, (16, 16))
        self.inputs: list[weakref.ref] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(weakref.ref(x))
        return self.inner.forward(x)


def test_langevin_keeps_no_graph_across_steps():
    energy = WatchedEnergy()
    x0 = torch.randn(64, 2, generator=gen(1), requires_grad=True)  # even a start with a graph is cut
    x = Langevin(step_size=0.01, n_steps=20)(energy, x0, generator=gen(2))
    assert x.grad_fn is None and not x.requires_grad
    assert len(energy.inputs) == 20
    # Each step's state (an input to the energy) is freed once the sampler returns: nothing,
    # not even the returned samples, holds a graph back to the chain's past.
    assert all(ref() is None for ref in energy.inputs)


@pytest.mark.slow
def test_pcd_training_memory_stays_flat_over_2000_steps():
    energy = WatchedEnergy()
    buffer = ReplayBuffer(1000, (2,), low=-2, high=2, generator=gen(3))
    objective = PCD(Langevin(step_size=0.01, n_steps=5), buffer, l2=0.1)
    optimizer = torch.optim.Adam(energy.parameters(), lr=1e-3)
    data = torch.randn(320, 2, generator=gen(4))  # 10 steps of 32 rows per epoch
    g = gen(5)

    fit(energy, data, objective, epochs=20, batch_size=32, optimizer=optimizer, generator=g)  # warm-up: 200 steps
    energy.inputs.clear()
    before = rss_mb()
    history = fit(energy, data, objective, epochs=200, batch_size=32, optimizer=optimizer, generator=g)
    growth = rss_mb() - before
    print(f"PCD: resident memory growth over 2000 steps: {growth:.2f} MB")

    assert history.steps == 2000
    assert growth < BOUND_MB, f"resident memory grew by {growth:.1f} MB over 2000 PCD steps"
    assert buffer.buffer.shape == (1000, 2) and not buffer.buffer.requires_grad
    # 2000 steps x 7 energy calls: every input was freed, so no step kept a graph alive.
    assert len(energy.inputs) == 2000 * 7 and all(ref() is None for ref in energy.inputs)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algo", "env_id", "kwargs"),
    [
        (SoftQ, "Pendulum-v1", dict(value_sampler=ActionSampler(n_particles=4, n_levels=1, n_moves=0),
                                         sampler=ActionSampler(n_particles=4, n_levels=2, n_moves=1))),
        (SoftDQN, "CartPole-v1", dict()),
    ],
    ids=["softq", "softdqn"],
)
def test_agent_memory_stays_flat_over_thousands_of_updates_and_actions(algo, env_id, kwargs):
    model = algo(
        "MlpPolicy", env_id, seed=0, policy_kwargs=dict(net_arch=[16, 16]), learning_starts=100, batch_size=32,
        buffer_size=500, train_freq=1, **kwargs,
    )
    model.learn(600)  # warm-up: the 500-slot replay buffer is full and wraps around
    obs = model.get_env().reset()
    before = rss_mb()
    model.learn(1000, reset_num_timesteps=False)  # 1000 env steps, actions and gradient updates
    for _ in range(1000):
        action, _ = model.predict(obs, deterministic=False)
    growth = rss_mb() - before
    print(f"{algo.__name__}: resident memory growth over 1000 steps and 1000 predicts: {growth:.2f} MB")

    assert model.replay_buffer.full and model.replay_buffer.observations.shape[0] == 500
    assert np.all(np.isfinite(action))
    assert growth < BOUND_MB, f"resident memory grew by {growth:.1f} MB over 1000 steps and 1000 predicts"
