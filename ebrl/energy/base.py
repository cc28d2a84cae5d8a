"""The ``Energy`` contract.

Sign convention (stated once for the whole library): lower energy means more probable,

    p(x) ∝ exp(-E(x) / T),

and for reinforcement learning E(s, a) = -Q(s, a). Nothing in ebrl flips this locally.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ebrl._checks import (
    check_energy_output,
    check_like,
    check_positive,
    check_tensor,
    first_non_finite_error,
    grad_leaf,
    require,
)

_OWN_PACKAGE = "ebrl"
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")

EnergyFn = Callable[[Tensor], Tensor]
"""Anything that maps a batch ``(B, *event)`` to energies ``(B,)``: an ``Energy`` or a closure."""


class Configurable:
    """Mixin that records every subclass so a checkpoint can rebuild it from its config.

    Subclasses implement ``get_config()`` returning the keyword arguments of their constructor
    (plain Python values only, so checkpoints load with ``torch.load(weights_only=True)``).
    """

    _registry: ClassVar[dict[str, type]] = {}
    _trusted_modules: ClassVar[set[str]] = set()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Configurable._registry[f"{cls.__module__}.{cls.__qualname__}"] = cls

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(
            f"{type(self).__name__} does not define get_config(); to load its checkpoint pass an "
            f"instance: ebrl.load_model(path, model=my_model)"
        )

    @classmethod
    def class_key(cls) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    @staticmethod
    def trust_module(name: str) -> None:
        """Let checkpoints that name a class of module ``name`` import that module.

        ebrl's own modules need no registration. For your own models, either import their module
        before loading (defining a subclass registers it) or register the module once::

            Configurable.trust_module("my_package.energies")
        """
        if not isinstance(name, str) or not _MODULE_NAME.fullmatch(name):
            raise ValueError(f"name must be a dotted module name such as 'my_package.energies', got {name!r}")
        Configurable._trusted_modules.add(name)

    @staticmethod
    def lookup(key: str) -> type:
        """Return the class registered under ``module.QualName``.

        If the class is not registered yet, its module is imported only when ebrl owns it
        (``ebrl.*``) or it was registered with ``trust_module``; any other module is never
        imported, and the lookup raises ``ValueError``.
        """
        if key in Configurable._registry:
            return Configurable._registry[key]
        module = key.rsplit(".", 1)[0] if "." in key else ""
        if not _MODULE_NAME.fullmatch(module):
            raise ValueError(f"checkpoint names class {key!r}, which is not of the form 'module.ClassName'")
        owned = module == _OWN_PACKAGE or module.startswith(_OWN_PACKAGE + ".")
        if not owned and module not in Configurable._trusted_modules:
            raise ValueError(
                f"checkpoint names class '{key}' from module '{module}', which ebrl does not own; ebrl imports "
                f"no other module on load. If the class is yours, import '{module}' before loading, or call "
                f"Configurable.trust_module('{module}')"
            )
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"checkpoint names class '{key}', whose module cannot be imported") from exc
        if key not in Configurable._registry:
            raise ValueError(f"checkpoint names class '{key}', which is not a known ebrl model")
        return Configurable._registry[key]


class Energy(Configurable, nn.Module):
    """Base class for energies ``E: (B, *event_shape) -> (B,)``.

    Subclasses implement ``forward``. Calling the module checks the result: an output that is
    not of shape ``(B,)`` or that holds NaN/inf raises ``ValueError`` naming the shapes. The
    finiteness check synchronises with the device; samplers therefore call ``forward`` directly
    and check finiteness once, after their loop (see ``ebrl.samplers``).

    Attributes:
        event_shape: shape of one configuration, or ``None`` to accept any. When set, inputs of
            another shape raise ``ValueError``.
        check_finite: whether ``__call__`` checks that energies are finite (default ``True``).
    """

    event_shape: tuple[int, ...] | None = None
    check_finite: bool = True

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` if ``x`` is not a batch this energy accepts. Free: no device sync.

        Besides the shape, ``x`` must have the device and dtype of the energy's tensors (its first
        parameter, else its first buffer), so a mismatch fails here, not inside a matmul.
        """
        check_tensor("x", x, min_dim=1)
        if self.event_shape is not None and tuple(x.shape[1:]) != tuple(self.event_shape):
            raise ValueError(
                f"{type(self).__name__} expects x of shape (B, {', '.join(map(str, self.event_shape))}), "
                f"got {tuple(x.shape)}"
            )
        ref: Tensor | None = next(self.parameters(), None)
        if ref is None:
            ref = next(self.buffers(), None)
        if ref is not None:
            check_like("x", x, ref, who=f"{type(self).__name__}'s parameters")

    def __call__(self, x: Tensor) -> Tensor:
        self.check_input(x)
        out = super().__call__(x)
        check_energy_output(out, x.shape[:1], who=type(self).__name__, input_shape=x.shape)
        if self.check_finite:  # one synchronisation (or one deferred check): name the input when it is the cause
            require(torch.isfinite(out).all(),
                    lambda: first_non_finite_error([("x", x), (f"{type(self).__name__} output", out)]))
        return out

    def score(self, x: Tensor, *, temperature: float = 1.0) -> Tensor:
        """The score ∇_x log p(x) = -∇_x E(x) / T, shape ``(B, *event_shape)``.

        Works under ``torch.no_grad()`` (it enables gradients locally) and does not build a
        graph through the result.
        """
        check_positive("temperature", temperature)
        with torch.enable_grad():
            x = grad_leaf(x)
            (grad,) = torch.autograd.grad(self(x).sum(), x)
        return -grad / temperature


def unchecked(energy: EnergyFn, x: Tensor | None = None) -> EnergyFn:
    """The fastest way to evaluate ``energy`` inside a loop: ``forward`` for an ``Energy``.

    Given a sample batch ``x``, first checks that the energy accepts its shape (free: no device
    synchronisation), so a wrong shape fails with a clear message, not deep inside torch.
    Callers remain responsible for checking output shape and finiteness (the samplers do both,
    without a host synchronisation per step).
    """
    if not isinstance(energy, Energy):
        return energy
    if x is not None:
        energy.check_input(x)
    return energy.forward
