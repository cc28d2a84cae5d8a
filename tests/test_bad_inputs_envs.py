"""Bad input at the entry points of ``envs``: property-based tests."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from _bad_inputs import (
    ENERGIES,
    NOT_INT,
    NOT_NONNEGATIVE,
    NOT_POSITIVE,
    SETTINGS,
    rejects,
)
from hypothesis import given
from hypothesis import strategies as st

import envs  # noqa: F401  (registers the ebrl/* environments)
from ebrl.energy import (
    MLPEnergy,
    RingEnergy,
)
from ebrl.rl import StatePrior
from envs.bandit import BimodalBanditEnv
from envs.particle import ParticleEnv
from envs.sparse import SparseGoalEnv
from envs.wrappers import EnergyNovelty, EnergyShaping

torch.set_num_threads(1)

ENV_FIELDS: dict[str, tuple[type, dict[str, Any]]] = {
    "BimodalBanditEnv": (BimodalBanditEnv, {
        "dim": NOT_INT, "center": st.sampled_from([0.0, 1.0, -0.5, math.nan, math.inf, "a", None, True]),
        "width": NOT_POSITIVE, "render_mode": st.sampled_from(["human3", "", 1]),
    }),
    "SparseGoalEnv": (SparseGoalEnv, {
        "speed": NOT_POSITIVE, "goal_radius": NOT_POSITIVE,
        "start": st.sampled_from([(2.0, 0.0), (math.nan, 0.0), (0.0,), "ab", None]),
        "goal": st.sampled_from([(0.0, -1.5), (math.inf, 0.0), (0.0, 0.0, 0.0)]),
    }),
    "ParticleEnv": (ParticleEnv, {
        "dim": st.one_of(NOT_INT, st.just(1)), "max_step": NOT_POSITIVE, "goal_radius": NOT_POSITIVE,
        "min_separation": NOT_POSITIVE,
    }),
}


@pytest.mark.parametrize("name", sorted(ENV_FIELDS))
@SETTINGS
@given(data=st.data())
def test_env_constructors_reject_bad_kwargs(name: str, data: st.DataObject) -> None:
    cls, fields = ENV_FIELDS[name]
    field = data.draw(st.sampled_from(sorted(fields)))
    rejects(f"envs: {name}()", lambda: cls(**{field: data.draw(fields[field])}), field)


@SETTINGS
@given(data=st.data(), wrapper=st.sampled_from(["EnergyShaping", "EnergyNovelty"]))
def test_energy_wrappers_reject_bad_arguments(data: st.DataObject, wrapper: str) -> None:
    env = SparseGoalEnv()
    energy = ENERGIES["MLPEnergy"][0]
    if wrapper == "EnergyShaping":
        field = data.draw(st.sampled_from(["prior", "gamma"]))
        prior: Any = StatePrior(energy, 2)
        gamma: Any = 0.9
        if field == "prior":
            prior = data.draw(st.sampled_from([None, 3.0, StatePrior(MLPEnergy(3, (4,)), 3)]))
        else:
            gamma = data.draw(st.one_of(NOT_NONNEGATIVE, st.floats(1.0, 10.0, exclude_min=True)))
        rejects("envs: EnergyShaping()", lambda: EnergyShaping(env, prior, gamma), field)
        return
    fields = {
        "energy": st.sampled_from([None, MLPEnergy(3, (4,)), RingEnergy()]), "coef": NOT_NONNEGATIVE,
        "update_every": NOT_INT, "n_updates": NOT_INT, "buffer_size": NOT_INT, "batch_size": NOT_INT,
        "lr": NOT_NONNEGATIVE, "clip": NOT_NONNEGATIVE, "seed": st.sampled_from([None, "0", 1.5]),
    }
    field = data.draw(st.sampled_from(sorted(fields)))
    kwargs: dict[str, Any] = {"energy": energy, "coef": 0.1, field: data.draw(fields[field])}
    rejects("envs: EnergyNovelty()", lambda: EnergyNovelty(env, kwargs.pop("energy"), kwargs.pop("coef"), **kwargs),
            field)
