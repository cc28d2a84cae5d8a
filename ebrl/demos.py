"""Demonstrations for imitation: an ``.npz`` file or a Minari dataset, as ``(observations, actions)`` arrays.

``load_demonstrations(source)`` reads either (``envs.demos.record_particle_demonstrations`` records the particle
task's scripted expert into a Minari dataset with Minari's own ``DataCollector``). Minari's datasets live in its local
store (``~/.minari/datasets``, or ``$MINARI_DATASETS_PATH``); nothing is ever downloaded. Minari is not a runtime
dependency: ``pip install "ebrl[minari]"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

NPZ_KEYS = ("observations", "actions")
"""The arrays of an ``.npz`` of demonstrations: ``observations`` (T, O) and ``actions`` (T, A)."""


def require_minari() -> Any:
    """The ``minari`` module, or an ``ImportError`` that names the extra to install."""
    try:
        import minari
    except ImportError as e:
        raise ImportError('Minari datasets need minari: pip install "ebrl[minari]"') from e
    return minari


def is_npz(source: str | Path) -> bool:
    """Whether ``source`` names an ``.npz`` file (by its suffix), rather than a Minari dataset id."""
    return Path(source).suffix == ".npz"


def load_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(observations (T, O), actions (T, A))`` from an ``.npz`` with arrays ``NPZ_KEYS``."""
    with np.load(path) as f:
        missing = [k for k in NPZ_KEYS if k not in f.files]
        if missing:
            raise ValueError(f"'{path}' has no array(s) {missing} (it has {f.files}); expected {list(NPZ_KEYS)}")
        return np.asarray(f["observations"]), np.asarray(f["actions"])


def load_minari(dataset_id: str) -> tuple[np.ndarray, np.ndarray]:
    """``(observations (T, O), actions (T, A))``: every step of every episode of a local Minari dataset.

    An episode of n steps holds n + 1 observations; the last (after the final action) is dropped, so each
    observation is paired with the action taken in it. Raises ``ValueError`` naming the id if the dataset is not in
    the local store (no download is attempted) or its observations or actions are not ``Box`` arrays.
    """
    minari = require_minari()
    local = set(minari.list_local_datasets())
    if dataset_id not in local:
        raise ValueError(
            f"no Minari dataset '{dataset_id}' in the local store ({minari.storage.get_dataset_path()}); "
            f"expected one of {sorted(local) or 'none'}, or a path ending in .npz (nothing is downloaded)"
        )
    dataset = minari.load_dataset(dataset_id)
    for name, space in (("observation", dataset.observation_space), ("action", dataset.action_space)):
        if not isinstance(space, spaces.Box):
            raise ValueError(f"Minari dataset '{dataset_id}' has {name} space {space}; expected a Box")
    observations, actions = [], []
    for episode in dataset.iterate_episodes():
        observations.append(np.asarray(episode.observations)[:-1])  # (n + 1, O) -> (n, O)
        actions.append(np.asarray(episode.actions))  # (n, A)
    if not observations:
        raise ValueError(f"Minari dataset '{dataset_id}' has no episodes")
    return np.concatenate(observations), np.concatenate(actions)


def load_demonstrations(source: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(observations (T, O), actions (T, A))`` from an ``.npz`` path or a Minari dataset id (local store)."""
    return load_npz(source) if is_npz(source) else load_minari(str(source))
