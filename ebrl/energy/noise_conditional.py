"""Noise-conditional energies E(x, σ): one model of the data smoothed at every noise level.

E(x, σ) is the energy of p_σ = p * N(0, σ²I), the data density convolved with Gaussian noise of
scale σ, so that

    -∇_x E(x, σ) = ∇_x log p_σ(x).

At a large σ, p_σ is nearly Gaussian and its modes are connected, so MCMC mixes between them; at a
small σ it is close to the data. A noise-conditional energy is trained at many σ at once by
multi-level denoising score matching (``ebrl.losses.multilevel_denoising_score_matching``, the
objective ``ebrl.training.MultiLevelDSM``) and sampled by annealed Langevin dynamics from the
largest σ to the smallest (``ebrl.samplers.AnnealedLangevin``): Song & Ermon (2019), with the
score written as the gradient of an energy (Salimans & Ho 2021), so that the model is a true
energy (its score field is conservative) and keeps the library's sign convention.

Call contract (the ``Energy`` contract with the noise level as a second argument)::

    energy(x (B, *event), sigma) -> (B,)     sigma: a float, or a tensor (B,) of levels > 0

Calling checks the inputs and the output (shape, finiteness) over the unchecked ``forward``.
``energy.at(sigma)`` fixes one level and returns an ``Energy``-compatible function
``(B, *event) -> (B,)`` for the ordinary samplers and ``ebrl.tasks`` (e.g. Tweedie denoising).

Classes (JEM, Grathwohl et al. 2020). A model with ``n_classes = K`` computes K logits f_k(x, σ),
read as a joint energy: p_σ(x, y) ∝ exp f_y(x, σ). Then

    E(x, σ)       = -logsumexp_k f_k(x, σ)          (the marginal energy: ``forward``)
    E(x, σ | y)   = -f_y(x, σ) + const(y, σ)        (class-conditional: ``given(y)``)
    p_σ(y | x)    = softmax_k f_k(x, σ)             (a classifier of noisy inputs: ``logits``)

Without classes (``n_classes=None``) there is one logit and E = -f.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ebrl._checks import (
    as_float_tensor,
    check_energy_output,
    check_finite,
    check_int,
    check_like,
    check_number,
    check_positive,
    check_tensor,
    resolve_generator,
)
from ebrl.energy.base import Configurable
from ebrl.energy.nets import _activation, _check_hidden

NoiseConditionalEnergyFn = Callable[[Tensor, Tensor], Tensor]
"""Anything that maps ``(x (B, *event), sigma (B,)) -> (B,)``: a ``NoiseConditionalEnergy``'s
``forward``, ``energy.given(y)``, or a closure."""


def check_sigmas(name: str, sigmas: object) -> tuple[float, ...]:
    """Require a non-empty sequence of finite numbers > 0, strictly decreasing; return it as floats.

    Annealing runs from the first (largest) level to the last (smallest), so the order is part of
    the schedule. ``geometric_sigmas`` builds one.
    """
    if isinstance(sigmas, Tensor):
        sigmas = sigmas.tolist()
    if isinstance(sigmas, (str, bytes)) or not isinstance(sigmas, Sequence) or len(sigmas) == 0:
        raise ValueError(
            f"{name} must be a non-empty sequence of noise levels, largest first, e.g. "
            f"geometric_sigmas(1.0, 0.01, 10); got {sigmas!r}"
        )
    values = tuple(check_positive(f"{name}[{i}]", s) for i, s in enumerate(sigmas))
    for i in range(1, len(values)):
        if not values[i] < values[i - 1]:
            raise ValueError(
                f"{name} must be strictly decreasing (largest noise level first), but {name}[{i}] = {values[i]} "
                f">= {name}[{i - 1}] = {values[i - 1]}"
            )
    return values


def geometric_sigmas(sigma_max: float, sigma_min: float, n_levels: int) -> tuple[float, ...]:
    """``n_levels`` noise levels from ``sigma_max`` down to ``sigma_min``, evenly spaced in log σ.

    Song & Ermon (2019) take σ_max about the largest distance between two training points (so the
    chains can travel between any two modes) and σ_min small enough that p_σ_min is close to the data.
    """
    sigma_max = check_positive("sigma_max", sigma_max)
    sigma_min = check_positive("sigma_min", sigma_min)
    n_levels = check_int("n_levels", n_levels, minimum=2)
    if not sigma_min < sigma_max:
        raise ValueError(f"sigma_min must be < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")
    ratio = math.log(sigma_min / sigma_max) / (n_levels - 1)
    return tuple(sigma_max * math.exp(ratio * i) for i in range(n_levels))


class NoiseConditionalEnergy(Configurable, nn.Module):
    """Base class for noise-conditional energies ``E(x (B, *event), sigma (B,)) -> (B,)``.

    Subclasses set ``input_shape`` (the event shape) and ``n_classes`` and implement
    ``forward_logits(x, sigma) -> (B, K)`` (K = ``n_classes``, or 1), unchecked. The energy is
    ``-logsumexp`` of the logits. ``__call__``, ``logits`` and the closures of ``at`` and ``given``
    are the checked entry points; ``forward`` and ``forward_logits`` are the unchecked kernels that
    samplers and objectives call inside their loops.

    Attributes:
        input_shape: the event shape of one configuration, e.g. ``(1, 8, 8)``.
        n_classes: the number of classes K, or ``None`` for an unconditional model.
        sigmas: the noise levels the model is trained and sampled at, largest first, or ``None``
            when not recorded. ``MultiLevelDSM()`` without levels trains at them, and
            ``ebrl sample`` samples a saved model through them by annealed Langevin.
    """

    input_shape: tuple[int, ...] = ()
    n_classes: int | None = None
    sigmas: tuple[float, ...] | None = None
    check_finite: bool = True

    @property
    def n_logits(self) -> int:
        return 1 if self.n_classes is None else self.n_classes

    def forward_logits(self, x: Tensor, sigma: Tensor) -> Tensor:
        """The logits f(x, σ), ``(B, *event), (B,) -> (B, K)``; unchecked."""
        raise NotImplementedError

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        """E(x, σ) = -logsumexp_k f_k(x, σ), ``(B,)``; unchecked."""
        return -torch.logsumexp(self.forward_logits(x, sigma), dim=-1)  # (B, K) -> (B,)

    def check_input(self, x: Tensor) -> None:
        """Raise unless ``x`` is a batch ``(B, *input_shape)`` on this model's device and dtype. Free: no sync."""
        check_tensor("x", x, min_dim=1)
        if tuple(x.shape[1:]) != tuple(self.input_shape):
            raise ValueError(
                f"{type(self).__name__} expects x of shape (B, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}"
            )
        ref = next(self.parameters(), None)
        if ref is None:
            ref = next(self.buffers(), None)
        if ref is not None:
            check_like("x", x, ref, who=f"{type(self).__name__}'s parameters")

    def noise_levels(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        """``sigma`` as a tensor ``(B,)`` on ``x``'s device and dtype; checks it (one sync for a tensor)."""
        if isinstance(sigma, Tensor):
            check_tensor("sigma", sigma, min_dim=0)
            if sigma.dim() == 0:
                sigma = sigma.expand(x.shape[0])
            if tuple(sigma.shape) != (x.shape[0],):
                raise ValueError(
                    f"sigma must be a number or a tensor of shape (B,) = ({x.shape[0]},) like x's batch, "
                    f"got shape {tuple(sigma.shape)}"
                )
            if not bool(((sigma > 0) & torch.isfinite(sigma)).all()):
                raise ValueError(f"sigma must hold finite noise levels > 0, got min {float(sigma.min())}")
            return sigma.to(device=x.device, dtype=x.dtype)
        return x.new_full((x.shape[0],), check_positive("sigma", sigma))

    def __call__(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        self.check_input(x)
        levels = self.noise_levels(x, sigma)
        out = super().__call__(x, levels)
        check_energy_output(out, x.shape[:1], who=type(self).__name__, input_shape=x.shape)
        if self.check_finite and not bool(torch.isfinite(out).all()):  # one synchronisation
            check_finite("x", x)  # name the input when it is the cause
            check_finite(f"{type(self).__name__} output", out)
        return out

    def logits(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        """The checked logits ``(B, K)``: with classes, ``softmax`` of them is p_σ(y | x)."""
        self.check_input(x)
        out = self.forward_logits(x, self.noise_levels(x, sigma))
        check_energy_output(out, (x.shape[0], self.n_logits), who=f"{type(self).__name__}.logits", input_shape=x.shape)
        return check_finite(f"{type(self).__name__} logits", out)

    def at(self, sigma: float) -> AtNoiseLevel:
        """E(·, σ) for one level: an ``Energy``-compatible function ``(B, *event) -> (B,)``."""
        return AtNoiseLevel(self, check_positive("sigma", sigma))

    def given(self, labels: Tensor, *, guidance: float = 1.0) -> ClassConditioned:
        """The class-conditional energy for ``labels (B,)``, a ``NoiseConditionalEnergyFn``.

        E(x, σ | y) = E(x, σ) - w · log p_σ(y | x) = -logsumexp f - w · log_softmax(f)_y, with
        guidance weight w = ``guidance``. With w = 1 this is -f_y, the JEM class-conditional energy;
        w > 1 sharpens the class (classifier guidance), w = 0 ignores it. Row b of the sampled batch
        is conditioned on ``labels[b]``.

        Raises ``ValueError`` for a model without classes, labels that are not integers of shape
        ``(B,)``, or a label outside ``[0, n_classes)``.
        """
        if self.n_classes is None:
            raise ValueError(f"{type(self).__name__} was built without classes (n_classes=None); it cannot condition")
        if not isinstance(labels, Tensor) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise TypeError(f"labels must be an integer tensor of class indices, got {labels!r}")
        if labels.dim() != 1 or labels.numel() == 0:
            raise ValueError(f"labels must have shape (B,), one class per chain, got {tuple(labels.shape)}")
        bad = (labels < 0) | (labels >= self.n_classes)
        if bool(bad.any()):
            raise ValueError(
                f"labels must be class indices in [0, {self.n_classes}), got unknown class(es) "
                f"{sorted(set(labels[bad].tolist()))}"
            )
        return ClassConditioned(self, labels, check_number("guidance", guidance))


class AtNoiseLevel:
    """``x -> E(x, σ)`` for one fixed σ, ``(B, *event) -> (B,)``: an ``EnergyFn`` for the samplers.

    Calling it checks ``x``'s shape (free) and evaluates the unchecked ``forward``; samplers check
    the output's shape and finiteness themselves.
    """

    def __init__(self, energy: NoiseConditionalEnergy, sigma: float) -> None:
        self.energy, self.sigma = energy, sigma

    def __call__(self, x: Tensor) -> Tensor:
        self.energy.check_input(x)
        return self.energy.forward(x, x.new_full((x.shape[0],), self.sigma))


class ClassConditioned:
    """``(x, σ) -> E(x, σ | y)`` for fixed labels; see ``NoiseConditionalEnergy.given``."""

    def __init__(self, energy: NoiseConditionalEnergy, labels: Tensor, guidance: float) -> None:
        self.energy, self.labels, self.guidance = energy, labels, guidance

    def __call__(self, x: Tensor, sigma: Tensor) -> Tensor:
        if x.shape[0] != self.labels.shape[0]:  # free: shapes only
            raise ValueError(
                f"x has a batch of {x.shape[0]} but {self.labels.shape[0]} labels were given; expected one label "
                f"per chain"
            )
        logits = self.energy.forward_logits(x, sigma)  # (B, K)
        lse = torch.logsumexp(logits, dim=-1)  # (B,)
        log_py = logits.gather(1, self.labels.to(x.device).unsqueeze(1)).squeeze(1) - lse  # log p(y | x): (B,)
        return -lse - self.guidance * log_py


class _SigmaEmbedding(nn.Module):
    """log σ -> a feature vector ``(B,) -> (B, E)``: Fourier features of log σ, then an MLP."""

    def __init__(self, width: int, activation: str) -> None:
        super().__init__()
        self.register_buffer("freqs", torch.arange(1, 9, dtype=torch.float32) * 0.5)  # (8,)
        self.net = nn.Sequential(nn.Linear(17, width), _activation(activation), nn.Linear(width, width))

    def forward(self, sigma: Tensor) -> Tensor:
        s = sigma.log().unsqueeze(1)  # (B, 1)
        phase = s * self.freqs  # (B, 8)
        return self.net(torch.cat([s, phase.sin(), phase.cos()], dim=1))  # (B, 17) -> (B, E)


class ConvNoiseEnergy(NoiseConditionalEnergy):
    """A convolutional noise-conditional energy over images ``(B, C, H, W), (B,) -> (B,)``.

    Architecture, for input x at noise level σ:

    - the input is scaled to unit variance, x / √(σ² + s²) with ``data_scale`` s (the spread of
      the clean data), so the network sees inputs of one scale at every level;
    - 3x3 conv blocks (stride 2 after the first two), each modulated by σ: the block's features are
      scaled and shifted per channel by a learned function of log σ (FiLM);
    - the final feature map is flattened (it keeps where each stroke is) into an MLP head with
      ``max(n_classes, 1)`` outputs h(x, σ);
    - the logits are f = h / σ, so that σ ∇E has the same scale at every level (Song & Ermon's
      s(x, σ) = s(x) / σ, for an energy).

    Args:
        in_channels: C.
        image_size: ``(H, W)``.
        channels: output channels of each conv block.
        hidden: width of the head's hidden layer.
        n_classes: K for a JEM-style class-conditional model, or ``None``.
        activation: one of ``ebrl.energy.ACTIVATIONS`` (smooth ones give smooth scores).
        data_scale: s > 0, about the standard deviation of the clean data (0.5 for pixels in [0, 1]).
        sigmas: the noise levels the model is for, largest first (see ``NoiseConditionalEnergy.sigmas``).
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: Sequence[int] = (8, 8),
        channels: Sequence[int] = (32, 64, 64),
        *,
        hidden: int = 128,
        n_classes: int | None = None,
        activation: str = "silu",
        data_scale: float = 0.5,
        sigmas: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.sigmas = None if sigmas is None else check_sigmas("sigmas", sigmas)
        self.in_channels = check_int("in_channels", in_channels)
        size = _check_hidden(image_size, "image_size")
        if len(size) != 2:
            raise ValueError(f"image_size must be (H, W), got {tuple(image_size)}")
        self.image_size = size
        self.channels = _check_hidden(channels, "channels")
        self.hidden = check_int("hidden", hidden)
        self.n_classes = None if n_classes is None else check_int("n_classes", n_classes, minimum=2)
        self.activation = activation
        self.data_scale = check_positive("data_scale", data_scale)
        self.input_shape = (self.in_channels, *size)
        self.embed = _SigmaEmbedding(self.hidden, activation)
        self.convs = nn.ModuleList()
        self.films = nn.ModuleList()
        width, (h, w) = self.in_channels, size
        for i, c in enumerate(self.channels):
            stride = 1 if i in (0, 1) else 2
            self.convs.append(nn.Conv2d(width, c, kernel_size=3, stride=stride, padding=1))
            self.films.append(nn.Linear(self.hidden, 2 * c))
            nn.init.zeros_(self.films[-1].weight)  # start as an unmodulated block
            nn.init.zeros_(self.films[-1].bias)
            h, w = (h + 2 - 3) // stride + 1, (w + 2 - 3) // stride + 1
            width = c
        self.act = _activation(activation)
        self.head = nn.Sequential(
            nn.Linear(width * h * w, self.hidden), _activation(activation), nn.Linear(self.hidden, self.n_logits)
        )

    def forward_logits(self, x: Tensor, sigma: Tensor) -> Tensor:
        emb = self.embed(sigma)  # (B, E)
        scale = (sigma.square() + self.data_scale**2).rsqrt()  # (B,)
        hid = x * scale.view(-1, 1, 1, 1)  # (B, C, H, W)
        for conv, film in zip(self.convs, self.films, strict=True):
            gamma, beta = film(emb).chunk(2, dim=1)  # (B, 2C) -> (B, C), (B, C)
            hid = conv(hid) * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]  # (B, C', H', W')
            hid = self.act(hid)
        out = self.head(hid.flatten(1))  # (B, C'H'W') -> (B, K)
        return out / sigma.unsqueeze(1)  # (B, K)

    def get_config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "image_size": list(self.image_size),
            "channels": list(self.channels),
            "hidden": self.hidden,
            "n_classes": self.n_classes,
            "activation": self.activation,
            "data_scale": self.data_scale,
            "sigmas": None if self.sigmas is None else list(self.sigmas),
        }


class MLPNoiseEnergy(NoiseConditionalEnergy):
    """A noise-conditional MLP energy over vectors ``(B, D), (B,) -> (B,)``.

    The input x / √(σ² + s²) is concatenated with an embedding of log σ and passed through an MLP
    with ``max(n_classes, 1)`` outputs h; the logits are h / σ (see ``ConvNoiseEnergy``).

    Args:
        in_features: D.
        hidden: widths of the hidden layers.
        n_classes: K for a JEM-style class-conditional model, or ``None``.
        activation: one of ``ebrl.energy.ACTIVATIONS``.
        data_scale: s > 0, about the standard deviation of the clean data.
        sigmas: the noise levels the model is for, largest first (see ``NoiseConditionalEnergy.sigmas``).
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (128, 128),
        *,
        n_classes: int | None = None,
        activation: str = "silu",
        data_scale: float = 1.0,
        sigmas: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.sigmas = None if sigmas is None else check_sigmas("sigmas", sigmas)
        self.in_features = check_int("in_features", in_features)
        self.hidden = _check_hidden(hidden)
        self.n_classes = None if n_classes is None else check_int("n_classes", n_classes, minimum=2)
        self.activation = activation
        self.data_scale = check_positive("data_scale", data_scale)
        self.input_shape = (self.in_features,)
        self.embed = _SigmaEmbedding(self.hidden[0], activation)
        layers: list[nn.Module] = []
        width = self.in_features + self.hidden[0]
        for h in self.hidden:
            layers += [nn.Linear(width, h), _activation(activation)]
            width = h
        layers.append(nn.Linear(width, self.n_logits))
        self.net = nn.Sequential(*layers)

    def forward_logits(self, x: Tensor, sigma: Tensor) -> Tensor:
        scale = (sigma.square() + self.data_scale**2).rsqrt().unsqueeze(1)  # (B, 1)
        out = self.net(torch.cat([x * scale, self.embed(sigma)], dim=1))  # (B, D + E) -> (B, K)
        return out / sigma.unsqueeze(1)

    def get_config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "hidden": list(self.hidden),
            "n_classes": self.n_classes,
            "activation": self.activation,
            "data_scale": self.data_scale,
            "sigmas": None if self.sigmas is None else list(self.sigmas),
        }


class SmoothedGaussianMixture(NoiseConditionalEnergy):
    """The exact noise-conditional energy of an isotropic Gaussian mixture (tests, demos).

    For p = Σ_k w_k N(μ_k, s_k² I), the smoothed density is p_σ = Σ_k w_k N(μ_k, (s_k² + σ²) I),
    so E(x, σ) = -log p_σ(x) is known in closed form at every level. Its logits are the joint
    log-densities f_k = log w_k + log N(x; μ_k, (s_k² + σ²) I), so ``n_classes = K``: ``given(y)`` is
    exactly component y, and ``softmax(logits)`` is the exact posterior over components.

    Args:
        means: μ_k, shape ``(K, D)``.
        stds: s_k > 0, shape ``(K,)``.
        weights: w_k > 0, shape ``(K,)``, normalised to sum to one (uniform when ``None``).
    """

    def __init__(
        self,
        means: Sequence[Any] | Tensor,
        stds: Sequence[float] | Tensor,
        weights: Sequence[float] | Tensor | None = None,
    ) -> None:
        super().__init__()
        mu = as_float_tensor("means", means)
        if mu.dim() != 2 or mu.numel() == 0:
            raise ValueError(f"means must have shape (K, D), got {tuple(mu.shape)}")
        k, d = mu.shape
        s = as_float_tensor("stds", stds)
        if tuple(s.shape) != (k,) or not bool((s > 0).all()):
            raise ValueError(f"stds must be {k} positive numbers, got {s.tolist()}")
        w = torch.full((k,), 1.0 / k) if weights is None else as_float_tensor("weights", weights)
        if tuple(w.shape) != (k,) or not bool((w > 0).all()):
            raise ValueError(f"weights must be {k} positive numbers, got {w.tolist()}")
        check_finite("means", mu)
        self.n_classes = check_int("number of components", k, minimum=2)
        self.input_shape = (d,)
        self.register_buffer("means", mu)
        self.register_buffer("stds", s)
        self.register_buffer("weights", w / w.sum())

    def forward_logits(self, x: Tensor, sigma: Tensor) -> Tensor:
        d = self.means.shape[1]
        var = self.stds.square() + sigma.square().unsqueeze(1)  # (B, K)
        sq = (x.unsqueeze(1) - self.means).square().sum(-1)  # (B, 1, D) - (K, D) -> (B, K)
        log_n = -0.5 * sq / var - 0.5 * d * (2 * math.pi * var).log()  # (B, K)
        return log_n + self.weights.log()

    def sample(self, n: int, *, sigma: float = 0.0, generator: torch.Generator | None = None) -> Tensor:
        """Exact samples of p_σ ``(n, D)`` (of p itself with ``sigma=0``)."""
        check_int("n", n)
        check_positive("sigma", sigma, allow_zero=True)
        g = resolve_generator(generator, self.means.device)
        comp = torch.multinomial(self.weights, n, replacement=True, generator=g)  # (n,)
        scale = (self.stds[comp].square() + sigma**2).sqrt().unsqueeze(1)  # (n, 1)
        z = torch.randn(n, self.means.shape[1], generator=g, device=self.means.device, dtype=self.means.dtype)
        return self.means[comp] + scale * z

    def get_config(self) -> dict[str, Any]:
        return {"means": self.means.tolist(), "stds": self.stds.tolist(), "weights": self.weights.tolist()}
