"""Fault injection: energies that turn NaN, gradients that turn inf and energies that explode.

``fit(on_divergence="raise")`` stops with a ``DivergenceError`` naming the step before the faulty
step updates anything; ``on_divergence="recover"`` rolls back to the last good snapshot, lowers the
learning rate and finishes with finite parameters, and gives up after ``max_recoveries``; RBMs train
through the same ``fit`` and recover the same way; samplers raise on a gradient-only fault. Every test injects its
faults deterministically (by call count), so none is statistical.

Faults injected (for the reliability page), 24 in all: 5 kinds in raise mode (NaN energy
on the data, NaN energy inside the sampler, NaN loss, inf gradient with a finite loss, exploding
energy); 2 transient NaN faults recovered in one run; 4 faulty steps in the give-up test; 2
divergences of a too-large SGD learning rate (steps 3 and 7 at lr 100, then 10); 1 fault each in
the two snapshot tests; 4 sampler gradient faults (Langevin, HMC with 2 and 1 leapfrog steps, MALA);
1 + 4 RBM faults in recover mode and 1 in raise mode (a NaN visible bias, which no other term of the
closed-form gradient sees).
"""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch

from ebrl._checks import DivergenceError
from ebrl.boltzmann import BernoulliRBM
from ebrl.energy import MLPEnergy
from ebrl.samplers import HMC, MALA, Langevin, ReplayBuffer
from ebrl.training import CD, DSM, PCD, fit
from ebrl.training import trainer as trainer_module


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mlp(seed: int) -> MLPEnergy:
    """A small MLP energy whose initial weights are fixed by ``seed`` (global RNG left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLPEnergy(2, (8,))


class FaultyEnergy(torch.nn.Module):
    """An MLP energy that injects a fault on chosen calls of ``forward``.

    Args:
        bad_calls: the 1-based call numbers that are faulty; ``after`` = every call after it.
        kind: ``"nan"`` (the energy is NaN), ``"inf_grad"`` (the energy is right but the gradient
            reaching a parameter is +inf) or ``"explode"`` (the energy is multiplied by 1e6).
    """

    def __init__(self, *, bad_calls: tuple[int, ...] = (), after: int | None = None, kind: str = "nan") -> None:
        super().__init__()
        self.inner = mlp(0)
        self.gate = torch.nn.Parameter(torch.zeros(()))  # adds 0 to E; its gradient carries the fault
        self.bad_calls, self.after, self.kind, self.calls = set(bad_calls), after, kind, 0

    def faulty(self) -> bool:
        return self.calls in self.bad_calls or (self.after is not None and self.calls > self.after)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        e = self.inner.forward(x) + self.gate
        if not self.faulty():
            return e
        if self.kind == "nan":
            return e * math.nan
        if self.kind == "explode":
            return e * 1e6
        return self.inner.forward(x) + InfGradient.apply(self.gate)  # same value, gradient +inf


class InfGradient(torch.autograd.Function):
    """The identity whose backward pass returns +inf."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return torch.full_like(grad, math.inf)


def adam_steps(optimizer: torch.optim.Optimizer) -> set[int]:
    """The step counts in Adam's state: how many times ``optimizer.step()`` updated each parameter."""
    return {int(s["step"]) for s in optimizer.state.values()}


