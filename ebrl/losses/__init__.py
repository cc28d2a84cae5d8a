"""Losses for training energies, as free functions shared by every model and agent.

Sign convention: lower energy means more probable, p(x) ∝ exp(-E(x)). Every loss here is
minimised, and each pushes energy down on data.

- ``contrastive_divergence(e_pos, e_neg, l2=...)``: maximum likelihood with MCMC negatives.
- ``denoising_score_matching(energy, x, sigma=...)`` and ``sliced_score_matching(energy, x)``:
  match -∇E to the (noisy) data score; no sampling needed.
- ``nce(e_data, e_noise, log_q_data, log_q_noise)``: classify data against a known noise density.
- ``info_nce(e_pos, e_neg, temperature=...)``: rank each positive below its counter-examples.
"""

from ebrl.losses.contrastive import contrastive_divergence, info_nce, nce
from ebrl.losses.score_matching import (
    denoising_score_matching,
    multilevel_denoising_score_matching,
    sliced_score_matching,
)

__all__ = [
    "contrastive_divergence",
    "denoising_score_matching",
    "info_nce",
    "multilevel_denoising_score_matching",
    "nce",
    "sliced_score_matching",
]
