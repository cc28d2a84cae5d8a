"""The device-mismatch checks, run on a CPU-only machine.

``check_like``, ``check_same_device`` and the generator check compare devices; the comparison and its
message live in functions of ``torch.device`` values (``device_mismatch``, ``devices_disagree``,
``generator_mismatch``), and ``torch.device("cuda:1")`` needs no GPU, so their logic is tested here.
The CUDA tests (``tests/test_bad_inputs_devices.py``, ``-m gpu``) add the end-to-end cases on a GPU.
"""

from __future__ import annotations

import pytest
import torch

import ebrl._checks as checks
import ebrl.losses._validate as validate
from ebrl._checks import check_generator, check_like, device_mismatch, devices_disagree, generator_mismatch
from ebrl.energy import MLPEnergy
from ebrl.losses import info_nce, nce
from ebrl.samplers import Langevin

CPU, CUDA0, CUDA1 = torch.device("cpu"), torch.device("cuda:0"), torch.device("cuda:1")


def test_device_mismatch_names_the_argument_both_devices_and_the_fix():
    assert device_mismatch("x", CPU, CPU, who="the energy") is None
    assert device_mismatch("x", CUDA1, CUDA1, who="the energy") is None
    error = device_mismatch("x", CUDA0, CPU, who="the energy")
    assert isinstance(error, ValueError)
    message = str(error)
    assert "x is on device 'cuda:0', expected 'cpu' (the device of the energy)" in message
    assert "x.to('cpu')" in message
    assert "'cuda:1'" in str(device_mismatch("obs", CUDA1, CUDA0, who="the policy"))  # another GPU is another device


def test_devices_disagree_lists_every_argument_with_its_device():
    assert devices_disagree({"e_pos": CPU, "e_neg": CPU}, what="the energies") is None
    assert devices_disagree({"e_pos": CUDA0}, what="the energies") is None
    error = devices_disagree({"e_data": CPU, "e_noise": CUDA0, "log_q_data": CPU}, what="the energies")
    assert isinstance(error, ValueError)
    assert str(error) == ("expected the energies on one device, got e_data on 'cpu', e_noise on 'cuda:0', "
                          "log_q_data on 'cpu'")


def test_generator_mismatch_compares_device_types_only():
    assert generator_mismatch(CPU, CPU) is None
    assert generator_mismatch(CUDA0, CUDA1) is None  # a CUDA generator serves every CUDA device
    error = generator_mismatch(CPU, CUDA0)
    assert isinstance(error, ValueError)
    assert "generator is on device 'cpu' but the samples are on 'cuda:0'" in str(error)
    assert "torch.Generator(device='cuda')" in str(error)


def test_the_entry_points_raise_what_the_device_functions_return(monkeypatch):
    # The public checks consult the device functions on every call: make them report a mismatch on the CPU and
    # the entry points (an energy, a loss, a sampler) raise it, naming the argument.
    def always(name, device, expected, *, who):
        return ValueError(f"{name}: pretend mismatch with {who}")

    monkeypatch.setattr(checks, "device_mismatch", always)
    with pytest.raises(ValueError, match="x: pretend mismatch"):
        MLPEnergy(2, (4,))(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="y: pretend mismatch with w"):
        check_like("y", torch.zeros(1), torch.zeros(1), who="w")

    disagree = lambda devices, *, what: ValueError(f"{sorted(devices)}")  # noqa: E731
    monkeypatch.setattr(validate, "devices_disagree", disagree)  # the losses' check_same_device calls it
    with pytest.raises(ValueError, match="e_neg"):
        info_nce(torch.zeros(2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="e_noise"):
        nce(torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(2))

    monkeypatch.setattr(checks, "generator_mismatch", lambda g, d: ValueError(f"generator {g} for {d}"))
    with pytest.raises(ValueError, match="generator cpu for cpu"):
        Langevin(n_steps=1)(lambda x: (x**2).sum(1), torch.zeros(2, 2), generator=torch.Generator())
    with pytest.raises(ValueError, match="generator cpu for cpu"):
        check_generator(torch.Generator(), CPU)


def test_matching_devices_pass_unchanged():
    x = torch.zeros(3, 2)
    assert check_like("x", x, torch.zeros(1), who="w") is x
    check_generator(torch.Generator(), CPU)
    check_generator(None, CUDA0)


def test_check_device_resolves_auto_and_refuses_what_cannot_be_used():
    from ebrl._checks import check_device
    from experiments._common import pick_device

    expected = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert check_device("device", "auto") == pick_device("auto") == expected
    assert check_device("device", torch.device("cpu")) == check_device("device", "cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="where must be 'cpu', 'cuda'"):
        check_device("where", "gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda:1', but CUDA is not available"):
            pick_device("cuda:1")
