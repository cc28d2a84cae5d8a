"""Generating 8x8 digits with a convolutional energy, trained by PCD and by DSM, against a Gaussian mixture.

Protocol (issue 4): pixels / 16 in [0, 1]; ``train_test_split(test_size=0.2, stratify=y,
random_state=0)``; models see the training 80% only.

- ``pcd``: a ``ConvEnergy`` trained by persistent contrastive divergence with a replay buffer,
  the IGEBM recipe: 5% of chains restarted from uniform noise, the L2 energy regulariser, short
  Langevin runs with gradient clipping and small fixed noise, optional spectral norm. Samples:
  replay-buffer states after ``eval_steps`` more Langevin steps.
- ``dsm``: a ``ConvEnergy`` trained by denoising score matching at σ = ``dsm_sigma``. Samples:
  walk-jump sampling (``ebrl.tasks.walk_jump_sample``): exact Langevin on the σ-smoothed energy
  from uniform noise, then one Tweedie step.
- ``gmm`` (baseline): scikit-learn's ``GaussianMixture`` fitted to the same training images,
  sampled and clipped to [0, 1].
- ``real train`` (reference): as many training digits as samples; the floor the metrics can reach.

Metrics, per method and seed, on ``n_samples`` samples (= the test-set size):

- the unbiased squared MMD to the held-out test digits, RBF kernel with the median-heuristic
  bandwidth of the test digits (lower is better);
- a logistic-regression digit classifier trained on the real training digits: its mean top-class
  probability on the samples (confidence) and the number of classes among its predictions
  (coverage, of 10), with the normalised entropy of the predicted-class histogram (1 = uniform).

Writes ``results/generate_digits/``: ``generate_digits.{csv,md}`` (mean and standard deviation
over seeds), ``generate_digits_runs.{csv,md}`` and ``generate_digits.png`` (samples beside real
digits, first seed).

Run: ``python -m experiments.generate_digits`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ebrl._checks import seeded_init
from ebrl.energy import ConvEnergy
from ebrl.samplers import Langevin, ReplayBuffer
from ebrl.tasks import walk_jump_sample
from ebrl.training import DSM, PCD, fit, median_bandwidth, squared_mmd
from experiments._common import environment_info, parse_args, pyplot, results_dir, save_figure, write_table


@dataclass
class Args:
    """Configuration of the generation experiment (every field is a command-line option)."""

    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"help": "training and sampling seeds"})
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
    gmm_components: int = field(default=10, metadata={"help": "components of the GaussianMixture baseline"})
    n_samples: int = field(default=360, metadata={"help": "samples per method (the test set has 360 digits)"})
    quick: bool = field(default=False, metadata={"help": "smoke run: one seed, a few epochs, short chains"})


QUICK = {
    "seeds": (0,), "channels": (8, 16), "pcd_epochs": 2, "pcd_steps": 5, "eval_steps": 10, "dsm_epochs": 3,
    "walk_steps": 30, "pcd_buffer": 500,
}


def load_split() -> dict[str, np.ndarray]:
    """The protocol's split of digits in [0, 1]: images ``(N, 1, 8, 8)`` and labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return {"x_train": x_tr.reshape(-1, 1, 8, 8), "x_test": x_te.reshape(-1, 1, 8, 8), "y_train": y_tr, "y_test": y_te}


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
    energy.eval()
    idx = torch.randperm(args.pcd_buffer, generator=g)[: args.n_samples]
    final = replace(sampler, n_steps=args.eval_steps)
    samples = final(energy, buffer.buffer[idx], generator=g).detach()
    gap = np.mean(history.metrics["e_neg"][-20:]) - np.mean(history.metrics["e_pos"][-20:])
    return samples, {"train_s": time.perf_counter() - start, "final_energy_gap": float(gap)}


def train_dsm(x: Tensor, seed: int, args: Args) -> tuple[Tensor, dict[str, Any]]:
    """Train a ConvEnergy by DSM(σ) and return walk-jump samples ``(n, 1, 8, 8)``."""
    g = torch.Generator().manual_seed(seed)
    with seeded_init(g):
        energy = ConvEnergy(1, args.channels)
    start = time.perf_counter()
    fit(energy, x, DSM(sigma=args.dsm_sigma), epochs=args.dsm_epochs, batch_size=args.batch_size, lr=args.lr,
        generator=g)
    energy.eval()
    sigma = args.dsm_sigma
    walk = Langevin(step_size=0.05 * sigma**2, n_steps=args.walk_steps)  # exact Langevin on p_σ
    x0 = torch.rand(args.n_samples, 1, 8, 8, generator=g)
    samples = walk_jump_sample(energy, x0, sigma=sigma, sampler=walk, generator=g).clamp(0, 1).detach()
    return samples, {"train_s": time.perf_counter() - start}


