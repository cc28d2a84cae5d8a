"""Bad input at every public entry point: property-based tests (issue #8, part A).

Each test feeds an entry point inputs drawn by hypothesis: wrong shapes, dtypes and devices
("meta" tensors, which have no data), NaN and inf, empty batches, and out-of-range
hyperparameters (negative step sizes, α <= 0, k = 0, zero temperatures, bools where ints are
expected, strings, None). The contract checked for every case:

- a ``ValueError`` or ``TypeError`` whose message names the argument (``rejects``), or
- for inputs that may legitimately work (another float dtype, a large step), correct behaviour:
  a finite result of the right shape (``rejects_or_works``).

Anything else fails the test: a NaN result, an error from deep inside torch (a ``RuntimeError``
from a matmul, an ``IndexError``), or a message that does not say which argument is wrong.

Every case tried is counted per entry point. At the end of the module the counts are written to
``results/reliability/bad_inputs.json`` (``bad_inputs.<worker>.json`` under pytest-xdist, one file
per worker, to be summed). To get the counts in one file::

    python -m pytest tests/test_bad_inputs.py -p no:xdist -q
    cat results/reliability/bad_inputs.json

Hypothesis runs with ``derandomize=True``, so the cases, and therefore the counts, are the same on
every run.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envs  # noqa: F401  (registers the ebrl/* environments)
from ebrl import load_model, save_model
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
from ebrl.checkpoint import CheckpointError, load_checkpoint, load_training_state, save_training_state
from ebrl.energy import (
    ConvEnergy,
    GaussianEnergy,
    GaussianMixtureEnergy,
    MLPEnergy,
    RingEnergy,
    StateActionEnergy,
    UniformBox,
)
from ebrl.losses import contrastive_divergence, denoising_score_matching, info_nce, nce, sliced_score_matching
from ebrl.rl import (
    ActionBox,
    ContinuousBoltzmannPolicy,
    DerivativeFreeOptimizer,
    DiscreteBoltzmannPolicy,
    StatePrior,
    shaping_term,
)
from ebrl.samplers import HMC, MALA, DivergenceError, Langevin, ReplayBuffer
from ebrl.training import CD, DSM, NCE, PCD, SSM, InfoNCE, fit
from envs.bandit import BimodalBanditEnv
from envs.particle import ParticleEnv
from envs.sparse import SparseGoalEnv
from envs.wrappers import EnergyNovelty, EnergyShaping

torch.set_num_threads(1)

CUDA = torch.cuda.is_available()

TRIED: Counter[str] = Counter()
"""Cases tried per entry point, ``"group: entry"`` -> count."""
VIOLATED: Counter[str] = Counter()
"""Cases that broke the contract (only in the xfail tests, which document fixes needed elsewhere)."""

CLEAN = (ValueError, TypeError)
RESULTS = Path(__file__).resolve().parents[1] / "results" / "reliability"

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
FEW = settings(SETTINGS, max_examples=30)


@pytest.fixture(scope="module", autouse=True)
def _write_counts():
    """Write the per-entry-point counts when the module's tests are done (one file per xdist worker)."""
    yield
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    path = RESULTS / ("bad_inputs.json" if worker is None else f"bad_inputs.{worker}.json")
    groups: Counter[str] = Counter()
    for key, n in TRIED.items():
        groups[key.split(":")[0]] += n
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "total": sum(TRIED.values()),
        "by_group": dict(sorted(groups.items())),
        "by_entry": dict(sorted(TRIED.items())),
        "violations": sum(VIOLATED.values()),
        "violations_by_entry": dict(sorted(VIOLATED.items())),
        "xdist_worker": worker,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")


# ------------------------------------------------------------------------------------ contract


def _names(msg: str, names: tuple[str, ...]) -> bool:
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", msg) for n in names)


def rejects(entry: str, call: Callable[[], Any], *names: str) -> None:
    """Count one case; require a ValueError or TypeError whose message names one of ``names``."""
    TRIED[entry] += 1
    try:
        with pytest.raises(CLEAN) as info:
            call()
        msg = str(info.value)
        assert _names(msg, names), f"{entry}: {type(info.value).__name__} does not name any of {names}: {msg}"
    except BaseException:  # pytest.raises fails with an OutcomeException, a BaseException
        VIOLATED[entry] += 1
        raise


def _all_finite(out: Any) -> bool:
    if isinstance(out, torch.Tensor):
        return out.device.type != "meta" and bool(torch.isfinite(out.detach().float()).all())
    if isinstance(out, np.ndarray):
        return bool(np.all(np.isfinite(out)))
    if isinstance(out, (tuple, list)):
        return all(_all_finite(o) for o in out)
    if isinstance(out, float):
        return math.isfinite(out)
    return True


