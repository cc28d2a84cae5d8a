"""Denoising 8x8 digits with energies, against a Gaussian filter and PCA measured in the same run.

Protocol: pixels / 16 in [0, 1]; ``train_test_split(test_size=0.2, stratify=y,
random_state=0)``; noisy test images y = x + σε at σ = 0.2 and 0.4; the score is the mean
per-image PSNR (dB) on the held-out 20%. Every estimate is clipped to [0, 1] (so are the
baselines; the raw noisy input is reported as well, unclipped, as in the baseline protocol).

Methods, all energies of ``ebrl``:

- ``wiener``: the Gaussian energy of the noisy data, N(μ, Σ + σ²I) fitted to the training set;
  its Tweedie step is the Wiener filter (the best linear estimator). No hyperparameters.
- ``kde_tweedie``: a ``KernelDensityEnergy`` on the training images; Tweedie on its σ-smoothed
  version is the exact posterior mean under that prior (empirical Bayes). The bandwidth is
  chosen on a validation split of the *training* set.
- ``dsm_tweedie``: a ``GaussianResidualEnergy`` (that Gaussian plus an MLP) trained by DSM at
  exactly the test σ, then one Tweedie step. Early stopping on the validation DSM loss.
- ``map`` and ``posterior_mean``: MAP (gradient descent) and the Langevin posterior mean on
  E(x) + ‖x - y‖²/2σ², with E a clean-data energy: the same residual energy trained by DSM at a
  small ``prior_sigma``.

Baselines: the Gaussian filter and PCA, each chosen with an oracle (the width and the rank that maximise
the PSNR *on the test set*, as the reference baselines were measured), and the Wiener filter (``wiener``,
computed with ebrl's Gaussian energy but a classical linear estimator, so it counts as a baseline, not as
an ebrl method). The other ebrl methods choose their hyperparameters on the validation split only, so the
comparison favours the baselines. Each method's margin over the best baseline is the mean of its paired
(by seed) differences, with a 95% bootstrap interval; an interval that includes zero is a tie.

Writes ``results/denoise_digits/``: ``denoise_digits.{csv,md}`` (mean and standard deviation over
seeds), ``denoise_digits_runs.{csv,md}`` (every seed) and ``denoise_digits.png`` (examples).

Run: ``python -m experiments.denoise_digits`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ebrl._checks import seeded_init
from ebrl.energy import GaussianEnergy
from ebrl.losses import denoising_score_matching
from ebrl.tasks import (
    GaussianResidualEnergy,
    KernelDensityEnergy,
    map_denoise,
    posterior_mean_denoise,
    psnr,
    tweedie_denoise,
)
from ebrl.training import DSM, fit
from experiments._common import environment_info, parse_args, pyplot, read_rows, results_dir, save_figure, write_table
from experiments.stats import paired_difference_ci

TUNING_SEEDS: tuple[int, ...] = ()
"""None: each ebrl method picks its settings on a validation split of the training set, inside every seed."""

HELD_OUT_SEEDS: tuple[int, ...] = (0, 1, 2)
"""The seeds of the reported table (each draws the test noise and trains the energies)."""


@dataclass
class Args:
    """Configuration of the denoising experiment (every field is a command-line option)."""

    sigmas: tuple[float, ...] = field(default=(0.2, 0.4), metadata={"help": "noise levels, pixels in [0, 1]"})
    seeds: tuple[int, ...] = field(
        default=HELD_OUT_SEEDS, metadata={"help": "each seed draws the test noise and trains the energies"}
    )
    hidden: tuple[int, ...] = field(default=(512, 512), metadata={"help": "hidden widths of the residual MLP"})
    epochs: int = field(default=300, metadata={"help": "DSM training epochs per energy (early stopping inside)"})
    batch_size: int = field(default=128, metadata={"help": "DSM minibatch size"})
    lr: float = field(default=3e-3, metadata={"help": "Adam learning rate (cosine decay to 0)"})
    weight_decay: float = field(default=0.0, metadata={"help": "Adam weight decay"})
    eval_every: int = field(default=10, metadata={"help": "epochs between validation DSM losses"})
    val_fraction: float = field(default=0.1, metadata={"help": "validation share of the training split"})
    shifts: bool = field(default=False, metadata={"help": "augment training images by 1-pixel shifts (9x data)"})
    prior_sigma: float = field(default=0.1, metadata={"help": "DSM σ of the clean-data energy (MAP, posterior mean)"})
    map_steps: int = field(default=200, metadata={"help": "gradient steps of MAP denoising"})
    pm_chains: int = field(default=4, metadata={"help": "Langevin chains per image for the posterior mean"})
    pm_steps: int = field(default=300, metadata={"help": "Langevin steps per chain for the posterior mean"})
    pm_snapshots: int = field(default=10, metadata={"help": "states averaged along each chain (second half)"})
    kde_bandwidths: tuple[float, ...] = field(
        default=(0.02, 0.05, 0.1, 0.15, 0.2, 0.3), metadata={"help": "KDE bandwidths tried on validation"}
    )
    filter_widths: tuple[float, ...] = field(
        default=tuple(round(0.2 + 0.1 * i, 1) for i in range(19)), metadata={"help": "Gaussian filter widths (px)"}
    )
    quick: bool = field(default=False, metadata={"help": "smoke run: one seed, tiny MLP, 20 epochs"})
    from_runs: bool = field(
        default=False, metadata={"help": "train nothing: rebuild the summary from denoise_digits_runs.csv"}
    )


QUICK = {
    "seeds": (0,), "hidden": (64, 64), "epochs": 20, "eval_every": 5, "map_steps": 50, "pm_chains": 2, "pm_steps": 20,
    "pm_snapshots": 2,
}


def load_split(seed: int, val_fraction: float) -> dict[str, np.ndarray]:
    """The protocol's split of digits in [0, 1], and a validation split carved from the training part."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_train, x_test, y_train, _ = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    x_fit, x_val = train_test_split(x_train, test_size=val_fraction, stratify=y_train, random_state=seed)
    return {"train": x_train, "test": x_test, "fit": x_fit, "val": x_val}


