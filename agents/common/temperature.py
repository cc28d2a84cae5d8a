"""The temperature α of a Boltzmann-policy agent, fixed or learnt as SAC learns its entropy coefficient."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def parse_alpha(alpha: float | str) -> tuple[bool, float]:
    """``(learnt, initial value)`` from SAC-style ``alpha``: a float > 0, ``"auto"`` or ``"auto_<init>"``."""
    if isinstance(alpha, str):
        if alpha == "auto":
            return True, 1.0
        if alpha.startswith("auto_"):
            try:
                init = float(alpha[len("auto_") :])
            except ValueError:
                init = math.nan
            if math.isfinite(init) and init > 0:
                return True, init
        raise ValueError(
            f"alpha must be a float > 0, 'auto' or 'auto_<initial value>' (e.g. 'auto_0.1'), got {alpha!r}"
        )
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
        raise TypeError(f"alpha must be a float > 0, 'auto' or 'auto_<initial value>', got {type(alpha).__name__}")
    if not (math.isfinite(float(alpha)) and float(alpha) > 0):
        raise ValueError(f"alpha must be a finite float > 0, 'auto' or 'auto_<initial value>', got {alpha!r}")
    return False, float(alpha)


def check_target_entropy(target_entropy: float | str) -> float | str:
    """``"auto"`` or a finite float (nats)."""
    if isinstance(target_entropy, str):
        if target_entropy != "auto":
            raise ValueError(f"target_entropy must be 'auto' or a finite float (nats), got {target_entropy!r}")
        return target_entropy
    if isinstance(target_entropy, bool) or not isinstance(target_entropy, (int, float, np.floating, np.integer)):
        raise TypeError(f"target_entropy must be 'auto' or a finite float (nats), got {type(target_entropy).__name__}")
    if not math.isfinite(float(target_entropy)):
        raise ValueError(f"target_entropy must be 'auto' or a finite float (nats), got {target_entropy!r}")
    return float(target_entropy)


class LearntTemperature:
    """The temperature α of a Boltzmann-policy agent: fixed, or learnt as SAC learns its entropy coefficient.

    Mixed into an SB3 algorithm whose policy has a scalar parameter ``log_alpha``: that parameter is the one
    place α lives, so the policy samples with exactly the α that the algorithm logs, sets and saves.

    - ``model.alpha`` reads α (a float); ``model.alpha = 0.1`` fixes it, ``model.alpha = "auto"`` (or
      ``"auto_0.1"``) learns it from the current (or given) value. ``Algo.load(path, alpha=...)`` does the same
      after loading.
    - With a learnt α, each gradient step also minimises log α · (H - H̄) (the dual of the entropy constraint
      H(π(·|s)) >= H̄, as in SAC), where H is the policy's entropy estimated on the batch and H̄ is
      ``target_entropy``.
    """

    policy: Any
    learning_rate: Any
    lr_schedule: Any
    _alpha_learnt: bool
    _alpha_init: float
    target_entropy: float | str
    alpha_optimizer: torch.optim.Optimizer | None

    def _init_temperature(self, alpha: float | str, target_entropy: float | str) -> None:
        self._alpha_learnt, self._alpha_init = parse_alpha(alpha)
        self.target_entropy = check_target_entropy(target_entropy)
        self.alpha_optimizer = None

    def _auto_target_entropy(self) -> float:
        """The default target entropy H̄ of this algorithm (nats)."""
        raise NotImplementedError

    def _check_target_entropy(self) -> None:
        """Refuse a resolved ``target_entropy`` this algorithm cannot reach (none by default)."""

    def _setup_temperature(self) -> None:
        """After the policy exists: set log α and, for a learnt α, its optimiser; resolve ``"auto"``."""
        if self.target_entropy == "auto":
            self.target_entropy = self._auto_target_entropy()
        with torch.no_grad():
            self.policy.log_alpha.fill_(math.log(self._alpha_init))
        self._set_learnt(self._alpha_learnt)
        self._check_target_entropy()

    def _set_learnt(self, learnt: bool) -> None:
        self._alpha_learnt = learnt
        self.policy.log_alpha.requires_grad_(learnt)
        if learnt:
            self.alpha_optimizer = torch.optim.Adam([self.policy.log_alpha], lr=self.lr_schedule(1))
        else:
            self.alpha_optimizer = None

    @property
    def alpha(self) -> float:
        """The temperature α now (one host read)."""
        return float(self.policy.log_alpha.detach().exp())

    @alpha.setter
    def alpha(self, value: float | str) -> None:
        learnt, init = parse_alpha(value)
        if learnt and value == "auto":
            init = self.alpha  # keep learning from where it is
        self._alpha_init = init
        with torch.no_grad():
            self.policy.log_alpha.fill_(math.log(init))
        self._set_learnt(learnt)

    def _temperature_step(self, entropy: torch.Tensor) -> torch.Tensor:
        """One step of the dual on log α given the batch's entropies ``(B,)``; returns the loss ``()``."""
        assert isinstance(self.target_entropy, float), "target_entropy is resolved in _setup_temperature"
        loss = self.policy.log_alpha * (entropy.detach().mean() - self.target_entropy)
        if self.alpha_optimizer is not None:
            self.alpha_optimizer.zero_grad()
            loss.backward()
            self.alpha_optimizer.step()
        return loss.detach()

    def _temperature_save_params(self) -> list[str]:
        return ["alpha_optimizer"] if self.alpha_optimizer is not None else []

    @classmethod
    def load(
        cls,
        path,
        env=None,
        device="auto",
        custom_objects=None,
        print_system_info=False,
        force_reset=True,
        **kwargs,
    ):
        """SB3's ``load``; an ``alpha=`` override is applied to the policy (not only to an attribute)."""
        override = {name: kwargs.pop(name) for name in ("alpha", "target_entropy") if name in kwargs}
        model = super().load(  # type: ignore[misc]  # a mixin: BaseAlgorithm.load follows in the MRO
            path,
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **kwargs,
        )
        if "target_entropy" in override:
            target = check_target_entropy(override["target_entropy"])
            model.target_entropy = model._auto_target_entropy() if target == "auto" else target
        if "alpha" in override:
            model.alpha = override["alpha"]
        model._check_target_entropy()
        return model