def rejects_or_works(
    entry: str,
    call: Callable[[], Any],
    *names: str,
    check: Callable[[Any], None] | None = None,
    allow_divergence: bool = False,
) -> None:
    """Count one case; require a clean, named rejection, or a finite result that passes ``check``.

    ``allow_divergence`` also accepts ``DivergenceError`` (a sampler run with a legal but huge step
    size that blows up: the library's own, clearly worded error).
    """
    TRIED[entry] += 1
    try:
        try:
            out = call()
        except CLEAN as exc:
            assert _names(str(exc), names), f"{entry}: {type(exc).__name__} does not name any of {names}: {exc}"
            return
        except DivergenceError:
            assert allow_divergence, f"{entry}: unexpected DivergenceError"
            return
        assert _all_finite(out), f"{entry}: non-finite result for an accepted input"
        if check is not None:
            check(out)
    except BaseException:
        VIOLATED[entry] += 1
        raise


# ---------------------------------------------------------------------------------- strategies

NOT_INT = st.one_of(
    st.integers(max_value=0),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.none(),
)
"""Values that are never a valid count (>= 1)."""

NOT_POSITIVE = st.one_of(
    st.floats(max_value=0.0, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 0, -1, True, False, "0.1", None]),
)
"""Values that are never a valid finite number > 0."""

NOT_NONNEGATIVE = st.one_of(
    st.floats(max_value=-1e-300, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, -1, True, "0", None]),
)
"""Values that are never a valid finite number >= 0."""

NOT_PROBABILITY = st.one_of(
    st.floats(min_value=1.0, exclude_min=True, allow_nan=False),
    st.floats(max_value=0.0, exclude_max=True, allow_nan=False),
    st.sampled_from([math.nan, True, "0.5", None]),
)

NOT_BOOL = st.sampled_from(["yes", "", 1, 0, 1.0, None, np.int64(1)])
"""Truthy or falsy values that are not a ``bool``."""

BAD_DTYPES = [torch.int64, torch.int32, torch.bool, torch.uint8, torch.complex64]
ODD_FLOATS = [torch.float16, torch.float64, torch.bfloat16]
NON_TENSORS = st.sampled_from([None, 1.0, "x", [[0.0, 1.0]], (1, 2)])


@st.composite
def bad_batch(draw: st.DrawFn, event: tuple[int, ...], *, max_batch: int = 3) -> tuple[str, Any]:
    """An input that is never a valid batch ``(B, *event)``: ``(kind, value)``.

    Kinds: a non-tensor, an integer/bool/complex dtype, an empty batch, no batch dimension, a
    wrong event shape, NaN/inf entries, or a "meta" tensor (no data).
    """
    kind = draw(st.sampled_from(["not_tensor", "dtype", "empty", "scalar", "event", "nonfinite", "meta"]))
    b = draw(st.integers(1, max_batch))
    if kind == "not_tensor":
        return kind, draw(NON_TENSORS)
    if kind == "dtype":
        return kind, torch.zeros((b, *event), dtype=draw(st.sampled_from(BAD_DTYPES)))
    if kind == "empty":
        return kind, torch.zeros((0, *event))
    if kind == "scalar":
        return kind, torch.tensor(draw(st.floats(-3, 3)))
    if kind == "event":
        shape = draw(st.lists(st.integers(1, 4), min_size=0, max_size=3).filter(lambda s: tuple(s) != event))
        return kind, torch.zeros((b, *shape))
    if kind == "nonfinite":
        x = torch.zeros((b, *event))
        flat = x.view(-1)
        idx = draw(st.lists(st.integers(0, flat.numel() - 1), min_size=1, max_size=3))
        flat[idx] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        return kind, x
    return kind, torch.zeros((b, *event), device="meta")


@st.composite
def odd_float_batch(draw: st.DrawFn, event: tuple[int, ...]) -> torch.Tensor:
    """A finite batch ``(B, *event)`` in a float dtype other than float32: may work, or be rejected."""
    b = draw(st.integers(1, 3))
    return torch.randn((b, *event), generator=torch.Generator().manual_seed(draw(st.integers(0, 9)))).to(
        draw(st.sampled_from(ODD_FLOATS))
    )


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# ------------------------------------------------------------------------------------ energies

with torch.random.fork_rng(devices=[]):
    torch.manual_seed(0)
    ENERGIES: dict[str, tuple[torch.nn.Module, tuple[int, ...]]] = {
        "MLPEnergy": (MLPEnergy(2, (8,)), (2,)),
        "ConvEnergy": (ConvEnergy(1, (4,)), (1, 4, 4)),
        "GaussianEnergy": (GaussianEnergy([0.0, 0.0], [[1.0, 0.2], [0.2, 1.0]]), (2,)),
        "GaussianMixtureEnergy": (GaussianMixtureEnergy([[0.0, 0.0], [1.0, 1.0]], stds=[0.5, 0.5]), (2,)),
        "RingEnergy": (RingEnergy(), (2,)),
        "BernoulliRBM": (BernoulliRBM(3, 2, generator=_gen()), (3,)),
    }
    SA_ENERGY = StateActionEnergy(3, 2, (8,))


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


