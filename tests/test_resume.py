"""Interrupted and resumed runs continue exactly, and a damaged checkpoint is never half-loaded.

- ``fit`` for E epochs equals ``fit`` for E/2, ``save_training_state``, fresh objects,
  ``load_training_state`` and ``fit`` for E/2 more, bit for bit on the CPU (CD with Langevin,
  and PCD with its replay buffer);
- an RBM's ``fit(resume=True)`` after ``save_training_state``/``load_training_state`` equals one
  uninterrupted ``fit`` (CD and PCD, with momentum);
- truncated, bit-flipped or mismatched files raise ``CheckpointError`` and leave every live
  object (energy, optimizer, replay buffer, generator) untouched;
- SB3 agents (SoftQ on Pendulum, SoftDQN on CartPole): ``agents.common.save_run`` then
  ``load_run`` and ``learn(reset_num_timesteps=False)`` continue a run bit for bit.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import SoftDQN, SoftQ
from agents.common import load_run, save_run
from ebrl.boltzmann import BernoulliRBM
from ebrl.checkpoint import CheckpointError
from ebrl.energy import MLPEnergy
from ebrl.rl import ActionSampler
from ebrl.samplers import Langevin, ReplayBuffer
from ebrl.training import CD, PCD, fit, load_training_state, save_training_state


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mlp(seed: int) -> MLPEnergy:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLPEnergy(2, (16,))


DATA = torch.randn(48, 2, generator=gen(0))  # 3 steps of 16 rows per epoch
SAMPLER = Langevin(step_size=0.05, n_steps=5)


def make_run(kind: str, init_seed: int, buffer_seed: int):
    """A fresh (energy, optimizer, objective) of the given kind; the seeds fix the initial state."""
    energy = mlp(init_seed)
    optimizer = torch.optim.Adam(energy.parameters(), lr=1e-2)
    if kind == "cd":
        objective = CD(SAMPLER, l2=0.1)
    else:
        objective = PCD(SAMPLER, ReplayBuffer(100, (2,), low=-2, high=2, generator=gen(buffer_seed)), l2=0.1)
    return energy, optimizer, objective


def stateful(objective):
    return objective if isinstance(objective, PCD) else None


@pytest.mark.parametrize("kind", ["cd", "pcd"])
def test_split_fit_with_save_and_load_equals_an_uninterrupted_fit(kind, tmp_path):
    energy, opt, objective = make_run(kind, 1, 2)
    g = gen(3)
    whole = fit(energy, DATA, objective, epochs=4, batch_size=16, optimizer=opt, generator=g)

    first, first_opt, first_obj = make_run(kind, 1, 2)
    g1 = gen(3)
    half = fit(first, DATA, first_obj, epochs=2, batch_size=16, optimizer=first_opt, generator=g1)
    path = tmp_path / "run.pt"
    save_training_state(
        path, energy=first, optimizer=first_opt, generator=g1, objective=stateful(first_obj), history=half,
        extra={"epochs_done": 2},
    )
    del first, first_opt, first_obj, g1

    # Fresh objects with other initial weights, buffer and seed: everything comes from the file.
    second, second_opt, second_obj = make_run(kind, 10, 20)
    g2 = gen(30)
    loaded = load_training_state(
        path, energy=second, optimizer=second_opt, generator=g2, objective=stateful(second_obj)
    )
    assert loaded["extra"] == {"epochs_done": 2}
    assert loaded["history"].loss == half.loss
    rest = fit(second, DATA, second_obj, epochs=2, batch_size=16, optimizer=second_opt, generator=g2)

    for (name, p), q in zip(energy.named_parameters(), second.parameters(), strict=True):
        assert torch.equal(p, q), name
    assert loaded["history"].loss + rest.loss == whole.loss
    assert torch.equal(g.get_state(), g2.get_state())
    if kind == "pcd":
        assert torch.equal(objective.buffer.buffer, second_obj.buffer.buffer)


# --- damaged or mismatched files are never half-loaded -------------------------------------


@pytest.fixture
def saved_pcd_run(tmp_path):
    energy, opt, pcd = make_run("pcd", 1, 2)
    g = gen(3)
    history = fit(energy, DATA, pcd, epochs=1, batch_size=16, optimizer=opt, generator=g)
    path = tmp_path / "run.pt"
    save_training_state(path, energy=energy, optimizer=opt, generator=g, objective=pcd, history=history)
    return path


class LiveRun:
    """Fresh objects to load into, and a deep copy of their state to prove they were not touched."""

    def __init__(self, energy=None, optimizer=None, objective=None, generator=None) -> None:
        e, o, p = make_run("pcd", 10, 20)
        self.energy = e if energy is None else energy
        self.optimizer = o if optimizer is None else optimizer
        self.objective = p if objective is None else objective
        self.generator = gen(30) if generator is None else generator
        # Give the optimizer and the buffer some history, so that an overwrite would show.
        fit(self.energy, DATA, self.objective, epochs=1, batch_size=16, optimizer=self.optimizer, generator=gen(31))
        self.before = copy.deepcopy(self.snapshot())

    def snapshot(self):
        return (
            {k: v.clone() for k, v in self.energy.state_dict().items()},
            copy.deepcopy(self.optimizer.state_dict()),
            self.objective.buffer.buffer.clone(),
            self.generator.get_state(),
        )

    def load(self, path):
        return load_training_state(
            path, energy=self.energy, optimizer=self.optimizer, generator=self.generator, objective=self.objective
        )

    def assert_untouched(self) -> None:
        (e0, o0, b0, g0), (e1, o1, b1, g1) = self.before, self.snapshot()
        assert all(torch.equal(e0[k], e1[k]) for k in e0)
        assert o0["param_groups"] == o1["param_groups"]
        assert all(torch.equal(o0["state"][i][k], o1["state"][i][k]) for i in o0["state"] for k in o0["state"][i])
        assert torch.equal(b0, b1) and torch.equal(g0, g1)


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_training_state_raises_and_loads_nothing(saved_pcd_run, keep):
    raw = saved_pcd_run.read_bytes()
    saved_pcd_run.write_bytes(raw[: int(len(raw) * keep)])
    live = LiveRun()
    with pytest.raises(CheckpointError, match="corrupt"):
        live.load(saved_pcd_run)
    live.assert_untouched()


@pytest.mark.parametrize("where", [0.3, 0.6, 0.9])
def test_flipped_bytes_in_a_training_state_raise_and_load_nothing(saved_pcd_run, where):
    raw = bytearray(saved_pcd_run.read_bytes())
    # Flip a run of bytes inside the tensor data (the zip stores tensors uncompressed): the zip
    # reader either notices (CRC) or hands back altered tensors, which the digest catches.
    start = int(len(raw) * where)
    for i in range(start, start + 8):
        raw[i] ^= 0xFF
    saved_pcd_run.write_bytes(bytes(raw))
    live = LiveRun()
    with pytest.raises(CheckpointError, match="corrupt"):
        live.load(saved_pcd_run)
    live.assert_untouched()


def test_altered_values_with_the_old_digest_are_rejected(saved_pcd_run):
    payload = torch.load(saved_pcd_run, weights_only=True)
    payload["optimizer"]["state"]["param_groups"][0]["lr"] = 1.0  # a plain value, not a tensor
    torch.save(payload, saved_pcd_run)
    live = LiveRun()
    with pytest.raises(CheckpointError, match="does not match the stored SHA-256 digest"):
        live.load(saved_pcd_run)
    live.assert_untouched()


def test_mismatched_objects_raise_naming_the_mismatch_and_load_nothing(saved_pcd_run):
    wider = MLPEnergy(2, (32,))
    live = LiveRun(energy=wider, optimizer=torch.optim.Adam(wider.parameters(), lr=1e-2))
    with pytest.raises(CheckpointError, match="shape mismatches"):
        live.load(saved_pcd_run)
    live.assert_untouched()

    e = mlp(4)
    live = LiveRun(energy=e, optimizer=torch.optim.SGD(e.parameters(), lr=1e-2))
    with pytest.raises(CheckpointError, match="a Adam optimizer, but optimizer is a SGD"):
        live.load(saved_pcd_run)
    live.assert_untouched()

    small = PCD(SAMPLER, ReplayBuffer(50, (2,), generator=gen(5)))
    live = LiveRun(objective=small)
    with pytest.raises(CheckpointError, match=r"objective state has /'buffer'/'buffer' of shape \(100, 2\)"):
        live.load(saved_pcd_run)
    live.assert_untouched()

    live = LiveRun()
    with pytest.raises(CheckpointError, match=r"holds objective state .* objective=None was given"):
        load_training_state(saved_pcd_run, energy=live.energy, optimizer=live.optimizer, generator=live.generator)
    live.assert_untouched()


def test_training_state_writes_atomically(saved_pcd_run, monkeypatch):
    original = saved_pcd_run.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    energy, opt, pcd = make_run("pcd", 1, 2)
    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_training_state(saved_pcd_run, energy=energy, optimizer=opt, generator=gen(0), objective=pcd)
    assert saved_pcd_run.read_bytes() == original
    assert [p.name for p in saved_pcd_run.parent.iterdir()] == [saved_pcd_run.name]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_state_saved_on_cuda_loads_into_fresh_cuda_objects(tmp_path):
    def run(seed: int):
        energy = mlp(seed).cuda()
        buffer = ReplayBuffer(100, (2,), device="cuda", generator=torch.Generator("cuda").manual_seed(seed))
        return energy, torch.optim.Adam(energy.parameters(), lr=1e-2), PCD(SAMPLER, buffer)

    energy, opt, pcd = run(1)
    g = torch.Generator("cuda").manual_seed(3)
    fit(energy, DATA, pcd, epochs=1, batch_size=16, optimizer=opt, generator=g)
    save_training_state(tmp_path / "run.pt", energy=energy, optimizer=opt, generator=g, objective=pcd)

    energy2, opt2, pcd2 = run(10)
    with pytest.raises(CheckpointError, match="'cuda' generator, which does not fit the given 'cpu' generator"):
        load_training_state(tmp_path / "run.pt", energy=energy2, optimizer=opt2, generator=gen(0), objective=pcd2)
    g2 = torch.Generator("cuda").manual_seed(30)
    load_training_state(tmp_path / "run.pt", energy=energy2, optimizer=opt2, generator=g2, objective=pcd2)
    assert all(torch.equal(p, q) for p, q in zip(energy.parameters(), energy2.parameters(), strict=True))
    assert torch.equal(pcd.buffer.buffer, pcd2.buffer.buffer) and pcd2.buffer.buffer.is_cuda
    assert torch.equal(g.get_state(), g2.get_state())
    assert all(st["exp_avg"].is_cuda for st in opt2.state.values())


# --- RBMs -----------------------------------------------------------------------------------


RBM_DATA = (torch.rand(40, 12, generator=gen(6)) < 0.3).float()
RBM_ARGS = {"batch_size": 10, "learning_rate": 0.05, "momentum": 0.5, "n_chains": 16}


def rbm(seed: int) -> BernoulliRBM:
    return BernoulliRBM(n_visible=12, n_hidden=6, generator=gen(seed))


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_rbm_split_fit_with_save_and_load_equals_an_uninterrupted_fit(method, tmp_path):
    whole, g = rbm(1), gen(2)
    whole.fit(RBM_DATA, method=method, epochs=4, generator=g, **RBM_ARGS)

    first, g1 = rbm(1), gen(2)
    first.fit(RBM_DATA, method=method, epochs=2, generator=g1, **RBM_ARGS)
    first.save_training_state(tmp_path / "rbm.pt", generator=g1)

    second, g2 = rbm(9), gen(99)
    second.load_training_state(tmp_path / "rbm.pt", generator=g2)
    second.fit(RBM_DATA, method=method, epochs=2, generator=g2, resume=True, **RBM_ARGS)
    for (name, p), q in zip(whole.named_parameters(), second.parameters(), strict=True):
        assert torch.equal(p, q), name


def test_rbm_fit_without_resume_restarts_chains_and_momentum():
    # Sanity check of the test above: without resume=True the second half starts afresh and differs.
    whole, g = rbm(1), gen(2)
    whole.fit(RBM_DATA, epochs=4, generator=g, **RBM_ARGS)
    split, g1 = rbm(1), gen(2)
    split.fit(RBM_DATA, epochs=2, generator=g1, **RBM_ARGS)
    split.fit(RBM_DATA, epochs=2, generator=g1, **RBM_ARGS)
    assert not torch.equal(whole.weight, split.weight)


def test_rbm_training_state_damaged_or_mismatched_loads_nothing(tmp_path):
    path = tmp_path / "rbm.pt"
    model, g = rbm(1), gen(2)
    model.fit(RBM_DATA, epochs=1, generator=g, **RBM_ARGS)
    model.save_training_state(path, generator=g)

    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    target, g2 = rbm(3), gen(4)
    before, state_before = copy.deepcopy(target.state_dict()), g2.get_state()
    with pytest.raises(CheckpointError, match="corrupt"):
        target.load_training_state(path, generator=g2)
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in before.items())
    assert torch.equal(state_before, g2.get_state())

    model.save_training_state(path, generator=g)
    other = BernoulliRBM(n_visible=12, n_hidden=7, generator=gen(5))
    with pytest.raises(CheckpointError, match="shape mismatches"):
        other.load_training_state(path, generator=g2)
    assert torch.equal(state_before, g2.get_state())


def test_rbm_resume_needs_a_training_state():
    with pytest.raises(ValueError, match="resume=True needs the training state"):
        rbm(1).fit(RBM_DATA, epochs=1, generator=gen(0), resume=True, **RBM_ARGS)


# --- SB3 agents -----------------------------------------------------------------------------

AGENTS = {
    # Pendulum's episodes last 200 steps: the split at 160 falls mid-episode, and learning
    # starts at 50, so both halves train and the first half also takes random actions.
    # SoftDQN collects 4 steps per training round (train_freq=4): 160 is a round boundary.
    "softq": (SoftQ, "Pendulum-v1", dict(
        policy_kwargs=dict(net_arch=[16, 16]), learning_starts=50, batch_size=16, buffer_size=1000,
        value_sampler=ActionSampler(n_particles=4, n_levels=1, n_moves=0),
        sampler=ActionSampler(n_particles=4, n_levels=2, n_moves=1),
    )),
    "softdqn": (SoftDQN, "CartPole-v1", dict(
        policy_kwargs=dict(net_arch=[16, 16]), learning_starts=50, batch_size=16, buffer_size=1000,
        target_update_interval=20,
    )),
}


def flat_params(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.policy.parameters()])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(AGENTS))
def test_agent_split_run_with_save_run_and_load_run_equals_an_uninterrupted_run(name, tmp_path):
    algo, env_id, kwargs = AGENTS[name]
    whole = algo("MlpPolicy", env_id, seed=0, **kwargs).learn(320)

    first = algo("MlpPolicy", env_id, seed=0, **kwargs).learn(160)
    save_run(first, tmp_path / "run")
    # Whatever runs in between (here: another seeded run) must not matter.
    algo("MlpPolicy", env_id, seed=7, **kwargs).learn(60)
    del first
    resumed = load_run(algo, tmp_path / "run", device="cpu")
    assert resumed.num_timesteps == 160
    resumed.learn(160, reset_num_timesteps=False)

    assert resumed.num_timesteps == whole.num_timesteps == 320
    assert torch.equal(flat_params(resumed), flat_params(whole))
    opt_a, opt_b = resumed.policy.optimizer.state_dict(), whole.policy.optimizer.state_dict()
    assert all(torch.equal(v, opt_a["state"][i][k]) for i, st in opt_b["state"].items() for k, v in st.items())
    assert np.array_equal(resumed.replay_buffer.observations, whole.replay_buffer.observations)
    assert np.array_equal(resumed._last_obs, whole._last_obs)


def test_plain_sb3_load_without_the_run_state_does_not_continue_exactly(tmp_path):
    # Why save_run exists: save + save_replay_buffer + load + load_replay_buffer alone restarts the
    # random streams from the seed (Algo.load reseeds) and needs a fresh env, so the runs part.
    algo, env_id, kwargs = AGENTS["softdqn"]
    whole = algo("MlpPolicy", env_id, seed=0, **kwargs).learn(320)
    first = algo("MlpPolicy", env_id, seed=0, **kwargs).learn(160)
    first.save(tmp_path / "m.zip")
    first.save_replay_buffer(tmp_path / "rb.pkl")
    resumed = algo.load(tmp_path / "m.zip", env=gym.make(env_id), device="cpu")
    resumed.load_replay_buffer(tmp_path / "rb.pkl")
    resumed.learn(160, reset_num_timesteps=False)
    assert resumed.num_timesteps == 320
    assert not torch.equal(flat_params(resumed), flat_params(whole))


@pytest.fixture
def saved_run(tmp_path):
    algo, env_id, kwargs = AGENTS["softdqn"]
    save_run(algo("MlpPolicy", env_id, seed=0, **kwargs).learn(60), tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.parametrize("name", ["model.zip", "replay_buffer.pkl", "state.pkl"])
def test_load_run_rejects_a_truncated_file_naming_it(saved_run, name):
    path = saved_run / name
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=rf"{name}' is missing or corrupt"):
        load_run(SoftDQN, saved_run)


def test_load_run_rejects_another_algorithm_and_a_missing_run(saved_run, tmp_path):
    with pytest.raises(CheckpointError, match=r"holds a run of agents\.softdqn\.softdqn\.SoftDQN, not of SoftQ"):
        load_run(SoftQ, saved_run)
    with pytest.raises(FileNotFoundError, match="no saved run"):
        load_run(SoftDQN, tmp_path / "nowhere")


def test_save_run_replaces_an_old_run_only_when_complete(saved_run, monkeypatch):
    before = {p.name: p.read_bytes() for p in saved_run.iterdir()}
    algo, env_id, kwargs = AGENTS["softdqn"]
    model = algo("MlpPolicy", env_id, seed=1, **kwargs).learn(60)

    def broken(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(algo, "save_replay_buffer", broken)
    with pytest.raises(OSError, match="disk full"):
        save_run(model, saved_run)
    assert {p.name: p.read_bytes() for p in saved_run.iterdir()} == before
    assert [p.name for p in saved_run.parent.iterdir()] == ["run"]  # no temporary directory left


def test_sb3_load_of_a_corrupt_zip_raises_a_clear_error(saved_run):
    # Without load_run, SB3's own error for a damaged zip names the file and the problem.
    path = saved_run / "model.zip"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"wasn't a zip-file"):
        SoftDQN.load(path)
