"""Figures of energies and samples, written to files.

matplotlib is an extra (``pip install "ebrl[plot]"``): it is imported when a figure is drawn, and
its absence raises ``MissingExtraError`` saying what to install. Figures use the file-only Agg
backend, so no display is needed::

    save_energy_landscape(energy, "energy.png", low=-4.0, high=4.0)      # an energy over 2-D points
    save_samples_figure(x, "samples.png", title="64 samples")          # 2-D points or images
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ebrl._checks import MissingExtraError, check_int
from ebrl.energy.base import EnergyFn

PathLike = str | Path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or ``MissingExtraError``."""
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingExtraError('plotting needs matplotlib: pip install "ebrl[plot]"') from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: PathLike, *, dpi: int = 100) -> None:
    """Lay out ``fig``, write it to ``path`` and close it (figures are not kept alive)."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)


def image_shape(event: tuple[int, ...]) -> tuple[int, ...] | None:
    """``(H, W)`` or ``(H, W, C)`` to show one sample of shape ``event`` as an image, or ``None``.

    ``(H, W)`` and ``(C, H, W)`` with one or three channels are images; so is a flat vector
    whose length is a square larger than 2 (``(64,)`` is shown as 8 x 8).
    """
    if len(event) == 2:
        return event
    if len(event) == 3 and event[0] in (1, 3):
        return event[1:] if event[0] == 1 else (*event[1:], 3)
    size = math.prod(event)
    side = math.isqrt(size)
    if len(event) == 1 and side * side == size and size > 2:
        return (side, side)
    return None


def can_draw_samples(event: tuple[int, ...]) -> bool:
    """Whether ``save_samples_figure`` can draw samples of shape ``event``: 2-D points or images."""
    return math.prod(event) == 2 or image_shape(event) is not None


def save_samples_figure(samples: Tensor, path: PathLike, *, title: str) -> None:
    """A scatter of 2-D points, or a grid of images, of ``samples`` ``(N, *event)``.

    Raises:
        ValueError: ``samples`` are neither 2-D points nor image-like (see ``image_shape``).
    """
    x = samples.detach().cpu()
    n, event = x.shape[0], tuple(x.shape[1:])
    if not can_draw_samples(event):
        raise ValueError(f"samples of event shape {event} cannot be drawn; expected 2-D points or square images")
    plt = pyplot()
    image = image_shape(event)
    if math.prod(event) == 2:
        fig, ax = plt.subplots(figsize=(5, 5))
        pts = x.reshape(n, 2).numpy()  # (N, *event) -> (N, 2)
        ax.scatter(pts[:, 0], pts[:, 1], s=6)
        ax.set_aspect("equal")
    else:
        assert image is not None  # can_draw_samples
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(cols, rows), squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i < n:
                img = x[i].permute(1, 2, 0) if len(image) == 3 and len(event) == 3 else x[i]  # (H, W[, C])
                ax.imshow(img.reshape(image).numpy(), cmap="gray")
    fig.suptitle(title, fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_energy_landscape(
    energy: EnergyFn, path: PathLike, *, low: float, high: float, grid: int = 200, title: str | None = None
) -> None:
    """Filled contours of an energy over 2-D points on ``[low, high]²`` (low energy = probable).

    Raises:
        ValueError: ``low >= high`` or ``grid < 2``.
    """
    if not low < high:
        raise ValueError(f"low must be below high, got {low} and {high}")
    check_int("grid", grid, minimum=2)
    axis = torch.linspace(low, high, grid)
    xx, yy = torch.meshgrid(axis, axis, indexing="xy")  # (G, G) each
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)  # (G*G, 2)
    with torch.no_grad():
        e = energy(pts).reshape(grid, grid)  # (G*G,) -> (G, G)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.2))
    cs = ax.contourf(xx.numpy(), yy.numpy(), e.numpy(), levels=30, cmap="viridis_r")
    fig.colorbar(cs, ax=ax, label="E(x) (low = probable)")
    ax.set_title(title or f"Energy of {type(energy).__name__}")
    ax.set_aspect("equal")
    save_figure(fig, path)


def save_action_energy_slice(actions: Tensor, energies: Tensor, path: PathLike, *, title: str) -> None:
    """E(s, a) at one state over a grid of 1-D or 2-D actions.

    Args:
        actions: ``(G, 1)``, or ``(G*G, 2)`` from ``torch.meshgrid(..., indexing="xy")`` of a ``(G,)`` axis.
        energies: ``(G,)`` or ``(G*G,)``, the energy of each action.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.2))
    a, e = actions.detach().cpu(), energies.detach().cpu()
    if a.shape[1] == 1:
        ax.plot(a[:, 0].numpy(), e.numpy())
        ax.set_xlabel("action (scaled to [-1, 1])")
        ax.set_ylabel("E(s, a) = -Q(s, a)")
    else:
        g = math.isqrt(a.shape[0])
        grid = a.reshape(g, g, 2)  # (G*G, 2) -> (G, G, 2)
        cs = ax.contourf(grid[..., 0].numpy(), grid[..., 1].numpy(), e.reshape(g, g).numpy(), levels=30,
                         cmap="viridis_r")
        fig.colorbar(cs, ax=ax, label="E(s, a) = -Q(s, a) (low = probable)")
        ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)