# ------------------------------------------------------------------------------------ samplers

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


def _quadratic(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x.flatten(1).square().sum(1)


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


# -------------------------------------------------------------------------------------- losses


@SETTINGS
@given(
    data=st.data(),
    loss=st.sampled_from(["contrastive_divergence", "nce", "info_nce"]),
    slot=st.integers(0, 3),
)
def test_energy_losses_reject_bad_energies(data: st.DataObject, loss: str, slot: int) -> None:
    if loss == "contrastive_divergence":
        names, shapes, fn = ["e_pos", "e_neg"], [(), ()], contrastive_divergence
    elif loss == "nce":
        names, shapes, fn = ["e_data", "e_noise", "log_q_data", "log_q_noise"], [()] * 4, nce
    else:
        names, shapes, fn = ["e_pos", "e_neg"], [(), (3,)], info_nce
    slot %= len(names)
    args: list[Any] = [torch.zeros((2, *s)) for s in shapes]
    kind, bad = data.draw(bad_batch(shapes[slot]))
    if kind == "event" and isinstance(bad, torch.Tensor) and loss == "info_nce" and slot == 1 and bad.dim() == 2:
        return  # (B, N) with any N >= 1 is valid
    args[slot] = bad
    rejects(f"losses: {loss}", lambda: fn(*args), names[slot], *names)


@SETTINGS
@given(
    loss=st.sampled_from(["contrastive_divergence", "info_nce"]),
    bad=st.one_of(NOT_POSITIVE, NOT_NONNEGATIVE),
)
def test_energy_losses_reject_bad_hyperparameters(loss: str, bad: Any) -> None:
    if loss == "contrastive_divergence":
        if isinstance(bad, (int, float)) and not isinstance(bad, bool) and bad == 0:
            return  # l2 = 0 is valid
        rejects("losses: contrastive_divergence", lambda: contrastive_divergence(torch.zeros(2), torch.zeros(2),
                                                                                 l2=bad), "l2")
    else:
        rejects("losses: info_nce", lambda: info_nce(torch.zeros(2), torch.zeros(2, 3), temperature=bad),
                "temperature")


@SETTINGS
@given(
    data=st.data(),
    loss=st.sampled_from(["denoising_score_matching", "sliced_score_matching"]),
    field=st.sampled_from(["x", "energy", "hyper", "generator"]),
)
def test_score_matching_losses_reject_bad_arguments(data: st.DataObject, loss: str, field: str) -> None:
    energy: Any = ENERGIES["MLPEnergy"][0]
    x: Any = torch.zeros(3, 2)
    kwargs: dict[str, Any] = {"sigma": 0.1} if loss == "denoising_score_matching" else {}
    fn = denoising_score_matching if loss == "denoising_score_matching" else sliced_score_matching
    name = field
    if field == "x":
        _, x = data.draw(bad_batch((2,)))
    elif field == "energy":
        energy = data.draw(st.sampled_from([None, 3, "E", lambda x: x, lambda x: x.sum(), lambda x: x.sum(1).long()]))
    elif field == "hyper":
        if loss == "denoising_score_matching":
            name, kwargs["sigma"] = "sigma", data.draw(NOT_POSITIVE)
        else:
            name = data.draw(st.sampled_from(["n_projections", "variance_reduction"]))
            kwargs[name] = data.draw(NOT_INT if name == "n_projections" else st.sampled_from([1, "yes", None]))
    else:
        kwargs["generator"] = data.draw(st.sampled_from([0, "seed", np.random.default_rng(0)]))
    rejects(f"losses: {loss}", lambda: fn(energy, x, **kwargs), name)


@SETTINGS
@given(
    loss=st.sampled_from(["denoising_score_matching", "sliced_score_matching"]),
    energy=st.sampled_from(["linear", "constant", "quadratic"]),
    scale=st.floats(-1e3, 1e3),
)
def test_score_matching_losses_are_finite_for_degenerate_energies(loss: str, energy: str, scale: float) -> None:
    """Energies linear or constant in x (zero Hessian, or no dependence on x at all) give a finite loss."""
    fn = {
        "linear": lambda x: scale * x.sum(1),
        "constant": lambda x: torch.full(x.shape[:1], scale),
        "quadratic": lambda x: scale * x.square().sum(1),
    }[energy]
    kwargs: dict[str, Any] = {"sigma": 0.1} if loss == "denoising_score_matching" else {"n_projections": 2}
    call = denoising_score_matching if loss == "denoising_score_matching" else sliced_score_matching

    def check(out: torch.Tensor) -> None:
        assert out.shape == ()

    rejects_or_works(f"losses: {loss}", lambda: call(fn, torch.randn(3, 2, generator=_gen()), generator=_gen(),
                                                     **kwargs), "energy", check=check)


# ------------------------------------------------------------------------------------ training

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


# ----------------------------------------------------------------------------------- boltzmann

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


def _rbm() -> BernoulliRBM:
    return BernoulliRBM(3, 2, generator=_gen())


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


# ------------------------------------------------------------------------------------------ rl

BOX = ActionBox((-1.0, -1.0), (1.0, 1.0))


@SETTINGS
@given(data=st.data(), method=st.sampled_from(["logits", "log_probs", "probs", "entropy", "soft_value", "mode",
                                               "sample"]))
def test_discrete_policy_rejects_bad_energies(data: st.DataObject, method: str) -> None:
    pi = DiscreteBoltzmannPolicy(alpha=0.5)
    kind = data.draw(st.sampled_from(["batch", "nan", "neg_inf", "all_pos_inf"]))
    if kind == "batch":
        _, e = data.draw(bad_batch((3,)))
        if (isinstance(e, torch.Tensor) and e.dim() == 2 and e.is_floating_point() and e.shape[0] > 0
                and e.device.type != "meta" and e.shape[1] > 0
                and not bool((torch.isnan(e) | (e == -math.inf)).any() | torch.isinf(e).all(1).any())):
            return  # (B, K) with any K >= 1, +inf masking some actions, is valid
    else:
        e = torch.zeros(2, 3)
        e[data.draw(st.integers(0, 1))] = {"nan": math.nan, "neg_inf": -math.inf, "all_pos_inf": math.inf}[kind]
        if kind == "nan":
            e[0, 1] = 0.0
    rejects(f"rl: DiscreteBoltzmannPolicy.{method}", lambda: getattr(pi, method)(e), "energies")


@FEW
@given(alpha=NOT_POSITIVE)
def test_discrete_policy_rejects_bad_alpha(alpha: Any) -> None:
    rejects("rl: DiscreteBoltzmannPolicy()", lambda: DiscreteBoltzmannPolicy(alpha=alpha), "alpha")


@FEW
@given(masked=st.lists(st.booleans(), min_size=3, max_size=3).filter(lambda m: not all(m)))
def test_discrete_policy_masks_actions_with_positive_infinite_energy(masked: list[bool]) -> None:
    pi = DiscreteBoltzmannPolicy(alpha=0.5)
    e = torch.zeros(1, 3)
    e[0, torch.tensor(masked)] = math.inf

    def check(p: torch.Tensor) -> None:
        assert torch.allclose(p[0, torch.tensor(masked)], torch.zeros(sum(masked)))
        assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-6)

    rejects_or_works("rl: DiscreteBoltzmannPolicy.probs", lambda: pi.probs(e), "energies", check=check)