def all_finite(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


DATA = torch.randn(32, 2, generator=gen(1))  # 4 steps of 8 rows per epoch
CD3 = CD(Langevin(step_size=0.01, n_steps=3))  # 5 energy calls per step: data, 3 chain steps, negatives


# --- on_divergence="raise" ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "objective", "max_energy", "step", "cause"),
    [
        # Calls 1-10 are steps 1-2; call 11 is step 3's data energy.
        ({"after": 10}, CD3, None, 3, r"the energy is not finite .* on the data batch"),
        # Call 12 is the chain at its start in step 3, call 13 the chain after 1 Langevin update.
        ({"after": 12}, CD3, None, 3, r"Langevin diverged at step 1 of 3"),
        # DSM calls the energy once per step: a NaN energy reaches the loss at step 3.
        ({"after": 2}, DSM(0.1), None, 3, r"the loss is nan"),
        # Step 3's data energies are right but the gradient reaching `gate` through them is inf.
        ({"bad_calls": (11,), "kind": "inf_grad"}, CD3, None, 3, r"the loss is finite .* gradient is not"),
        # Step 3's data energies are 1e6 times too large.
        ({"bad_calls": (11,), "kind": "explode"}, CD3, 1e3, 3,
         r"the energies exploded: the batch mean e_pos = -?[\d.e+]+ is beyond ±max_energy \(1000\)"),
    ],
    ids=["nan-energy", "nan-in-sampler", "nan-loss", "inf-gradient", "exploding-energy"],
)
def test_raise_mode_names_the_step_and_applies_nothing_of_it(fault, objective, max_energy, step, cause):
    energy = FaultyEnergy(**fault)
    opt = torch.optim.Adam(energy.parameters(), lr=1e-2)
    with pytest.raises(DivergenceError, match=rf"training diverged at step {step} \(epoch 1\): {cause}"):
        fit(energy, DATA, objective, epochs=1, batch_size=8, optimizer=opt, generator=gen(2), max_energy=max_energy)
    assert adam_steps(opt) == {step - 1}  # the steps before were applied, the faulty one was not
    assert all_finite(energy)
    # A fault found after backward drops the gradients; one raised inside the objective leaves step 2's.
    assert all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in energy.parameters())


def test_max_energy_needs_an_objective_that_reports_energies():
    with pytest.raises(ValueError, match=r"max_energy needs an objective that reports mean energies .* DSM"):
        fit(mlp(0), DATA, DSM(0.1), epochs=1, batch_size=8, generator=gen(3), max_energy=10.0)


# --- on_divergence="recover" --------------------------------------------------------------


def two_group_adam(energy: torch.nn.Module, lr: float) -> torch.optim.Adam:
    """Adam with two parameter groups (the gate apart), to check that every group's rate is lowered."""
    rest = [p for n, p in energy.named_parameters() if n != "gate"]
    return torch.optim.Adam([{"params": rest}, {"params": [energy.gate], "lr": 2 * lr}], lr=lr)


