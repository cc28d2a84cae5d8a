"""Save and load core models with a format tag, a version and a digest of the weights.

A checkpoint is one ``torch.save`` of a dict of plain values and tensors, so it loads with
``torch.load(weights_only=True)`` (no arbitrary code runs on load)::

    {"format": "ebrl-checkpoint", "format_version": 1, "ebrl_version": "0.1.0",
     "class": "ebrl.energy.nets.MLPEnergy", "config": {...constructor kwargs...},
     "state_dict": {...}, "digest": "<sha256 of the tensors>", "extra": {...} | None}

``load_model`` verifies everything (format, version, digest, class, keys and shapes) before it
touches a model, so a failed load never leaves a model half-loaded.

Training states (``ebrl.training.save_training_state``, ``BoltzmannModel.save_training_state``)
use the same guarantees through ``write_training_payload`` / ``read_training_payload``: one
envelope with a format tag, the model's weights and class, the generator's state and a digest
over every field, written atomically and fully checked before anything is loaded. What goes
into a training state (optimizer, replay buffer, history) is ``ebrl.training``'s business.

Example::

    save_model(energy, "energy.pt", extra={"epochs": 20})
    energy = load_model("energy.pt")                 # rebuilt from the stored config
    load_model("energy.pt", model=my_energy)         # or loaded into an existing instance
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ebrl._version import __version__
from ebrl.energy.base import Configurable

FORMAT = "ebrl-checkpoint"
FORMAT_VERSION = 1

PathLike = str | os.PathLike


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, of another format or version, or does not match the model."""


class Checkpoint(NamedTuple):
    """A loaded checkpoint: the model, the ``extra`` dict saved with it, and its versions."""

    model: nn.Module
    extra: dict[str, Any] | None
    ebrl_version: str
    format_version: int


def state_digest(state_dict: Mapping[str, Tensor]) -> str:
    """SHA-256 over the tensors in sorted key order: each key, dtype, shape and raw bytes."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def as_path(path: object) -> Path:
    """``path`` as a ``Path``; ``TypeError`` naming ``path`` unless it is a str or an ``os.PathLike``."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


def _check_map_location(map_location: object) -> str | torch.device | None:
    """Require ``None``, or a str or ``torch.device`` naming a device this torch can allocate on.

    Checked before the file is read, so that a bad device is not reported as a corrupt file.
    """
    if map_location is None:
        return None
    if not isinstance(map_location, (str, torch.device)):
        raise TypeError(f"map_location must be a str, a torch.device or None, got {type(map_location).__name__}")
    try:
        device = torch.device(map_location)
        torch.empty(0, device=device)  # parses, and exists here (e.g. 'cuda:3' needs a 4th GPU)
    except (RuntimeError, AssertionError, ValueError) as exc:  # torch reports a missing backend by AssertionError
        raise ValueError(f"map_location {map_location!r} is not a device available here ({exc})") from exc
    if device.type == "meta":
        raise ValueError("map_location 'meta' holds no data; load onto a device with values (e.g. 'cpu' or 'cuda')")
    return map_location


def _check_model(model: object) -> None:
    if not (isinstance(model, nn.Module) and isinstance(model, Configurable)):
        raise TypeError(
            f"model must be an ebrl model (an nn.Module subclassing Configurable, e.g. an Energy), "
            f"got {type(model).__name__}"
        )


