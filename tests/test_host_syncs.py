"""Host synchronisations: one per ``fit`` step, whatever the objective checks.

A host synchronisation is a read of a tensor's value by Python: ``aten::_local_scalar_dense``
(``.item()``, ``int(t)``), ``aten::is_nonzero`` (``bool(t)``), both counted under a
``TorchDispatchMode``, and ``Tensor.tolist`` (counted by wrapping it), which is how ``fit`` reads
each step's loss, gradient norm, metrics and the objective's deferred checks at once. On a GPU
each one stalls the host until the device has caught up; on the CPU they are counted the same way.

The optimizer is SGD: Adam reads its own CPU step counters with ``.item()``, which never waits for
a GPU (they live on the host) but would be counted here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ebrl.boltzmann import BernoulliRBM, BoltzmannMachine, Gibbs, GibbsCD
from ebrl.energy import MLPEnergy, StateActionEnergy, UniformBox
from ebrl.samplers import HMC, MALA, DivergenceError, Langevin, ReplayBuffer
from ebrl.training import CD, DSM, NCE, PCD, SSM, InfoNCE, fit

SYNC_OPS = {"aten::_local_scalar_dense", "aten::is_nonzero", "aten::item"}


class CountSyncs(TorchDispatchMode):
    """Counts the aten operators that read a tensor's value on the host."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._schema.name in SYNC_OPS:
            self.counts[func._schema.name] += 1
        return func(*args, **(kwargs or {}))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _energy_over_x() -> MLPEnergy:
    return MLPEnergy(2, (16,))


CASES: dict[str, tuple[Callable[[], Any], Callable[[], Any], int]] = {
    # name: (energy, objective, event width of the data rows)
    "CD-Langevin": (_energy_over_x, lambda: CD(Langevin(step_size=0.01, n_steps=5)), 2),
    "CD-MALA": (_energy_over_x, lambda: CD(MALA(step_size=0.01, n_steps=3)), 2),
    "CD-HMC": (_energy_over_x, lambda: CD(HMC(step_size=0.01, n_leapfrog=2, n_steps=2)), 2),
    "PCD": (
        _energy_over_x,
        lambda: PCD(Langevin(step_size=0.01, n_steps=5), ReplayBuffer(128, (2,), low=-3.0, high=3.0, generator=gen(1))),
        2,
    ),
    "DSM": (_energy_over_x, lambda: DSM(sigma=0.1), 2),
    "SSM": (_energy_over_x, lambda: SSM(n_projections=2), 2),
    "NCE": (_energy_over_x, lambda: NCE(UniformBox(-6.0, 6.0, dim=2)), 2),
    "InfoNCE": (_energy_over_x, lambda: InfoNCE(UniformBox(-6.0, 6.0, dim=2), n_negatives=4), 2),
    "InfoNCE-state-action": (
        lambda: StateActionEnergy(3, 2, (16,)), lambda: InfoNCE(UniformBox(-1.0, 1.0, dim=2), n_negatives=4), 5
    ),
    "CD-Gibbs-RBM": (lambda: BernoulliRBM(6, 4, generator=gen(3)), lambda: CD(Gibbs(n_steps=2)), 6),
    "GibbsCD-RBM": (lambda: BernoulliRBM(6, 4, generator=gen(3)), lambda: GibbsCD(2), 6),
    "GibbsCD-BM": (lambda: BoltzmannMachine(6, generator=gen(3)), lambda: GibbsCD(1, persistent=False), 6),
}


def count_tolist(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the calls of ``Tensor.tolist`` (in ``["tolist"]`` of the returned counter) for the rest of the test."""
    reads: Counter[str] = Counter()
    tolist = torch.Tensor.tolist

    def counted_tolist(self: torch.Tensor) -> Any:
        reads["tolist"] += 1
        return tolist(self)

    monkeypatch.setattr(torch.Tensor, "tolist", counted_tolist)
    return reads


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_fit_step_synchronises_the_host_once(name, monkeypatch):
    make_energy, make_objective, width = CASES[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        energy = make_energy()
    data = torch.randn(48, width, generator=gen(2))
    if name in ("CD-Gibbs-RBM", "GibbsCD-RBM", "GibbsCD-BM"):
        data = (data > 0).float()
    elif name == "InfoNCE-state-action":
        data[:, 3:] = data[:, 3:].clamp(-1.0, 1.0)  # actions inside the noise box
    reads = count_tolist(monkeypatch)
    optimizer = torch.optim.SGD(energy.parameters(), lr=1e-3)
    objective = make_objective()  # constructors validate their arguments: not part of the steps
    with CountSyncs() as mode:
        history = fit(energy, data, objective, epochs=2, batch_size=16, optimizer=optimizer, generator=gen(4))
    steps = history.steps
    assert steps == 6
    # fit validates the whole dataset once (one read), then reads each step once, with tolist.
    assert reads["tolist"] == steps, (reads, dict(mode.counts))
    assert sum(mode.counts.values()) <= 1, dict(mode.counts)


class NaNAfter(MLPEnergy):
    """An MLP energy over 2-D points whose forward returns NaN from call ``k + 1`` on."""

    def __init__(self, k: int) -> None:
        super().__init__(2, (8,))
        self.k, self.calls = k, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        e = super().forward(x)
        return e * float("nan") if self.calls > self.k else e


def test_a_diverged_sampler_inside_fit_still_names_its_step():
    """Deferred checks keep their messages: the first failed check of the step raises, naming the sampler step."""
    # CD with 3 Langevin steps calls the energy 5 times a step; step 2: data (6), chain (7, 8), NaN from 9.
    with pytest.raises(DivergenceError, match=r"step 2 \(epoch 1\): Langevin diverged at step 2 of 3"):
        fit(NaNAfter(8), torch.randn(32, 2, generator=gen(5)), CD(Langevin(step_size=0.01, n_steps=3)),
            epochs=1, batch_size=8, generator=gen(6))


def test_pcd_keeps_diverged_chains_out_of_the_replay_buffer():
    buffer = ReplayBuffer(64, (2,), low=-3.0, high=3.0, generator=gen(7))
    with pytest.raises(DivergenceError, match="Langevin diverged"):
        fit(NaNAfter(7), torch.randn(32, 2, generator=gen(8)), PCD(Langevin(step_size=0.01, n_steps=3), buffer),
            epochs=1, batch_size=8, generator=gen(9))
    assert bool(torch.isfinite(buffer.buffer).all())


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_boltzmann_fit_reads_the_host_once_per_step_plus_its_data_checks(momentum, monkeypatch):
    # BoltzmannModel.fit trains through fit with fused SGD, whose update fit applies by calling the kernel directly.
    data = (torch.randn(48, 6, generator=gen(2)) > 0).float()
    reads = count_tolist(monkeypatch)
    setup = {}
    for epochs in (1, 3):
        reads.clear()
        rbm = BernoulliRBM(6, 4, generator=gen(3))
        with CountSyncs() as mode:
            rbm.fit(data, epochs=epochs, batch_size=16, momentum=momentum, generator=gen(4))
        assert reads["tolist"] == 3 * epochs, (reads, dict(mode.counts))  # one read per step
        setup[epochs] = dict(mode.counts)  # the checks of the data: once per call, not per step
    assert setup[1] == setup[3] and sum(setup[1].values()) <= 3, setup
