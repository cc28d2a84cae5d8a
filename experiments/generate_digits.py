"""Generating 8x8 digits: convolutional energies (PCD, DSM, noise-conditional + annealed Langevin) against a GMM.

Protocol: pixels / 16 in [0, 1]; ``train_test_split(test_size=0.2, stratify=y, random_state=0)``;
models see the training 80% only.

- ``pcd``: a ``ConvEnergy`` trained by persistent contrastive divergence with a replay buffer,
  the IGEBM recipe: 5% of chains restarted from uniform noise, the L2 energy regulariser, short
  Langevin runs with gradient clipping and small fixed noise, optional spectral norm. Samples:
  replay-buffer states after ``eval_steps`` more Langevin steps.
- ``dsm``: a ``ConvEnergy`` trained by denoising score matching at σ = ``dsm_sigma``. Samples:
  walk-jump sampling (``ebrl.tasks.walk_jump_sample``): exact Langevin on the σ-smoothed energy
  from uniform noise, then one Tweedie step.
- ``ncsn``: a ``ConvNoiseEnergy`` E(x, σ) with 10 class logits (JEM), trained by multi-level DSM on
  the training digits and their labels (``MultiLevelDSM(labelled=True)``) at ``ncsn_levels``
  geometric noise levels from ``ncsn_sigma_max`` to ``ncsn_sigma_min``, sampled by
  ``AnnealedLangevin`` from σ_max · N(0, I), then clipped to [0, 1] like the GMM's samples. Two
  unconditional rows from one model: the marginal energy -logsumexp_y f_y (``marginal``), and
  ancestral sampling (``ancestral``): y drawn from the training digits' class frequencies, then
  x | y from the class-conditional energy -f_y (both are samplers of p(x); neither sees a test
  label). The same model gives the class-conditional grid and the inpainting.
- ``gmm`` (baseline): scikit-learn's ``GaussianMixture`` fitted to the same training images,
  sampled and clipped to [0, 1].
- ``real train`` (reference): as many training digits as samples; the floor the metrics can reach.

Metrics, per method and seed, on ``n_samples`` samples (= the test-set size):

- the unbiased squared MMD to the held-out test digits, RBF kernel with the median-heuristic
  bandwidth of the test digits (lower is better);
- a logistic-regression digit classifier trained on the real training digits: its mean top-class
  probability on the samples (confidence), the number of classes among its predictions
  (coverage, of 10) and the normalised entropy of the predicted-class histogram (1 = uniform);
- novelty: the median distance from each sample to its nearest training digit (the real test
  digits' value is the reference: copies of training digits would score 0);
- class-conditional (ncsn only): the fraction of samples of requested class y that the
  classifier assigns to y, with y cycling over the 10 classes;
- inpainting (ncsn only): the left half (4 columns) of every test digit is hidden and resampled
  given the right half; PSNR on the hidden pixels of one sample and of the mean of
  ``inpaint_draws`` samples, against the Gaussian conditional mean of a full-covariance Gaussian
  fitted to the training digits.

Seeds. ``tuning_seeds`` are for choosing the ncsn sampler: ``--tune`` trains on the training
digits less a stratified validation fifth, and scores each sampler setting of ``TUNING_GRID`` by
MMD² to that validation fifth (the test digits are not looked at); it writes
``generate_digits_tuning.{csv,md}``. The held-out ``seeds`` then run with ``--from-tuning``: the
setting is fixed by a rule written before any held-out run (``choose_setting``: the lowest
validation MMD², averaged over the marginal and ancestral samplers), and the configuration
recorded with the results is the one used.

Writes ``results/generate_digits/``: ``generate_digits.{csv,md}`` (mean and 95% bootstrap CI over
seeds, and the paired ncsn - gmm differences), ``generate_digits_runs.{csv,md}`` (every seed),
``generate_digits.png`` (samples beside real digits, first seed), ``generate_digits_conditional.png``
(one row per requested class) and ``generate_digits_inpainting.png``.

Run: ``python -m experiments.generate_digits --tune``, then ``python -m experiments.generate_digits
--from-tuning`` (the committed results: both with ``--device cuda``, the held-out seeds as three
processes ``--seeds 0``, ``--seeds 1``, ``--seeds 2`` whose runs tables were joined, then
``--from-tuning --resume`` for the summary). ``--quick`` for a smoke run; ``--resume`` keeps seeds
already in ``generate_digits_runs.csv`` made with the same configuration.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ebrl._checks import seeded_init
from ebrl.energy import ConvEnergy, ConvNoiseEnergy, geometric_sigmas
from ebrl.samplers import AnnealedLangevin, Langevin, ReplayBuffer
from ebrl.tasks import inpaint, walk_jump_sample
from ebrl.training import DSM, PCD, MultiLevelDSM, fit, labelled_rows, median_bandwidth, squared_mmd
from experiments._common import (
    config_digest,
    environment_info,
    parse_args,
    pick_device,
    pyplot,
    read_rows,
    results_dir,
    save_figure,
    synchronize,
    write_table,
)

TUNING_SEEDS: tuple[int, ...] = (10,)
"""Seeds of the ``--tune`` stage, which chooses the ncsn sampler setting by ``choose_setting`` on validation data."""

HELD_OUT_SEEDS: tuple[int, ...] = (0, 1, 2)
"""The seeds of the reported table, run with ``--from-tuning`` after the setting was fixed."""


@dataclass
class Args:
    """Configuration of the generation experiment (every field is a command-line option)."""

    seeds: tuple[int, ...] = field(default=HELD_OUT_SEEDS, metadata={"help": "held-out training and sampling seeds"})
    tuning_seeds: tuple[int, ...] = field(default=TUNING_SEEDS, metadata={"help": "seeds of the --tune stage only"})
    tune: bool = field(default=False, metadata={"help": "run the ncsn sampler tuning stage on tuning_seeds"})
    from_tuning: bool = field(
        default=False,
        metadata={"help": "take the ncsn sampler setting chosen by the tuning table (see choose_setting) over the "
                          "defaults; the table must exist"},
    )
    resume: bool = field(default=False, metadata={"help": "keep seeds already run with this configuration"})
    channels: tuple[int, ...] = field(default=(16, 32, 32), metadata={"help": "ConvEnergy channels per block"})
    batch_size: int = field(default=64, metadata={"help": "training minibatch size"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    pcd_epochs: int = field(default=80, metadata={"help": "PCD training epochs"})
    pcd_steps: int = field(default=20, metadata={"help": "Langevin steps per PCD update"})
    pcd_step_size: float = field(default=1.0, metadata={"help": "Langevin step (units of E) for PCD"})
    pcd_noise: float = field(default=0.005, metadata={"help": "Langevin noise scale for PCD (IGEBM heuristic)"})
    pcd_grad_clip: float = field(default=0.03, metadata={"help": "per-pixel gradient clip in PCD's Langevin"})
    pcd_l2: float = field(default=0.1, metadata={"help": "IGEBM L2 energy regulariser weight"})
    pcd_buffer: int = field(
        default=2000, metadata={"help": "replay buffer capacity (small enough that each chain is revisited often)"}
    )
    spectral_norm: bool = field(default=True, metadata={"help": "spectral norm on the PCD energy's layers"})
    eval_steps: int = field(default=100, metadata={"help": "extra Langevin steps on buffer states before scoring"})
    dsm_sigma: float = field(default=0.2, metadata={"help": "DSM noise σ (pixels in [0, 1])"})
    dsm_epochs: int = field(default=200, metadata={"help": "DSM training epochs"})
    walk_steps: int = field(default=1000, metadata={"help": "Langevin steps of the walk (walk-jump sampling)"})
    ncsn_channels: tuple[int, ...] = field(default=(32, 64, 64), metadata={"help": "ConvNoiseEnergy conv channels"})
    ncsn_hidden: int = field(default=128, metadata={"help": "ConvNoiseEnergy head and σ-embedding width"})
    ncsn_sigma_max: float = field(default=6.0, metadata={"help": "largest noise level (> the largest digit distance)"})
    ncsn_sigma_min: float = field(default=0.02, metadata={"help": "smallest noise level"})
    ncsn_levels: int = field(default=12, metadata={"help": "noise levels, geometric"})
    ncsn_epochs: int = field(default=240, metadata={"help": "multi-level DSM epochs"})
    ncsn_batch_size: int = field(default=128, metadata={"help": "multi-level DSM minibatch size"})
    ncsn_lr: float = field(default=1e-3, metadata={"help": "Adam learning rate (multi-level DSM)"})
    ncsn_final_lr: float = field(default=1e-4, metadata={"help": "learning rate of the last tenth of the epochs"})
    ncsn_classifier_weight: float = field(default=1.0, metadata={"help": "weight of the noisy-input cross-entropy"})
    ncsn_steps_each: int = field(default=20, metadata={"help": "annealed Langevin steps per noise level"})
    ncsn_step_size: float = field(default=8e-5, metadata={"help": "annealed Langevin step at the last level"})
    ncsn_guidance: float = field(default=1.0, metadata={"help": "class guidance weight (1 = JEM's -f_y)"})
    ncsn_labels: bool = field(
        default=True,
        metadata={"help": "train the ncsn model with the digit labels (JEM); --no-ncsn-labels: an unconditional "
                          "model (one logit), which gives the unlabelled row and inpainting only"},
    )
    ncsn_only: bool = field(default=False, metadata={"help": "skip the pcd and dsm rows (for an ncsn variant)"})
    results_name: str = field(
        default="generate_digits", metadata={"help": "the results/ folder (another one for a variant)"}
    )
    inpaint_draws: int = field(default=4, metadata={"help": "inpainting samples per test digit (their mean is scored)"})
    gmm_components: int = field(default=10, metadata={"help": "components of the GaussianMixture baseline"})
    n_samples: int = field(default=360, metadata={"help": "samples per method (the test set has 360 digits)"})
    n_bootstrap: int = field(default=10000, metadata={"help": "bootstrap resamples for the confidence intervals"})
    device: str = field(
        default="cpu", metadata={"help": "device of the ncsn model: cpu, cuda or auto (the rest runs on the CPU)"}
    )
    where: str = field(default="", metadata={"help": "free text on the machine of the held-out runs, for the notes"})
    quick: bool = field(default=False, metadata={"help": "smoke run: one seed, a few epochs, short chains"})


QUICK = {
    "seeds": (0,), "tuning_seeds": (10,), "channels": (8, 16), "pcd_epochs": 2, "pcd_steps": 5, "eval_steps": 10,
    "dsm_epochs": 3, "walk_steps": 30, "pcd_buffer": 500, "ncsn_channels": (8, 16, 16), "ncsn_hidden": 32,
    "ncsn_epochs": 3, "ncsn_levels": 4, "ncsn_steps_each": 3, "n_samples": 100, "inpaint_draws": 2,
    "n_bootstrap": 200,
}

TUNING_GRID: tuple[dict[str, Any], ...] = (
    {"ncsn_steps_each": 20, "ncsn_step_size": 8e-5, "ncsn_guidance": 1.0},
    {"ncsn_steps_each": 20, "ncsn_step_size": 2e-5, "ncsn_guidance": 1.0},
    {"ncsn_steps_each": 20, "ncsn_step_size": 2e-4, "ncsn_guidance": 1.0},
    {"ncsn_steps_each": 20, "ncsn_step_size": 8e-5, "ncsn_guidance": 2.0},
)
"""The ncsn sampler settings compared by ``--tune`` (the model is trained once per tuning seed)."""

METRICS = ("mmd2", "confidence", "classes_covered", "class_entropy", "nn_distance")
NCSN_MARGINAL = "ncsn marginal + annealed Langevin (ebrl ConvNoiseEnergy)"
NCSN_ANCESTRAL = "ncsn ancestral y ~ p(y), x | y (ebrl ConvNoiseEnergy)"
NCSN_UNLABELLED = "ncsn without labels + annealed Langevin (ebrl ConvNoiseEnergy)"
GMM = "gmm (sklearn baseline)"


def load_split() -> dict[str, np.ndarray]:
    """The protocol's split of digits in [0, 1]: images ``(N, 1, 8, 8)`` and labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return {"x_train": x_tr.reshape(-1, 1, 8, 8), "x_test": x_te.reshape(-1, 1, 8, 8), "y_train": y_tr, "y_test": y_te}


