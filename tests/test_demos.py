"""Demonstrations as Minari datasets: the scripted expert recorded with Minari's DataCollector into a local store
(a temporary folder; nothing is downloaded) trains IBC exactly as the same demonstrations in an ``.npz`` do."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("minari")
pytest.importorskip("jax")  # Minari's DataCollector needs it (minari[create])

from agents import EnergyPolicy
from ebrl.cli import main
from ebrl.demos import load_demonstrations
from envs.demos import record_particle_demonstrations
from envs.particle import ParticleEnv, collect_demonstrations

torch.set_num_threads(1)

DATASET = "ebrl/particle-expert-v0"


@pytest.fixture
def store(tmp_path, monkeypatch):
    """Minari's local dataset store in a temporary folder."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def test_a_recorded_minari_dataset_holds_the_same_demonstrations_as_the_npz_path(store, tmp_path):
    dataset = record_particle_demonstrations(DATASET, 4, seed=3, execution_noise=0.05)
    assert dataset.total_episodes == 4 and any(store.rglob("*.hdf5"))  # written to the local store
    obs, act = load_demonstrations(DATASET)
    expected_obs, expected_act, _ = collect_demonstrations(ParticleEnv(), 4, seed=3, execution_noise=0.05)
    np.testing.assert_array_equal(obs, expected_obs)  # the expert's set-points, not the noisy executed actions
    np.testing.assert_array_equal(act, expected_act)
    np.savez(tmp_path / "d.npz", observations=expected_obs, actions=expected_act)
    npz_obs, npz_act = load_demonstrations(tmp_path / "d.npz")
    np.testing.assert_array_equal(npz_obs, obs)
    np.testing.assert_array_equal(npz_act, act)


def test_ebrl_train_ibc_on_a_minari_dataset_gives_the_same_policy_as_on_the_npz(store, tmp_path, capsys):
    record_particle_demonstrations(DATASET, 3, seed=0)
    obs, act, _ = collect_demonstrations(ParticleEnv(), 3, seed=0)
    np.savez(tmp_path / "d.npz", observations=obs, actions=act)
    policies = {}
    for name, demos in (("minari", DATASET), ("npz", str(tmp_path / "d.npz"))):
        out = tmp_path / f"{name}.pt"
        code = main(["train", "--algo", "ibc", "--env", "ebrl/Particle-v0", "--demos", demos, "--epochs", "2",
                     "--seed", "0", "--out", str(out), "--no-progress"])
        assert code in (0, None) and out.is_file()
        policies[name] = EnergyPolicy.load(str(out))
    assert f"Training IBC on {len(obs)} demonstration steps" in capsys.readouterr().out
    a, b = (torch.cat([p.detach().flatten() for p in policies[k].parameters()]) for k in ("minari", "npz"))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    states = torch.as_tensor(obs[:5])
    torch.testing.assert_close(policies["minari"].predict(states, deterministic=True),
                               policies["npz"].predict(states, deterministic=True), rtol=0, atol=0)


def test_an_unknown_dataset_id_is_a_one_line_error_naming_demos_and_nothing_is_downloaded(store, capsys):
    code = main(["train", "--algo", "ibc", "--env", "ebrl/Particle-v0", "--demos", "ebrl/absent-v0", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "--demos" in err and "no Minari dataset 'ebrl/absent-v0'" in err and "downloaded" in err
    assert len(err.strip().splitlines()) == 1


def test_a_minari_dataset_fills_an_off_policy_replay_buffer_by_its_id(store):
    """``agents.add_demonstrations`` takes a Minari id: every step of every episode lands in the buffer, episode
    ends where the dataset's do."""
    from agents import SoftQ, add_demonstrations

    dataset = record_particle_demonstrations(DATASET, 3, seed=0)
    episodes = list(dataset.iterate_episodes())
    model = SoftQ("MlpPolicy", "ebrl/Particle-v0", buffer_size=2_000, seed=0)
    assert add_demonstrations(model, DATASET) == dataset.total_steps
    buf, n = model.replay_buffer, dataset.total_steps
    np.testing.assert_allclose(buf.rewards[:n, 0], np.concatenate([e.rewards for e in episodes]), rtol=1e-6)
    np.testing.assert_array_equal(buf.observations[:n, 0], np.concatenate([e.observations[:-1] for e in episodes]))
    ends = np.cumsum([len(e.actions) for e in episodes]) - 1
    assert set(np.flatnonzero(buf.dones[:n, 0])) == set(ends)
    with pytest.raises(ValueError, match="no Minari dataset 'ebrl/none-v0'"):
        add_demonstrations(model, "ebrl/none-v0")


def test_ebrl_train_softq_puts_a_minari_dataset_in_its_replay_buffer(store, tmp_path, capsys):
    dataset = record_particle_demonstrations(DATASET, 2, seed=0)
    out = tmp_path / "softq.zip"
    code = main(["train", "--algo", "softq", "--env", "ebrl/Particle-v0", "--demos", DATASET, "--steps", "120",
                 "--seed", "0", "--out", str(out), "--no-progress"])
    assert code in (0, None) and out.is_file()
    assert f"Added {dataset.total_steps} demonstration transitions from {DATASET}" in capsys.readouterr().out