def shifted(x: np.ndarray) -> np.ndarray:
    """Every image and its 8 one-pixel shifts (zero fill): ``(N, 64) -> (9N, 64)``."""
    padded = np.pad(x.reshape(-1, 8, 8), ((0, 0), (1, 1), (1, 1)))  # (N, 10, 10)
    views = [padded[:, dy : dy + 8, dx : dx + 8] for dy in range(3) for dx in range(3)]
    return np.concatenate(views).reshape(-1, 64)


def mean_psnr(estimate: np.ndarray | Tensor, clean: np.ndarray) -> float:
    """The mean over images of the per-image PSNR (dB), pixels in [0, 1]."""
    est = torch.as_tensor(np.asarray(estimate, dtype=np.float32))
    return float(psnr(est, torch.as_tensor(clean)).mean())


def gaussian_filter_best(noisy: np.ndarray, clean: np.ndarray, widths: tuple[float, ...]) -> tuple[np.ndarray, float]:
    """The Gaussian filter whose width maximises the test PSNR (an oracle choice), clipped to [0, 1]."""
    from scipy.ndimage import gaussian_filter

    images = noisy.reshape(-1, 8, 8)
    best = None
    for w in widths:
        est = np.clip(gaussian_filter(images, sigma=(0, w, w)).reshape(-1, 64), 0, 1)
        score = mean_psnr(est, clean)
        if best is None or score > best[0]:
            best = (score, est, w)
    return best[1], best[2]


def pca_best(train: np.ndarray, noisy: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, int]:
    """The PCA projection whose rank maximises the test PSNR (an oracle choice), clipped to [0, 1]."""
    from sklearn.decomposition import PCA

    pca = PCA().fit(train)
    codes = (noisy - pca.mean_) @ pca.components_.T  # (N, 64)
    best = None
    for k in range(1, train.shape[1] + 1):
        est = np.clip(pca.mean_ + codes[:, :k] @ pca.components_[:k], 0, 1)
        score = mean_psnr(est, clean)
        if best is None or score > best[0]:
            best = (score, est, k)
    return best[1], best[2]