def tuning_split(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The training digits split again (a stratified fifth held out for validation): the tuning stage's data."""
    from sklearn.model_selection import train_test_split

    x_tr, x_val, y_tr, y_val = train_test_split(
        data["x_train"], data["y_train"], test_size=0.2, stratify=data["y_train"], random_state=0
    )
    return {"x_train": x_tr, "x_test": x_val, "y_train": y_tr, "y_test": y_val}


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux ``/proc/self/statm``), or NaN elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return float("nan")


def train_pcd(x: Tensor, seed: int, args: Args) -> tuple[Tensor, dict[str, Any]]:
    """Train a ConvEnergy by PCD (IGEBM recipe) and return ``n_samples`` samples ``(n, 1, 8, 8)``."""
    g = torch.Generator().manual_seed(seed)
    with seeded_init(g):
        energy = ConvEnergy(1, args.channels, spectral_norm=args.spectral_norm)
    buffer = ReplayBuffer(args.pcd_buffer, (1, 8, 8), low=0.0, high=1.0, reinit_prob=0.05, generator=g)
    sampler = Langevin(
        step_size=args.pcd_step_size, n_steps=args.pcd_steps, noise_scale=args.pcd_noise,
        grad_clip=args.pcd_grad_clip, bounds=(0.0, 1.0),
    )
    optimizer = torch.optim.Adam(energy.parameters(), lr=args.lr, betas=(0.0, 0.999))  # IGEBM's betas
    start = time.perf_counter()
    history = fit(
        energy, x, PCD(sampler, buffer, l2=args.pcd_l2), epochs=args.pcd_epochs, batch_size=args.batch_size,
        optimizer=optimizer, generator=g,
    )
    train_s = time.perf_counter() - start
    energy.eval()
    idx = torch.randperm(args.pcd_buffer, generator=g)[: args.n_samples]
    final = replace(sampler, n_steps=args.eval_steps)
    samples = final(energy, buffer.buffer[idx], generator=g).detach()
    gap = np.mean(history.metrics["e_neg"][-20:]) - np.mean(history.metrics["e_pos"][-20:])
    return samples, {"train_s": train_s, "final_energy_gap": float(gap)}


