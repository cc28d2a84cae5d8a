"""Multi-level denoising score matching for noise-conditional energies, as a ``fit`` objective.

``MultiLevelDSM`` trains a ``NoiseConditionalEnergy`` E(x, σ) at every noise level of a schedule
(see ``ebrl.losses.multilevel_denoising_score_matching``). With labels it trains a JEM-style
class-conditional model: the data rows then carry the label in their last column
(``labelled_rows(x, y)``), the same way ``InfoNCE`` reads ``[obs, act]`` rows, so that ``fit``
shuffles images and labels together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ebrl._checks import check_finite, check_positive, check_tensor, resolve_generator
from ebrl.energy.noise_conditional import NoiseConditionalEnergy, check_sigmas
from ebrl.losses import multilevel_denoising_score_matching
from ebrl.losses.score_matching import multilevel_dsm_kernel

Metrics = dict[str, Tensor]


def labelled_rows(x: Tensor, labels: Tensor) -> Tensor:
    """Rows ``[x_b flattened, y_b]`` of shape ``(N, D + 1)`` for ``fit`` with ``MultiLevelDSM(labelled=True)``.

    Args:
        x: data ``(N, *event)``, floating point.
        labels: class indices ``(N,)``, integers >= 0 (stored exactly as floats up to 2**24).
    """
    x = check_tensor("x", x, min_dim=2)
    if not isinstance(labels, Tensor) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor of class indices, got {labels!r}")
    if tuple(labels.shape) != (x.shape[0],):
        raise ValueError(f"labels must have shape (N,) = ({x.shape[0]},) like x's rows, got {tuple(labels.shape)}")
    if bool((labels < 0).any()) or bool((labels >= 2**24).any()):
        raise ValueError("labels must be class indices in [0, 2**24)")
    return torch.cat([x.flatten(1), labels.to(device=x.device, dtype=x.dtype).unsqueeze(1)], dim=1)  # (N, D + 1)


@dataclass(frozen=True)
class MultiLevelDSM:
    """Multi-level DSM for a ``NoiseConditionalEnergy``; with ``labelled=True``, the JEM objective.

    Unlabelled (the default): each row of the batch ``(B, *event)`` draws a level from ``sigmas``
    and the loss is ``multilevel_denoising_score_matching(energy.forward, x, sigmas=sigmas)``: the
    marginal energy E(x, σ) = -logsumexp_k f_k(x, σ) learns the score of p_σ.

    Labelled (a model with ``n_classes``; rows ``[x flattened, y]`` from ``labelled_rows``): the
    loss is

        DSM of the class-conditional energy -f_y(x, σ) at the row's own label
        + ``classifier_weight`` · cross-entropy of softmax_k f_k(x̃, σ) against y on noisy x̃,

    so -f_y learns the score of p_σ(x | y) and the softmax learns p_σ(y | x̃): together they make
    f_y = log p_σ(x, y) + const(σ), so that ``energy.given(y)`` samples a class and the marginal
    -logsumexp_k f_k still samples the whole data.

    The returned metrics are ``dsm`` and, when labelled, ``cross_entropy`` and ``accuracy`` (of the
    noisy-input classifier on the batch).

    Args:
        sigmas: the noise levels, strictly decreasing, > 0 (e.g. ``geometric_sigmas``); the same
            schedule then drives ``AnnealedLangevin``. ``None``: the levels the model records
            (``energy.sigmas``, set when it was built), which then also serve ``ebrl sample``.
        labelled: read the last column of each row as a class label.
        classifier_weight: the cross-entropy weight (labelled only), >= 0.
    """

    sigmas: tuple[float, ...] | None = None
    labelled: bool = False
    classifier_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.sigmas is not None:
            object.__setattr__(self, "sigmas", check_sigmas("sigmas", self.sigmas))
        if not isinstance(self.labelled, bool):
            raise TypeError(f"labelled must be a bool, got {type(self.labelled).__name__}")
        check_positive("classifier_weight", self.classifier_weight, allow_zero=True)

    def __call__(
        self, energy: nn.Module, x: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Metrics]:
        if isinstance(energy, DistributedDataParallel):
            raise TypeError(
                "MultiLevelDSM does not support torch.distributed: it calls the model's forward_logits, which "
                "bypasses DDP's gradient hooks; train in one process"
            )
        if not isinstance(energy, NoiseConditionalEnergy):
            raise TypeError(
                f"MultiLevelDSM trains a NoiseConditionalEnergy (e.g. ConvNoiseEnergy), got {type(energy).__name__}"
            )
        sigmas = self.sigmas if self.sigmas is not None else energy.sigmas
        if sigmas is None:
            raise ValueError(
                f"MultiLevelDSM has no noise levels: give sigmas=, or build the {type(energy).__name__} with sigmas= "
                f"(the levels it is for)"
            )
        x = check_tensor("x", x, min_dim=2)
        gen = resolve_generator(generator, x.device)
        if not self.labelled:
            energy.check_input(x)  # free; the loss checks x's values
            loss = multilevel_denoising_score_matching(energy.forward, x, sigmas=sigmas, generator=gen)
            return loss, {"dsm": loss.detach()}
        if energy.n_classes is None:
            raise ValueError(
                f"MultiLevelDSM(labelled=True) needs a model with classes; {type(energy).__name__} has n_classes=None"
            )
        width = math.prod(energy.input_shape)
        if x.dim() != 2 or x.shape[1] != width + 1:
            raise ValueError(
                f"MultiLevelDSM(labelled=True) expects rows [x flattened, label] of shape (B, {width} + 1) "
                f"(see labelled_rows), got {tuple(x.shape)}"
            )
        x = x.detach()
        images = x[:, :-1].reshape(x.shape[0], *energy.input_shape)  # (B, D) -> (B, *event)
        energy.check_input(images)  # free: device and dtype
        labels = x[:, -1].round().long()  # (B,)
        known = (labels >= 0) & (labels < energy.n_classes) & (x[:, -1] == labels)  # (B,)
        if not bool(torch.isfinite(images).all() & known.all()):  # the objective's one synchronisation
            check_finite("x", images)
            raise ValueError(f"the label column of x must hold class indices in [0, {energy.n_classes})")

        def conditional(z: Tensor, sigma: Tensor) -> Tensor:
            return -energy.forward_logits(z, sigma).gather(1, labels.unsqueeze(1)).squeeze(1)  # -f_y: (B,)

        levels = torch.tensor(sigmas, device=x.device, dtype=x.dtype)  # (L,)
        dsm = multilevel_dsm_kernel(conditional, images, levels, gen)
        sigma = levels[torch.randint(len(levels), (x.shape[0],), generator=gen, device=x.device)]  # (B,)
        noise = torch.randn(images.shape, generator=gen, device=x.device, dtype=x.dtype)  # (B, *event)
        noisy = images + sigma.view(-1, *([1] * (images.dim() - 1))) * noise
        logits = energy.forward_logits(noisy, sigma)  # (B, K)
        ce = F.cross_entropy(logits, labels)
        accuracy = (logits.detach().argmax(1) == labels).to(x.dtype).mean()
        loss = dsm + self.classifier_weight * ce
        return loss, {"dsm": dsm.detach(), "cross_entropy": ce.detach(), "accuracy": accuracy}