def test_recover_mode_rolls_back_lowers_every_lr_and_finishes_finite():
    # DSM calls the energy once per step: steps 3 and 6 are faulty, transiently.
    energy = FaultyEnergy(bad_calls=(3, 6))
    opt = two_group_adam(energy, 1e-2)
    with pytest.warns(RuntimeWarning) as record:
        hist = fit(
            energy, DATA, DSM(0.1), epochs=2, batch_size=8, optimizer=opt, generator=gen(4), on_divergence="recover"
        )
    messages = [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 2
    assert re.search(r"step 3 \(epoch 1\).*before step 1 .*rate to 0\.005, 0\.01 \(recovery 1", messages[0])
    assert re.search(r"step 6 \(epoch 2\).*before step 5 .*to 0\.0025, 0\.005 \(recovery 2 of 3\)", messages[1])
    assert hist.recoveries == [(3, 5e-3), (6, 2.5e-3)]
    assert [g["lr"] for g in opt.param_groups] == [2.5e-3, 5e-3]
    assert all_finite(energy)
    # 8 steps minus 2 faulty ones were recorded; after each rollback the run went on from the snapshot.
    assert hist.steps == 6 and all(math.isfinite(v) for v in hist.loss)
    # Adam's step count: steps 1, 2 -> 2; rollback 1 to the start (step 1 had passed) -> 0;
    # step 4 -> 1 = epoch 2's snapshot; step 5 -> 2; rollback 2 to that snapshot -> 1; steps 7, 8 -> 3.
    assert adam_steps(opt) == {3}


def test_recover_mode_lowers_a_schedulers_base_rates_so_later_steps_keep_the_lower_rate():
    energy = FaultyEnergy(bad_calls=(3,))
    opt = torch.optim.SGD(energy.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)  # would reset lr to base each step
    with pytest.warns(RuntimeWarning, match=r"step 3 \(epoch 1\).*to 0\.005 "):
        fit(energy, DATA, DSM(0.1), epochs=2, batch_size=8, optimizer=opt, scheduler=scheduler, generator=gen(4),
            on_divergence="recover")
    assert scheduler.base_lrs == [5e-3] and opt.param_groups[0]["lr"] == 5e-3  # 5 more steps kept the new rate
    assert all_finite(energy)


def test_recover_mode_gives_up_after_max_recoveries_leaving_the_last_good_state():
    # PCD, 5 energy calls per step, 4 steps per epoch: epoch 1 and step 5 are clean, every call from
    # step 6 on is NaN. The snapshot of epoch 2's start (trusted once step 5 passed) is restored 3
    # times, then the 4th fault gives up.
    def objective(seed: int) -> PCD:
        return PCD(Langevin(step_size=0.01, n_steps=3), ReplayBuffer(64, (2,), generator=gen(seed)))

    faulty, pcd = FaultyEnergy(after=25), objective(5)
    opt = torch.optim.Adam(faulty.parameters(), lr=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DivergenceError, match=r"step 9 \(epoch 3\).*gave up: .*rolled back 3 times .*\[6, 7, 8\]"):
            fit(faulty, DATA, pcd, epochs=3, batch_size=8, optimizer=opt, generator=gen(6), on_divergence="recover")

    # The same run without faults, stopped after epoch 1: the state the rollbacks returned to.
    clean, clean_pcd = FaultyEnergy(), objective(5)
    clean_opt = torch.optim.Adam(clean.parameters(), lr=1e-2)
    fit(clean, DATA, clean_pcd, epochs=1, batch_size=8, optimizer=clean_opt, generator=gen(6))
    for (name, p), q in zip(faulty.named_parameters(), clean.parameters(), strict=True):
        assert torch.equal(p, q), name
    assert torch.equal(pcd.buffer.buffer, clean_pcd.buffer.buffer)  # the replay buffer was rolled back too
    assert adam_steps(opt) == {4}
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.5**3)