def train_dsm(x: Tensor, seed: int, args: Args) -> tuple[Tensor, dict[str, Any]]:
    """Train a ConvEnergy by DSM(σ) and return walk-jump samples ``(n, 1, 8, 8)``."""
    g = torch.Generator().manual_seed(seed)
    with seeded_init(g):
        energy = ConvEnergy(1, args.channels)
    start = time.perf_counter()
    fit(energy, x, DSM(sigma=args.dsm_sigma), epochs=args.dsm_epochs, batch_size=args.batch_size, lr=args.lr,
        generator=g)
    train_s = time.perf_counter() - start
    energy.eval()
    sigma = args.dsm_sigma
    walk = Langevin(step_size=0.05 * sigma**2, n_steps=args.walk_steps)  # exact Langevin on p_σ
    x0 = torch.rand(args.n_samples, 1, 8, 8, generator=g)
    samples = walk_jump_sample(energy, x0, sigma=sigma, sampler=walk, generator=g).clamp(0, 1).detach()
    return samples, {"train_s": train_s}


def ncsn_sigmas(args: Args) -> tuple[float, ...]:
    return geometric_sigmas(args.ncsn_sigma_max, args.ncsn_sigma_min, args.ncsn_levels)


def ncsn_sampler(args: Args) -> AnnealedLangevin:
    return AnnealedLangevin(ncsn_sigmas(args), n_steps_each=args.ncsn_steps_each, step_size=args.ncsn_step_size)


