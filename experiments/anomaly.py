"""Anomaly scoring by energy (EnergyOutlierDetector) against scikit-learn's detectors, in one run.

Benchmarks, each over the seeds; seed s uses ``random_state=s`` for the split, so seed 0
is the protocol's split (this reproduces the reference baseline figures, which were means over
5 splits):

1. digits one-vs-rest: pixels / 16; ``train_test_split(test_size=0.2, stratify=y,
   random_state=s)``; for each digit d, train on the training images of d, test on the held-out
   images of d (inliers) against all images of the other digits; the score is the mean AUROC
   over the 10 digits.
2. breast cancer: benign are inliers; 80% of the benign rows (``random_state=s``) train, a
   ``StandardScaler`` is fitted on them; the test set is the other 20% of benign plus all
   malignant.

AUROC treats inliers as the positive class and uses ``score_samples`` (higher = more normal).

Every hyperparameter is fixed before looking at any test set, or chosen on the training inliers
only: ``covariance="auto"`` picks the Gaussian's covariance estimator (Ledoit-Wolf shrinkage,
factor analysis or probabilistic PCA with 1, 2, 4, ... factors) by 5-fold cross-validated
log-likelihood of the training inliers. Configurations marked ``[post hoc]`` are not clean test results:
the probabilistic-PCA family (rank still chosen by cross-validated likelihood) was added after seeing its
test AUROC on digits for seeds 0 and 1, and ``covariance="auto"`` has included that family among its
candidates since, so every row that uses ``"auto"`` is post hoc too. Ledoit-Wolf is the a-priori Gaussian.
The MLP settings (σ = 0.5 in standardised units, widths, epochs) were fixed a priori; features
are standardised for the MLPs (their σ is in standardised units) and not for the Gaussian on
digits (every pixel has the same units; standardising would blow up near-constant border
pixels).

Writes ``results/anomaly/``: ``<name>.{csv,md}`` (mean and standard deviation over seeds per
benchmark and method), ``<name>_runs.{csv,md}`` (every seed, and every digit) and ``<name>.png``;
``name`` is ``anomaly`` unless given.

Run: ``python -m experiments.anomaly`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from experiments._common import environment_info, parse_args, pyplot, results_dir, save_figure, write_table

TUNING_SEEDS: tuple[int, ...] = ()
"""None: every hyperparameter was fixed a priori or is chosen on training inliers (the ``[post hoc]`` rows aside)."""

HELD_OUT_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
"""The splits (and model seeds) of the reported table."""


@dataclass
class Args:
    """Configuration of the anomaly experiment (every field is a command-line option)."""

    seeds: tuple[int, ...] = field(default=HELD_OUT_SEEDS, metadata={"help": "split and model seeds"})
    digits: tuple[int, ...] = field(default=tuple(range(10)), metadata={"help": "inlier digits of benchmark 1"})
    benchmarks: tuple[str, ...] = field(default=("digits", "breast_cancer"), metadata={"help": "benchmarks to run"})
    mlp_hidden: tuple[int, ...] = field(default=(128, 128), metadata={"help": "hidden widths of the MLP energies"})
    dsm_sigma: float = field(default=0.5, metadata={"help": "DSM noise, standardised units"})
    dsm_epochs: int = field(default=200, metadata={"help": "training epochs of the DSM energies"})
    pcd_epochs: int = field(default=50, metadata={"help": "training epochs of the PCD energy"})
    weight_decay: float = field(default=1e-4, metadata={"help": "Adam weight decay of the MLP energies"})
    pca_variance: float = field(default=0.9, metadata={"help": "explained variance kept by the PCA baseline"})
    mlp: bool = field(default=True, metadata={"help": "include the (slow) MLP energies"})
    name: str = field(default="anomaly", metadata={"help": "stem of the output files in results/anomaly/"})
    quick: bool = field(default=False, metadata={"help": "smoke run: one seed, digits 0-2, few epochs"})


QUICK = {"seeds": (0,), "digits": (0, 1, 2), "dsm_epochs": 10, "pcd_epochs": 3, "mlp_hidden": (32, 32)}

Scorer = Callable[[np.ndarray, np.ndarray, int], np.ndarray]
"""``scorer(x_train, x_test, seed) -> scores (n_test,)``, higher = more normal."""


def methods(args: Args, benchmark: str) -> dict[str, Scorer]:
    """The detectors, ebrl's first, each as a scorer fitted on the training inliers."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor
    from sklearn.svm import OneClassSVM

    from ebrl.tasks import EnergyOutlierDetector

    gaussian_std = benchmark != "digits"
    mlp = {"hidden": args.mlp_hidden, "weight_decay": args.weight_decay, "standardize": True}

    def ebrl(**params: Any) -> Scorer:
        return lambda tr, te, seed: EnergyOutlierDetector(random_state=seed, **params).fit(tr).score_samples(te)

    def pca_error(tr: np.ndarray, te: np.ndarray, seed: int) -> np.ndarray:
        pca = PCA(n_components=args.pca_variance).fit(tr)
        residual = te - pca.inverse_transform(pca.transform(te))  # (n, D)
        return -np.square(residual).sum(1)

    energies = {
        "ebrl gaussian, covariance=auto (CV) [post hoc]": ebrl(
            energy="gaussian", covariance="auto", standardize=gaussian_std
        ),
        "ebrl gaussian, Ledoit-Wolf": ebrl(energy="gaussian", covariance="shrunk", standardize=gaussian_std),
        "ebrl gaussian, ppca (rank by CV) [post hoc]": ebrl(
            energy="gaussian", covariance="ppca", n_factors="auto", standardize=gaussian_std
        ),
    }
    if args.mlp:
        energies |= {
            "ebrl mlp + dsm": ebrl(energy="mlp", objective="dsm", sigma=args.dsm_sigma, epochs=args.dsm_epochs, **mlp),
            "ebrl residual (gaussian auto + mlp) + dsm [post hoc]": ebrl(
                energy="residual", covariance="auto", objective="dsm", sigma=args.dsm_sigma, epochs=args.dsm_epochs,
                **mlp,
            ),
            "ebrl mlp + pcd": ebrl(energy="mlp", objective="pcd", epochs=args.pcd_epochs, **mlp),
        }
    return energies | {
        "IsolationForest": lambda tr, te, seed: IsolationForest(random_state=seed).fit(tr).score_samples(te),
        "OneClassSVM": lambda tr, te, seed: OneClassSVM().fit(tr).score_samples(te),
        "LocalOutlierFactor": lambda tr, te, seed: LocalOutlierFactor(novelty=True).fit(tr).score_samples(te),
        f"PCA reconstruction ({args.pca_variance:g} var.)": pca_error,
    }


