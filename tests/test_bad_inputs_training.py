"""Bad input at the entry points of ``ebrl.training``: property-based tests."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from _bad_inputs import (
    ENERGIES,
    FEW,
    NOT_BOOL,
    NOT_INT,
    NOT_NONNEGATIVE,
    NOT_POSITIVE,
    SA_ENERGY,
    SETTINGS,
    _gen,
    _quadratic,
    bad_batch,
    rejects,
)
from hypothesis import given
from hypothesis import strategies as st

from ebrl.energy import (
    MLPEnergy,
    RingEnergy,
    UniformBox,
)
from ebrl.samplers import Langevin, ReplayBuffer
from ebrl.training import CD, DSM, NCE, PCD, SSM, InfoNCE, fit

torch.set_num_threads(1)

OBJECTIVE_FIELDS: dict[str, dict[str, Any]] = {
    "CD": {"sampler": st.sampled_from([None, "langevin", Langevin]), "l2": NOT_NONNEGATIVE,
           "init": st.sampled_from(["zeros", None, "noise"])},
    "PCD": {"sampler": st.sampled_from([None, "langevin"]), "buffer": st.sampled_from([None, [], torch.zeros(4, 2)]),
            "l2": NOT_NONNEGATIVE},
    "DSM": {"sigma": NOT_POSITIVE},
    "SSM": {"n_projections": NOT_INT, "variance_reduction": st.sampled_from([1, "yes", None])},
    "NCE": {"noise": st.sampled_from([None, "uniform", torch.zeros(2)]), "ratio": NOT_INT},
    "InfoNCE": {"noise": st.sampled_from([None, "uniform"]), "n_negatives": NOT_INT, "temperature": NOT_POSITIVE},
}


@pytest.mark.parametrize("name", sorted(OBJECTIVE_FIELDS))
@SETTINGS
@given(data=st.data())
def test_objective_constructors_reject_bad_arguments(name: str, data: st.DataObject) -> None:
    box = UniformBox(-1.0, 1.0, dim=2)
    good: dict[str, dict[str, Any]] = {
        "CD": {"sampler": Langevin(n_steps=2)},
        "PCD": {"sampler": Langevin(n_steps=2), "buffer": ReplayBuffer(4, (2,), generator=_gen())},
        "DSM": {}, "SSM": {}, "NCE": {"noise": box}, "InfoNCE": {"noise": box},
    }
    cls = {"CD": CD, "PCD": PCD, "DSM": DSM, "SSM": SSM, "NCE": NCE, "InfoNCE": InfoNCE}[name]
    field = data.draw(st.sampled_from(sorted(OBJECTIVE_FIELDS[name])))
    bad = data.draw(OBJECTIVE_FIELDS[name][field])
    kwargs = {**good[name], field: bad}
    rejects(f"training: {name}()", lambda: cls(**kwargs), field, "noise")


@SETTINGS
@given(data=st.data(), field=st.sampled_from(["energy", "data", "objective", "epochs", "batch_size", "lr",
                                              "log_interval", "optimizer", "progress_bar"]))
def test_fit_rejects_bad_arguments(data: st.DataObject, field: str) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        energy: Any = MLPEnergy(2, (4,))
    kwargs: dict[str, Any] = {"epochs": 1, "batch_size": 4, "generator": _gen()}
    x: Any = torch.zeros(4, 2)
    objective: Any = DSM(sigma=0.1)
    if field == "energy":
        energy = data.draw(st.sampled_from([None, _quadratic, "mlp", RingEnergy()]))
    elif field == "data":
        _, x = data.draw(bad_batch((2,), max_batch=4))
    elif field == "objective":
        objective = data.draw(st.sampled_from([None, "dsm", 3]))
    elif field == "optimizer":
        kwargs["optimizer"] = data.draw(st.sampled_from(["adam", torch.optim.Adam, 1e-3]))
    elif field == "progress_bar":
        kwargs["progress_bar"] = data.draw(NOT_BOOL)
    else:
        kwargs[field] = data.draw(NOT_POSITIVE.filter(lambda v: v is not None) if field == "lr" else NOT_INT)
    rejects("training: fit", lambda: fit(energy, x, objective, **kwargs), field, "parameters")


def _objective(name: str) -> Any:
    box = UniformBox(-1.0, 1.0, dim=2)
    return {
        "CD": lambda: CD(Langevin(n_steps=2)),
        "PCD": lambda: PCD(Langevin(n_steps=2), ReplayBuffer(4, (2,), generator=_gen())),
        "DSM": lambda: DSM(sigma=0.1), "SSM": lambda: SSM(), "NCE": lambda: NCE(box),
        "InfoNCE": lambda: InfoNCE(box, n_negatives=2),
        "InfoNCE-SA": lambda: InfoNCE(UniformBox(-1.0, 1.0, dim=2), n_negatives=2),
    }[name]()


@pytest.mark.parametrize("name", ["CD", "PCD", "DSM", "SSM", "NCE", "InfoNCE", "InfoNCE-SA"])
@FEW
@given(data=st.data())
def test_objectives_called_directly_reject_bad_x_naming_x(name: str, data: st.DataObject) -> None:
    # Outside fit (which validates the whole dataset once) each objective checks its batch itself:
    # NaN x is bad input (ValueError naming x), not a diverged model (DivergenceError).
    energy, event = (SA_ENERGY, (5,)) if name == "InfoNCE-SA" else (ENERGIES["MLPEnergy"][0], (2,))
    objective = _objective(name)
    _, x = data.draw(bad_batch(event))
    rejects(f"training: {name}.__call__", lambda: objective(energy, x, generator=_gen()), "x")


@pytest.mark.parametrize("name", ["CD", "PCD", "DSM", "SSM", "NCE", "InfoNCE"])
@pytest.mark.parametrize("energy", [None, 3, "mlp"], ids=["None", "int", "str"])
def test_objectives_called_directly_reject_a_non_callable_energy(name: str, energy: Any) -> None:
    rejects(f"training: {name}.__call__", lambda: _objective(name)(energy, torch.zeros(3, 2), generator=_gen()),
            "energy")
