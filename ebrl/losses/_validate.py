"""Input checks shared by the losses (one device synchronisation per check: once per step)."""

from __future__ import annotations

from torch import Tensor

from ebrl._checks import check_finite, check_tensor, devices_disagree


def check_energies(name: str, e: object, *, shape: str, ndim: int) -> Tensor:
    """Require a finite floating tensor of ``ndim`` dimensions, non-empty; ``shape`` names it in errors."""
    e = check_tensor(name, e, min_dim=1)
    if e.dim() != ndim:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(e.shape)}")
    if e.numel() == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(e.shape)}")
    return check_finite(name, e)


def check_same_device(tensors: dict[str, Tensor]) -> None:
    """Require every tensor (by name) on one device; the message names them. Free: no device sync."""
    error = devices_disagree({name: t.device for name, t in tensors.items()}, what="the energies")
    if error is not None:
        raise error


def check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Require two tensors of one shape; the message names both."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}; "
            f"expected the same shape"
        )