@SETTINGS
@given(
    low=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([[], "a", None, [0.0, 2.0]])),
    high=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([[1.0, 1.0, 1.0], "b"])),
)
def test_action_box_rejects_bad_bounds_or_works(low: Any, high: Any) -> None:
    def check(box: ActionBox) -> None:
        a = box.uniform((3,), device=torch.device("cpu"), dtype=torch.float32, generator=_gen())
        assert math.isfinite(box.log_volume) and a.shape == (3, box.dim)

    rejects_or_works("rl: ActionBox()", lambda: ActionBox(low, high), "low", "high", check=check)


@FEW
@given(
    batch_shape=st.one_of(st.lists(st.integers(-3, 3), max_size=2), st.sampled_from([(1.5,), (True,), ("a",)])),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.int64, torch.bool, "float32"]),
)
def test_action_box_uniform_rejects_bad_shapes_and_dtypes_or_works(batch_shape: Any, dtype: Any) -> None:
    def check(a: torch.Tensor) -> None:
        assert a.shape == (*batch_shape, 2) and bool(((a >= -1) & (a <= 1)).all())

    rejects_or_works("rl: ActionBox.uniform", lambda: BOX.uniform(batch_shape, device=torch.device("cpu"),
                                                                   dtype=dtype, generator=_gen()),
                     "batch_shape[i]", "dtype", check=check)


@FEW
@given(dim=st.one_of(NOT_INT, st.integers(1, 3)), bound=st.one_of(NOT_POSITIVE, st.floats(0.1, 3.0)))
def test_action_box_symmetric_rejects_bad_arguments_or_works(dim: Any, bound: Any) -> None:
    rejects_or_works("rl: ActionBox.symmetric", lambda: ActionBox.symmetric(dim, bound), "dim", "bound")


