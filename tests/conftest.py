"""Test-session settings.

Tests run in parallel under pytest-xdist (``-n auto`` in pyproject.toml). Each worker gets one
torch thread: with several busy processes on few cores, torch's own threads fight and slow
every test 10-100x.
"""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # plots render to files, never to a screen

import pytest
import torch
from _bad_inputs import write_counts

if os.environ.get("PYTEST_XDIST_WORKER") or os.cpu_count() == 1:
    torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _bad_input_counts():
    """Write the bad-input tests' case counts at the end of the session (see ``tests/_bad_inputs.py``)."""
    yield
    write_counts()