def _check_plain(name: str, value: object) -> None:
    """Require values that ``torch.load(weights_only=True)`` can read back."""
    if value is None or isinstance(value, (bool, int, float, str, Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(f"{name}[{i}]", v)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{name} must have str keys, got key {k!r}")
            _check_plain(f"{name}[{k!r}]", v)
        return
    raise TypeError(
        f"{name} holds a {type(value).__name__}; checkpoints store only None, bool, int, float, str, "
        f"tensors, and lists/tuples/dicts of these"
    )


def save_model(model: nn.Module, path: PathLike, *, extra: dict[str, Any] | None = None) -> None:
    """Write ``model`` to ``path`` atomically (a temporary file in the same directory, then rename).

    Args:
        model: an ``nn.Module`` that is ``Configurable`` (every ebrl ``Energy`` and
            ``StateActionEnergy``). Without its own ``get_config`` the checkpoint stores no
            config, and loading then needs ``model=``.
        path: the file to write; its directory must exist. An existing file is replaced only
            once the new one is complete.
        extra: plain values to store alongside (epochs, metrics, hyperparameters...).
    """
    _check_model(model)
    as_path(path)
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict or None, got {type(extra).__name__}")
    _check_plain("extra", extra)
    has_config = type(model).get_config is not Configurable.get_config
    config = model.get_config() if has_config else None
    _check_plain(f"{type(model).__name__}.get_config()", config)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "ebrl_version": __version__,
        "class": model.class_key(),
        "config": config,
        "state_dict": state,
        "digest": state_digest(state),
        "extra": extra,
    }
    write_atomic(path, payload)


def write_atomic(path: PathLike, payload: object) -> None:
    """``torch.save(payload)`` to a temporary sibling of ``path``, fsync it, then rename it to ``path``.

    A reader never sees a half-written file, and an existing file is replaced only once the new
    one is complete; on failure the temporary file is removed.
    """
    path = as_path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot save to '{path}': the directory '{path.parent}' does not exist")
    # A unique sibling name, created exclusively with mode 0o666 so the umask applies as for
    # any new file (tempfile.mkstemp would leave the checkpoint readable by its owner only).
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _load_file(path: Path, map_location: str | torch.device | None) -> object:
    """``torch.load(weights_only=True)``; a damaged or foreign file raises ``CheckpointError``."""
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at '{path}'")
    try:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise  # permissions and the like: not a statement about the file's content
        # torch's zip reader reports some truncated archives as EINVAL ("Invalid argument").
        raise CheckpointError(
            f"'{path}' is corrupt or not an ebrl checkpoint (torch.load failed: {type(exc).__name__}: {exc})"
        ) from exc
    except Exception as exc:  # a damaged file fails deep in the unpickler/zip reader, in many ways
        raise CheckpointError(
            f"'{path}' is corrupt or not an ebrl checkpoint (torch.load failed: {type(exc).__name__}: {exc})"
        ) from exc


def _read(path: Path, map_location: str | torch.device | None) -> dict[str, Any]:
    """``torch.load`` the file and check the envelope: format tag, version, field types, digest."""
    payload = _load_file(path, map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not an ebrl checkpoint (no '{FORMAT}' format tag)")
    version = payload.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"'{path}' is corrupt: format_version is {version!r}, expected an int >= 1")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"'{path}' has checkpoint format_version {version}, written by ebrl "
            f"{payload.get('ebrl_version')}; this ebrl ({__version__}) reads format_version "
            f"<= {FORMAT_VERSION}: upgrade ebrl"
        )
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        raise CheckpointError(f"'{path}' is corrupt: state_dict is not a dict of tensors")
    for field in ("class", "digest", "ebrl_version"):
        if not isinstance(payload.get(field), str):
            raise CheckpointError(f"'{path}' is corrupt: the '{field}' field is missing or not a string")
    if state_digest(state) != payload["digest"]:
        raise CheckpointError(
            f"'{path}' is corrupt: its tensor data does not match the stored SHA-256 digest "
            f"(the file was damaged after it was written)"
        )
    return payload


def _build(path: Path, payload: dict[str, Any]) -> nn.Module:
    """A fresh model of the stored class, from the stored config."""
    key = payload["class"]
    try:
        cls = Configurable.lookup(key)
    except ValueError as exc:
        raise CheckpointError(f"'{path}': {exc}") from exc
    config = payload.get("config")
    if config is None:
        raise CheckpointError(
            f"'{path}' stores no config for {key} (the class defines no get_config()); "
            f"pass an instance to load into: load_model(path, model=...)"
        )
    if not isinstance(config, dict):
        raise CheckpointError(f"'{path}' is corrupt: config is a {type(config).__name__}, expected a dict")
    try:
        return cls(**config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"'{path}': cannot rebuild {key} from the stored config {config}: {exc}") from exc


