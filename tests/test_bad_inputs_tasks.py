"""Bad input at the entry points of ``ebrl.tasks``: property-based tests."""

from __future__ import annotations

import math
from typing import Any

import torch
from _bad_inputs import (
    ENERGIES,
    NOT_INT,
    NOT_NONNEGATIVE,
    NOT_POSITIVE,
    SETTINGS,
    _gen,
    bad_batch,
    rejects,
)
from hypothesis import given
from hypothesis import strategies as st

from ebrl.samplers import Langevin

torch.set_num_threads(1)


@SETTINGS
@given(
    data=st.data(),
    fn=st.sampled_from(["tweedie_denoise", "map_denoise", "posterior_mean_denoise", "posterior_energy",
                        "walk_jump_sample"]),
    field=st.sampled_from(["y", "sigma", "energy", "extra"]),
)
def test_denoisers_reject_bad_arguments(data: st.DataObject, fn: str, field: str) -> None:
    from ebrl import tasks

    energy: Any = ENERGIES["MLPEnergy"][0]
    y: Any = torch.zeros(2, 2)
    kwargs: dict[str, Any] = {"sigma": 0.1}
    name = field
    if field == "y":
        _, y = data.draw(bad_batch((2,)))
        name = "x0" if fn == "walk_jump_sample" else "y"
    elif field == "sigma":
        kwargs["sigma"] = data.draw(NOT_POSITIVE)
    elif field == "energy":
        energy = data.draw(st.sampled_from([None, "E", lambda x: x, lambda x: x.sum()]))
    else:
        extra = {
            "tweedie_denoise": ("sigma", NOT_POSITIVE), "map_denoise": ("n_steps", NOT_INT),
            "posterior_mean_denoise": ("n_chains", NOT_INT), "posterior_energy": ("sigma", NOT_POSITIVE),
            "walk_jump_sample": ("sampler", st.sampled_from([None, "langevin", Langevin])),
        }[fn]
        name = extra[0]
        kwargs[name] = data.draw(extra[1])
    if fn == "walk_jump_sample":
        kwargs.setdefault("sampler", Langevin(n_steps=2))
        call = lambda: tasks.walk_jump_sample(energy, y, generator=_gen(), **kwargs)  # noqa: E731
    elif fn == "posterior_energy":
        call = lambda: tasks.posterior_energy(energy, y, kwargs["sigma"])(torch.zeros(2, 2))  # noqa: E731
    else:
        if fn != "tweedie_denoise":
            kwargs.setdefault("n_steps", 2)
        if fn == "posterior_mean_denoise":
            kwargs.update(n_chains=kwargs.get("n_chains", 2), generator=_gen())
        call = lambda: getattr(tasks, fn)(energy, y, **kwargs)  # noqa: E731
    rejects(f"tasks: {fn}", call, name, "x")


@SETTINGS
@given(data=st.data(), which=st.sampled_from(["psnr", "KernelDensityEnergy", "GaussianResidualEnergy.from_data"]))
def test_task_helpers_reject_bad_arguments(data: st.DataObject, which: str) -> None:
    from ebrl import tasks

    if which == "psnr":
        field = data.draw(st.sampled_from(["x", "reference", "data_range"]))
        args: dict[str, Any] = {"x": torch.zeros(2, 4), "reference": torch.ones(2, 4), "data_range": 1.0}
        if field == "data_range":
            args[field] = data.draw(NOT_POSITIVE)
        else:
            args[field] = data.draw(bad_batch((4,)).map(lambda kv: kv[1]))
        rejects("tasks: psnr", lambda: tasks.psnr(args["x"], args["reference"], data_range=args["data_range"]),
                field, "x", "reference")
    elif which == "KernelDensityEnergy":
        field = data.draw(st.sampled_from(["centers", "bandwidth"]))
        centers: Any = [[0.0, 0.0], [1.0, 1.0]]
        bandwidth: Any = 0.5
        if field == "centers":
            kind, centers = data.draw(bad_batch((2,)))
            if kind in ("event", "not_tensor"):  # any (N, *event) is valid: draw a bad non-tensor instead
                centers = data.draw(st.sampled_from(["ab", None, [[0.0], [0.0, 1.0]], [0.0, 1.0], [[math.nan]]]))
        else:
            bandwidth = data.draw(NOT_POSITIVE)
        rejects("tasks: KernelDensityEnergy()", lambda: tasks.KernelDensityEnergy(centers, bandwidth), field)
    else:
        field = data.draw(st.sampled_from(["x", "ridge"]))
        x: Any = torch.randn(5, 2, generator=_gen())
        ridge: Any = 0.0
        if field == "x":
            x = data.draw(st.one_of(bad_batch((2,)).map(lambda kv: kv[1]), st.just(torch.zeros(1, 2))))
        else:
            ridge = data.draw(NOT_NONNEGATIVE)
        rejects("tasks: GaussianResidualEnergy.from_data",
                lambda: tasks.GaussianResidualEnergy.from_data(x, (4,), ridge=ridge), field)
