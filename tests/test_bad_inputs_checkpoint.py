"""Bad input at the entry points of ``ebrl.checkpoint``: property-based tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from _bad_inputs import (
    CLEAN,
    ENERGIES,
    FEW,
    TRIED,
    VIOLATED,
    _gen,
    _names,
    _rbm,
    rejects,
)
from hypothesis import given
from hypothesis import strategies as st

from ebrl import load_model, save_model
from ebrl.checkpoint import CheckpointError, load_checkpoint
from ebrl.training import load_training_state, save_training_state

torch.set_num_threads(1)


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