def train_ncsn(x: Tensor, y: Tensor, seed: int, args: Args) -> tuple[ConvNoiseEnergy, dict[str, Any]]:
    """Train a ConvNoiseEnergy by multi-level DSM (labelled: JEM, class-conditional); memory is read every tenth of
    training."""
    device = pick_device(args.device)
    g = torch.Generator(device).manual_seed(seed)
    labels = args.ncsn_labels
    with seeded_init(g):
        model = ConvNoiseEnergy(
            1, (8, 8), args.ncsn_channels, hidden=args.ncsn_hidden, n_classes=10 if labels else None,
            sigmas=ncsn_sigmas(args),
        ).to(device)
    objective = MultiLevelDSM(labelled=labels, classifier_weight=args.ncsn_classifier_weight)  # the model's levels
    rows = (labelled_rows(x, y) if labels else x).to(device)  # (N, 64 + 1) or (N, 1, 8, 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.ncsn_lr)
    chunks = np.array_split(np.arange(args.ncsn_epochs), min(10, args.ncsn_epochs))
    memory, dsm, accuracy = [], [], []
    start, cpu_start = time.perf_counter(), time.process_time()
    for i, chunk in enumerate(chunks):
        if i == len(chunks) - 1:
            for group in optimizer.param_groups:
                group["lr"] = args.ncsn_final_lr
        history = fit(model, rows, objective, epochs=len(chunk), batch_size=args.ncsn_batch_size, optimizer=optimizer,
                      generator=g)
        memory.append(rss_mb())
        dsm, accuracy = history.metrics["dsm"], history.metrics.get("accuracy", [float("nan")])
    synchronize(device)
    train_s, train_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    model.eval()
    return model, {
        "train_s": train_s, "train_cpu_s": train_cpu_s, "final_dsm": float(np.mean(dsm[-20:])),
        "noisy_accuracy": float(np.mean(accuracy[-20:])), "rss_first_mb": memory[0], "rss_last_mb": memory[-1],
        "rss_max_mb": max(memory),
    }


def ncsn_samples(
    model: ConvNoiseEnergy, args: Args, g: torch.Generator, *, labels: Tensor | None = None
) -> tuple[np.ndarray, float]:
    """Annealed Langevin samples ``(n, 1, 8, 8)`` in [0, 1] (of class ``labels`` when given) and the seconds taken."""
    sampler = ncsn_sampler(args)
    n = args.n_samples if labels is None else len(labels)
    x0 = sampler.sigmas[0] * torch.randn(n, 1, 8, 8, generator=g, device=g.device)
    energy = model if labels is None else model.given(labels.to(g.device), guidance=args.ncsn_guidance)
    start = time.perf_counter()
    out = sampler(energy, x0, generator=g).clamp(0, 1).detach().cpu().numpy()
    return out, time.perf_counter() - start


def gmm_samples(x_train: np.ndarray, seed: int, args: Args) -> np.ndarray:
    """Samples of a full-covariance GaussianMixture fitted to the training images, clipped to [0, 1]."""
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(args.gmm_components, covariance_type="full", random_state=seed).fit(x_train.reshape(-1, 64))
    samples = gmm.sample(args.n_samples)[0]  # (n, 64), grouped by component
    samples = samples[np.random.default_rng(seed).permutation(len(samples))]  # shuffled, for the picture
    return np.clip(samples, 0, 1).reshape(-1, 1, 8, 8).astype(np.float32)


def nn_distance(samples: np.ndarray, x_train: np.ndarray) -> float:
    """The median over samples of the Euclidean distance to the nearest training digit."""
    d = torch.cdist(torch.as_tensor(samples).reshape(len(samples), 64), torch.as_tensor(x_train).reshape(-1, 64))
    return float(d.min(1).values.median())


