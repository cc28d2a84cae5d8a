"""Host synchronisations in the agents' gradient steps: one read per ``train`` call, however many steps it takes.

Counted as in ``tests/test_host_syncs.py``: ``aten::_local_scalar_dense``, ``aten::is_nonzero`` and ``aten::item``
under a ``TorchDispatchMode``, and ``Tensor.tolist`` by wrapping it. Adam's step counters are left out: they are
host tensors, so reading them never waits for a device.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from agents import SoftDQN, SoftQ
from ebrl.rl import ActionSampler

SYNC_OPS = {"aten::_local_scalar_dense", "aten::is_nonzero", "aten::item"}


class CountSyncs(TorchDispatchMode):
    """Counts host reads of tensors other than ``skip`` (the optimisers' host-side step counters)."""

    def __init__(self, skip: list[torch.Tensor]) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()
        self.skip = skip

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._schema.name in SYNC_OPS and not any(a is t for a in args for t in self.skip):
            self.counts[func._schema.name] += 1
        return func(*args, **(kwargs or {}))


def step_counters(model) -> list[torch.Tensor]:
    owners = (*vars(model).values(), *vars(model.policy).values())
    optimisers = [o for o in owners if isinstance(o, torch.optim.Optimizer)]
    return [s["step"] for o in optimisers for s in o.state.values() if "step" in s]


def syncs_of_train(model, gradient_steps: int, monkeypatch) -> tuple[Counter[str], int]:
    reads = [0]
    tolist = torch.Tensor.tolist

    def counted(self, *args, **kwargs):
        reads[0] += 1
        return tolist(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "tolist", counted)
    with CountSyncs(step_counters(model)) as mode:
        model.train(gradient_steps=gradient_steps, batch_size=16)
    monkeypatch.setattr(torch.Tensor, "tolist", tolist)
    return mode.counts, reads[0]


@pytest.mark.parametrize("alpha", ["auto", 0.1])
@pytest.mark.parametrize("alpha_update", ["newton", "adam"])
def test_softdqn_train_reads_the_host_once_per_call(alpha, alpha_update, monkeypatch):
    model = SoftDQN("MlpPolicy", "CartPole-v1", learning_starts=0, seed=0, alpha=alpha, alpha_update=alpha_update,
                    double_q=True, policy_kwargs=dict(net_arch=[8]))
    model.learn(64)  # fills the buffer and creates the optimisers' state
    counts, reads = syncs_of_train(model, 4, monkeypatch)
    assert sum(counts.values()) == 0 and reads == 1, (counts, reads)


@pytest.mark.parametrize("sampler", ["default", "proposal"])
def test_softq_train_reads_the_host_once_per_call(sampler, monkeypatch):
    extra = dict(sampler="proposal") if sampler == "proposal" else {}
    model = SoftQ("MlpPolicy", "Pendulum-v1", learning_starts=0, seed=0, policy_kwargs=dict(net_arch=[8]),
                  value_sampler=ActionSampler(n_particles=2, n_levels=1, n_moves=0), **extra)
    model.learn(32)
    counts, reads = syncs_of_train(model, 3, monkeypatch)
    assert sum(counts.values()) == 0 and reads == 1, (counts, reads)


def test_the_discrete_policy_still_checks_energies_when_acting():
    model = SoftDQN("MlpPolicy", "CartPole-v1", seed=0, policy_kwargs=dict(net_arch=[8]))
    with pytest.raises(ValueError, match="must not hold NaN"):
        model.policy.boltzmann.sample(torch.full((2, 2), float("nan")), alpha=0.1)
