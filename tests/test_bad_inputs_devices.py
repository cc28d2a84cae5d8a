"""Cross-device inputs (CUDA tensors for CPU models, CPU generators for CUDA samples) at the core's entry points."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from _bad_inputs import (
    CUDA,
    ENERGIES,
    SA_ENERGY,
    _gen,
    _quadratic,
    rejects,
)

from ebrl.boltzmann import Gibbs
from ebrl.losses import denoising_score_matching, info_nce, nce
from ebrl.samplers import Langevin, ReplayBuffer

torch.set_num_threads(1)

CROSS_DEVICE_CASES = [
    "energy_x", "sampler_generator", "state_action_obs", "gibbs_x0", "dsm_x", "nce_devices", "info_nce_devices",
    "replay_generator",
]
"""The policies' cases are in ``test_bad_inputs_rl.py``."""


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA; the CPU cases ('meta' tensors, wrong dtypes) always run")
@pytest.mark.parametrize("case", CROSS_DEVICE_CASES)
def test_cross_device_inputs_are_rejected_naming_the_argument(case: str) -> None:
    """A CUDA tensor given to a CPU model (or a CPU generator for CUDA samples) fails with a named error."""
    cuda = torch.device("cuda")
    mlp, rbm = ENERGIES["MLPEnergy"][0], ENERGIES["BernoulliRBM"][0]
    e = torch.zeros(2)
    calls: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
        "energy_x": (lambda: mlp(torch.zeros(2, 2, device=cuda)), ("x",)),
        "sampler_generator": (lambda: Langevin(n_steps=2)(_quadratic, torch.zeros(2, 2, device=cuda),
                                                          generator=_gen()), ("generator",)),
        "state_action_obs": (lambda: SA_ENERGY(torch.zeros(2, 3, device=cuda), torch.zeros(2, 2)), ("obs",)),
        "gibbs_x0": (lambda: Gibbs(n_steps=1)(rbm, torch.zeros(2, 3, device=cuda)), ("x0", "x")),
        "dsm_x": (lambda: denoising_score_matching(mlp, torch.zeros(2, 2, device=cuda), sigma=0.1), ("x",)),
        "nce_devices": (lambda: nce(e, e.to(cuda), e, e.to(cuda)), ("e_noise",)),
        "info_nce_devices": (lambda: info_nce(e, torch.zeros(2, 3, device=cuda)), ("e_neg",)),
        "replay_generator": (lambda: ReplayBuffer(4, (2,), device=cuda, generator=_gen()), ("generator",)),
    }
    call, names = calls[case]
    rejects(f"devices: {case}", call, *names)