def test_recover_mode_tames_a_learning_rate_that_makes_cd_explode():
    # SGD at lr 100 makes CD's energies explode at step 2; recovery lowers the rate by 10x per
    # fault until training runs clean. (A deterministic run: fixed seeds, CPU.)
    energy = mlp(1)
    opt = torch.optim.SGD(energy.parameters(), lr=100.0)
    data = 0.5 * torch.randn(64, 2, generator=gen(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        hist = fit(
            energy, data, CD(Langevin(step_size=0.1, n_steps=5)), epochs=6, batch_size=16, optimizer=opt,
            generator=gen(7), on_divergence="recover", max_recoveries=10, recover_factor=0.1, max_energy=100.0,
        )
    assert 1 <= len(hist.recoveries) <= 10
    assert opt.param_groups[0]["lr"] == pytest.approx(100.0 * 0.1 ** len(hist.recoveries))
    assert all_finite(energy)
    assert all(abs(v) <= 100.0 for name in ("e_pos", "e_neg") for v in hist.metrics[name])


def test_checkpoint_interval_snapshots_every_k_steps():
    # Snapshots before steps 1, 3, 5 (k = 2). Step 3 passes, so its snapshot is trusted, and the fault
    # at step 4 rolls back to it: Adam counts steps 1, 2, 3 -> 3, rollback -> 2, no step left.
    energy = FaultyEnergy(bad_calls=(4,))
    opt = torch.optim.Adam(energy.parameters(), lr=1e-2)
    with pytest.warns(RuntimeWarning, match=r"step 4 \(epoch 1\).*snapshot taken before step 3 "):
        fit(energy, DATA, DSM(0.1), epochs=1, batch_size=8, optimizer=opt, generator=gen(8),
            on_divergence="recover", checkpoint_interval=2)
    assert adam_steps(opt) == {2}


def test_a_snapshot_is_trusted_only_once_a_step_from_it_passed():
    # Snapshots before every step (k = 1): the one before the faulty step 3 is not trusted yet
    # (the update of step 2 that produced it is unchecked), so the rollback goes to before step 2.
    energy = FaultyEnergy(bad_calls=(3,))
    opt = torch.optim.Adam(energy.parameters(), lr=1e-2)
    with pytest.warns(RuntimeWarning, match=r"step 3 \(epoch 1\).*snapshot taken before step 2 "):
        fit(energy, DATA, DSM(0.1), epochs=1, batch_size=8, optimizer=opt, generator=gen(8),
            on_divergence="recover", checkpoint_interval=1)
    assert adam_steps(opt) == {2}  # steps 1, 2 -> 2; rollback -> 1; step 4 -> 2


def test_recover_is_refused_under_torch_distributed(monkeypatch):
    monkeypatch.setattr(trainer_module, "_world", lambda distributed: (0, 2))
    with pytest.raises(ValueError, match=r"on_divergence='recover' is not supported under torch\.distributed"):
        fit(mlp(0), DATA, DSM(0.1), epochs=1, generator=gen(9), on_divergence="recover")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"on_divergence": "ignore"}, ValueError, "on_divergence must be 'raise' or 'recover'"),
        ({"max_recoveries": 0}, ValueError, "max_recoveries must be an int >= 1"),
        ({"recover_factor": 1.0}, ValueError, r"recover_factor must be in \(0, 1\)"),
        ({"recover_factor": 0.0}, ValueError, "recover_factor must be a finite number > 0"),
        ({"checkpoint_interval": 0}, ValueError, "checkpoint_interval must be an int >= 1"),
        ({"max_energy": -1.0}, ValueError, "max_energy must be a finite number > 0"),
        ({"max_energy": math.inf}, ValueError, "max_energy must be a finite number > 0"),
    ],
)
def test_bad_divergence_options_raise_naming_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        fit(mlp(0), DATA, DSM(0.1), epochs=1, generator=gen(10), **kwargs)


# --- samplers -----------------------------------------------------------------------------


class GradFaultAfter(torch.nn.Module):
    """½‖x‖² whose gradient (not value) turns NaN after ``k`` calls: only the states can reveal it."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k, self.calls = k, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        e = 0.5 * x.square().sum(-1)
        if self.calls > self.k:
            e = e + NaNGradient.apply(x).sum(-1) * 0.0  # same value; the gradient is NaN
        return e


class NaNGradient(torch.autograd.Function):
    """The identity whose backward pass returns NaN."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return torch.full_like(grad, math.nan)


@pytest.mark.parametrize(
    "sampler",
    [
        Langevin(step_size=0.01, n_steps=10),
        HMC(step_size=0.01, n_leapfrog=2, n_steps=10),
        # One leapfrog step: the NaN gradient never reaches a position, only the final momentum, so only the
        # gradient check in the sentinel can see it (the Metropolis step would reject it silently).
        HMC(step_size=0.01, n_leapfrog=1, n_steps=10),
        # MALA: a NaN gradient at the proposal makes log q(x|y) NaN, a rejection; the sentinel must see it.
        MALA(step_size=0.01, n_steps=10),
    ],
    ids=["langevin", "hmc", "hmc-one-leapfrog", "mala"],
)
def test_sampler_with_a_nan_gradient_raises_divergence(sampler):
    with pytest.raises(DivergenceError, match=r"diverged at step \d+ of 10"):
        sampler(GradFaultAfter(4), torch.zeros(4, 2), generator=gen(11))


