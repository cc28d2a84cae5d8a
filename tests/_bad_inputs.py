"""The contract, strategies and shared objects of the bad-input tests (``tests/test_bad_inputs_*.py``).

Each test feeds an entry point inputs drawn by hypothesis: wrong shapes, dtypes and devices
("meta" tensors, which have no data), NaN and inf, empty batches, and out-of-range
hyperparameters (negative step sizes, α <= 0, k = 0, zero temperatures, bools where ints are
expected, strings, None). The contract checked for every case:

- a ``ValueError`` or ``TypeError`` whose message names the argument (``rejects``), or
- for inputs that may legitimately work (another float dtype, a large step), correct behaviour:
  a finite result of the right shape (``rejects_or_works``).

Anything else fails the test: a NaN result, an error from deep inside torch (a ``RuntimeError``
from a matmul, an ``IndexError``), or a message that does not say which argument is wrong.

Every case tried is counted per entry point, in one counter shared by the test modules of a
process. At the end of the session ``tests/conftest.py`` writes the counts to ``bad_inputs.json``
(``bad_inputs.<worker>.json`` under pytest-xdist, one file per worker, to be summed) in pytest's
temporary folder, or in ``$EBRL_BAD_INPUT_COUNTS`` when set. To get the counts in one file::

    EBRL_BAD_INPUT_COUNTS=results/reliability python -m pytest tests/test_bad_inputs_*.py -n 0 -q
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

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ebrl.boltzmann import BernoulliRBM
from ebrl.energy import (
    ConvEnergy,
    GaussianEnergy,
    GaussianMixtureEnergy,
    MLPEnergy,
    RingEnergy,
    StateActionEnergy,
)
from ebrl.samplers import DivergenceError

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



def write_counts() -> None:
    """Write the per-entry-point counts (one file per xdist worker); nothing if no case was tried."""
    if not TRIED:
        return
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

# ---------------------------------------------------------------------------- shared objects

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



def _quadratic(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x.flatten(1).square().sum(1)


def _rbm() -> BernoulliRBM:
    return BernoulliRBM(3, 2, generator=_gen())

