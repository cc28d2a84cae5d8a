"""The sampling generator that is seeded through SB3's ``seed=`` but never pickled."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class PolicyGenerator:
    """The ``torch.Generator`` a policy samples actions with, created on demand from a seed.

    SB3's ``seed=`` seeds it (through ``reseed``); ``seed=None`` draws the seed from OS entropy.
    The generator itself is never pickled: a copy or an unpickled policy restarts the stream from
    the seed. The global torch RNG is never used.
    """

    def __init__(self) -> None:
        self._seed: int | None = None
        self._generator: torch.Generator | None = None

    def reseed(self, seed: int | None) -> None:
        """Restart the stream from ``seed`` (decorrelated from ``torch.manual_seed(seed)``)."""
        self._seed = None if seed is None else int(np.random.SeedSequence(seed).generate_state(1)[0])
        self._generator = None

    def get(self, device: torch.device) -> torch.Generator:
        """The generator on ``device``, recreated from the seed if the device changed."""
        if self._generator is None or self._generator.device.type != device.type:
            self._generator = torch.Generator(device=device)
            if self._seed is None:
                self._generator.seed()
            else:
                self._generator.manual_seed(self._seed)
        return self._generator

    def __getstate__(self) -> dict[str, Any]:
        return {"_seed": self._seed, "_generator": None}

    def get_state(self) -> dict[str, Any]:
        """The seed and, once the stream has been drawn from, the generator's device and state."""
        g = self._generator
        return {
            "seed": self._seed,
            "device": None if g is None else g.device.type,
            "state": None if g is None else g.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue the stream saved by ``get_state`` (on another device type it restarts from the seed)."""
        self._seed, self._generator = state["seed"], None
        if state["state"] is not None:
            self._generator = torch.Generator(device=state["device"])
            self._generator.set_state(state["state"])