class BarrierEnergy(torch.nn.Module):
    """½‖x‖² - log((0.5 - x₀) · [x₀ < 0.5]): a log barrier, +inf past x₀ = 0.5, where its gradient is NaN (-∞ · 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.crossings = 0  # states evaluated past the barrier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inside = x[:, 0] < 0.5
        self.crossings += int((~inside).sum())
        return 0.5 * x.square().sum(-1) - ((0.5 - x[:, 0]) * inside).log()


@pytest.mark.parametrize(
    # HMC with one leapfrog step: only the endpoint is evaluated. (A trajectory that passes through the +inf
    # region carries the NaN gradient on to a NaN position, which is divergence.)
    "sampler", [MALA(step_size=0.5, n_steps=30), HMC(step_size=0.5, n_leapfrog=1, n_steps=30)], ids=["mala", "hmc"]
)
def test_metropolis_samplers_reject_infinite_energy_proposals_whose_gradient_is_nan_without_raising(sampler):
    # Past the barrier the energy is +inf and its gradient NaN: zero density, a legal rejection, not divergence
    # (the gradient check in the divergence sentinel looks only at proposals of finite energy).
    energy = BarrierEnergy()
    past = torch.tensor([[1.0, 0.0]], requires_grad=True)
    e = energy(past)
    (grad,) = torch.autograd.grad(e.sum(), past)
    assert e.item() == math.inf and bool(grad.isnan().any())
    energy.crossings = 0
    trace = sampler.trace(energy, torch.zeros(64, 2), generator=gen(12))
    assert energy.crossings > 0  # the samplers did propose states past the barrier
    assert bool((trace.samples[:, 0] < 0.5).all())


# --- RBMs -----------------------------------------------------------------------------------


def poison(epochs: set[int]):
    """A ``fit`` callback that sets one weight to NaN after the given 0-based epochs: a fault between epochs."""

    def callback(epoch: int, model: BernoulliRBM) -> None:
        if epoch in epochs:
            with torch.no_grad():
                model.weight[0, 0] = math.nan

    return callback


RBM_DATA = (torch.rand(40, 12, generator=gen(12)) < 0.3).float()


def test_rbm_recover_mode_rolls_back_the_epoch_and_halves_the_learning_rate():
    model = BernoulliRBM(12, 6, generator=gen(13))
    # The poison lands between epochs 1 and 2 (4 steps each): step 5 finds it, and fit rolls back to the last
    # snapshot a step has verified, epoch 1's start (epoch 2's was taken after the poison).
    with pytest.warns(RuntimeWarning, match=r"step 5 \(epoch 2\).*snapshot taken before step 1 .*to 0\.025"):
        model.fit(RBM_DATA, epochs=4, batch_size=10, learning_rate=0.05, momentum=0.5, callback=poison({0}),
                  generator=gen(14), on_divergence="recover")
    assert model.recoveries == [(2, 0.025)]
    assert all_finite(model)


def test_rbm_nan_visible_bias_raises_though_it_reaches_no_other_term_of_the_closed_form_gradient():
    # A NaN visible bias only turns the negative samples to 0 (u < sigmoid(NaN) is false), so no term of the
    # closed-form gradient sees it; the RBM passes it on to its own gradient, which fit checks.
    model = BernoulliRBM(12, 6, generator=gen(13))

    def poison_bias(epoch: int, rbm: BernoulliRBM) -> None:
        with torch.no_grad():
            rbm.visible_bias[0] = math.nan

    with pytest.raises(DivergenceError, match=r"epoch 2 of 3.*step 5 \(epoch 2\): the gradient is not finite"):
        model.fit(RBM_DATA, epochs=3, batch_size=10, callback=poison_bias, generator=gen(14))
    assert all(torch.isfinite(p).all() for name, p in model.named_parameters() if name != "visible_bias")


def test_rbm_recover_mode_gives_up_after_max_recoveries():
    model = BernoulliRBM(12, 6, generator=gen(13))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # Rolled back at the first step of epochs 2, 3 and 4 (4 steps each), and given up in epoch 5.
        with pytest.raises(DivergenceError, match=r"epoch 5 of 6.*gave up: .*rolled back 3 times .*\[5, 9, 13\]"):
            model.fit(RBM_DATA, epochs=6, batch_size=10, callback=poison(set(range(6))), generator=gen(14),
                      on_divergence="recover")