CONT_FIELDS: dict[str, Any] = {
    "box": st.sampled_from([None, (0.0, 1.0), "box"]),
    "alpha": NOT_POSITIVE, "step_size": NOT_POSITIVE, "n_steps": NOT_INT,
    "method": st.sampled_from(["hmc", None]), "boundary": st.sampled_from(["wrap", None]),
    "grad_clip": NOT_POSITIVE, "n_proposals": st.one_of(st.integers(max_value=-1), st.booleans(), st.just(1.5)),
    "mode_candidates": NOT_INT, "mode_starts": st.one_of(NOT_INT, st.just(10_000)), "mode_steps": NOT_INT,
    "mode_step_init": NOT_POSITIVE, "mode_step_final": NOT_POSITIVE,
}


@SETTINGS
@given(data=st.data())
def test_continuous_policy_constructor_rejects_bad_arguments(data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(sorted(CONT_FIELDS)))
    kwargs = {"box": BOX, field: data.draw(CONT_FIELDS[field])}
    rejects("rl: ContinuousBoltzmannPolicy()", lambda: ContinuousBoltzmannPolicy(**kwargs), field)


@SETTINGS
@given(
    data=st.data(),
    method=st.sampled_from(["sample", "mode", "soft_value"]),
    field=st.sampled_from(["obs", "n", "energy"]),
    energy_kind=st.sampled_from(["module", "closure"]),
)
def test_continuous_policy_methods_reject_bad_arguments(
    data: st.DataObject, method: str, field: str, energy_kind: str
) -> None:
    pi = ContinuousBoltzmannPolicy(BOX, alpha=0.5, n_steps=2, mode_candidates=8, mode_starts=2, mode_steps=2)
    energy: Any = SA_ENERGY if energy_kind == "module" else (lambda o, a: a.square().sum(-1) + o.sum(-1, True))
    obs: Any = torch.zeros(2, 3)
    kwargs: dict[str, Any] = {"generator": _gen()}
    name = field
    if field == "obs":
        kind, obs = data.draw(bad_batch((3,)))
        if energy_kind == "closure" and kind == "event" and obs.dim() == 2:
            return  # a closure accepts any observation width
    elif field == "n":
        if method == "mode":
            return
        name = "n" if method == "sample" else "n_samples"
        kwargs[name] = data.draw(NOT_INT)
    else:
        energy = data.draw(st.sampled_from([
            StateActionEnergy(4, 2, (4,)), StateActionEnergy(3, 3, (4,)), lambda o, a: a.sum(-1, True),
            lambda o, a: a.sum(), None,
        ]))
        name = "energy"
    rejects(f"rl: ContinuousBoltzmannPolicy.{method}", lambda: getattr(pi, method)(energy, obs, **kwargs),
            name, "obs", "act")


@SETTINGS
@given(data=st.data())
def test_continuous_policy_sample_rejects_bad_init(data: st.DataObject) -> None:
    pi = ContinuousBoltzmannPolicy(BOX, alpha=0.5, n_steps=2)
    init = data.draw(st.one_of(
        bad_batch((2, 2)).map(lambda kv: kv[1]).filter(lambda v: v is not None),
        st.sampled_from([torch.full((2, 2, 2), 3.0), torch.zeros(2, 3, 2), torch.zeros(2, 2)]),
    ))
    rejects("rl: ContinuousBoltzmannPolicy.sample",
            lambda: pi.sample(SA_ENERGY, torch.zeros(2, 3), n=2, init=init, generator=_gen()), "init")


DFO_FIELDS: dict[str, Any] = {
    "box": st.sampled_from([None, (0.0, 1.0)]), "n_samples": NOT_INT,
    "n_iters": st.one_of(st.integers(max_value=-1), st.booleans(), st.just(1.5), st.none()),
    "noise_scale": NOT_POSITIVE, "noise_shrink": st.one_of(NOT_POSITIVE, st.floats(1.0, 10.0, exclude_min=True)),
    "temperature": NOT_POSITIVE,
}


@SETTINGS
@given(data=st.data(), which=st.sampled_from(["ctor", "minimize", "sample"]))
def test_dfo_rejects_bad_arguments(data: st.DataObject, which: str) -> None:
    if which == "ctor":
        field = data.draw(st.sampled_from(sorted(DFO_FIELDS)))
        kwargs = {"box": BOX, field: data.draw(DFO_FIELDS[field])}
        rejects("rl: DerivativeFreeOptimizer()", lambda: DerivativeFreeOptimizer(**kwargs), field)
        return
    dfo = DerivativeFreeOptimizer(BOX, n_samples=8, n_iters=1)
    field = data.draw(st.sampled_from(["obs", "energy"]))
    obs: Any = torch.zeros(2, 3)
    energy: Any = SA_ENERGY
    if field == "obs":
        _, obs = data.draw(bad_batch((3,)))
    else:
        energy = data.draw(st.sampled_from([StateActionEnergy(4, 2, (4,)), StateActionEnergy(3, 3, (4,)),
                                            lambda o, a: a.sum(), None]))
    rejects(f"rl: DerivativeFreeOptimizer.{which}", lambda: getattr(dfo, which)(energy, obs, generator=_gen()),
            field, "obs", "act")


