"""Wrappers that turn state energies into rewards for any agent: potential-based shaping and novelty bonuses."""

from envs.wrappers.energy import EnergyNovelty, EnergyShaping

__all__ = ["EnergyNovelty", "EnergyShaping"]