def train_dsm_energy(
    data: np.ndarray, val: np.ndarray, sigma: float, seed: int, args: Args
) -> tuple[GaussianResidualEnergy, dict[str, Any]]:
    """A residual energy trained by DSM(σ), keeping the weights with the lowest validation DSM loss."""
    g = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(data)
    x_val = torch.as_tensor(val).repeat(4, 1)  # 4 noise draws per validation image: a steadier loss
    with seeded_init(torch.Generator().manual_seed(seed)):
        energy = GaussianResidualEnergy.from_data(x, args.hidden, ridge=sigma**2)
    optimizer = torch.optim.Adam(energy.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = -(-x.shape[0] // args.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * steps_per_epoch)

    def val_loss() -> float:
        val_gen = torch.Generator().manual_seed(10_000 + seed)  # the same noise at every evaluation
        return float(denoising_score_matching(energy, x_val, sigma=sigma, generator=val_gen).detach())

    best = (val_loss(), copy.deepcopy(energy.state_dict()), 0)
    start, done = time.perf_counter(), 0
    while done < args.epochs:
        n = min(args.eval_every, args.epochs - done)
        fit(energy, x, DSM(sigma=sigma), epochs=n, batch_size=args.batch_size, optimizer=optimizer, generator=g)
        for _ in range(n * steps_per_epoch):
            scheduler.step()
        done += n
        loss = val_loss()
        if loss < best[0]:
            best = (loss, copy.deepcopy(energy.state_dict()), done)
    energy.load_state_dict(best[1])
    energy.eval()
    return energy, {"best_epoch": best[2], "val_dsm_loss": round(best[0], 4), "train_s": time.perf_counter() - start}


def choose_kde_bandwidth(fit_x: np.ndarray, val: np.ndarray, sigma: float, seed: int, args: Args) -> float:
    """The bandwidth whose KDE-prior posterior mean has the best PSNR on noisy validation images."""
    g = torch.Generator().manual_seed(20_000 + seed)
    clean = torch.as_tensor(val)
    noisy = clean + sigma * torch.randn(clean.shape, generator=g)
    scores = {}
    for h in args.kde_bandwidths:
        prior = KernelDensityEnergy(torch.as_tensor(fit_x), h)
        scores[h] = mean_psnr(tweedie_denoise(prior.smoothed(sigma), noisy, sigma=sigma).clamp(0, 1), val)
    return max(scores, key=scores.get)


def plot(examples: dict[str, dict[float, np.ndarray]], path: str) -> None:
    """Rows: methods; columns: 8 test images at each σ."""
    plt = pyplot()

    methods = list(examples)
    sigmas = list(examples[methods[0]])
    n = examples[methods[0]][sigmas[0]].shape[0]
    fig, axes = plt.subplots(len(methods), len(sigmas), figsize=(n * 0.9 * len(sigmas), len(methods) * 1.0))
    axes = np.atleast_2d(axes).reshape(len(methods), len(sigmas))
    for i, m in enumerate(methods):
        for j, s in enumerate(sigmas):
            strip = examples[m][s].reshape(n, 8, 8).transpose(1, 0, 2).reshape(8, n * 8)  # (8, n*8)
            axes[i, j].imshow(strip, cmap="gray_r", vmin=0, vmax=1)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if j == 0:
                axes[i, j].set_ylabel(m, rotation=0, ha="right", va="center", fontsize=8)
            if i == 0:
                axes[i, j].set_title(f"σ = {s}")
    save_figure(fig, path)


def run_seed(seed: int, args: Args, examples: dict[str, dict[float, np.ndarray]] | None) -> list[dict[str, Any]]:
    """Every method at every σ for one seed; fills ``examples`` (first 8 test images) when given."""
    data = load_split(seed, args.val_fraction)
    train, test, fit_x, val = data["train"], data["test"], data["fit"], data["val"]
    fit_data = shifted(fit_x) if args.shifts else fit_x
    clean_t = torch.as_tensor(test)
    rows: list[dict[str, Any]] = []
    prior, prior_info = train_dsm_energy(fit_data, val, args.prior_sigma, seed, args)
    for sigma in args.sigmas:
        g = torch.Generator().manual_seed(1_000 * seed + round(100 * sigma))
        noisy_t = clean_t + sigma * torch.randn(clean_t.shape, generator=g)  # (N, 64)
        noisy = noisy_t.numpy()
        out: dict[str, tuple[np.ndarray, dict[str, Any]]] = {
            "noisy": (noisy, {"choice": "unclipped, as in the baseline protocol"}),
            "noisy (clipped)": (np.clip(noisy, 0, 1), {}),
        }
        est, w = gaussian_filter_best(noisy, test, args.filter_widths)
        out["gaussian_filter (oracle)"] = (est, {"choice": f"width {w} px, best on test"})
        est, k = pca_best(train, noisy, test)
        out["pca (oracle)"] = (est, {"choice": f"{k} components, best on test"})

        x_train = torch.as_tensor(train)
        cov = torch.cov(x_train.T.double()) + sigma**2 * torch.eye(64, dtype=torch.float64)  # (64, 64)
        wiener = GaussianEnergy(x_train.mean(0), cov.float())
        out["wiener (ebrl GaussianEnergy)"] = (tweedie_denoise(wiener, noisy_t, sigma=sigma).clamp(0, 1).numpy(), {})

        h = choose_kde_bandwidth(fit_x, val, sigma, seed, args)
        kde = KernelDensityEnergy(x_train, h).smoothed(sigma)
        out["kde_tweedie (ebrl)"] = (
            tweedie_denoise(kde, noisy_t, sigma=sigma).clamp(0, 1).numpy(), {"choice": f"bandwidth {h}, by validation"}
        )

        energy, info = train_dsm_energy(fit_data, val, sigma, seed, args)
        out["dsm_tweedie (ebrl)"] = (
            tweedie_denoise(energy, noisy_t, sigma=sigma).clamp(0, 1).numpy(),
            {"choice": f"best epoch {info['best_epoch']} by validation DSM loss", "train_s": round(info["train_s"], 1)},
        )
        gen = torch.Generator().manual_seed(30_000 + seed)
        # The prior's curvature is up to 1/prior_sigma² (its Gaussian part has that ridge): a step below the
        # inverse of the posterior energy's curvature keeps descent and Langevin stable.
        curvature = sigma**-2 + args.prior_sigma**-2
        est = map_denoise(
            prior, noisy_t, sigma=sigma, n_steps=args.map_steps, step_size=0.5 / curvature, bounds=(0.0, 1.0)
        )
        prior_choice = f"DSM σ={args.prior_sigma} energy, best epoch {prior_info['best_epoch']}"
        out["map (ebrl)"] = (est.numpy(), {"choice": prior_choice})
        est = posterior_mean_denoise(
            prior, noisy_t, sigma=sigma, n_chains=args.pm_chains, n_steps=args.pm_steps, n_snapshots=args.pm_snapshots,
            step_size=0.25 / curvature,
            bounds=(0.0, 1.0), generator=gen,
        )
        out["posterior_mean (ebrl)"] = (est.numpy(), {"choice": prior_choice})

        for method, (est, extra) in out.items():
            score = f"{mean_psnr(est, test):.3f}"
            rows.append({"seed": seed, "sigma": sigma, "method": method, "psnr_db": score, **extra})
            if examples is not None:
                examples.setdefault(method, {})[sigma] = np.asarray(est[:8])
        if examples is not None:
            examples.setdefault("clean", {})[sigma] = test[:8]
    return rows


BASELINES = ("gaussian_filter", "pca", "wiener")
"""Methods (by name prefix) that are baselines: the two oracle choices and the Wiener filter."""


def summarise(rows: list[dict[str, Any]], sigmas: tuple[float, ...]) -> list[dict[str, Any]]:
    """Per σ and method: mean and standard deviation of the PSNR over seeds, and the paired difference from the
    best baseline (the baseline with the highest mean) with its 95% bootstrap interval."""
    out = []
    for sigma in sigmas:
        sub = [r for r in rows if float(r["sigma"]) == sigma]
        methods = list(dict.fromkeys(r["method"] for r in sub))
        psnr = {m: {int(r["seed"]): float(r["psnr_db"]) for r in sub if r["method"] == m} for m in methods}
        best = max((m for m in methods if m.startswith(BASELINES)), key=lambda m: np.mean(list(psnr[m].values())))
        for m in methods:
            vals = list(psnr[m].values())
            seeds = sorted(set(psnr[m]) & set(psnr[best]))
            diff = paired_difference_ci([psnr[m][s] for s in seeds], [psnr[best][s] for s in seeds])
            out.append({  # two decimals: the table writer would keep only three significant digits
                "sigma": sigma,
                "method": m,
                "baseline": m.startswith(BASELINES),
                "psnr_db_mean": f"{np.mean(vals):.2f}",
                "psnr_db_std": f"{np.std(vals):.2f}",
                "seeds": len(vals),
                "best_baseline": best,
                "minus_best_baseline_db": f"{diff.point:+.2f}",
                "ci_low": f"{diff.low:+.2f}",
                "ci_high": f"{diff.high:+.2f}",
                "verdict": "" if m == best else "tie" if diff.includes(0.0) else "ahead" if diff.low > 0 else "behind",
            })
    return out


NOTES = (
    "Mean per-image PSNR (dB) on the held-out 20% of load_digits (pixels/16), noise y = x + σε. All estimates "
    "clipped to [0, 1] except 'noisy'.",
    "Baselines (baseline True): gaussian_filter and pca, whose width / rank is picked as the best on the test set "
    "itself (oracle), and the Wiener filter; every other ebrl method picks its hyperparameters on a validation split "
    "of the training set only. minus_best_baseline_db is the mean paired (by seed) difference from the best "
    "baseline, with its 95% bootstrap interval (ci_low, ci_high); verdict 'tie' when the interval includes zero. "
    "Target: best baseline + 1 dB.",
    "map / posterior_mean use a clean-data energy: the residual energy trained by DSM at prior_sigma "
    "(an energy of the slightly smoothed data).",
)


def main(args: Args) -> list[dict[str, Any]]:
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    if args.quick:
        args = replace(args, **QUICK)
    out_dir = results_dir("denoise_digits")
    if args.from_runs:
        runs = read_rows(out_dir / "denoise_digits_runs.csv", keep=lambda r: True)
        if not runs:
            raise ValueError(f"--from-runs: no rows in {out_dir / 'denoise_digits_runs.csv'}; run the experiment first")
        summary = summarise(runs, tuple(sorted({float(r["sigma"]) for r in runs})))
        write_table(out_dir, "denoise_digits", summary, title="Denoising digits: PSNR (dB)", config=args,
                    info=environment_info(packages=("scikit-learn", "scipy")),
                    notes=(*NOTES, "Rebuilt with --from-runs from denoise_digits_runs.csv (the runs' configuration and"
                           " environment are in that file)."))
        return summary
    rows: list[dict[str, Any]] = []
    examples: dict[str, dict[float, np.ndarray]] = {}
    with threadpool_limits(limits=1):  # BLAS threads fight on a shared machine
        for i, seed in enumerate(args.seeds):
            rows += run_seed(seed, args, examples if i == 0 else None)
    summary = summarise(rows, args.sigmas)
    info = environment_info(packages=("scikit-learn", "scipy"))
    notes = (f"Seeds {list(args.seeds)} (each draws the test noise and trains the energies).", *NOTES)
    write_table(out_dir, "denoise_digits", summary, title="Denoising digits: PSNR (dB)", config=args, info=info,
                notes=notes)
    write_table(out_dir, "denoise_digits_runs", rows, title="Denoising digits: every seed", config=args, info=info)
    examples = {"clean": examples.pop("clean"), **examples}
    plot(examples, str(out_dir / "denoise_digits.png"))
    return summary


if __name__ == "__main__":
    for row in main(parse_args(Args, description=__doc__.splitlines()[0])):
        print(row)
