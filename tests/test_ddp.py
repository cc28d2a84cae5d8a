"""``fit`` under ``torchrun``: two CPU processes (gloo) average their gradients, so one step equals
single-process training on the union of their batches, for an energy over x and for a
``StateActionEnergy`` trained with InfoNCE (which looks through the DDP wrapper); the ranks stay in
sync with stochastic objectives (DSM, CD with Langevin); only rank 0 writes TensorBoard.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from ebrl.energy import MLPEnergy, StateActionEnergy
from ebrl.training import InfoNCE, fit

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="torch.distributed with gloo is unavailable"
)

N_ROWS, BATCH_PER_RANK, LR = 8, 4, 0.1


def square_energy_objective(energy, x, *, generator=None):
    """A deterministic loss, the mean over rows of E + E²/2: DDP's average of per-rank means is the
    union's mean only if the gradients are averaged (a sum would double the step)."""
    e = energy(x)  # (B,)
    return (e + 0.5 * e.square()).mean(), {"e": e.detach().mean()}


def initial_energy() -> MLPEnergy:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return MLPEnergy(2, (8,))


def dataset() -> torch.Tensor:
    return torch.randn(N_ROWS, 2, generator=torch.Generator().manual_seed(1))


OBS_DIM, ACT_DIM, N_NEGATIVES = 3, 2, 4


class FixedActions:
    """Deterministic counter-examples for InfoNCE: ``sample(n)`` repeats the same ``N_NEGATIVES`` actions, so
    every row, on any rank, is scored against the same ones. (Random negatives are drawn per rank and could
    not match a single process's draw.)"""

    actions = torch.linspace(-1.0, 1.0, N_NEGATIVES * ACT_DIM).reshape(N_NEGATIVES, ACT_DIM)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.actions[torch.arange(n) % N_NEGATIVES]  # (n, A): row b*N + j is action j

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0])


def initial_state_action_energy() -> StateActionEnergy:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return StateActionEnergy(OBS_DIM, ACT_DIM, (8,))


def demonstrations() -> torch.Tensor:
    """Rows ``[obs, act]``, ``(N_ROWS, O + A)``."""
    return torch.randn(N_ROWS, OBS_DIM + ACT_DIM, generator=torch.Generator().manual_seed(2))


def info_nce() -> InfoNCE:
    return InfoNCE(FixedActions(), n_negatives=N_NEGATIVES)


WORKER = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    from ebrl.samplers import Langevin
    from ebrl.training import CD, DSM, fit
    from test_ddp import (
        BATCH_PER_RANK, LR, dataset, demonstrations, info_nce, initial_energy, initial_state_action_energy,
        square_energy_objective,
    )

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, out = dist.get_rank(), sys.argv[1]
    data = dataset()
    energy = initial_energy()
    if rank == 1:  # a different start: DDP must broadcast rank 0's parameters
        with torch.no_grad():
            for p in energy.parameters():
                p.add_(1.0)
    opt = torch.optim.SGD(energy.parameters(), lr=LR)
    hist = fit(energy, data, square_energy_objective, epochs=2, batch_size=BATCH_PER_RANK, optimizer=opt,
               generator=torch.Generator().manual_seed(7), tensorboard_log=out + "/tb", log_interval=1)
    exact = [p.detach().clone() for p in energy.parameters()]
    for objective in (DSM(sigma=0.3), CD(Langevin(step_size=0.01, n_steps=5))):
        fit(energy, data, objective, epochs=2, batch_size=BATCH_PER_RANK, lr=1e-2,
            generator=torch.Generator().manual_seed(8))
    synced = [p.detach().clone() for p in energy.parameters()]
    sa = initial_state_action_energy()
    if rank == 1:
        with torch.no_grad():
            for p in sa.parameters():
                p.add_(1.0)
    sa_opt = torch.optim.SGD(sa.parameters(), lr=LR)
    sa_hist = fit(sa, demonstrations(), info_nce(), epochs=1, batch_size=BATCH_PER_RANK, optimizer=sa_opt,
                  generator=torch.Generator().manual_seed(9))
    sa_params = [p.detach().clone() for p in sa.parameters()]
    torch.save({"exact": exact, "synced": synced, "loss": hist.loss, "sa": sa_params, "sa_loss": sa_hist.loss},
               f"{out}/rank{rank}.pt")
    dist.barrier()  # no rank tears gloo down while the other still talks to it (an abort, seen under load)
    dist.destroy_process_group()
    """
)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp")
    script = out / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    env.pop("PYTEST_XDIST_WORKER", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt") | {"dir": out} for r in range(2)]


@pytest.mark.slow
def test_two_ranks_equal_single_process_training_on_the_union_batch(ranks):
    energy = initial_energy()
    opt = torch.optim.SGD(energy.parameters(), lr=LR)  # SGD: Adam's first step would hide a gradient scale error
    hist = fit(energy, dataset(), square_energy_objective, epochs=2, batch_size=2 * BATCH_PER_RANK, optimizer=opt,
               generator=torch.Generator().manual_seed(7), distributed=False)
    for rank in ranks:
        for got, want in zip(rank["exact"], energy.parameters(), strict=True):
            torch.testing.assert_close(got, want.detach(), rtol=1e-5, atol=1e-6)
        # Each rank logged the mean loss over both ranks: the union's loss, step by step.
        assert rank["loss"] == pytest.approx(hist.loss, rel=1e-5)
    assert not torch.equal(ranks[0]["exact"][0], initial_energy().net[0].weight)  # training moved the weights


@pytest.mark.slow
def test_two_ranks_train_a_state_action_energy_with_info_nce_like_one_process_on_the_union_batch(ranks):
    # One step: 8 rows, 4 per rank; the single process takes all 8 in one batch.
    energy = initial_state_action_energy()
    opt = torch.optim.SGD(energy.parameters(), lr=LR)
    hist = fit(energy, demonstrations(), info_nce(), epochs=1, batch_size=2 * BATCH_PER_RANK, optimizer=opt,
               generator=torch.Generator().manual_seed(9), distributed=False)
    assert hist.steps == 1
    for rank in ranks:
        assert len(rank["sa_loss"]) == 1
        for got, want in zip(rank["sa"], energy.parameters(), strict=True):
            torch.testing.assert_close(got, want.detach(), rtol=1e-5, atol=1e-6)
        assert rank["sa_loss"] == pytest.approx(hist.loss, rel=1e-5)
    assert not torch.equal(ranks[0]["sa"][0], initial_state_action_energy().obs_in.weight)  # the step moved it


@pytest.mark.slow
def test_ranks_stay_in_sync_with_stochastic_objectives(ranks):
    for a, b in zip(ranks[0]["synced"], ranks[1]["synced"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, b) for a, b in zip(ranks[0]["exact"], ranks[0]["synced"], strict=True))


@pytest.mark.slow
def test_only_rank_zero_writes_tensorboard(ranks):
    events = list((ranks[0]["dir"] / "tb").rglob("events.out.tfevents.*"))
    assert len(events) == 1


def test_distributed_true_without_a_process_group_names_torchrun():
    with pytest.raises(ValueError, match="torchrun"):
        fit(initial_energy(), dataset(), square_energy_objective, epochs=1, distributed=True,
            generator=torch.Generator().manual_seed(0))
