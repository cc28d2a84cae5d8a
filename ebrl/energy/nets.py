"""Neural energies: MLP over vectors, convolutional over images, and state-action E(s, a)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ebrl._checks import (
    check_energy_output,
    check_finite,
    check_int,
    check_like,
    check_tensor,
    first_non_finite_error,
    require,
)
from ebrl.energy.base import Configurable, Energy

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got '{name}'")
    return ACTIVATIONS[name]()


def _check_hidden(hidden: Sequence[int], name: str = "hidden") -> tuple[int, ...]:
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
        raise TypeError(f"{name} must be a sequence of layer widths, e.g. (128, 128), got {hidden!r}")
    if len(hidden) == 0:
        raise ValueError(f"{name} must name at least one layer width, got {tuple(hidden)}")
    return tuple(check_int(f"{name}[i]", h, minimum=1) for h in hidden)


def _maybe_sn(layer: nn.Module, use: bool) -> nn.Module:
    return _spectral_norm(layer) if use else layer


def _mlp(
    in_features: int, hidden: tuple[int, ...], activation: str, spectral_norm: bool
) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [_maybe_sn(nn.Linear(width, h), spectral_norm), _activation(activation)]
        width = h
    layers.append(_maybe_sn(nn.Linear(width, 1), spectral_norm))
    return nn.Sequential(*layers)


class MLPEnergy(Energy):
    """A multilayer perceptron energy over vectors: ``(B, D) -> (B,)``.

    Smooth activations (the default SiLU) give useful gradients for Langevin sampling; ReLU's
    piecewise-constant gradient makes a poor sampler landscape.

    Args:
        in_features: the dimension D.
        hidden: widths of the hidden layers.
        activation: one of ``ACTIVATIONS``.
        spectral_norm: wrap every linear layer in spectral normalisation (smoother energies,
            as in IGEBM).
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (128, 128),
        *,
        activation: str = "silu",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features)
        self.hidden = _check_hidden(hidden)
        self.activation = activation
        self.spectral_norm = bool(spectral_norm)
        self.event_shape = (in_features,)
        self.net = _mlp(in_features, self.hidden, activation, self.spectral_norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)  # (B, 1) -> (B,)

    def get_config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "hidden": list(self.hidden),
            "activation": self.activation,
            "spectral_norm": self.spectral_norm,
        }