@SETTINGS
@given(data=st.data(), which=st.sampled_from(["ctor", "forward", "shaping_term"]))
def test_state_prior_and_shaping_reject_bad_arguments(data: st.DataObject, which: str) -> None:
    energy = ENERGIES["MLPEnergy"][0]
    if which == "ctor":
        field = data.draw(st.sampled_from(["energy", "obs_dim", "temperature"]))
        kwargs: dict[str, Any] = {"energy": energy, "obs_dim": 2}
        kwargs[field] = data.draw({"energy": st.sampled_from([None, _quadratic, "E"]),
                                   "obs_dim": st.one_of(NOT_INT, st.just(3), st.just("2")),
                                   "temperature": NOT_POSITIVE}[field])
        rejects("rl: StatePrior()", lambda: StatePrior(kwargs.pop("energy"), kwargs.pop("obs_dim"), **kwargs),
                field)
    elif which == "forward":
        prior = StatePrior(energy, 2)
        _, obs = data.draw(bad_batch((2,)))
        rejects("rl: StatePrior.forward", lambda: prior(obs), "obs")
    else:
        field = data.draw(st.sampled_from(["phi", "phi_next", "terminated", "gamma"]))
        args: dict[str, Any] = {"phi": torch.zeros(3), "phi_next": torch.zeros(3), "terminated": torch.zeros(3)}
        gamma: Any = 0.9
        if field == "gamma":
            gamma = data.draw(st.one_of(NOT_NONNEGATIVE, st.floats(1.0, 10.0, exclude_min=True)))
        else:
            args[field] = data.draw(st.sampled_from([
                torch.zeros(4), torch.zeros(3, 1), None, [0.0, 0.0, 0.0], torch.full((3,), math.nan),
                torch.zeros(3, device="meta"),
            ]))
        rejects("rl: shaping_term", lambda: shaping_term(**args, gamma=gamma), field, "phi", "phi_next",
                "terminated")


# --------------------------------------------------------------------------------------- tasks


@SETTINGS
@given(
    data=st.data(),
    fn=st.sampled_from(["tweedie_denoise", "map_denoise", "posterior_mean_denoise", "posterior_energy",
                        "walk_jump_sample"]),
    field=st.sampled_from(["y", "sigma", "energy", "extra"]),
)
def test_denoisers_reject_bad_arguments(data: st.DataObject, fn: str, field: str) -> None:
    from ebrl import tasks

    energy: Any = ENERGIES["MLPEnergy"][0]
    y: Any = torch.zeros(2, 2)
    kwargs: dict[str, Any] = {"sigma": 0.1}
    name = field
    if field == "y":
        _, y = data.draw(bad_batch((2,)))
        name = "x0" if fn == "walk_jump_sample" else "y"
    elif field == "sigma":
        kwargs["sigma"] = data.draw(NOT_POSITIVE)
    elif field == "energy":
        energy = data.draw(st.sampled_from([None, "E", lambda x: x, lambda x: x.sum()]))
    else:
        extra = {
            "tweedie_denoise": ("sigma", NOT_POSITIVE), "map_denoise": ("n_steps", NOT_INT),
            "posterior_mean_denoise": ("n_chains", NOT_INT), "posterior_energy": ("sigma", NOT_POSITIVE),
            "walk_jump_sample": ("sampler", st.sampled_from([None, "langevin", Langevin])),
        }[fn]
        name = extra[0]
        kwargs[name] = data.draw(extra[1])
    if fn == "walk_jump_sample":
        kwargs.setdefault("sampler", Langevin(n_steps=2))
        call = lambda: tasks.walk_jump_sample(energy, y, generator=_gen(), **kwargs)  # noqa: E731
    elif fn == "posterior_energy":
        call = lambda: tasks.posterior_energy(energy, y, kwargs["sigma"])(torch.zeros(2, 2))  # noqa: E731
    else:
        if fn != "tweedie_denoise":
            kwargs.setdefault("n_steps", 2)
        if fn == "posterior_mean_denoise":
            kwargs.update(n_chains=kwargs.get("n_chains", 2), generator=_gen())
        call = lambda: getattr(tasks, fn)(energy, y, **kwargs)  # noqa: E731
    rejects(f"tasks: {fn}", call, name, "x")