def scores(
    samples: np.ndarray, x_test: np.ndarray, x_train: np.ndarray, bandwidth: float, clf: Any
) -> dict[str, float]:
    """MMD² to the test digits, the classifier's confidence and class coverage, and the novelty distance."""
    mmd = float(squared_mmd(torch.as_tensor(samples), torch.as_tensor(x_test), bandwidth=bandwidth))
    proba = clf.predict_proba(samples.reshape(len(samples), 64))  # (n, 10)
    counts = np.bincount(proba.argmax(1), minlength=10)
    p = counts / counts.sum()
    entropy = float(-(p[p > 0] * np.log(p[p > 0])).sum() / np.log(10))
    return {"mmd2": mmd, "confidence": float(proba.max(1).mean()), "classes_covered": int((counts > 0).sum()),
            "class_entropy": entropy, "nn_distance": nn_distance(samples, x_train)}


def left_half_mask() -> Tensor:
    """True on the 4 left columns of an 8x8 digit: the pixels to inpaint, ``(1, 8, 8)``."""
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[..., :4] = True
    return mask


def gaussian_conditional(x_train: np.ndarray, images: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """E[hidden | visible] under a full-covariance Gaussian fitted to the training digits, clipped to [0, 1]."""
    flat = x_train.reshape(len(x_train), -1).astype(np.float64)
    mu, cov = flat.mean(0), np.cov(flat, rowvar=False) + 1e-3 * np.eye(flat.shape[1])  # ridge: constant pixels
    h, v = mask.reshape(-1), ~mask.reshape(-1)
    obs = images.reshape(len(images), -1).astype(np.float64)
    gain = np.linalg.solve(cov[np.ix_(v, v)], cov[np.ix_(v, h)])  # Σ_vv⁻¹ Σ_vh: (V, H)
    out = obs.copy()
    out[:, h] = mu[h] + (obs[:, v] - mu[v]) @ gain
    return np.clip(out, 0, 1).reshape(images.shape).astype(np.float32)


def psnr_hidden(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (peak 1) over the hidden pixels of every image."""
    m = np.broadcast_to(mask, truth.shape)
    mse = float(np.mean((estimate[m] - truth[m]) ** 2))
    return 10 * np.log10(1.0 / mse)


def inpaint_digits(model: ConvNoiseEnergy, x_test: np.ndarray, args: Args, g: torch.Generator) -> np.ndarray:
    """``inpaint_draws`` inpaintings of every test digit's left half: ``(draws, n, 1, 8, 8)`` in [0, 1]."""
    images = torch.as_tensor(x_test).repeat(args.inpaint_draws, 1, 1, 1).to(g.device)  # (draws * n, 1, 8, 8)
    mask = left_half_mask().to(g.device)
    out = inpaint(model, images, mask, sampler=ncsn_sampler(args), generator=g).clamp(0, 1)
    return out.detach().cpu().numpy().reshape(args.inpaint_draws, *x_test.shape)


def bootstrap_ci(values: list[float], n_boot: int, seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile 95% bootstrap interval of the mean (resampling seeds with replacement)."""
    v = np.asarray(values, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(v), size=(n_boot, len(v)))
    means = v[idx].mean(1)
    return float(v.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def run_seed(seed: int, data: dict[str, np.ndarray], clf: Any, bandwidth: float, args: Args) -> tuple[list, dict]:
    """Every method on one held-out seed: the rows, and the arrays for the figures."""
    x_train, x_test = data["x_train"], data["x_test"]
    rng = np.random.default_rng(seed)
    x, y = torch.as_tensor(x_train), torch.as_tensor(data["y_train"])
    methods: dict[str, tuple[np.ndarray, dict[str, Any]]] = {
        "real test digits (novelty reference)": (x_test, {}),
        "real train digits (reference)": (x_train[rng.choice(len(x_train), args.n_samples, replace=False)], {}),
        GMM: (gmm_samples(x_train, seed, args), {}),
    }
    if not args.ncsn_only:
        pcd, pcd_info = train_pcd(x, seed, args)
        dsm, dsm_info = train_dsm(x, seed, args)
        methods["pcd (ebrl ConvEnergy)"] = (pcd.numpy(), pcd_info)
        methods["dsm + walk-jump (ebrl ConvEnergy)"] = (dsm.numpy(), dsm_info)
    model, ncsn_info = train_ncsn(x, y, seed, args)
    g = torch.Generator(pick_device(args.device)).manual_seed(seed + 1000)
    marginal, marginal_s = ncsn_samples(model, args, g)
    conditional = None
    if args.ncsn_labels:
        prior = torch.as_tensor(np.bincount(data["y_train"], minlength=10), dtype=torch.float32, device=g.device)
        ancestral_labels = torch.multinomial(prior, args.n_samples, replacement=True, generator=g)  # y ~ p(y)
        ancestral, ancestral_s = ncsn_samples(model, args, g, labels=ancestral_labels)
        requested = torch.arange(args.n_samples) % 10
        conditional, _ = ncsn_samples(model, args, g, labels=requested)
        agreement = float((clf.predict(conditional.reshape(len(conditional), 64)) == requested.numpy()).mean())
        ncsn_info = {**ncsn_info, "class_agreement": agreement}
    mask = left_half_mask().numpy()
    inpainted = inpaint_digits(model, x_test, args, g)
    baseline = gaussian_conditional(x_train, x_test, mask)
    ncsn_extra = {
        **ncsn_info,
        "inpaint_psnr_sample": psnr_hidden(inpainted[0], x_test, mask),
        "inpaint_psnr_mean": psnr_hidden(inpainted.mean(0), x_test, mask),
        "inpaint_psnr_gaussian": psnr_hidden(baseline, x_test, mask),
    }
    if args.ncsn_labels:
        methods[NCSN_MARGINAL] = (marginal, {**ncsn_extra, "sample_s": marginal_s})
        methods[NCSN_ANCESTRAL] = (ancestral, {**ncsn_extra, "sample_s": ancestral_s})
    else:
        methods[NCSN_UNLABELLED] = (marginal, {**ncsn_extra, "sample_s": marginal_s})
    rows = []
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    for name, (samples, info) in methods.items():
        where = {"device": str(pick_device(args.device)) if name.startswith("ncsn") else "cpu", "load_1min": load}
        row = {"seed": seed, "method": name, **scores(samples, x_test, x_train, bandwidth, clf), **info, **where}
        if name.startswith("real test"):
            row["mmd2"] = ""  # the test digits against themselves: not a sample-quality figure
        rows.append(row)
    figures = {
        "panels": {"real test digits": x_test, **{k.split(" (")[0]: v[0] for k, v in methods.items()
                                                   if not k.startswith("real")}},
        "conditional": conditional, "inpainted": inpainted, "baseline": baseline,
    }
    return rows, figures


def plot(panels: dict[str, np.ndarray], path: str) -> None:
    """One 10x10 grid of images per panel, side by side."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.7))
    for ax, (name, images) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        ax.imshow(grid(images[:100], 10), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(name.replace(" + ", "\n+ ").replace(" y ~", "\ny ~"), fontsize=9)
        ax.axis("off")
    save_figure(fig, path)


def grid(images: np.ndarray, cols: int) -> np.ndarray:
    """Tile ``(n, 1, 8, 8)`` images into rows of ``cols``, with a 1-pixel border."""
    rows = len(images) // cols
    tiles = np.pad(images[: rows * cols].reshape(rows, cols, 8, 8), ((0, 0), (0, 0), (1, 1), (1, 1)))
    return tiles.transpose(0, 2, 1, 3).reshape(rows * 10, cols * 10)  # (rows * 10, cols * 10)


def plot_conditional(conditional: np.ndarray, path: str) -> None:
    """Row y holds samples of requested class y (the samples were drawn with labels cycling 0..9)."""
    plt = pyplot()
    by_class = conditional[: (len(conditional) // 10) * 10].reshape(-1, 10, 1, 8, 8).transpose(1, 0, 2, 3, 4)
    images = by_class[:, :10].reshape(-1, 1, 8, 8)  # (10 classes * 10, 1, 8, 8)
    fig, ax = plt.subplots(figsize=(4, 4.3))
    ax.imshow(grid(images, by_class[:, :10].shape[1]), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title("ncsn: class y = row (0 at the top)", fontsize=9)
    ax.axis("off")
    save_figure(fig, path)


def plot_inpainting(x_test: np.ndarray, inpainted: np.ndarray, baseline: np.ndarray, path: str) -> None:
    """Rows: truth, the visible right half, the Gaussian conditional, ncsn samples and their mean (12 digits)."""
    plt = pyplot()
    mask = left_half_mask().numpy()
    hidden = np.where(mask, 0.5, x_test)
    rows = {"truth": x_test, "visible half": hidden, "gaussian conditional": baseline,
            **{f"ncsn draw {i + 1}": inpainted[i] for i in range(min(2, len(inpainted)))},
            f"ncsn mean of {len(inpainted)}": inpainted.mean(0)}
    fig, axes = plt.subplots(len(rows), 1, figsize=(6, 0.75 * len(rows) + 0.3))
    for ax, (name, images) in zip(axes, rows.items(), strict=True):
        ax.imshow(grid(images[:12], 12), cmap="gray_r", vmin=0, vmax=1)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, path)


def write_runs(out_dir: Path, rows: list[dict[str, Any]], args: Args) -> None:
    """The table of every seed's rows (each row names the device its model ran on and the machine's load then)."""
    notes = ("Rows kept by --resume may come from another invocation or machine: see each row's device and "
             "load_1min; the environment below is that of the invocation that wrote this table.",)
    write_table(out_dir, "generate_digits_runs", rows, title="Generating digits: every seed", config=args,
                info=environment_info(pick_device(args.device), packages=("scikit-learn",)), notes=notes)


def digest(args: Args) -> str:
    other = ("seeds", "tuning_seeds", "tune", "resume", "n_bootstrap", "device", "where", "ncsn_only", "results_name")
    # ncsn_labels enters only when off, so that runs recorded before the option existed keep their digest
    return config_digest(args, exclude=other + (("ncsn_labels",) if args.ncsn_labels else ()))


def tune(args: Args, data: dict[str, np.ndarray], clf: Any, out_dir: Path) -> list[dict[str, Any]]:
    """The tuning stage: one ncsn model per tuning seed, every sampler setting of TUNING_GRID, scored on validation."""
    split = tuning_split(data)
    bandwidth = median_bandwidth(torch.as_tensor(split["x_test"]))
    rows = []
    for seed in args.tuning_seeds:
        model, info = train_ncsn(torch.as_tensor(split["x_train"]), torch.as_tensor(split["y_train"]), seed, args)
        for setting in TUNING_GRID:
            trial = replace(args, **setting)
            g = torch.Generator(pick_device(args.device)).manual_seed(seed + 1000)
            samples, seconds = ncsn_samples(model, trial, g)
            prior = torch.as_tensor(np.bincount(split["y_train"], minlength=10), dtype=torch.float32, device=g.device)
            ancestral, _ = ncsn_samples(
                model, trial, g, labels=torch.multinomial(prior, trial.n_samples, replacement=True, generator=g)
            )
            requested = torch.arange(trial.n_samples) % 10
            conditional, _ = ncsn_samples(model, trial, g, labels=requested)
            agreement = float((clf.predict(conditional.reshape(len(conditional), 64)) == requested.numpy()).mean())
            ancestral_mmd = float(squared_mmd(torch.as_tensor(ancestral), torch.as_tensor(split["x_test"]),
                                              bandwidth=bandwidth))
            rows.append({"seed": seed, **setting, **scores(samples, split["x_test"], split["x_train"], bandwidth, clf),
                         "ancestral_mmd2": ancestral_mmd, "class_agreement": agreement, "sample_s": seconds,
                         "train_s": info["train_s"], "train_cpu_s": info["train_cpu_s"], "device": str(g.device),
                         "load_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")})
            print(rows[-1], flush=True)
    notes = (f"Tuning seeds {list(args.tuning_seeds)}: ncsn trained on {len(split['x_train'])} training digits, scored "
             f"against the {len(split['x_test'])} held-out validation digits (a stratified fifth of the training "
             "digits); the test digits are not used. Each row is one sampler setting of TUNING_GRID; other fields "
             "as in the configuration below.",)
    write_table(out_dir, "generate_digits_tuning", rows, title="Generating digits: ncsn sampler tuning", config=args,
                info=environment_info(pick_device(args.device), packages=("scikit-learn",)), notes=notes)
    return rows


def choose_setting(out_dir: Path, args: Args) -> dict[str, Any]:
    """The rule that fixes the reported ncsn sampler from the tuning table, before any held-out run: the
    TUNING_GRID setting with the lowest validation MMD², averaged over the marginal and the ancestral sampler and
    over the tuning seeds."""
    path = out_dir / "generate_digits_tuning.csv"
    names = sorted({k for setting in TUNING_GRID for k in setting})
    rows = read_rows(path, keep=lambda r: int(r["seed"]) in args.tuning_seeds, real=("mmd2", "ancestral_mmd2"))
    if not rows:
        raise ValueError(f"--from-tuning needs {path} with rows of the tuning seeds {list(args.tuning_seeds)} (--tune)")

    def score(setting: dict[str, Any]) -> float:
        match = [r for r in rows if all(float(r[k]) == float(v) for k, v in setting.items())]
        if len(match) != len(args.tuning_seeds):
            raise ValueError(f"{path} lacks the setting {setting} for some tuning seed")
        return float(np.mean([(r["mmd2"] + r["ancestral_mmd2"]) / 2 for r in match]))

    best = min(TUNING_GRID, key=score)
    return {k: best[k] for k in names}


def summarise(rows: list[dict[str, Any]], args: Args) -> list[dict[str, Any]]:
    """Mean and 95% bootstrap CI per method and metric, and the paired ncsn - gmm differences per seed."""
    summary = []
    keys = ("mmd2", "confidence", "classes_covered", "class_entropy", "nn_distance", "class_agreement",
            "inpaint_psnr_sample", "inpaint_psnr_mean", "inpaint_psnr_gaussian", "train_s", "sample_s", "rss_first_mb",
            "rss_last_mb")
    for name in dict.fromkeys(r["method"] for r in rows):
        sub = [r for r in rows if r["method"] == name]
        entry: dict[str, Any] = {"method": name, "seeds": len(sub)}
        for key in keys:
            vals = [float(r[key]) for r in sub if r.get(key, "") != ""]
            entry[key] = ""
            if vals:
                mean, lo, hi = bootstrap_ci(vals, args.n_bootstrap)
                entry[key] = f"{mean:.4g} [{lo:.4g}, {hi:.4g}]"
        summary.append(entry)
    for name in (NCSN_MARGINAL, NCSN_ANCESTRAL, NCSN_UNLABELLED):
        ours, theirs = ({r["seed"] for r in rows if r["method"] == m} for m in (name, GMM))
        seeds = sorted(ours & theirs)
        if not seeds:
            continue
        entry = {"method": f"paired difference: {name.split(' (')[0]} - gmm", "seeds": len(seeds)}
        for key in METRICS:
            by = {(r["method"], r["seed"]): float(r[key]) for r in rows if r["method"] in (name, GMM)}
            mean, lo, hi = bootstrap_ci([by[(name, s)] - by[(GMM, s)] for s in seeds], args.n_bootstrap)
            entry[key] = f"{mean:.4g} [{lo:.4g}, {hi:.4g}]" + (" (tie)" if lo <= 0 <= hi else "")
        summary.append(entry)
    return summary


def main(args: Args) -> list[dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    if args.quick:
        args = replace(args, **QUICK)
    out_dir = results_dir(args.results_name)
    data = load_split()
    x_train, x_test = data["x_train"], data["x_test"]
    with threadpool_limits(limits=1):
        clf = LogisticRegression(max_iter=5000).fit(x_train.reshape(-1, 64), data["y_train"])
        test_acc = float(clf.score(x_test.reshape(-1, 64), data["y_test"]))
        if args.tune:
            return tune(args, data, clf, out_dir)
        if args.from_tuning:
            chosen = choose_setting(out_dir, args)
            args = replace(args, **chosen, from_tuning=False)
            print("ncsn sampler from the tuning table:", chosen, flush=True)
        bandwidth = median_bandwidth(torch.as_tensor(x_test))
        key = digest(args)
        runs_csv = out_dir / "generate_digits_runs.csv"
        rows = read_rows(runs_csv, keep=lambda r: r.get("config") == key and int(r["seed"]) in args.seeds,
                         integer=("seed", "classes_covered")) if args.resume else []
        done = {r["seed"] for r in rows}
        for seed in args.seeds:
            if seed in done:
                continue
            new, figures = run_seed(seed, data, clf, bandwidth, args)
            rows += [{**r, "config": key} for r in new]
            rows.sort(key=lambda r: args.seeds.index(r["seed"]))
            write_runs(out_dir, rows, args)
            if seed == args.seeds[0]:
                plot(figures["panels"], str(out_dir / "generate_digits.png"))
                if figures["conditional"] is not None:
                    plot_conditional(figures["conditional"], str(out_dir / "generate_digits_conditional.png"))
                plot_inpainting(x_test, figures["inpainted"], figures["baseline"],
                                str(out_dir / "generate_digits_inpainting.png"))
    write_runs(out_dir, rows, args)
    summary = summarise(rows, args)
    info = environment_info(pick_device(args.device), packages=("scikit-learn",))
    notes = (
        f"{args.n_samples} samples per method and held-out seed (seeds {sorted({r['seed'] for r in rows})}; the ncsn "
        f"sampler was tuned on seeds {list(args.tuning_seeds)} against a validation split, see "
        "generate_digits_tuning.md), against the "
        f"{len(x_test)} held-out test digits. Cells: mean over seeds [95% percentile bootstrap interval over seeds]. "
        f"mmd2: unbiased squared MMD, RBF kernel, bandwidth {bandwidth:.3f} (median heuristic on the test digits); "
        "lower is better, and the real-training-digits row is the floor. Paired differences are per seed; "
        "'(tie)' marks an interval that contains zero.",
        f"Classifier: LogisticRegression on the real training digits (test accuracy {test_acc:.3f}); confidence = "
        "mean top-class probability; classes_covered = distinct predicted classes (of 10); class_entropy = "
        "normalised entropy of the predicted-class histogram (1 = all classes equally often). nn_distance: median "
        "distance of a sample to its nearest training digit (the real test digits' value is the novelty reference).",
        "ncsn extras (the same model feeds both ncsn rows): class_agreement = fraction of class-conditional samples "
        "(classes 0-9 requested in turn) that the classifier assigns to the requested class; inpaint_psnr_* = PSNR "
        "on the hidden left half of the test digits for one ncsn sample, for the mean of inpaint_draws samples, and "
        "for the Gaussian conditional mean (full-covariance Gaussian fitted to the training digits); train_s = "
        "seconds of training on the row's device (see generate_digits_tuning_cpu.md for the ncsn model on one CPU "
        "thread); sample_s = seconds to draw the row's samples; rss_first_mb / rss_last_mb = the process's resident "
        "memory after the first and the last tenth of training; the ncsn model ran on the device in each row's "
        "device column (the other methods on the CPU, one torch thread).",
        *((f"Where the held-out runs ran: {args.where}",) if args.where else ()),
    )
    write_table(out_dir, "generate_digits", summary, title="Generating digits: sample quality", config=args, info=info,
                notes=notes)
    return summary


if __name__ == "__main__":
    for row in main(parse_args(Args, description=__doc__.splitlines()[0])):
        print(row)
