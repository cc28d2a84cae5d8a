"""Test-session settings.

Tests run in parallel under pytest-xdist (``-n auto`` in pyproject.toml). Each worker gets one
torch thread: with several busy processes on few cores, torch's own threads fight and slow
every test 10-100x.
"""

from __future__ import annotations

import os
import re

os.environ.setdefault("MPLBACKEND", "Agg")  # plots render to files, never to a screen

from pathlib import Path

import _bad_inputs
import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER") or os.cpu_count() == 1:
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``gpu`` every test skipped because it needs CUDA (its skip reason says "needs CUDA" or "requires CUDA"),
    so that ``pytest -m gpu`` (experiments/gpu_check.py) runs all of them, whether or not its author added the
    marker."""
    for item in items:
        reasons = [str(mark.kwargs.get("reason", "")) for mark in item.iter_markers("skipif")]
        if any(re.search(r"\b(needs|requires) CUDA\b", r, flags=re.I) for r in reasons):
            item.add_marker(pytest.mark.gpu)


@pytest.fixture(scope="session", autouse=True)
def _sb3_logs_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory):
    """SB3's ``learn`` makes a log folder (``$SB3_LOGDIR``, else a new ``/tmp/SB3-<date>``): keep it in pytest's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3_logs")))
        yield


@pytest.fixture(scope="session", autouse=True)
def _bad_input_counts(tmp_path_factory: pytest.TempPathFactory):
    """Write the bad-input tests' case counts at the end of the session (see ``tests/_bad_inputs.py``).

    Into pytest's temporary folder, as every test writes; ``EBRL_BAD_INPUT_COUNTS=DIR`` asks for them in ``DIR``.
    """
    wanted = os.environ.get("EBRL_BAD_INPUT_COUNTS")
    _bad_inputs.RESULTS = Path(wanted) if wanted else tmp_path_factory.getbasetemp() / "bad_input_counts"
    yield
    _bad_inputs.write_counts()
