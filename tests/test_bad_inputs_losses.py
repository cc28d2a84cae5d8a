"""Bad input at the entry points of ``ebrl.losses``: property-based tests."""

from __future__ import annotations

from typing import Any

import numpy as np
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
    rejects_or_works,
)
from hypothesis import given
from hypothesis import strategies as st

from ebrl.losses import contrastive_divergence, denoising_score_matching, info_nce, nce, sliced_score_matching

torch.set_num_threads(1)


@SETTINGS
@given(
    data=st.data(),
    loss=st.sampled_from(["contrastive_divergence", "nce", "info_nce"]),
    slot=st.integers(0, 3),
)
def test_energy_losses_reject_bad_energies(data: st.DataObject, loss: str, slot: int) -> None:
    if loss == "contrastive_divergence":
        names, shapes, fn = ["e_pos", "e_neg"], [(), ()], contrastive_divergence
    elif loss == "nce":
        names, shapes, fn = ["e_data", "e_noise", "log_q_data", "log_q_noise"], [()] * 4, nce
    else:
        names, shapes, fn = ["e_pos", "e_neg"], [(), (3,)], info_nce
    slot %= len(names)
    args: list[Any] = [torch.zeros((2, *s)) for s in shapes]
    kind, bad = data.draw(bad_batch(shapes[slot]))
    if kind == "event" and isinstance(bad, torch.Tensor) and loss == "info_nce" and slot == 1 and bad.dim() == 2:
        return  # (B, N) with any N >= 1 is valid
    args[slot] = bad
    rejects(f"losses: {loss}", lambda: fn(*args), names[slot], *names)


@SETTINGS
@given(
    loss=st.sampled_from(["contrastive_divergence", "info_nce"]),
    bad=st.one_of(NOT_POSITIVE, NOT_NONNEGATIVE),
)
def test_energy_losses_reject_bad_hyperparameters(loss: str, bad: Any) -> None:
    if loss == "contrastive_divergence":
        if isinstance(bad, (int, float)) and not isinstance(bad, bool) and bad == 0:
            return  # l2 = 0 is valid
        rejects("losses: contrastive_divergence", lambda: contrastive_divergence(torch.zeros(2), torch.zeros(2),
                                                                                 l2=bad), "l2")
    else:
        rejects("losses: info_nce", lambda: info_nce(torch.zeros(2), torch.zeros(2, 3), temperature=bad),
                "temperature")


@SETTINGS
@given(
    data=st.data(),
    loss=st.sampled_from(["denoising_score_matching", "sliced_score_matching"]),
    field=st.sampled_from(["x", "energy", "hyper", "generator"]),
)
def test_score_matching_losses_reject_bad_arguments(data: st.DataObject, loss: str, field: str) -> None:
    energy: Any = ENERGIES["MLPEnergy"][0]
    x: Any = torch.zeros(3, 2)
    kwargs: dict[str, Any] = {"sigma": 0.1} if loss == "denoising_score_matching" else {}
    fn = denoising_score_matching if loss == "denoising_score_matching" else sliced_score_matching
    name = field
    if field == "x":
        _, x = data.draw(bad_batch((2,)))
    elif field == "energy":
        energy = data.draw(st.sampled_from([None, 3, "E", lambda x: x, lambda x: x.sum(), lambda x: x.sum(1).long()]))
    elif field == "hyper":
        if loss == "denoising_score_matching":
            name, kwargs["sigma"] = "sigma", data.draw(NOT_POSITIVE)
        else:
            name = data.draw(st.sampled_from(["n_projections", "variance_reduction"]))
            kwargs[name] = data.draw(NOT_INT if name == "n_projections" else st.sampled_from([1, "yes", None]))
    else:
        kwargs["generator"] = data.draw(st.sampled_from([0, "seed", np.random.default_rng(0)]))
    rejects(f"losses: {loss}", lambda: fn(energy, x, **kwargs), name)


@SETTINGS
@given(
    loss=st.sampled_from(["denoising_score_matching", "sliced_score_matching"]),
    energy=st.sampled_from(["linear", "constant", "quadratic"]),
    scale=st.floats(-1e3, 1e3),
)
def test_score_matching_losses_are_finite_for_degenerate_energies(loss: str, energy: str, scale: float) -> None:
    """Energies linear or constant in x (zero Hessian, or no dependence on x at all) give a finite loss."""
    fn = {
        "linear": lambda x: scale * x.sum(1),
        "constant": lambda x: torch.full(x.shape[:1], scale),
        "quadratic": lambda x: scale * x.square().sum(1),
    }[energy]
    kwargs: dict[str, Any] = {"sigma": 0.1} if loss == "denoising_score_matching" else {"n_projections": 2}
    call = denoising_score_matching if loss == "denoising_score_matching" else sliced_score_matching

    def check(out: torch.Tensor) -> None:
        assert out.shape == ()

    rejects_or_works(f"losses: {loss}", lambda: call(fn, torch.randn(3, 2, generator=_gen()), generator=_gen(),
                                                     **kwargs), "energy", check=check)
