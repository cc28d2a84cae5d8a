"""``EnergyPolicy`` and ``EnergyInference`` live in ``agents.common`` (IBC and users share them); this
module keeps the old import path, and the pickles that name it, working."""

from __future__ import annotations

from agents.common.energy_policy import MODE_SEED, EnergyInference, EnergyPolicy

__all__ = ["MODE_SEED", "EnergyInference", "EnergyPolicy"]
