"""Training objectives: how one minibatch of data becomes a loss.

An objective is a frozen dataclass of hyperparameters (and, for PCD, the replay buffer it
advances) with one method::

    loss, metrics = objective(energy, x, generator=g)   # (), {name: ()}

``x`` is a minibatch ``(B, *event)`` on the energy's device. ``loss`` has a graph into the
energy's parameters; ``metrics`` are detached scalars for logging. Objectives evaluate the
energy through ``ebrl.energy.unchecked`` and check its output themselves: a non-finite energy
during training raises ``DivergenceError`` (the trainer adds the step), not ``ValueError``.

Every call checks its arguments, so an objective called directly (outside ``fit``) rejects bad
input by name: ``energy`` must be callable and ``x`` a floating-point tensor ``(B, *event)``
with values (both free: no device synchronisation), and a non-finite ``x`` raises
``ValueError`` naming ``x``. Checks of values (a finite ``x``, finite energies, a sampler that
did not diverge) go through ``ebrl._checks.require``: called directly, each reads the device
once; inside ``fit`` they are deferred and read with the step's loss, so a training step costs
one host synchronisation in all.

An objective that carries state across calls (``PCD``'s replay buffer) exposes it through
``state_dict()`` and ``load_state_dict(state)``: ``fit`` rolls it back with the model when it
recovers from a divergence, and ``ebrl.training.save_training_state`` stores it.

Noise distributions (``NCE``, ``InfoNCE``, ``CD(init="noise")``) and replay buffers draw from
the trainer's generator, so they must live on the energy's device (e.g.
``UniformBox(-1, 1, dim=2, device="cuda")``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ebrl._checks import (
    DivergenceError,
    check_energy_output,
    check_int,
    check_positive,
    check_tensor,
    non_finite_error,
    require,
    resolve_generator,
)
from ebrl.energy.analytic import Distribution, UniformBox
from ebrl.energy.base import unchecked
from ebrl.energy.nets import StateActionEnergy
from ebrl.losses import (
    contrastive_divergence,
    denoising_score_matching,
    info_nce,
    nce,
    sliced_score_matching,
)
from ebrl.samplers.base import Sampler
from ebrl.samplers.replay import ReplayBuffer

Metrics = dict[str, Tensor]


class Objective(Protocol):
    """``objective(energy, x (B, *event), generator=g) -> (loss (), metrics {name: ()})``.

    The loss may be ``None`` only for an objective that supplies its own gradients
    (``supplies_gradients = True``, see ``ebrl.training.fit``).
    """

    def __call__(
        self, energy: nn.Module, x: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor | None, Metrics]: ...


def _check_call(energy: object, x: object) -> Tensor:
    """Require a callable ``energy`` and ``x``, a floating-point tensor ``(B, *event)`` with values. Free: no sync.

    ``x``'s finiteness is checked later, in the synchronisation of ``_raise_if_not_finite(..., x=x)``.
    """
    if not callable(energy):
        raise TypeError(f"energy must be callable (an Energy or a function), got {type(energy).__name__}")
    return check_tensor("x", x, min_dim=2)


def _bare(energy: object) -> object:
    """The module inside a ``DistributedDataParallel`` wrapper (``fit`` adds one under torchrun), else ``energy``.

    Used to recognise the energy's type; the wrapper itself is what gets called, so DDP's hooks run.
    """
    return energy.module if isinstance(energy, DistributedDataParallel) else energy


def _raise_if_not_finite(e: Tensor, what: str, *, x: Tensor | None = None) -> None:
    """``DivergenceError`` if ``e`` is not finite; with ``x`` (the caller's batch), ``ValueError`` naming ``x``
    first if it is not finite. One check (``require``): one host synchronisation, or deferred inside ``fit``."""
    ok = torch.isfinite(e).all()
    if x is not None:
        ok = ok & torch.isfinite(x).all().to(ok.device)

    def error() -> BaseException:
        if x is not None and not bool(torch.isfinite(x).all()):
            return non_finite_error("x", x)  # bad input, not divergence
        return DivergenceError(
            f"the energy is not finite (NaN or inf) on the {what}; the model has diverged "
            f"(lower the learning rate, or add the l2 regulariser / spectral norm)"
        )

    require(ok, error)


def _energy(energy: nn.Module, x: Tensor, *, objective: str, what: str, is_input: bool = False) -> Tensor:
    """E(x) ``(B,)`` for an energy over x, shape-checked; ``DivergenceError`` if non-finite.

    With ``is_input`` (``x`` is the batch given to the objective), a non-finite ``x`` raises ``ValueError``
    naming ``x``, found in the same synchronisation.
    """
    if isinstance(_bare(energy), StateActionEnergy):
        raise TypeError(
            f"{objective} needs an energy over x, (B, *event) -> (B,); train a StateActionEnergy with InfoNCE"
        )
    e = unchecked(energy, x)(x)  # checks x's shape against the energy (free), then calls forward
    check_energy_output(e, x.shape[:1], who=type(_bare(energy)).__name__, input_shape=x.shape)
    _raise_if_not_finite(e, what, x=x if is_input else None)
    return e


def _score_fn(energy: nn.Module, x: Tensor, *, objective: str):
    """The energy as a function for the score-matching losses (NaN reaches the loss, unmasked)."""
    if isinstance(_bare(energy), StateActionEnergy):
        raise TypeError(
            f"{objective} needs an energy over x, (B, *event) -> (B,); train a StateActionEnergy with InfoNCE"
        )
    return unchecked(energy, x)


def _draw(noise: Distribution, n: int, shape: tuple[int, ...], gen: torch.Generator, *, who: str) -> Tensor:
    """``noise.sample(n)``, required to have shape ``(n, *shape)``."""
    y = noise.sample(n, generator=gen)
    if tuple(y.shape) != (n, *shape):
        raise ValueError(
            f"{who}: noise.sample({n}) returned shape {tuple(y.shape)}; expected {(n, *shape)} to match the "
            f"event shape {shape} of x (the data batch)"
        )
    return y


def _check_sampler(sampler: object) -> None:
    if not isinstance(sampler, Sampler):
        raise TypeError(f"sampler must be an ebrl Sampler (Langevin, MALA, HMC), got {type(sampler).__name__}")


def _check_noise(noise: object) -> None:
    if not isinstance(noise, Distribution):
        raise TypeError(
            f"noise must be a Distribution with sample(n, generator=) and log_prob(x) "
            f"(e.g. UniformBox, GaussianEnergy), got {type(noise).__name__}"
        )


@dataclass(frozen=True)
class CD:
    """Contrastive divergence CD-k: negatives from a short MCMC run, k = ``sampler.n_steps``.

    Chains start at the data batch (``init="data"``, Hinton's CD-k) or at fresh noise
    (``init="noise"``, short-run MCMC as in Nijkamp et al. 2019). The loss is
    ``contrastive_divergence(E(x), E(x_neg), l2=l2)`` with detached negatives.

    Args:
        sampler: the MCMC sampler, e.g. ``Langevin(step_size=1e-2, n_steps=20)``.
        l2: IGEBM's energy regulariser weight, >= 0.
        init: where chains start: ``"data"`` or ``"noise"``.
        noise: the starting distribution for ``init="noise"`` (e.g. ``UniformBox``); required
            then, and not accepted otherwise.
    """

    sampler: Sampler
    l2: float = 0.0
    init: Literal["data", "noise"] = "data"
    noise: Distribution | None = None

    def __post_init__(self) -> None:
        _check_sampler(self.sampler)
        check_positive("l2", self.l2, allow_zero=True)
        if self.init not in ("data", "noise"):
            raise ValueError(f"init must be 'data' or 'noise', got {self.init!r}")
        if self.init == "noise":
            if self.noise is None:
                raise ValueError("init='noise' needs noise=, a Distribution to start the chains from (e.g. UniformBox)")
            _check_noise(self.noise)
        elif self.noise is not None:
            raise ValueError("noise= is only used with init='noise'; chains start at the data with init='data'")

    def __call__(
        self, energy: nn.Module, x: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Metrics]:
        x = _check_call(energy, x)
        gen = resolve_generator(generator, x.device)
        e_pos = _energy(energy, x, objective="CD", what="data batch", is_input=True)  # (B,)
        if self.init == "data":
            x0 = x
        else:
            assert self.noise is not None  # required with init="noise" (__post_init__)
            x0 = _draw(self.noise, x.shape[0], tuple(x.shape[1:]), gen, who="CD").to(x.device, x.dtype)
        x_neg = self.sampler(energy, x0, generator=gen).detach()  # (B, *event)
        e_neg = _energy(energy, x_neg, objective="CD", what="negative samples")  # (B,)
        loss = contrastive_divergence(e_pos, e_neg, l2=self.l2)
        return loss, {"e_pos": e_pos.detach().mean(), "e_neg": e_neg.detach().mean()}


@dataclass(frozen=True)
class PCD:
    """Persistent contrastive divergence: negatives continue chains kept in a replay buffer.

    Each call draws B chain states from ``buffer`` (5% restarted from noise by default),
    advances them with ``sampler``, writes them back, and uses the detached results as
    negatives in ``contrastive_divergence``, as in IGEBM and JEM.

    The dataclass is frozen, like every configuration object here: its fields cannot be
    rebound. The buffer it holds is deliberately mutable shared state, so calling a ``PCD`` is
    not pure: every call advances the persistent chains. Keep your own reference to the buffer
    to inspect, save (``buffer.state_dict()``) or restore it; two ``PCD`` objects given the
    same buffer share chains.

    Args:
        sampler: the MCMC sampler that advances the chains.
        buffer: a ``ReplayBuffer`` whose ``event_shape`` is the data's and whose device is the
            energy's (one generator then serves both).
        l2: IGEBM's energy regulariser weight, >= 0.
    """

    sampler: Sampler
    buffer: ReplayBuffer
    l2: float = 0.0

    def __post_init__(self) -> None:
        _check_sampler(self.sampler)
        if not isinstance(self.buffer, ReplayBuffer):
            raise TypeError(f"buffer must be a ReplayBuffer, got {type(self.buffer).__name__}")
        check_positive("l2", self.l2, allow_zero=True)

    def __call__(
        self, energy: nn.Module, x: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Metrics]:
        x = _check_call(energy, x)
        buf = self.buffer
        if tuple(x.shape[1:]) != buf.event_shape:
            raise ValueError(
                f"PCD: x (the data batch) has shape {tuple(x.shape)} but the replay buffer holds states of "
                f"shape {buf.event_shape}; expected (B, {', '.join(map(str, buf.event_shape))})"
            )
        if buf.device.type != x.device.type:
            raise ValueError(
                f"PCD: the replay buffer is on '{buf.device}' but x (the data batch) is on '{x.device}'; "
                f"create the ReplayBuffer with device='{x.device}'"
            )
        gen = resolve_generator(generator, x.device)
        e_pos = _energy(energy, x, objective="PCD", what="data batch", is_input=True)  # (B,)
        x0, idx = buf.sample(x.shape[0], generator=gen)  # (B, *event), (B,)
        x_neg = self.sampler(energy, x0.to(x.device, x.dtype), generator=gen).detach()  # (B, *event)
        buf.update(idx, x_neg)
        e_neg = _energy(energy, x_neg, objective="PCD", what="negative samples")  # (B,)
        loss = contrastive_divergence(e_pos, e_neg, l2=self.l2)
        return loss, {"e_pos": e_pos.detach().mean(), "e_neg": e_neg.detach().mean()}

    def state_dict(self) -> dict[str, Any]:
        """The persistent chains, ``{"buffer": buffer.state_dict()}`` (a copy)."""
        return {"buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the chains from ``state_dict()`` output; ``ValueError`` if they do not fit the buffer."""
        if not isinstance(state, dict) or not isinstance(state.get("buffer"), dict):
            raise ValueError(f"PCD state must be {{'buffer': ReplayBuffer.state_dict()}}, got {type(state).__name__}")
        self.buffer.load_state_dict(state["buffer"])


@dataclass(frozen=True)
class DSM:
    """Denoising score matching at noise scale σ; see ``ebrl.losses.denoising_score_matching``.

    The learned score -∇E approximates the score of the data convolved with N(0, σ²I).

    Args:
        sigma: the noise scale σ > 0, in data units.
    """

    sigma: float = 0.1

    def __post_init__(self) -> None:
        check_positive("sigma", self.sigma)

    def __call__(
        self, energy: nn.Module, x: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Metrics]:
        fn = _score_fn(energy, _check_call(energy, x), objective="DSM")  # the loss checks x's values
        return denoising_score_matching(fn, x, sigma=self.sigma, generator=generator), {}


@dataclass(frozen=True)
class SSM:
    """Sliced score matching; see ``ebrl.losses.sliced_score_matching``.

    Args:
        n_projections: random directions per sample, >= 1.
        variance_reduction: use the exact ½‖s‖² term (SSM-VR).
    """

    n_projections: int = 1
    variance_reduction: bool = True

    def __post_init__(self) -> None:
        check_int("n_projections", self.n_projections)
        if not isinstance(self.variance_reduction, bool):
            raise TypeError(f"variance_reduction must be a bool, got {type(self.variance_reduction).__name__}")

    def __call__(
        self, energy: nn.Module, x: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Metrics]:
        fn = _score_fn(energy, _check_call(energy, x), objective="SSM")  # the loss checks x's values
        loss = sliced_score_matching(
            fn, x, n_projections=self.n_projections, variance_reduction=self.variance_reduction, generator=generator
        )
        return loss, {}


@dataclass(frozen=True)
class NCE:
    """Noise-contrastive estimation against a known noise density; see ``ebrl.losses.nce``.

    Draws ``ratio · B`` noise samples per batch. The trained energy is self-normalised:
    exp(-E) integrates to about one, so -E(x) estimates log p(x). The noise must cover the
    data (finite log-density at every data point) and should resemble it: NCE is efficient when
    the classification is neither trivial nor impossible.

    Args:
        noise: the noise ``Distribution`` (e.g. ``GaussianEnergy`` fitted to the data).
        ratio: noise samples per data sample ν, an int >= 1.
    """

    noise: Distribution
    ratio: int = 1

    def __post_init__(self) -> None:
        _check_noise(self.noise)
        check_int("ratio", self.ratio)

    def __call__(
        self, energy: nn.Module, x: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Metrics]:
        x = _check_call(energy, x)
        gen = resolve_generator(generator, x.device)
        y = _draw(self.noise, self.ratio * x.shape[0], tuple(x.shape[1:]), gen, who="NCE")  # (M, *event)
        with torch.no_grad():
            log_q_x = self.noise.log_prob(x)  # (B,)
            log_q_y = self.noise.log_prob(y)  # (M,)
        outside = log_q_x == -torch.inf  # (B,)
        require(~outside.any(), lambda: ValueError(
            f"NCE: the noise density is zero at {int(outside.sum())} of {x.shape[0]} data points; "
            f"NCE needs noise that covers the data (e.g. a wider UniformBox or a Gaussian)"
        ))
        e_x = _energy(energy, x, objective="NCE", what="data batch", is_input=True)  # (B,)
        e_y = _energy(energy, y, objective="NCE", what="noise samples")  # (M,)
        loss = nce(e_x, e_y, log_q_x, log_q_y)
        return loss, {"e_data": e_x.detach().mean(), "e_noise": e_y.detach().mean()}


@dataclass(frozen=True)
class InfoNCE:
    """InfoNCE with counter-examples drawn from noise, as in implicit behavioural cloning.

    For an energy over x, each data point x_b is the positive and ``n_negatives`` samples of
    ``noise`` are its counter-examples. For a ``StateActionEnergy`` (IBC), each data row is the
    concatenation ``[obs (O), act (A)]``: the counter-examples are actions drawn from ``noise``
    (a distribution over actions, e.g. ``UniformBox`` on the action bounds) and scored at the
    same state. With uniform noise the optimum is E(x) = -log p(x) + const (per state). Under
    ``fit`` with torch.distributed the energy arrives wrapped in ``DistributedDataParallel``:
    ``InfoNCE`` looks through the wrapper to recognise a ``StateActionEnergy`` and calls the
    wrapper, so DDP averages the gradients.

    Implicit BC's variants (Florence et al. 2021) are options:

    - ``sampler``: the counter-examples are then moved by this MCMC sampler (detached), as in
      the paper's Langevin variant (its ``bounds`` should be the noise's box).
    - ``local_fraction`` f > 0: the last round(f·N) counter-examples are instead drawn close to
      the positive, ã = clamp(a* + σ·(high - low)·ξ, box) with ξ ~ N(0, I), σ = ``local_noise``
      and the box of ``noise`` (a ``UniformBox``). Uniform counter-examples rarely land near a*,
      so they teach where the good region is but not where inside it the minimum sits; local
      ones make the minimum sharp. They are not importance-corrected, so E is no longer
      -log p up to a constant near the data: only its minimisers are kept.
    - ``grad_penalty`` λ > 0 adds λ · mean_j max(0, ‖∇ E(ã_j)‖_∞ - M)² (M = ``grad_margin``),
      the paper's gradient penalty, which keeps the landscape smooth enough for Langevin
      inference; its value is reported as the metric ``grad_penalty``.

    Args:
        noise: the ``Distribution`` of counter-examples (over x, or over actions).
        n_negatives: counter-examples per positive N >= 1.
        temperature: softmax temperature T > 0.
        sampler: an ebrl ``Sampler`` that refines the counter-examples; ``None`` keeps the noise draws.
        grad_penalty: λ >= 0; 0 turns the penalty off.
        grad_margin: M >= 0.
        local_fraction: f in [0, 1), the share of counter-examples drawn near the positive;
            f > 0 needs ``noise`` to be a ``UniformBox``.
        local_noise: σ > 0, their spread as a fraction of the box's width.
    """

    noise: Distribution
    n_negatives: int = 64
    temperature: float = 1.0
    sampler: Sampler | None = None
    grad_penalty: float = 0.0
    grad_margin: float = 1.0
    local_fraction: float = 0.0
    local_noise: float = 0.05

    def __post_init__(self) -> None:
        _check_noise(self.noise)
        check_int("n_negatives", self.n_negatives)
        check_positive("temperature", self.temperature)
        if self.sampler is not None:
            _check_sampler(self.sampler)
        check_positive("grad_penalty", self.grad_penalty, allow_zero=True)
        check_positive("grad_margin", self.grad_margin, allow_zero=True)
        fraction = check_positive("local_fraction", self.local_fraction, allow_zero=True)
        if fraction >= 1:
            raise ValueError(f"local_fraction must be in [0, 1) (some counter-examples stay noise), got {fraction}")
        check_positive("local_noise", self.local_noise)
        if self.n_local > 0 and not isinstance(self.noise, UniformBox):
            raise TypeError(
                f"local_fraction > 0 clamps counter-examples into the noise's box: noise must be a UniformBox, "
                f"got {type(self.noise).__name__}"
            )

    @property
    def n_local(self) -> int:
        """How many of the ``n_negatives`` counter-examples are drawn near the positive."""
        return round(self.local_fraction * self.n_negatives)

    def _counter_examples(
        self, energy: Any, anchor: Tensor, gen: torch.Generator, *, obs: Tensor | None = None
    ) -> Tensor:
        """The counter-examples ``(B, N, *event)`` for positives ``anchor (B, *event)`` (actions for an ``obs``)."""
        b, n, event = anchor.shape[0], self.n_negatives, tuple(anchor.shape[1:])
        neg = _draw(self.noise, b * n, event, gen, who="InfoNCE").to(anchor.device, anchor.dtype)  # (B*N, *event)
        if self.sampler is not None:
            target = energy if obs is None else energy.at(obs.detach(), n)  # over x, or over actions per state
            neg = self.sampler(target, neg, generator=gen).detach()  # (B*N, *event)
        neg = neg.reshape(b, n, *event)  # (B*N, *event) -> (B, N, *event)
        k = self.n_local
        if k > 0:
            assert isinstance(self.noise, UniformBox)  # __post_init__
            low = self.noise.low.to(anchor.device, anchor.dtype)  # (D,)
            high = self.noise.high.to(anchor.device, anchor.dtype)  # (D,)
            xi = torch.randn((b, k, *event), device=anchor.device, dtype=anchor.dtype, generator=gen)  # (B, k, D)
            near = anchor.detach().unsqueeze(1) + self.local_noise * (high - low) * xi  # (B, 1, D) + (B, k, D)
            neg = torch.cat([neg[:, : n - k], torch.clamp(near, low, high)], dim=1)  # (B, N, D)
        return neg.requires_grad_(self.grad_penalty > 0)

    def __call__(
        self, energy: nn.Module, x: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Metrics]:
        x = _check_call(energy, x)
        gen = resolve_generator(generator, x.device)
        b, n = x.shape[0], self.n_negatives
        bare = _bare(energy)
        if isinstance(bare, StateActionEnergy):
            o, a = bare.obs_dim, bare.act_dim
            if x.dim() != 2 or x.shape[1] != o + a:
                raise ValueError(
                    f"InfoNCE with a StateActionEnergy expects x of rows [obs, act], shape (B, {o} + {a}), "
                    f"got {tuple(x.shape)}"
                )
            obs, act = x[:, :o], x[:, o:]  # (B, O), (B, A)
            neg = self._counter_examples(bare, act, gen, obs=obs)  # (B, N, A)
            candidates = torch.cat([act.unsqueeze(1), neg], dim=1)  # (B, 1+N, A)
            # A bare energy: forward, unchecked (checked below). A DDP wrapper: called, so its hooks run.
            score = energy.forward if energy is bare else energy
            e = score(obs, candidates)  # (B, 1+N)
            check_energy_output(e, (b, n + 1), who="StateActionEnergy", input_shape=candidates.shape)
            _raise_if_not_finite(e, "positives and counter-examples", x=x)
        else:
            neg = self._counter_examples(energy, x, gen)  # (B, N, *event)
            e_pos = _energy(energy, x, objective="InfoNCE", what="positives", is_input=True)  # (B,)
            flat = neg.reshape(b * n, *x.shape[1:])  # (B, N, *event) -> (B*N, *event)
            e_neg = _energy(energy, flat, objective="InfoNCE", what="counter-examples").reshape(b, n)  # (B, N)
            e = torch.cat([e_pos.unsqueeze(1), e_neg], dim=1)  # (B, 1+N)
        loss = info_nce(e[:, 0], e[:, 1:], temperature=self.temperature)
        metrics = {"e_pos": e[:, 0].detach().mean(), "e_neg": e[:, 1:].detach().mean()}
        if self.grad_penalty > 0:
            (grad,) = torch.autograd.grad(e[:, 1:].sum(), neg, create_graph=True)  # (B, N, *event)
            penalty = torch.relu(grad.abs().flatten(2).amax(dim=-1) - self.grad_margin).pow(2).mean()
            loss = loss + self.grad_penalty * penalty
            metrics["grad_penalty"] = penalty.detach()
        with torch.no_grad():
            metrics["top1"] = (e.argmin(dim=1) == 0).to(x.dtype).mean()  # fraction of positives ranked first
        return loss, metrics