def gmm_samples(x_train: np.ndarray, seed: int, args: Args) -> np.ndarray:
    """Samples of a full-covariance GaussianMixture fitted to the training images, clipped to [0, 1]."""
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(args.gmm_components, covariance_type="full", random_state=seed).fit(x_train.reshape(-1, 64))
    samples = gmm.sample(args.n_samples)[0]  # (n, 64), grouped by component
    samples = samples[np.random.default_rng(seed).permutation(len(samples))]  # shuffled, for the picture
    return np.clip(samples, 0, 1).reshape(-1, 1, 8, 8).astype(np.float32)


def scores(samples: np.ndarray, x_test: np.ndarray, bandwidth: float, clf: Any) -> dict[str, float]:
    """MMD² to the test digits and the classifier's confidence and class coverage."""
    mmd = float(squared_mmd(torch.as_tensor(samples), torch.as_tensor(x_test), bandwidth=bandwidth))
    proba = clf.predict_proba(samples.reshape(len(samples), 64))  # (n, 10)
    counts = np.bincount(proba.argmax(1), minlength=10)
    p = counts / counts.sum()
    entropy = float(-(p[p > 0] * np.log(p[p > 0])).sum() / np.log(10))
    return {"mmd2": mmd, "confidence": float(proba.max(1).mean()), "classes_covered": int((counts > 0).sum()),
            "class_entropy": entropy}


def plot(panels: dict[str, np.ndarray], path: str) -> None:
    """One 10x10 grid of images per panel, side by side."""
    plt = pyplot()

    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.5))
    for ax, (name, images) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        tiles = np.pad(images[:100].reshape(10, 10, 8, 8), ((0, 0), (0, 0), (1, 1), (1, 1)))  # (10, 10, 10, 10)
        grid = tiles.transpose(0, 2, 1, 3).reshape(100, 100)  # (rows * 10, cols * 10)
        ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(name)
        ax.axis("off")
    save_figure(fig, path)


def main(args: Args) -> list[dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    if args.quick:
        args = replace(args, **QUICK)
    out_dir = results_dir("generate_digits")
    data = load_split()
    x_train, x_test = data["x_train"], data["x_test"]
    rows: list[dict[str, Any]] = []
    with threadpool_limits(limits=1):
        clf = LogisticRegression(max_iter=5000).fit(x_train.reshape(-1, 64), data["y_train"])
        test_acc = float(clf.score(x_test.reshape(-1, 64), data["y_test"]))
        bandwidth = median_bandwidth(torch.as_tensor(x_test))
        for seed in args.seeds:
            rng = np.random.default_rng(seed)
            x = torch.as_tensor(x_train)
            pcd, pcd_info = train_pcd(x, seed, args)
            dsm, dsm_info = train_dsm(x, seed, args)
            methods = {
                "real train digits (reference)": (x_train[rng.choice(len(x_train), args.n_samples, replace=False)], {}),
                "gmm (sklearn baseline)": (gmm_samples(x_train, seed, args), {}),
                "pcd (ebrl ConvEnergy)": (pcd.numpy(), pcd_info),
                "dsm + walk-jump (ebrl ConvEnergy)": (dsm.numpy(), dsm_info),
            }
            for name, (samples, info) in methods.items():
                rows.append({"seed": seed, "method": name, **scores(samples, x_test, bandwidth, clf), **info})
            if seed == args.seeds[0]:
                panels = {"real test digits": x_test, **{k.split(" (")[0]: v[0] for k, v in methods.items()
                                                          if not k.startswith("real")}}
    summary = []
    for name in dict.fromkeys(r["method"] for r in rows):
        sub = [r for r in rows if r["method"] == name]
        entry: dict[str, Any] = {"method": name, "seeds": len(sub)}
        for key in ("mmd2", "confidence", "classes_covered", "class_entropy"):
            vals = [r[key] for r in sub]
            entry[f"{key}_mean"], entry[f"{key}_std"] = f"{np.mean(vals):.4f}", f"{np.std(vals):.4f}"
        summary.append(entry)
    info = environment_info(packages=("scikit-learn",))
    notes = (
        f"{args.n_samples} samples per method and seed (seeds {list(args.seeds)}), against the {len(x_test)} held-out "
        f"test digits. mmd2: unbiased squared MMD, RBF kernel, bandwidth {bandwidth:.3f} (median heuristic on the "
        "test digits); lower is better, and the real-training-digits row is the floor.",
        f"Classifier: LogisticRegression on the real training digits (test accuracy {test_acc:.3f}); confidence = "
        "mean top-class probability; classes_covered = distinct predicted classes (of 10); class_entropy = "
        "normalised entropy of the predicted-class histogram (1 = all classes equally often).",
    )
    write_table(out_dir, "generate_digits", summary, title="Generating digits: sample quality", config=args, info=info,
                notes=notes)
    write_table(out_dir, "generate_digits_runs", rows, title="Generating digits: every seed", config=args, info=info)
    plot(panels, str(out_dir / "generate_digits.png"))
    return summary


if __name__ == "__main__":
    for row in main(parse_args(Args, description=__doc__.splitlines()[0])):
        print(row)