@SETTINGS
@given(data=st.data(), which=st.sampled_from(["psnr", "KernelDensityEnergy", "GaussianResidualEnergy.from_data"]))
def test_task_helpers_reject_bad_arguments(data: st.DataObject, which: str) -> None:
    from ebrl import tasks

    if which == "psnr":
        field = data.draw(st.sampled_from(["x", "reference", "data_range"]))
        args: dict[str, Any] = {"x": torch.zeros(2, 4), "reference": torch.ones(2, 4), "data_range": 1.0}
        if field == "data_range":
            args[field] = data.draw(NOT_POSITIVE)
        else:
            args[field] = data.draw(bad_batch((4,)).map(lambda kv: kv[1]))
        rejects("tasks: psnr", lambda: tasks.psnr(args["x"], args["reference"], data_range=args["data_range"]),
                field, "x", "reference")
    elif which == "KernelDensityEnergy":
        field = data.draw(st.sampled_from(["centers", "bandwidth"]))
        centers: Any = [[0.0, 0.0], [1.0, 1.0]]
        bandwidth: Any = 0.5
        if field == "centers":
            kind, centers = data.draw(bad_batch((2,)))
            if kind in ("event", "not_tensor"):  # any (N, *event) is valid: draw a bad non-tensor instead
                centers = data.draw(st.sampled_from(["ab", None, [[0.0], [0.0, 1.0]], [0.0, 1.0], [[math.nan]]]))
        else:
            bandwidth = data.draw(NOT_POSITIVE)
        rejects("tasks: KernelDensityEnergy()", lambda: tasks.KernelDensityEnergy(centers, bandwidth), field)
    else:
        field = data.draw(st.sampled_from(["x", "ridge"]))
        x: Any = torch.randn(5, 2, generator=_gen())
        ridge: Any = 0.0
        if field == "x":
            x = data.draw(st.one_of(bad_batch((2,)).map(lambda kv: kv[1]), st.just(torch.zeros(1, 2))))
        else:
            ridge = data.draw(NOT_NONNEGATIVE)
        rejects("tasks: GaussianResidualEnergy.from_data",
                lambda: tasks.GaussianResidualEnergy.from_data(x, (4,), ridge=ridge), field)


# ---------------------------------------------------------------------------------- checkpoint


@FEW
@given(
    kind=st.sampled_from(["missing", "directory", "empty", "garbage", "truncated_zip"]),
    junk=st.binary(min_size=0, max_size=64),
)
def test_checkpoint_load_rejects_bad_files_naming_the_path(
    kind: str, junk: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("ckpt")
    path = {"missing": root / "nope.pt", "directory": root}.get(kind, root / f"{kind}.pt")
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"\x00\x01not a checkpoint" + junk)
    elif kind == "truncated_zip":
        path.write_bytes(b"PK\x03\x04" + junk)
    for fn in (load_model, load_checkpoint):
        TRIED["checkpoint: " + fn.__name__] += 1
        try:
            with pytest.raises((FileNotFoundError, IsADirectoryError, CheckpointError)) as info:
                fn(path)
            assert str(path) in str(info.value), f"{fn.__name__}: the error does not name the path: {info.value}"
        except BaseException:
            VIOLATED["checkpoint: " + fn.__name__] += 1
            raise


@pytest.mark.parametrize("path", [3.5, None, ["a.pt"], b"a.pt"], ids=["float", "None", "list", "bytes"])
@pytest.mark.parametrize(
    "fn", ["load_model", "load_checkpoint", "save_model", "save_training_state", "load_training_state",
           "BernoulliRBM.save_training_state", "BernoulliRBM.load_training_state"]
)
def test_checkpoint_functions_reject_a_non_path_naming_path(fn: str, path: Any) -> None:
    energy = ENERGIES["MLPEnergy"][0]
    opt = torch.optim.SGD(energy.parameters(), lr=0.1)  # never stepped
    call: Callable[[], Any] = {
        "load_model": lambda: load_model(path),
        "load_checkpoint": lambda: load_checkpoint(path),
        "save_model": lambda: save_model(energy, path),
        "save_training_state": lambda: save_training_state(path, energy=energy, optimizer=opt, generator=_gen()),
        "load_training_state": lambda: load_training_state(path, energy=energy, optimizer=opt, generator=_gen()),
        "BernoulliRBM.save_training_state": lambda: _rbm().save_training_state(path, generator=_gen()),
        "BernoulliRBM.load_training_state": lambda: _rbm().load_training_state(path, generator=_gen()),
    }[fn]
    rejects(f"checkpoint: {fn}", call, "path")


@pytest.mark.parametrize("map_location", ["xpu9", "", "cuda:99", "meta", 3, ["cpu"]])
def test_checkpoint_load_rejects_a_bad_map_location_before_reading_the_file(
    map_location: Any, tmp_path: Path
) -> None:
    # The file is good: the error must name map_location, not call the file corrupt (CheckpointError).
    path = tmp_path / "ok.pt"
    save_model(ENERGIES["MLPEnergy"][0], path)
    TRIED["checkpoint: load_checkpoint"] += 1
    try:
        with pytest.raises(CLEAN) as info:
            load_checkpoint(path, map_location=map_location)
        assert not isinstance(info.value, CheckpointError), info.value
        assert _names(str(info.value), ("map_location",)), info.value
    except BaseException:
        VIOLATED["checkpoint: load_checkpoint"] += 1
        raise


