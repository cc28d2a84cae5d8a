"""The progress bar that ``fit`` and ``BoltzmannModel.fit`` show (tqdm, the ``progress`` extra)."""

from __future__ import annotations

from typing import Any

from ebrl._checks import MissingExtraError


def progress_bar(total: int, *, desc: str, unit: str) -> Any:
    """A tqdm bar over ``total`` units, or ``MissingExtraError`` naming the extra to install."""
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise MissingExtraError('progress_bar=True needs tqdm: pip install "ebrl[progress]"') from exc
    return tqdm(total=total, desc=desc, unit=unit)
