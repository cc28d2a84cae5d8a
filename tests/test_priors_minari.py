"""Energy shaping fitted to a Minari dataset (a local store in a temporary folder; nothing is downloaded) is the
same as shaping fitted to the same demonstrations in an ``.npz``, as ``ebrl train --algo ibc --demos`` reads them."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("minari")
pytest.importorskip("jax")  # Minari's DataCollector needs it (minari[create])

import envs  # noqa: F401  (registers the ebrl environments)
from envs.demos import record_particle_demonstrations
from envs.particle import ParticleEnv, collect_demonstrations
from envs.wrappers import EnergyShaping

DATASET = "ebrl/particle-expert-v0"


def test_shaping_from_a_minari_dataset_id_equals_shaping_from_the_same_npz(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    record_particle_demonstrations(DATASET, 3, seed=0)
    obs, act, _ = collect_demonstrations(ParticleEnv(), 3, seed=0)
    np.savez(tmp_path / "d.npz", observations=obs, actions=act)
    priors = {name: EnergyShaping.from_demonstrations(gym.make("ebrl/Particle-v0"), demos, gamma=0.99, epochs=5,
                                                      seed=0).prior
              for name, demos in (("minari", DATASET), ("npz", tmp_path / "d.npz"))}
    states = torch.as_tensor(obs[:20], dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(priors["minari"](states), priors["npz"](states), rtol=0, atol=0)
    assert priors["minari"].offset == priors["npz"].offset
    with pytest.raises(ValueError, match="no Minari dataset 'ebrl/absent-v0' in the local store"):
        EnergyShaping.from_demonstrations(gym.make("ebrl/Particle-v0"), "ebrl/absent-v0", gamma=0.99)
