"""Pieces shared by the ebrl agents: action-space checks, finite transitions and losses, the
sampling generator that is seeded through SB3's ``seed=`` but never pickled, ``save_run`` /
``load_run``, which stop and resume a training run exactly, the temperature, and ``EnergyPolicy``
(any state-action energy as an SB3 policy, which IBC acts with), and ``add_demonstrations`` (demonstrated
episodes into any off-policy algorithm's replay buffer).

Each algorithm folder imports only this package and ``ebrl``, never another algorithm.
"""

from __future__ import annotations

from agents.common.checks import (
    check_action_space,
    check_finite_loss,
    check_finite_transition,
    check_value_prior,
)
from agents.common.demos import EPISODE_FIELDS, add_demonstrations
from agents.common.energy_policy import EnergyInference, EnergyPolicy
from agents.common.generator import PolicyGenerator
from agents.common.runs import RUN_FILES, load_run, save_run
from agents.common.temperature import LearntTemperature, check_target_entropy, parse_alpha

__all__ = [
    "EPISODE_FIELDS",
    "RUN_FILES",
    "EnergyInference",
    "EnergyPolicy",
    "LearntTemperature",
    "PolicyGenerator",
    "add_demonstrations",
    "check_action_space",
    "check_finite_loss",
    "check_finite_transition",
    "check_target_entropy",
    "check_value_prior",
    "load_run",
    "parse_alpha",
    "save_run",
]
