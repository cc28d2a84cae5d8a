"""Bad input at the entry points of ``ebrl.energy``: property-based tests."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from _bad_inputs import (
    ENERGIES,
    FEW,
    NOT_INT,
    NOT_POSITIVE,
    SA_ENERGY,
    SETTINGS,
    _gen,
    bad_batch,
    odd_float_batch,
    rejects,
    rejects_or_works,
)
from hypothesis import given
from hypothesis import strategies as st

from ebrl.energy import (
    ConvEnergy,
    GaussianEnergy,
    GaussianMixtureEnergy,
    MLPEnergy,
    RingEnergy,
    StateActionEnergy,
    UniformBox,
)

torch.set_num_threads(1)


@pytest.mark.parametrize("name", sorted(ENERGIES))
@SETTINGS
@given(data=st.data())
def test_energy_call_rejects_bad_batches_naming_x(name: str, data: st.DataObject) -> None:
    energy, event = ENERGIES[name]
    kind, x = data.draw(bad_batch(event))
    if name == "ConvEnergy" and kind == "event" and x.dim() == 4 and x.shape[1] == 1:
        return  # any image size H, W is valid
    rejects(f"energy: {name}.__call__", lambda: energy(x), "x")


@pytest.mark.parametrize("name", sorted(ENERGIES))
@FEW
@given(data=st.data())
def test_energy_call_with_another_float_dtype_works_or_names_x(name: str, data: st.DataObject) -> None:
    energy, event = ENERGIES[name]
    x = data.draw(odd_float_batch(event))

    def check(out: torch.Tensor) -> None:
        assert out.shape == x.shape[:1]

    rejects_or_works(f"energy: {name}.__call__", lambda: energy(x), "x", check=check)


@FEW
@given(temperature=NOT_POSITIVE)
def test_energy_score_rejects_bad_temperature(temperature: Any) -> None:
    energy, _ = ENERGIES["MLPEnergy"]
    rejects("energy: Energy.score", lambda: energy.score(torch.zeros(2, 2), temperature=temperature), "temperature")


@SETTINGS
@given(
    field=st.sampled_from(["in_features", "hidden", "hidden[i]", "activation"]),
    bad=st.one_of(NOT_INT, st.text(max_size=4)),
)
def test_mlp_and_conv_energy_constructors_reject_bad_arguments(field: str, bad: Any) -> None:
    if field == "activation" and bad in ("silu", "elu", "gelu", "tanh", "relu"):
        return
    kwargs: dict[str, Any] = {field.replace("[i]", ""): ([4, bad] if field == "hidden[i]" else bad)}
    if field == "hidden" and isinstance(bad, str) and bad == "":
        kwargs["hidden"] = ()
    name = "hidden" if field.startswith("hidden") else field
    rejects("energy: MLPEnergy()", lambda: MLPEnergy(**{"in_features": 2, **kwargs}), name, "hidden[i]")
    conv_kwargs = {("channels" if k == "hidden" else "in_channels" if k == "in_features" else k): v
                   for k, v in kwargs.items()}
    conv_name = {"hidden": "channels", "in_features": "in_channels"}.get(name, name)
    rejects("energy: ConvEnergy()", lambda: ConvEnergy(**conv_kwargs), conv_name, "hidden[i]", "channels")


@SETTINGS
@given(field=st.sampled_from(["obs_dim", "act_dim", "hidden"]), bad=NOT_INT)
def test_state_action_energy_constructor_rejects_bad_sizes(field: str, bad: Any) -> None:
    kwargs: dict[str, Any] = {"obs_dim": 3, "act_dim": 2, "hidden": (8,)}
    kwargs[field] = [bad] if field == "hidden" else bad
    rejects("energy: StateActionEnergy()", lambda: StateActionEnergy(**kwargs), field, "hidden[i]")


@SETTINGS
@given(data=st.data(), which=st.sampled_from(["obs", "act", "act3"]))
def test_state_action_energy_call_rejects_bad_obs_or_act(data: st.DataObject, which: str) -> None:
    obs, act = torch.zeros(2, 3), torch.zeros(2, 2)
    if which == "obs":
        kind, obs = data.draw(bad_batch((3,)))
    elif which == "act":
        kind, act = data.draw(bad_batch((2,)))
    else:
        kind, act = data.draw(bad_batch((4, 2)))
        if kind == "event" and act.shape[-1] == 2 and act.dim() in (2, 3):
            return  # (B, A) and (B, N, A) with any N are valid
    if which != "obs" and kind == "empty":
        obs = torch.zeros(0, 3)  # an empty batch in both: still rejected
    names = ("obs",) if which == "obs" else ("act", "obs") if kind == "empty" else ("act",)
    rejects("energy: StateActionEnergy.__call__", lambda: SA_ENERGY(obs, act), *names)


@SETTINGS
@given(data=st.data(), n=st.one_of(NOT_INT, st.integers(1, 3)))
def test_state_action_energy_at_rejects_bad_obs_and_n(data: st.DataObject, n: Any) -> None:
    _, obs = data.draw(bad_batch((3,)))
    if isinstance(n, int) and not isinstance(n, bool) and n >= 1:
        b = obs.shape[0] if isinstance(obs, torch.Tensor) and obs.dim() > 0 else 1
        rejects("energy: StateActionEnergy.at", lambda: SA_ENERGY.at(obs, n)(torch.zeros(b * n, 2)), "obs")
    else:
        rejects("energy: StateActionEnergy.at", lambda: SA_ENERGY.at(torch.zeros(2, 3), n), "n")


@SETTINGS
@given(
    field=st.sampled_from(["mean", "covariance"]),
    bad=st.sampled_from(["nan", "inf", "shape", "rank", "asym", "indef", "text", "none"]),
)
def test_gaussian_energy_constructor_rejects_bad_parameters(field: str, bad: str) -> None:
    mean: Any = [0.0, 0.0]
    cov: Any = [[1.0, 0.0], [0.0, 1.0]]
    value = {
        "nan": [math.nan, 0.0] if field == "mean" else [[math.nan, 0.0], [0.0, 1.0]],
        "inf": [math.inf, 0.0] if field == "mean" else [[1.0, 0.0], [0.0, math.inf]],
        "shape": [0.0, 0.0, 0.0] if field == "mean" else [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        "rank": 0.0 if field == "mean" else [1.0, 1.0],
        "asym": [[0.0]] if field == "mean" else [[1.0, 0.5], [0.0, 1.0]],
        "indef": [] if field == "mean" else [[1.0, 2.0], [2.0, 1.0]],
        "text": "zero",
        "none": None,
    }[bad]
    if field == "mean":
        mean = value
    else:
        cov = value
    rejects("energy: GaussianEnergy()", lambda: GaussianEnergy(mean, cov), field, "mean", "covariance")


@SETTINGS
@given(
    field=st.sampled_from(["means", "stds", "weights", "covariances", "both", "neither"]),
    bad=st.sampled_from([math.nan, math.inf, -1.0, 0.0, "text"]),
)
def test_gaussian_mixture_constructor_rejects_bad_parameters(field: str, bad: Any) -> None:
    kwargs: dict[str, Any] = {"means": [[0.0, 0.0], [1.0, 1.0]], "stds": [1.0, 1.0]}
    if field == "means":
        kwargs["means"] = [[bad, 0.0], [1.0, 1.0]] if bad not in (-1.0, 0.0) else [0.0, 1.0]
    elif field == "stds":
        kwargs["stds"] = [bad, 1.0]
    elif field == "weights":
        kwargs["weights"] = [bad, 1.0]
    elif field == "covariances":
        del kwargs["stds"]
        kwargs["covariances"] = [[[bad, 0.0], [0.0, 1.0]]] * 2
    elif field == "both":
        kwargs["covariances"] = [[[1.0, 0.0], [0.0, 1.0]]] * 2
    else:
        del kwargs["stds"]
    rejects(
        "energy: GaussianMixtureEnergy()", lambda: GaussianMixtureEnergy(**kwargs),
        field, "means", "stds", "weights", "covariances",
    )


@SETTINGS
@given(field=st.sampled_from(["radius", "width"]), bad=NOT_POSITIVE)
def test_ring_energy_constructor_rejects_bad_parameters(field: str, bad: Any) -> None:
    rejects("energy: RingEnergy()", lambda: RingEnergy(**{field: bad}), field)


@SETTINGS
@given(
    low=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["a", None, [], [[0.0]]])),
    high=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([[1.0, 2.0, 3.0]])),
    dim=st.one_of(st.none(), NOT_INT, st.integers(1, 3)),
)
def test_uniform_box_rejects_bad_bounds_or_works(low: Any, high: Any, dim: Any) -> None:
    def check(box: UniformBox) -> None:
        x = box.sample(5, generator=_gen())
        assert bool(((x >= box.low) & (x <= box.high)).all())
        assert torch.isfinite(box.log_volume)

    rejects_or_works("energy: UniformBox()", lambda: UniformBox(low, high, dim=dim), "low", "high", "dim",
                     check=check)


@pytest.mark.parametrize("name", ["GaussianEnergy", "GaussianMixtureEnergy", "RingEnergy", "UniformBox"])
@FEW
@given(n=NOT_INT)
def test_distribution_sample_rejects_bad_n(name: str, n: Any) -> None:
    dist = UniformBox(-1.0, 1.0, dim=2) if name == "UniformBox" else ENERGIES[name][0]
    rejects(f"energy: {name}.sample", lambda: dist.sample(n, generator=_gen()), "n")
    rejects(f"energy: {name}.sample", lambda: dist.sample(2, generator=n if n is not None else 1), "generator")


@pytest.mark.parametrize("name", ["GaussianEnergy", "GaussianMixtureEnergy", "RingEnergy", "UniformBox"])
@SETTINGS
@given(data=st.data())
def test_distribution_log_prob_rejects_bad_batches_naming_x(name: str, data: st.DataObject) -> None:
    dist: Any = UniformBox(-1.0, 1.0, dim=2) if name == "UniformBox" else ENERGIES[name][0]
    kind, x = data.draw(bad_batch((2,)))
    rejects(f"energy: {name}.log_prob", lambda: dist.log_prob(x), "x")
    if name == "GaussianMixtureEnergy" and kind != "nonfinite":  # it checks shapes only (free), as forward
        rejects(f"energy: {name}.component_log_prob", lambda: dist.component_log_prob(x), "x")
