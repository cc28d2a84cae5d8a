"""Deep belief networks: RBMs stacked greedily, layer by layer (Hinton, Osindero & Teh 2006)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ebrl._checks import check_int, check_positive, resolve_generator
from ebrl.boltzmann.base import FIT_OPTIONS
from ebrl.boltzmann.rbm import BernoulliRBM
from ebrl.energy.base import Configurable


class DBN(Configurable, nn.Module):
    """A deep belief network of binary layers ``layers[0]`` (the data) to ``layers[-1]`` (the top).

    It holds one ``BernoulliRBM`` per pair of adjacent layers. ``fit`` trains them greedily: the
    first on the data, each next one on the hidden probabilities p(h = 1 | x) of the one below.
    The generative model is the top RBM (an undirected associative memory) over the top two
    layers, with directed sigmoid connections down to the data, so ``sample`` runs Gibbs in the
    top RBM and then one downward pass, h_l → v ~ p(v | h_l) of each lower RBM in turn.

    Args:
        layers: widths from the data to the top, at least two, each >= 1.
        init_std: standard deviation of every RBM's initial weights.
        generator: draws the initial weights (a fresh OS-seeded one when ``None``).

    Attributes:
        rbms: the stacked RBMs, bottom first.
    """

    def __init__(
        self, layers: Sequence[int], *, init_std: float = 0.01, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
            raise TypeError(f"layers must be a sequence of layer widths, e.g. (784, 256, 64), got {layers!r}")
        self.layers = tuple(check_int("layers[i]", n) for n in layers)
        if len(self.layers) < 2:
            raise ValueError(f"layers must name at least two widths (data and one hidden layer), got {layers}")
        self.init_std = check_positive("init_std", init_std, allow_zero=True)
        gen = resolve_generator(generator, torch.device("cpu"))
        self.rbms = nn.ModuleList(
            BernoulliRBM(n_in, n_out, init_std=self.init_std, generator=gen)
            for n_in, n_out in itertools.pairwise(self.layers)
        )

    def get_config(self) -> dict[str, Any]:
        return {"layers": list(self.layers), "init_std": self.init_std}

    def fit(self, X: object, *, soft: bool = False, generator: torch.Generator | None = None, **options: Any) -> DBN:
        """Greedy layer-wise training; returns ``self``.

        Every RBM is trained by ``BoltzmannModel.fit`` with the same ``options``, which are that
        method's keyword arguments (``method``, ``epochs``, ``batch_size``, ``learning_rate``, ``k``,
        ``momentum``, ``weight_decay``, ``lr_schedule``, ``n_chains``, ``shuffle``, ``progress_bar``,
        ``callback``, ``on_divergence``...) and are validated there, before the first layer trains.
        ``soft`` applies to the data; the upper RBMs always train on probabilities. ``generator``
        draws every layer's randomness.

        Raises:
            TypeError: an option that ``BoltzmannModel.fit`` does not take (named), or a bad type.
            ValueError: bad data or option values (see ``BoltzmannModel.fit``).
        """
        unknown = sorted(set(options) - FIT_OPTIONS)
        if unknown:
            raise TypeError(
                f"DBN.fit got unknown option(s) {', '.join(map(repr, unknown))}; it takes X, soft, generator and "
                f"the options of BoltzmannModel.fit: {', '.join(sorted(FIT_OPTIONS))}"
            )
        x = self.rbms[0].as_data("X", X, soft=soft)
        gen = resolve_generator(generator, x.device)
        for level, rbm in enumerate(self.rbms):
            rbm.fit(x, soft=soft or level > 0, generator=gen, **options)
            with torch.no_grad():
                x = rbm.hidden_mean(x)  # (N, layers[level + 1])
        return self

    def transform(self, X: object) -> Tensor:
        """The top layer's probabilities after a deterministic upward pass, ``(N, layers[-1])``."""
        x = self.rbms[0].as_data("X", X, soft=True)
        with torch.no_grad():
            for rbm in self.rbms:
                x = rbm.hidden_mean(x)
        return x

    def sample(
        self, n: int, *, n_steps: int = 1000, means: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """``n`` samples ``(n, layers[0])``: ``n_steps`` Gibbs sweeps in the top RBM, then a downward pass.

        With ``means=True`` the last step returns p(v = 1 | h) instead of a binary draw (for display).
        """
        top = self.rbms[-1]
        gen = resolve_generator(generator, top.weight.device)
        with torch.no_grad():
            h = top.sample(n, n_steps=n_steps, generator=gen)  # (n, layers[-2])
            if len(self.rbms) == 1:
                return top.visible_mean(top.sample_hidden(h, generator=gen)) if means else h
            for level in range(len(self.rbms) - 2, -1, -1):
                rbm = self.rbms[level]
                h = rbm.visible_mean(h) if means and level == 0 else rbm.sample_visible(h, generator=gen)
        return h