def digit_tasks(seed: int, digits: tuple[int, ...]) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(name, x_train, x_test, inlier labels) for each inlier digit, on split ``seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    tasks = []
    for d in digits:
        test = np.concatenate([x_te[y_te == d], x[y != d]])
        labels = np.r_[np.ones(int((y_te == d).sum())), np.zeros(int((y != d).sum()))]
        tasks.append((f"digit {d}", x_tr[y_tr == d], test, labels))
    return tasks


def breast_cancer_task(seed: int) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """(name, x_train, x_test, inlier labels) for the breast-cancer benchmark on split ``seed``."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    benign, malignant = x[y == 1], x[y == 0]  # target 1 = benign
    tr, te = train_test_split(benign, test_size=0.2, random_state=seed)
    scaler = StandardScaler().fit(tr)
    test = scaler.transform(np.concatenate([te, malignant]))
    labels = np.r_[np.ones(len(te)), np.zeros(len(malignant))]
    return "breast cancer", scaler.transform(tr), test, labels


def plot(summary: list[dict[str, Any]], path: str) -> None:
    """Mean AUROC per method (bars, ± std over seeds), one panel per benchmark."""
    plt = pyplot()

    benches = list(dict.fromkeys(r["benchmark"] for r in summary))
    fig, axes = plt.subplots(1, len(benches), figsize=(7 * len(benches), 4.5), squeeze=False)
    for ax, bench in zip(axes[0], benches, strict=True):
        sub = [r for r in summary if r["benchmark"] == bench]
        names = [r["method"] for r in sub]
        means = np.array([float(r["auroc_mean"]) for r in sub])
        colors = ["tab:blue" if n.startswith("ebrl") else "tab:gray" for n in names]
        ax.barh(names, means, xerr=[float(r["auroc_std"]) for r in sub], color=colors)
        ax.set_xlim(max(0.5, means.min() - 0.05), 1.0)
        ax.invert_yaxis()
        ax.set_xlabel("AUROC (mean over seeds)")
        ax.set_title(bench)
    save_figure(fig, path)


def main(args: Args) -> list[dict[str, Any]]:
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    if args.quick:
        args = replace(args, **QUICK)
    out_dir = results_dir("anomaly")
    runs: list[dict[str, Any]] = []
    with threadpool_limits(limits=1):  # BLAS threads fight on a shared machine (100x slower factor analysis)
        for bench in args.benchmarks:
            scorers = methods(args, bench)
            for seed in args.seeds:
                tasks = digit_tasks(seed, args.digits) if bench == "digits" else [breast_cancer_task(seed)]
                for name, tr, te, labels in tasks:
                    for method, scorer in scorers.items():
                        start = time.perf_counter()
                        scores = scorer(tr, te, seed)
                        runs.append({
                            "benchmark": bench, "seed": seed, "task": name, "method": method,
                            "auroc": f"{roc_auc_score(labels, scores):.5f}",
                            "fit_score_s": round(time.perf_counter() - start, 2),
                        })
    summary = []
    for bench in args.benchmarks:
        for method in dict.fromkeys(r["method"] for r in runs if r["benchmark"] == bench):
            per_seed = [
                np.mean([float(r["auroc"]) for r in runs
                         if (r["benchmark"], r["method"], r["seed"]) == (bench, method, s)])
                for s in args.seeds
            ]
            times = [r["fit_score_s"] for r in runs if (r["benchmark"], r["method"]) == (bench, method)]
            summary.append({  # four decimals: the table writer would keep only three significant digits
                "benchmark": bench, "method": method, "auroc_mean": f"{np.mean(per_seed):.4f}",
                "auroc_std": f"{np.std(per_seed):.4f}", "seeds": len(per_seed),
                "seconds_per_fit": f"{np.mean(times):.2f}",
            })
    info = environment_info(packages=("scikit-learn",))
    notes = (
        f"AUROC (inliers positive, score_samples), mean over seeds {list(args.seeds)}; seed s is the split's "
        "random_state and the models' seed. digits: mean over inlier digits "
        f"{list(args.digits)}. Reference baselines (5 seeds): digits IF 0.977, OCSVM 0.978, LOF 0.992, PCA 0.995; "
        "breast cancer IF 0.961, OCSVM 0.955, LOF 0.947, PCA 0.920.",
        "Hyperparameters: fixed a priori, except covariance='auto' (and n_factors='auto'), which pick the covariance "
        "estimator (and rank) by 5-fold cross-validated log-likelihood of the training inliers (never the test set). "
        "[post hoc]: the PPCA family was added after seeing its digits test AUROC on seeds 0-1; its rank is chosen "
        "by cross-validated likelihood, but the family choice is not blind; covariance='auto' includes that family "
        "among its candidates, so its rows are post hoc as well. Tables written before these labels existed name "
        "the auto rows without '[post hoc]'; they are post hoc all the same.",
    )
    write_table(out_dir, args.name, summary, title="Anomaly detection: AUROC", config=args, info=info, notes=notes)
    write_table(out_dir, f"{args.name}_runs", runs, title="Anomaly detection: every seed and task", config=args,
                info=info)
    plot(summary, str(out_dir / f"{args.name}.png"))
    return summary


if __name__ == "__main__":
    for row in main(parse_args(Args, description=__doc__.splitlines()[0])):
        print(row)