class ConvEnergy(Energy):
    """A convolutional energy over images: ``(B, C, H, W) -> (B,)``.

    Stride-2 convolutions halve the resolution per block; a global average pool then makes the
    network independent of the image size, and a linear head gives one energy per image.

    Args:
        in_channels: C.
        channels: output channels of each conv block (each block: 3x3 conv, stride 2 after the
            first, then the activation).
        activation: one of ``ACTIVATIONS``.
        spectral_norm: spectral normalisation on every conv and linear layer.
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: Sequence[int] = (32, 64, 64),
        *,
        activation: str = "silu",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.channels = _check_hidden(channels, "channels")
        self.activation = activation
        self.spectral_norm = bool(spectral_norm)
        layers: list[nn.Module] = []
        width = in_channels
        for i, c in enumerate(self.channels):
            conv = nn.Conv2d(width, c, kernel_size=3, stride=1 if i == 0 else 2, padding=1)
            layers += [_maybe_sn(conv, self.spectral_norm), _activation(activation)]
            width = c
        self.features = nn.Sequential(*layers)
        self.head = _maybe_sn(nn.Linear(width, 1), self.spectral_norm)

    def check_input(self, x: Tensor) -> None:
        super().check_input(x)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"ConvEnergy expects images of shape (B, {self.in_channels}, H, W) as x, "
                f"got {tuple(x.shape)}"
            )

    def forward(self, x: Tensor) -> Tensor:
        h = self.features(x)  # (B, C', H', W')
        h = h.mean(dim=(2, 3))  # (B, C')
        return self.head(h).squeeze(-1)  # (B,)

    def get_config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "channels": list(self.channels),
            "activation": self.activation,
            "spectral_norm": self.spectral_norm,
        }


class StateActionEnergy(Configurable, nn.Module):
    """A state-action energy E(s, a) = -Q(s, a), with an MLP body.

    ``forward(obs, act)`` accepts

    - ``obs (B, O)``, ``act (B, A)``    -> energies ``(B,)``;
    - ``obs (B, O)``, ``act (B, N, A)`` -> energies ``(B, N)``: N candidate actions per state.

    The first layer is split as ``W_o obs + W_a act``, which equals a layer over the
    concatenation ``[obs, act]`` but computes the state part once per state, not once per
    candidate. Use ``at(obs, n)`` to get an energy over actions alone for a sampler.

    Args:
        obs_dim: O.
        act_dim: A.
        hidden: widths of the hidden layers.
        activation: one of ``ACTIVATIONS``.
        spectral_norm: spectral normalisation on every linear layer.
    """

    check_finite: bool = True

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (256, 256),
        *,
        activation: str = "silu",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.obs_dim = check_int("obs_dim", obs_dim)
        self.act_dim = check_int("act_dim", act_dim)
        self.hidden = _check_hidden(hidden)
        self.activation = activation
        self.spectral_norm = bool(spectral_norm)
        self.obs_in = _maybe_sn(nn.Linear(obs_dim, self.hidden[0]), self.spectral_norm)
        self.act_in = _maybe_sn(nn.Linear(act_dim, self.hidden[0], bias=False), self.spectral_norm)
        self.act0 = _activation(activation)
        self.body = _mlp(self.hidden[0], self.hidden[1:], activation, self.spectral_norm)

    def check_obs(self, obs: Tensor) -> None:
        """Raise ``ValueError``/``TypeError`` unless ``obs`` is ``(B, O)`` on this energy's device and dtype. Free."""
        check_tensor("obs", obs, min_dim=2)
        if obs.dim() != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"obs must have shape (B, {self.obs_dim}), got {tuple(obs.shape)}")
        check_like("obs", obs, next(self.parameters()), who="StateActionEnergy's parameters")

    def check_inputs(self, obs: Tensor, act: Tensor) -> None:
        """Raise unless ``obs (B, O)`` and ``act (B, A)`` or ``(B, N, A)`` fit this energy. Free: no sync."""
        self.check_obs(obs)
        check_tensor("act", act, min_dim=2)
        if act.dim() not in (2, 3) or act.shape[0] != obs.shape[0] or act.shape[-1] != self.act_dim:
            raise ValueError(
                f"act must have shape (B, {self.act_dim}) or (B, N, {self.act_dim}) with "
                f"B={obs.shape[0]} as in obs, got {tuple(act.shape)}"
            )
        check_like("act", act, next(self.parameters()), who="StateActionEnergy's parameters")

    def __call__(self, obs: Tensor, act: Tensor) -> Tensor:
        self.check_inputs(obs, act)
        out = super().__call__(obs, act)
        check_energy_output(
            out, act.shape[:-1], who="StateActionEnergy", input_shape=act.shape
        )
        if self.check_finite:  # one synchronisation (or one deferred check): name the input when it is the cause
            require(torch.isfinite(out).all(),
                    lambda: first_non_finite_error([("obs", obs), ("act", act), ("StateActionEnergy output", out)]))
        return out

    def forward(self, obs: Tensor, act: Tensor) -> Tensor:
        h_obs = self.obs_in(obs)  # (B, H)
        if act.dim() == 3:
            h_obs = h_obs.unsqueeze(1)  # (B, H) -> (B, 1, H), broadcast over N candidates
        h = self.act0(h_obs + self.act_in(act))  # (B, H) or (B, N, H)
        return self.body(h).squeeze(-1)  # (B,) or (B, N)

    def at(self, obs: Tensor, n: int = 1) -> _ConditionedEnergy:
        """An energy over actions for fixed states: maps ``(B*N, A) -> (B*N,)``.

        Row ``b*N + j`` is candidate ``j`` of state ``b``: sample with
        ``x0 = a0.reshape(B * N, A)`` and reshape the result back to ``(B, N, A)``.
        """
        check_int("n", n)
        self.check_obs(obs)
        check_finite("obs", obs)  # once per conditioning, not per sampler step
        return _ConditionedEnergy(self, obs, n)

    def get_config(self) -> dict[str, Any]:
        return {
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "hidden": list(self.hidden),
            "activation": self.activation,
            "spectral_norm": self.spectral_norm,
        }


class _ConditionedEnergy:
    """``a -> E(obs, a)`` for a fixed batch of states; the input is flattened ``(B*N, A)``."""

    def __init__(self, energy: StateActionEnergy, obs: Tensor, n: int) -> None:
        self.energy, self.obs, self.n = energy, obs, n

    def __call__(self, act: Tensor) -> Tensor:
        b, a_dim = self.obs.shape[0], self.energy.act_dim
        if tuple(act.shape) != (b * self.n, a_dim):  # free: shapes only
            raise ValueError(
                f"act must have shape (B*n, A) = ({b * self.n}, {a_dim}) for {b} states and n={self.n}, "
                f"got {tuple(act.shape)}"
            )
        out = self.energy.forward(self.obs, act.reshape(b, self.n, a_dim))  # (B*N, A) -> (B, N, A) -> (B, N)
        return out.reshape(b * self.n)  # (B, N) -> (B*N,)