def _check_state_matches(path: Path, model: nn.Module, state: dict[str, Tensor]) -> None:
    """Require the stored keys and shapes to be exactly the model's; name every mismatch."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if state[k].shape != own[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    if wrong:
        problems.append(f"shape mismatches [{'; '.join(wrong)}]")
    if problems:
        raise CheckpointError(
            f"'{path}' does not fit {type(model).__name__}: {', '.join(problems)}; the model is unchanged"
        )


def load_checkpoint(
    path: PathLike,
    *,
    model: nn.Module | None = None,
    map_location: str | torch.device | None = None,
) -> Checkpoint:
    """Load a checkpoint written by ``save_model``, with its ``extra`` dict and versions.

    Every check runs before the weights are copied: missing file (``FileNotFoundError``),
    unreadable or foreign file, newer format version, digest mismatch, class mismatch, and
    key or shape mismatch (all ``CheckpointError``). ``model`` is untouched if any fails.

    Args:
        path: the file.
        model: load into this instance (its class must be the stored one); ``None`` rebuilds
            the model from the stored class and config.
        map_location: where ``torch.load`` puts the tensors (default CPU); a rebuilt model is
            moved there.
    """
    path = as_path(path)
    map_location = _check_map_location(map_location)
    payload = _read(path, map_location)
    if model is not None:
        _check_model(model)
        if model.class_key() != payload["class"]:
            raise CheckpointError(
                f"'{path}' holds a {payload['class']}, but model is a {model.class_key()}; the model is unchanged"
            )
    else:
        model = _build(path, payload)
        if map_location is not None:
            model = model.to(map_location)
    state = payload["state_dict"]
    _check_state_matches(path, model, state)
    model.load_state_dict(state)
    return Checkpoint(model, payload.get("extra"), payload["ebrl_version"], payload["format_version"])


def load_model(
    path: PathLike,
    *,
    model: nn.Module | None = None,
    map_location: str | torch.device | None = None,
) -> nn.Module:
    """Load the model saved at ``path``; see ``load_checkpoint`` (which also returns ``extra``)."""
    return load_checkpoint(path, model=model, map_location=map_location).model


# --------------------------------------------------------------------------- training state

TRAINING_FORMAT = "ebrl-training-state"
TRAINING_FORMAT_VERSION = 1


def leaves(prefix: str, value: object) -> Iterator[tuple[str, object]]:
    """Every leaf of a nested dict/list/tuple, with its path (``a/b/0``)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(f"{prefix}/{k!r}", v)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from leaves(f"{prefix}/{i}", v)
    else:
        yield prefix, value


def payload_digest(payload: Mapping[str, Any]) -> str:
    """SHA-256 over every field but ``digest``: the tensors as in ``state_digest`` and the other leaves by repr."""
    body = {k: v for k, v in payload.items() if k != "digest"}
    all_leaves = list(leaves("", body))
    tensors = {path: v for path, v in all_leaves if isinstance(v, Tensor)}
    plain = [(path, type(v).__name__, repr(v)) for path, v in all_leaves if not isinstance(v, Tensor)]
    h = hashlib.sha256(repr(plain).encode())
    h.update(state_digest(tensors).encode())
    return h.hexdigest()


def _class_key(module: nn.Module) -> str:
    if isinstance(module, Configurable):
        return module.class_key()
    return f"{type(module).__module__}.{type(module).__qualname__}"


def write_training_payload(
    path: PathLike,
    *,
    model: nn.Module,
    generator: torch.Generator,
    sections: dict[str, Any],
    extra: dict[str, Any] | None,
) -> None:
    """Write the model's weights, the generator's state and ``sections`` as one digested training state."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"energy must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be the run's torch.Generator, got {type(generator).__name__}")
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict or None, got {type(extra).__name__}")
    _check_plain("extra", extra)
    payload = {
        "format": TRAINING_FORMAT,
        "format_version": TRAINING_FORMAT_VERSION,
        "ebrl_version": __version__,
        "class": _class_key(model),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "generator": {"device": generator.device.type, "state": generator.get_state()},
        **sections,
        "extra": extra,
    }
    payload["digest"] = payload_digest(payload)
    write_atomic(path, payload)


def read_training_payload(path: PathLike, *, model: nn.Module, generator: torch.Generator) -> dict[str, Any]:
    """Read a training state and check the envelope, the digest, the model and the generator; mutate nothing."""
    path = as_path(path)
    payload = _load_file(path, None)
    if not isinstance(payload, dict) or payload.get("format") != TRAINING_FORMAT:
        raise CheckpointError(f"'{path}' is not an ebrl training state (no '{TRAINING_FORMAT}' format tag)")
    version = payload.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= TRAINING_FORMAT_VERSION:
        raise CheckpointError(
            f"'{path}' has training-state format_version {version!r}; this ebrl ({__version__}) reads "
            f"1 to {TRAINING_FORMAT_VERSION}"
        )
    if not isinstance(payload.get("digest"), str) or payload_digest(payload) != payload["digest"]:
        raise CheckpointError(
            f"'{path}' is corrupt: its content does not match the stored SHA-256 digest "
            f"(the file was damaged after it was written); nothing was loaded"
        )
    state, saved = payload.get("state_dict"), payload.get("generator")
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"'{path}' is corrupt: state_dict is not a dict of tensors")
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), Tensor) or "device" not in saved:
        raise CheckpointError(f"'{path}' is corrupt: it holds no generator state")
    if payload.get("class") != _class_key(model):
        raise CheckpointError(
            f"'{path}' holds the training state of a {payload.get('class')}, but energy is a {_class_key(model)}; "
            f"nothing was loaded"
        )
    _check_state_matches(path, model, state)
    if saved["device"] != generator.device.type or saved["state"].shape != generator.get_state().shape:
        raise CheckpointError(
            f"'{path}' holds the state of a '{saved['device']}' generator, which does not fit the given "
            f"'{generator.device.type}' generator; nothing was loaded"
        )
    return payload
