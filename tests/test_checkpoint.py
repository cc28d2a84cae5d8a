"""Checkpoints: a round trip restores identical outputs; every damaged or mismatched file raises a
clear error, and a failed load never changes the model it was loading into.
"""

from __future__ import annotations

import copy
import importlib
import os
import re
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

import ebrl
import ebrl.energy.base
from ebrl import CheckpointError, load_model, save_model
from ebrl.checkpoint import FORMAT_VERSION, load_checkpoint, state_digest
from ebrl.energy import ConvEnergy, Energy, GaussianEnergy, MLPEnergy, StateActionEnergy

CUDA = torch.cuda.is_available()


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def perturbed(model: nn.Module, seed: int = 0) -> nn.Module:
    """The model with random parameters, so a round trip cannot pass by re-initialisation."""
    g = gen(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


MODELS = {
    "mlp": (lambda: MLPEnergy(3, (16, 8)), lambda g: (torch.randn(5, 3, generator=g),)),
    "mlp_spectral": (lambda: MLPEnergy(3, (16,), spectral_norm=True), lambda g: (torch.randn(5, 3, generator=g),)),
    "conv": (lambda: ConvEnergy(2, (4, 8)), lambda g: (torch.randn(3, 2, 8, 8, generator=g),)),
    "state_action": (
        lambda: StateActionEnergy(3, 2, (16, 16)),
        lambda g: (torch.randn(4, 3, generator=g), torch.randn(4, 6, 2, generator=g)),
    ),
    "gaussian": (
        lambda: GaussianEnergy([0.5, -1.0], [[2.0, 0.3], [0.3, 0.5]]),
        lambda g: (torch.randn(5, 2, generator=g),),
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_gives_identical_outputs(name, tmp_path):
    build, inputs = MODELS[name]
    model = perturbed(build()).eval()
    args = inputs(gen(1))
    with torch.no_grad():
        expected = model(*args)
    path = tmp_path / "model.pt"
    save_model(model, path)
    rebuilt = load_model(path).eval()  # from the stored class and config
    into = perturbed(build(), seed=5).eval()
    assert load_model(path, model=into) is into  # into an existing instance
    with torch.no_grad():
        assert type(rebuilt) is type(model)
        assert torch.equal(rebuilt(*args), expected)
        assert torch.equal(into(*args), expected)


def test_checkpoint_keeps_extra_and_versions(tmp_path):
    path = tmp_path / "m.pt"
    extra = {"epochs": 20, "history": [0.5, 0.25], "note": "cd", "mean": torch.ones(2)}
    save_model(MLPEnergy(2, (4,)), path, extra=extra)
    ckpt = load_checkpoint(path)
    assert ckpt.extra["epochs"] == 20 and ckpt.extra["history"] == [0.5, 0.25] and ckpt.extra["note"] == "cd"
    assert torch.equal(ckpt.extra["mean"], torch.ones(2))
    assert ckpt.ebrl_version == ebrl.__version__
    assert ckpt.format_version == FORMAT_VERSION
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "ebrl-checkpoint" and payload["class"] == "ebrl.energy.nets.MLPEnergy"


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    old = perturbed(MLPEnergy(2, (4,)))
    save_model(old, path)
    original = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_model(MLPEnergy(2, (4,)), path)
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # no temporary file left behind


def test_saved_file_gets_ordinary_permissions(tmp_path):
    path = tmp_path / "m.pt"
    save_model(MLPEnergy(2, (4,)), path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# --- damaged and mismatched files ------------------------------------------------------------


@pytest.fixture
def saved(tmp_path) -> tuple[Path, MLPEnergy]:
    model = perturbed(MLPEnergy(2, (8,)))
    path = tmp_path / "model.pt"
    save_model(model, path)
    return path, model


def assert_unchanged(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_bad_map_location_is_named_and_the_good_file_is_not_called_corrupt(saved):
    path, model = saved
    with pytest.raises(ValueError, match=r"map_location 'xpu9' is not a device") as info:
        load_checkpoint(path, map_location="xpu9")
    assert not isinstance(info.value, CheckpointError)
    back = load_checkpoint(path, map_location=torch.device("cpu")).model  # a valid device still loads
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), model.state_dict().values(), strict=True))


def test_missing_file_raises_file_not_found_naming_the_path(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match=r"nope\.pt"):
        load_model(path)


@pytest.mark.parametrize(
    "keep",
    [lambda n: 0, lambda n: 10, lambda n: n // 2, lambda n: n - 1],
    ids=["empty", "10_bytes", "half", "n_minus_1"],
)
def test_truncated_file_raises_corrupt(saved, keep):
    path, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[: keep(len(data))])
    target = perturbed(MLPEnergy(2, (8,)), seed=3)
    before = copy.deepcopy(target.state_dict())
    with pytest.raises(CheckpointError, match=rf"'{path}' is corrupt or not an ebrl checkpoint"):
        load_model(path, model=target)
    assert_unchanged(target, before)


def tensor_record_span(path: Path) -> tuple[int, int]:
    """Byte range of the first tensor's raw data inside the zip written by torch.save."""
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if "/data/" in i.filename and not i.filename.endswith(".pkl"))
    raw = path.read_bytes()
    # The local file header: 30 fixed bytes, then the name and an extra field (torch pads it to
    # align the data), whose lengths are little-endian u16 at offsets 26 and 28.
    name_len = int.from_bytes(raw[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    return start, start + info.file_size


def test_flipped_bytes_in_tensor_data_raise_digest_mismatch(saved):
    path, _ = saved
    data = bytearray(path.read_bytes())
    start, end = tensor_record_span(path)
    for i in range(start, min(end, start + 8)):
        data[i] ^= 0xFF  # torch.load itself reads these bytes back without complaint
    path.write_bytes(bytes(data))
    target = MLPEnergy(2, (8,))
    before = copy.deepcopy(target.state_dict())
    with pytest.raises(CheckpointError, match="corrupt: its tensor data does not match the stored SHA-256 digest"):
        load_model(path, model=target)
    assert_unchanged(target, before)
    with pytest.raises(CheckpointError, match="digest"):
        load_model(path)


def test_altered_tensor_with_the_old_digest_is_rejected(saved):
    path, _ = saved
    payload = torch.load(path, weights_only=True)
    key = sorted(payload["state_dict"])[0]
    payload["state_dict"][key] = payload["state_dict"][key] + 1e-6
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="digest"):
        load_model(path)


def test_digest_covers_keys_shapes_and_bytes():
    base = {"a": torch.zeros(2, 3), "b": torch.ones(1)}
    digest = state_digest(base)
    assert state_digest({"b": torch.ones(1), "a": torch.zeros(2, 3)}) == digest  # key order is irrelevant
    assert state_digest({"a": torch.zeros(3, 2), "b": torch.ones(1)}) != digest
    assert state_digest({"c": torch.zeros(2, 3), "b": torch.ones(1)}) != digest
    assert state_digest({"a": torch.zeros(2, 3, dtype=torch.float64), "b": torch.ones(1)}) != digest


def test_foreign_files_raise_not_an_ebrl_checkpoint(tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save(MLPEnergy(2, (4,)).state_dict(), plain)  # a bare state_dict: the common mistake
    with pytest.raises(CheckpointError, match="not an ebrl checkpoint"):
        load_model(plain)
    text = tmp_path / "text.pt"
    text.write_text("hello, I am not a checkpoint\n" * 10)
    with pytest.raises(CheckpointError, match="corrupt or not an ebrl checkpoint"):
        load_model(text)


def test_newer_format_version_asks_to_upgrade(saved):
    path, _ = saved
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=rf"format_version {FORMAT_VERSION + 1}.*upgrade ebrl"):
        load_model(path)


def test_wrong_class_raises_naming_both_and_leaves_model_unchanged(saved):
    path, _ = saved
    target = GaussianEnergy([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]])
    before = copy.deepcopy(target.state_dict())
    with pytest.raises(CheckpointError, match=r"holds a ebrl.energy.nets.MLPEnergy, but model is a .*GaussianEnergy"):
        load_model(path, model=target)
    assert_unchanged(target, before)


def test_wrong_shapes_raise_naming_the_keys_and_leave_model_unchanged(saved):
    path, _ = saved  # MLPEnergy(2, (8,))
    target = perturbed(MLPEnergy(2, (16,)))
    before = copy.deepcopy(target.state_dict())
    with pytest.raises(CheckpointError, match=r"net\.0\.weight: checkpoint \(8, 2\) vs model \(16, 2\)") as info:
        load_model(path, model=target)
    assert "net.2.weight" in str(info.value)
    assert_unchanged(target, before)
    deeper = MLPEnergy(2, (8, 8))  # same first layers, one more: missing keys
    with pytest.raises(CheckpointError, match=r"missing keys \['net\.4\.bias', 'net\.4\.weight'\]"):
        load_model(path, model=deeper)


class NoConfigEnergy(Energy):
    """An energy without get_config: its checkpoint loads only into an instance."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(2, generator=gen(0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w  # (B, 2) -> (B,)


def test_model_without_config_loads_only_into_an_instance(tmp_path):
    path = tmp_path / "m.pt"
    model = NoConfigEnergy()
    save_model(model, path)
    with pytest.raises(CheckpointError, match=r"stores no config .* load_model\(path, model=\.\.\.\)"):
        load_model(path)
    into = NoConfigEnergy()
    with torch.no_grad():
        into.w.zero_()
    load_model(path, model=into)
    assert torch.equal(into.w, model.w)


def test_save_rejects_non_models_and_unloadable_extra(tmp_path):
    with pytest.raises(TypeError, match="model must be an ebrl model"):
        save_model(nn.Linear(2, 1), tmp_path / "m.pt")
    with pytest.raises(TypeError, match=r"extra\['fn'\] holds a function"):
        save_model(MLPEnergy(2, (4,)), tmp_path / "m.pt", extra={"fn": lambda: None})
    with pytest.raises(TypeError, match="extra must be a dict"):
        save_model(MLPEnergy(2, (4,)), tmp_path / "m.pt", extra=[1, 2])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_model(MLPEnergy(2, (4,)), tmp_path / "no_dir" / "m.pt")
    assert not list(tmp_path.iterdir())


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_cuda_checkpoint_loads_on_cpu_and_back(tmp_path):
    model = perturbed(MLPEnergy(3, (8,))).cuda()
    x = torch.randn(4, 3, generator=gen(2))
    path = tmp_path / "m.pt"
    save_model(model, path)
    cpu = load_model(path)
    assert next(cpu.parameters()).device.type == "cpu"
    back = load_model(path, map_location="cuda")
    assert next(back.parameters()).is_cuda
    with torch.no_grad():
        torch.testing.assert_close(cpu(x), model(x.cuda()).cpu())
        torch.testing.assert_close(back(x.cuda()), model(x.cuda()))


# ---------------------------------------------------------------- class lookup imports nothing foreign

SIDE_EFFECT_MODULE = '''
import os
from pathlib import Path

Path(os.environ["EBRL_TEST_FLAG"]).write_text("imported")  # the visible side effect of importing this module

from ebrl.energy import MLPEnergy


class FlagEnergy(MLPEnergy):
    pass
'''


@pytest.fixture
def side_effect_module(tmp_path, monkeypatch):
    """A module on sys.path whose import writes a flag file: ``(module name, flag path)``."""
    name = f"ebrl_test_side_effect_{os.getpid()}_{tmp_path.name}".replace("-", "_")
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / f"{name}.py").write_text(SIDE_EFFECT_MODULE)
    flag = tmp_path / "flag.txt"
    monkeypatch.syspath_prepend(str(code_dir))
    monkeypatch.setenv("EBRL_TEST_FLAG", str(flag))
    monkeypatch.setattr(ebrl.energy.base.Configurable, "_trusted_modules", set())
    yield name, flag
    sys.modules.pop(name, None)


def _save_naming(path: Path, class_key: str) -> None:
    """A valid MLPEnergy checkpoint whose class field is edited to ``class_key`` (the class is outside the digest)."""
    save_model(MLPEnergy(2, (4,)), path)
    payload = torch.load(path, weights_only=True)
    payload["class"] = class_key
    torch.save(payload, path)


@pytest.mark.parametrize("qualname", ["FlagEnergy", "Missing"])
def test_a_checkpoint_naming_a_foreign_module_is_refused_without_importing_it(side_effect_module, tmp_path, qualname):
    name, flag = side_effect_module
    path = tmp_path / "m.pt"
    _save_naming(path, f"{name}.{qualname}")
    for load in (load_model, load_checkpoint):
        with pytest.raises(CheckpointError, match=rf"module '{name}', which ebrl does not own"):
            load(path)
    assert not flag.exists(), "the module named by the checkpoint was imported"
    assert name not in sys.modules


def test_a_checkpoint_naming_a_registered_module_imports_it_and_loads(side_effect_module, tmp_path):
    name, flag = side_effect_module
    path = tmp_path / "m.pt"
    _save_naming(path, f"{name}.FlagEnergy")
    ebrl.energy.base.Configurable.trust_module(name)
    model = load_model(path)
    assert flag.read_text() == "imported"
    assert type(model).__name__ == "FlagEnergy" and type(model).__module__ == name


def test_a_checkpoint_naming_an_already_imported_class_loads_without_registration(side_effect_module, tmp_path):
    name, flag = side_effect_module
    module = importlib.import_module(name)  # the user imports their own module: its classes register
    flag.unlink()
    path = tmp_path / "m.pt"
    _save_naming(path, f"{name}.FlagEnergy")
    assert isinstance(load_model(path), module.FlagEnergy)
    assert not flag.exists()  # not imported again


@pytest.mark.parametrize("key", ["this.Zen", "os.system", "ebrl.energy.nets.Missing", "no_dots", "ebrl..x.Y"])
def test_a_checkpoint_naming_no_ebrl_model_raises_checkpoint_error(tmp_path, key):
    path = tmp_path / "m.pt"
    _save_naming(path, key)
    with pytest.raises(CheckpointError, match=re.escape(key)):
        load_model(path)
    assert key != "this.Zen" or "this" not in sys.modules


@pytest.mark.parametrize("name", ["", "a b", "mod.", 3, None, ".rel"])
def test_trust_module_rejects_a_non_module_name(name):
    with pytest.raises(ValueError, match="name must be a dotted module name"):
        ebrl.energy.base.Configurable.trust_module(name)
