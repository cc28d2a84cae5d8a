"""Bad input at the entry points of ``ebrl.samplers``: property-based tests."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from _bad_inputs import (
    ENERGIES,
    FEW,
    NOT_INT,
    NOT_NONNEGATIVE,
    NOT_POSITIVE,
    NOT_PROBABILITY,
    SETTINGS,
    _gen,
    _quadratic,
    bad_batch,
    rejects,
    rejects_or_works,
)
from hypothesis import given
from hypothesis import strategies as st

from ebrl.samplers import HMC, MALA, Langevin, ReplayBuffer

torch.set_num_threads(1)

SAMPLER_FIELDS: dict[type, dict[str, Any]] = {
    Langevin: {
        "step_size": NOT_POSITIVE, "n_steps": NOT_INT, "noise_scale": NOT_NONNEGATIVE.filter(lambda v: v is not None),
        "temperature": NOT_POSITIVE, "grad_clip": NOT_POSITIVE.filter(lambda v: v is not None),
        "step_size_final": NOT_POSITIVE.filter(lambda v: v is not None),
        "boundary": st.sampled_from(["wrap", "", None]),
        "compile": st.sampled_from([1, "yes", None]),
    },
    MALA: {"step_size": NOT_POSITIVE, "n_steps": NOT_INT, "temperature": NOT_POSITIVE},
    HMC: {
        "step_size": NOT_POSITIVE, "n_leapfrog": NOT_INT, "n_steps": NOT_INT, "mass": NOT_POSITIVE,
        "temperature": NOT_POSITIVE,
    },
}

BAD_BOUNDS = st.sampled_from([
    (1.0, 0.0), (0.0, 0.0), (math.nan, 1.0), (-math.inf, math.inf), (0.0,), 5.0, "box", ([0.0, 0.0], [1.0, 2.0, 3.0]),
    ([0.0, 1.0], [1.0, 0.5]), ("a", "b"), (None, 1.0), ([[0.0], [1.0, 2.0]], 1.0),
])


@pytest.mark.parametrize("cls", [Langevin, MALA, HMC], ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_sampler_constructors_reject_bad_hyperparameters(cls: type, data: st.DataObject) -> None:
    fields = {**SAMPLER_FIELDS[cls], "bounds": BAD_BOUNDS}
    field = data.draw(st.sampled_from(sorted(fields)))
    bad = data.draw(fields[field])
    rejects(f"samplers: {cls.__name__}()", lambda: cls(**{field: bad}), field)



@pytest.mark.parametrize("cls", [Langevin, MALA, HMC], ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data(), energy=st.sampled_from(["closure", "MLPEnergy"]), trace=st.booleans())
def test_sampler_call_rejects_bad_x0(cls: type, data: st.DataObject, energy: str, trace: bool) -> None:
    sampler = cls(n_steps=2, **({"n_leapfrog": 2} if cls is HMC else {}))
    kind, x0 = data.draw(bad_batch((2,)))
    fn = _quadratic if energy == "closure" else ENERGIES["MLPEnergy"][0]
    if energy == "closure" and kind == "event" and x0.dim() >= 1:
        return  # a closure accepts any event shape
    run = sampler.trace if trace else sampler
    rejects(f"samplers: {cls.__name__}.__call__/trace", lambda: run(fn, x0, generator=_gen()), "x0", "x")


@pytest.mark.parametrize("cls", [Langevin, MALA, HMC], ids=lambda c: c.__name__)
@SETTINGS
@given(
    bounds=st.sampled_from([
        ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]), ([[0.0, 0.0]] * 3, [[1.0, 1.0]] * 3), ([0.0] * 5, [1.0] * 5),
    ]),
    b=st.integers(1, 3),
)
def test_sampler_call_rejects_bounds_that_do_not_fit_x0(cls: type, bounds: Any, b: int) -> None:
    sampler = cls(n_steps=2, bounds=bounds)
    rejects(f"samplers: {cls.__name__}.__call__/trace", lambda: sampler(_quadratic, torch.zeros(b, 2)), "bounds")


@pytest.mark.parametrize("cls", [Langevin, MALA, HMC], ids=lambda c: c.__name__)
@SETTINGS
@given(
    energy=st.sampled_from(["not_callable", "shape_b1", "scalar", "shape_bd", "ints", "numpy"]),
    generator=st.sampled_from(["ok", 0, "seed", np.random.default_rng(0)]),
)
def test_sampler_call_rejects_bad_energy_or_generator(cls: type, energy: str, generator: Any) -> None:
    fn: Any = {
        "not_callable": 3.0,
        "shape_b1": lambda x: x.sum(1, keepdim=True),
        "scalar": lambda x: x.sum(),
        "shape_bd": lambda x: x,
        "ints": lambda x: x.sum(1).long(),
        "numpy": lambda x: x.detach().numpy().sum(1),
    }[energy]
    sampler = cls(n_steps=2)
    if isinstance(generator, str) and generator == "ok":
        rejects(f"samplers: {cls.__name__}.__call__/trace", lambda: sampler(fn, torch.zeros(3, 2), generator=_gen()),
                "energy")
    else:
        rejects(f"samplers: {cls.__name__}.__call__/trace",
                lambda: sampler(_quadratic, torch.zeros(3, 2), generator=generator), "generator")


@pytest.mark.parametrize("cls", [Langevin, MALA, HMC], ids=lambda c: c.__name__)
@FEW
@given(step=st.floats(1e-6, 1e6), x_dtype=st.sampled_from([torch.float64, torch.float16]))
def test_sampler_with_any_legal_step_is_finite_or_raises_divergence(cls: type, step: float, x_dtype) -> None:
    sampler = cls(step_size=step, n_steps=3)
    x0 = torch.ones(4, 2, dtype=x_dtype)

    def check(x: torch.Tensor) -> None:
        assert x.shape == x0.shape and x.dtype == x0.dtype

    rejects_or_works(f"samplers: {cls.__name__}.__call__/trace", lambda: sampler(_quadratic, x0, generator=_gen()),
                     "x0", check=check, allow_divergence=True)


@pytest.mark.parametrize("cls", [Langevin, MALA, HMC], ids=lambda c: c.__name__)
@FEW
@given(b=st.integers(1, 4), energy=st.sampled_from(["closure", "MLPEnergy"]), inside=st.booleans())
def test_sampler_accepts_x0_made_under_inference_mode(cls: type, b: int, energy: str, inside: bool) -> None:
    """A batch created under ``torch.inference_mode`` (e.g. by a data pipeline) is valid input."""
    with torch.inference_mode():
        x0 = torch.zeros(b, 2)
    fn = _quadratic if energy == "closure" else ENERGIES["MLPEnergy"][0]
    sampler = cls(n_steps=2)

    def run() -> torch.Tensor:
        if inside:
            with torch.inference_mode():
                return sampler(fn, x0, generator=_gen())
        return sampler(fn, x0, generator=_gen())

    def check(x: torch.Tensor) -> None:
        assert x.shape == (b, 2)

    rejects_or_works(f"samplers: {cls.__name__}.__call__/trace", run, "x0", check=check)


@pytest.mark.parametrize("cls", [Langevin, MALA, HMC], ids=lambda c: c.__name__)
@FEW
@given(level=st.floats(-1e6, 1e6), trace=st.booleans())
def test_sampler_on_a_flat_energy_is_finite(cls: type, level: float, trace: bool) -> None:
    """An energy that does not depend on x (zero gradient, no autograd graph) is valid: the chains just diffuse."""
    sampler = cls(n_steps=3)
    x0 = torch.zeros(4, 2)

    def run() -> Any:
        fn = lambda x: torch.full(x.shape[:1], level)  # noqa: E731
        return sampler.trace(fn, x0, generator=_gen()) if trace else sampler(fn, x0, generator=_gen())

    def check(out: Any) -> None:
        assert (out.samples if trace else out).shape == x0.shape

    rejects_or_works(f"samplers: {cls.__name__}.__call__/trace", run, "energy", check=check)


REPLAY_FIELDS: dict[str, Any] = {
    "capacity": NOT_INT,
    "event_shape": st.sampled_from([5, "ab", None, (0,), (-1, 2), (2.0,), (True,)]),
    "reinit_prob": NOT_PROBABILITY,
    "low": st.sampled_from([math.nan, math.inf, -math.inf, 2.0, "a", None]),
    "high": st.sampled_from([math.nan, math.inf, -math.inf, -2.0, "b", None]),
    "dtype": st.sampled_from([torch.int64, torch.bool, "float32", torch.complex64]),
    "noise": st.sampled_from([3, "uniform", lambda n, g: torch.zeros(n, 5), lambda n, g: torch.full((n, 2), math.nan)]),
    "generator": st.sampled_from([0, "seed"]),
}


@SETTINGS
@given(data=st.data())
def test_replay_buffer_constructor_rejects_bad_arguments(data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(sorted(REPLAY_FIELDS)))
    bad = data.draw(REPLAY_FIELDS[field])
    kwargs: dict[str, Any] = {"capacity": 8, "event_shape": (2,), field: bad}
    names = (field, "low", "high") if field in ("low", "high") else (field,)
    rejects("samplers: ReplayBuffer()", lambda: ReplayBuffer(**kwargs), *names)


@SETTINGS
@given(data=st.data(), which=st.sampled_from(["n", "idx", "x", "state"]))
def test_replay_buffer_methods_reject_bad_arguments(data: st.DataObject, which: str) -> None:
    buf = ReplayBuffer(8, (2,), generator=_gen())
    before = buf.buffer.clone()
    if which == "n":
        n = data.draw(NOT_INT)
        rejects("samplers: ReplayBuffer.sample", lambda: buf.sample(n, generator=_gen()), "n")
    elif which == "idx":
        idx = data.draw(st.sampled_from([
            torch.tensor([0.0, 1.0]), torch.tensor([0, 8]), torch.tensor([-9, 0]), [0, 1], None,
            torch.tensor([[0, 1]]), torch.tensor([0, 1, 2]), torch.tensor([True, False]),
        ]))
        rejects("samplers: ReplayBuffer.update", lambda: buf.update(idx, torch.zeros(2, 2)), "idx")
    elif which == "x":
        _, x = data.draw(bad_batch((2,)))
        n = x.shape[0] if isinstance(x, torch.Tensor) and x.dim() >= 1 else 1
        rejects("samplers: ReplayBuffer.update", lambda: buf.update(torch.arange(n) % 8, x), "x")
    else:
        state = data.draw(st.sampled_from([
            {}, {"buffer": None}, {"buffer": torch.zeros(8, 3)}, {"buffer": torch.full((8, 2), math.nan)},
            {"buffer": torch.zeros(8, 2, dtype=torch.int64)}, {"buffer": torch.zeros(8, 2, device="meta")}, None,
        ]))
        rejects("samplers: ReplayBuffer.load_state_dict", lambda: buf.load_state_dict(state), "buffer", "state")
    assert torch.equal(buf.buffer, before), "a rejected call changed the buffer"
