"""Bad input at the entry points of ``ebrl.boltzmann``: property-based tests."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from _bad_inputs import (
    ENERGIES,
    NOT_BOOL,
    NOT_INT,
    NOT_NONNEGATIVE,
    NOT_POSITIVE,
    NOT_PROBABILITY,
    SETTINGS,
    _gen,
    _quadratic,
    _rbm,
    bad_batch,
    rejects,
)
from hypothesis import given
from hypothesis import strategies as st

from ebrl.boltzmann import (
    DBN,
    BernoulliRBM,
    BoltzmannMachine,
    GaussianBernoulliRBM,
    Gibbs,
    ais,
    ais_log_partition,
    beta_schedule,
    exact_log_partition,
    log_likelihood,
    pseudo_log_likelihood,
)

torch.set_num_threads(1)

BM_CONSTRUCTORS: dict[str, tuple[type, dict[str, Any], dict[str, Any]]] = {
    "BernoulliRBM": (BernoulliRBM, {"n_visible": 3, "n_hidden": 2},
                     {"n_visible": NOT_INT, "n_hidden": NOT_INT, "init_std": NOT_NONNEGATIVE}),
    "GaussianBernoulliRBM": (GaussianBernoulliRBM, {"n_visible": 3, "n_hidden": 2},
                             {"n_visible": NOT_INT, "n_hidden": NOT_INT, "init_std": NOT_NONNEGATIVE,
                              "sigma": NOT_POSITIVE, "learn_sigma": st.sampled_from(["yes", 2, None])}),
    "BoltzmannMachine": (BoltzmannMachine, {"n_units": 3}, {"n_units": NOT_INT, "init_std": NOT_NONNEGATIVE}),
    "DBN": (DBN, {"layers": (3, 2)}, {"layers": st.one_of(
        st.sampled_from([3, (), (3,), "ab", None]), st.tuples(st.just(3), NOT_INT)), "init_std": NOT_NONNEGATIVE}),
}


@pytest.mark.parametrize("name", sorted(BM_CONSTRUCTORS))
@SETTINGS
@given(data=st.data())
def test_boltzmann_constructors_reject_bad_arguments(name: str, data: st.DataObject) -> None:
    cls, good, fields = BM_CONSTRUCTORS[name]
    field = data.draw(st.sampled_from(sorted(fields)))
    bad = data.draw(fields[field])
    kwargs = {**good, field: bad, "generator": _gen()}
    rejects(f"boltzmann: {name}()", lambda: cls(**kwargs), field, "layers[i]")




@st.composite
def bad_data_matrix(draw: st.DrawFn, width: int, *, binary: bool) -> Any:
    """A data matrix that is never valid for a model with ``width`` visible units."""
    kind = draw(st.sampled_from(["shape", "empty", "nonfinite", "range", "ragged", "text", "complex", "meta",
                                 "none", "1d"]))
    n = draw(st.integers(1, 4))
    if kind == "shape":
        return np.zeros((n, draw(st.integers(1, 6).filter(lambda w: w != width))))
    if kind == "empty":
        return np.zeros((0, width))
    if kind == "nonfinite":
        x = np.zeros((n, width))
        x[draw(st.integers(0, n - 1)), draw(st.integers(0, width - 1))] = draw(st.sampled_from([np.nan, np.inf]))
        return x
    if kind == "range":
        x = np.zeros((n, width))
        x[0, 0] = draw(st.sampled_from([-0.5, 2.0, 0.5] if binary else [-0.5, 2.0]))
        if not binary:
            return np.full((n, width), np.nan)
        return x
    if kind == "ragged":
        return [[0.0] * width, [0.0] * (width + 1)]
    if kind == "text":
        return np.array([["a"] * width] * n)
    if kind == "complex":
        return np.zeros((n, width), dtype=np.complex64)
    if kind == "meta":
        return torch.zeros(n, width, device="meta")
    if kind == "none":
        return None
    return np.zeros(width)


@pytest.mark.parametrize("name", ["BernoulliRBM", "GaussianBernoulliRBM", "BoltzmannMachine", "DBN"])
@SETTINGS
@given(data=st.data())
def test_boltzmann_fit_rejects_bad_data(name: str, data: st.DataObject) -> None:
    model: Any = {
        "BernoulliRBM": lambda: _rbm(),
        "GaussianBernoulliRBM": lambda: GaussianBernoulliRBM(3, 2, generator=_gen()),
        "BoltzmannMachine": lambda: BoltzmannMachine(3, generator=_gen()),
        "DBN": lambda: DBN((3, 2), generator=_gen()),
    }[name]()
    x = data.draw(bad_data_matrix(3, binary=name != "GaussianBernoulliRBM"))
    rejects(f"boltzmann: {name}.fit", lambda: model.fit(x, epochs=1, generator=_gen()), "X")
    valid_for_transform = (isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.ndim == 2 and x.shape[1] == 3
                           and x.shape[0] > 0 and np.isfinite(x).all() and ((x >= 0) & (x <= 1)).all())
    if name == "DBN" and not valid_for_transform:  # fit requires binary X, transform takes probabilities
        rejects("boltzmann: DBN.transform", lambda: model.transform(x), "X")


FIT_FIELDS: dict[str, Any] = {
    "method": st.sampled_from(["CD", "ml", None, 1]),
    "epochs": NOT_INT,
    "batch_size": NOT_INT,
    "learning_rate": NOT_POSITIVE,
    "k": NOT_INT,
    "momentum": st.one_of(NOT_PROBABILITY, st.just(1.0)),
    "weight_decay": NOT_NONNEGATIVE,
    "lr_schedule": st.sampled_from(["step", None, 3]),
    "n_chains": NOT_INT.filter(lambda v: v is not None),
    "soft": NOT_BOOL,
    "shuffle": NOT_BOOL,
    "progress_bar": NOT_BOOL,
    "callback": st.sampled_from([3, "print", 1.5]),
}
FIT_ONLY = ("epochs", "batch_size", "lr_schedule", "shuffle", "progress_bar", "callback")
"""``fit`` arguments that ``partial_fit`` does not take."""


@SETTINGS
@given(data=st.data(), partial=st.booleans())
def test_boltzmann_fit_rejects_bad_hyperparameters(data: st.DataObject, partial: bool) -> None:
    fields = sorted(k for k in FIT_FIELDS if not partial or k not in FIT_ONLY)
    field = data.draw(st.sampled_from(fields))
    bad = data.draw(FIT_FIELDS[field])
    model = _rbm()
    x = np.array([[0, 1, 0], [1, 1, 0]], dtype=np.float32)
    if partial:
        rejects("boltzmann: BoltzmannModel.partial_fit",
                lambda: model.partial_fit(x, **{field: bad}, generator=_gen()), field)
    else:
        rejects("boltzmann: BoltzmannModel.fit", lambda: model.fit(x, **{field: bad}, generator=_gen()), field)


@SETTINGS
@given(data=st.data(), which=st.sampled_from(["sample", "gibbs_ctor", "gibbs_x0", "gibbs_model", "dbn_sample"]))
def test_boltzmann_sampling_rejects_bad_arguments(data: st.DataObject, which: str) -> None:
    model = _rbm()
    if which == "sample":
        field = data.draw(st.sampled_from(["n", "n_steps"]))
        kwargs = {"n": 2, "n_steps": 1, field: data.draw(NOT_INT)}
        rejects("boltzmann: BoltzmannModel.sample", lambda: model.sample(kwargs.pop("n"), **kwargs), field)
    elif which == "gibbs_ctor":
        rejects("boltzmann: Gibbs()", lambda: Gibbs(n_steps=data.draw(NOT_INT)), "n_steps")
    elif which == "gibbs_x0":
        _, x0 = data.draw(bad_batch((3,)))
        rejects("boltzmann: Gibbs.__call__", lambda: Gibbs(n_steps=1)(model, x0, generator=_gen()), "x0", "x")
    elif which == "gibbs_model":
        energy = data.draw(st.sampled_from([_quadratic, ENERGIES["MLPEnergy"][0], None]))
        rejects("boltzmann: Gibbs.__call__", lambda: Gibbs(n_steps=1)(energy, torch.zeros(2, 3)), "BoltzmannModel")
    else:
        dbn = DBN((3, 2, 2), generator=_gen())
        field = data.draw(st.sampled_from(["n", "n_steps"]))
        kwargs = {"n": 2, "n_steps": 1, field: data.draw(NOT_INT)}
        rejects("boltzmann: DBN.sample", lambda: dbn.sample(kwargs.pop("n"), **kwargs), field)


@SETTINGS
@given(
    data=st.data(),
    which=st.sampled_from(["ais", "ais_log_partition", "exact_log_partition", "beta_schedule", "log_likelihood",
                           "pseudo_log_likelihood"]),
)
def test_partition_functions_reject_bad_arguments(data: st.DataObject, which: str) -> None:
    model: Any = _rbm()
    x = np.array([[0, 1, 0]], dtype=np.float32)
    if which in ("ais", "ais_log_partition"):
        fn = ais if which == "ais" else ais_log_partition
        fields: dict[str, Any] = {
            "n_chains": st.one_of(NOT_INT, st.just(1)), "n_temperatures": NOT_INT,
            "schedule": st.sampled_from(["cubic", [0.0, 0.5], [0.5, 1.0, 1.0], [0.0, 0.7, 0.2], [0.0, math.nan, 1.0],
                                         None]),
            "data": st.sampled_from([np.zeros((2, 4)), np.full((2, 3), 2.0), np.array([0.5, math.nan, 0.5]), "x"]),
            "base_rate_epsilon": st.sampled_from([0.0, 0.5, -0.1, math.nan, True]),
            "n_workers": st.one_of(NOT_INT, st.just(50)),
            "model": st.sampled_from([None, BoltzmannMachine(3, generator=_gen()), ENERGIES["MLPEnergy"][0]]),
        }
        field = data.draw(st.sampled_from(sorted(fields)))
        kwargs: dict[str, Any] = {"n_chains": 4, "n_temperatures": 2, field: data.draw(fields[field])}
        if field == "schedule" and isinstance(kwargs["schedule"], list):
            kwargs["n_temperatures"] = 2
        model = kwargs.pop("model", model)
        rejects(f"boltzmann: {which}", lambda: fn(model, generator=_gen(), **kwargs), field, "model")
    elif which == "exact_log_partition":
        case = data.draw(st.sampled_from(["max_units", "model", "big"]))
        if case == "max_units":
            rejects("boltzmann: exact_log_partition",
                    lambda: exact_log_partition(model, max_units=data.draw(NOT_INT)), "max_units")
        elif case == "model":
            bad = data.draw(st.sampled_from([None, ENERGIES["MLPEnergy"][0], "rbm"]))
            rejects("boltzmann: exact_log_partition", lambda: exact_log_partition(bad), "model")
        else:
            big = BernoulliRBM(30, 30, generator=_gen())
            rejects("boltzmann: exact_log_partition", lambda: exact_log_partition(big, max_units=10), "max_units")
    elif which == "beta_schedule":
        field = data.draw(st.sampled_from(["n_temperatures", "kind"]))
        if field == "kind":
            rejects("boltzmann: beta_schedule", lambda: beta_schedule(3, data.draw(st.sampled_from(["cubic", None]))),
                    "kind")
        else:
            rejects("boltzmann: beta_schedule", lambda: beta_schedule(data.draw(NOT_INT)), "n_temperatures")
    elif which == "log_likelihood":
        field = data.draw(st.sampled_from(["X", "log_z", "model"]))
        if field == "X":
            bad = data.draw(bad_data_matrix(3, binary=True))
            rejects("boltzmann: log_likelihood", lambda: log_likelihood(model, bad, 0.0), "X")
        elif field == "model":
            bad = data.draw(st.sampled_from([None, ENERGIES["MLPEnergy"][0], "rbm"]))
            rejects("boltzmann: log_likelihood", lambda: log_likelihood(bad, x, 0.0), "model")
        else:
            bad = data.draw(st.sampled_from([math.nan, math.inf, None, "0", torch.tensor(0.0)]))
            rejects("boltzmann: log_likelihood", lambda: log_likelihood(model, x, bad), "log_z")
    else:
        field = data.draw(st.sampled_from(["X", "model"]))
        if field == "X":
            bad = data.draw(bad_data_matrix(3, binary=True))
            rejects("boltzmann: pseudo_log_likelihood", lambda: pseudo_log_likelihood(model, bad), "X")
        else:
            bad = data.draw(st.sampled_from([GaussianBernoulliRBM(3, 2, generator=_gen()), None]))
            rejects("boltzmann: pseudo_log_likelihood", lambda: pseudo_log_likelihood(bad, x), "pseudo_log_likelihood")


@SETTINGS
@given(data=st.data(), which=st.sampled_from(["params", "fit_X", "transform_X", "partial_fit_X"]))
def test_sklearn_estimator_rejects_bad_params_and_data(data: st.DataObject, which: str) -> None:
    from ebrl.boltzmann.sklearn import BernoulliRBMEstimator

    x = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.0]])
    if which == "params":
        fields = {
            "n_components": NOT_INT, "learning_rate": NOT_POSITIVE, "batch_size": NOT_INT, "n_iter": NOT_INT,
            "method": st.sampled_from(["ml", None]), "k": NOT_INT,
            "momentum": st.one_of(NOT_PROBABILITY, st.just(1.0)), "weight_decay": NOT_NONNEGATIVE,
            "device": st.sampled_from(["meta", "bogus", 3, None]),
        }
        field = data.draw(st.sampled_from(sorted(fields)))
        params = {"n_components": 2, "n_iter": 1, field: data.draw(fields[field])}
        est = BernoulliRBMEstimator(random_state=0, **params)
        rejects("boltzmann: BernoulliRBMEstimator.fit", lambda: est.fit(x), field)
        return
    bad = data.draw(bad_data_matrix(3, binary=False).filter(lambda v: not isinstance(v, torch.Tensor)))
    if which != "transform_X" and isinstance(bad, np.ndarray) and bad.ndim == 2 and bad.dtype.kind == "f" \
            and bad.shape[0] > 0 and np.isfinite(bad).all() and ((bad >= 0) & (bad <= 1)).all():
        return  # any number of features is valid for a first fit
    est = BernoulliRBMEstimator(n_components=2, n_iter=1, random_state=0)
    if which == "fit_X":
        rejects("boltzmann: BernoulliRBMEstimator.fit", lambda: est.fit(bad), "X", "array", "Input")
    elif which == "partial_fit_X":
        rejects("boltzmann: BernoulliRBMEstimator.partial_fit", lambda: est.partial_fit(bad), "X", "array", "Input")
    else:
        est.fit(x)
        rejects("boltzmann: BernoulliRBMEstimator.transform", lambda: est.transform(bad), "X", "array", "Input")