# ------------------------------------------------------------------------------ devices (GPU)

CROSS_DEVICE_CASES = [
    "energy_x", "sampler_generator", "state_action_obs", "policy_obs", "gibbs_x0", "dsm_x", "nce_devices",
    "info_nce_devices", "discrete_generator", "replay_generator",
]


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA; the CPU cases ('meta' tensors, wrong dtypes) always run")
@pytest.mark.parametrize("case", CROSS_DEVICE_CASES)
def test_cross_device_inputs_are_rejected_naming_the_argument(case: str) -> None:
    """A CUDA tensor given to a CPU model (or a CPU generator for CUDA samples) fails with a named error."""
    cuda = torch.device("cuda")
    mlp, rbm = ENERGIES["MLPEnergy"][0], ENERGIES["BernoulliRBM"][0]
    e = torch.zeros(2)
    calls: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
        "energy_x": (lambda: mlp(torch.zeros(2, 2, device=cuda)), ("x",)),
        "sampler_generator": (lambda: Langevin(n_steps=2)(_quadratic, torch.zeros(2, 2, device=cuda),
                                                          generator=_gen()), ("generator",)),
        "state_action_obs": (lambda: SA_ENERGY(torch.zeros(2, 3, device=cuda), torch.zeros(2, 2)), ("obs",)),
        "policy_obs": (lambda: ContinuousBoltzmannPolicy(BOX, n_steps=2).sample(
            SA_ENERGY, torch.zeros(2, 3, device=cuda)), ("obs",)),
        "gibbs_x0": (lambda: Gibbs(n_steps=1)(rbm, torch.zeros(2, 3, device=cuda)), ("x0", "x")),
        "dsm_x": (lambda: denoising_score_matching(mlp, torch.zeros(2, 2, device=cuda), sigma=0.1), ("x",)),
        "nce_devices": (lambda: nce(e, e.to(cuda), e, e.to(cuda)), ("e_noise",)),
        "info_nce_devices": (lambda: info_nce(e, torch.zeros(2, 3, device=cuda)), ("e_neg",)),
        "discrete_generator": (lambda: DiscreteBoltzmannPolicy().sample(torch.zeros(2, 3, device=cuda),
                                                                        generator=_gen()), ("generator",)),
        "replay_generator": (lambda: ReplayBuffer(4, (2,), device=cuda, generator=_gen()), ("generator",)),
    }
    call, names = calls[case]
    rejects(f"devices: {case}", call, *names)


# -------------------------------------------------------------------------------------- agents


class _UnboundedEnv(gym.Env):
    """A one-step env with an unbounded Box action space (no agent here can act on it)."""

    observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    action_space = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action: np.ndarray):
        return np.zeros(2, dtype=np.float32), 0.0, True, False, {}


class _DiscreteEnv(_UnboundedEnv):
    action_space = spaces.Discrete(3)


BAD_SPACES = {"SoftQ": ["unbounded", "discrete"], "SoftDQN": ["unbounded", "box"], "IBC": ["unbounded", "discrete"],
              "EnergyPolicy": ["unbounded", "discrete"]}


@settings(SETTINGS, max_examples=30)
@given(data=st.data(), algo=st.sampled_from(sorted(BAD_SPACES)), case=st.sampled_from(["alpha", "space"]))
def test_agent_constructors_reject_bad_alpha_and_action_spaces(data: st.DataObject, algo: str, case: str) -> None:
    from agents import IBC, EnergyInference, EnergyPolicy, SoftDQN, SoftQ

    if case == "alpha":
        alpha = data.draw(NOT_POSITIVE)
        call: Callable[[], Any] = {
            "SoftQ": lambda: SoftQ("MlpPolicy", BimodalBanditEnv(), alpha=alpha),
            "SoftDQN": lambda: SoftDQN("MlpPolicy", _DiscreteEnv(), alpha=alpha),
            "IBC": lambda: IBC(BimodalBanditEnv().observation_space, BimodalBanditEnv().action_space,
                               temperature=alpha),
            "EnergyPolicy": lambda: EnergyInference(alpha=alpha),
        }[algo]
        rejects(f"agents: {algo}()", call, "temperature" if algo == "IBC" else "alpha")
        return
    env = {"unbounded": _UnboundedEnv, "discrete": _DiscreteEnv, "box": BimodalBanditEnv}[
        data.draw(st.sampled_from(BAD_SPACES[algo]))]()
    call = {
        "SoftQ": lambda: SoftQ("MlpPolicy", env),
        "SoftDQN": lambda: SoftDQN("MlpPolicy", env),
        "IBC": lambda: IBC(env.observation_space, env.action_space),
        "EnergyPolicy": lambda: EnergyPolicy(env.observation_space, env.action_space),
    }[algo]
    rejects(f"agents: {algo}()", call, "action_space", "action", algo)


# ---------------------------------------------------------------------------------------- envs

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
