"""ebrl's BernoulliRBM against scikit-learn's on the digits data: speed, AIS log-likelihood, features.

Protocol: scikit-learn's ``load_digits``, pixels / 16 in [0, 1], split by
``train_test_split(test_size=0.2, stratify=y, random_state=0)``; log-likelihoods are of the test
set binarised at 0.5. Both libraries train an RBM with n_components 64 and 256, batch 10,
learning rate 0.06 and 20 epochs (PCD-1 with ``batch_size`` persistent chains: scikit-learn's
algorithm, which ebrl's ``BernoulliRBMEstimator`` reproduces). For every model, scikit-learn's
included, ebrl's AIS (base-rate start from the binarised training marginals) gives log Z and so
the test log-likelihood. Also reported: the exact pseudo-likelihood of the binarised test set,
scikit-learn's stochastic ``score_samples`` on the test set as given, and the accuracy of a
logistic regression on the hidden features (scikit-learn's RBM example, C = 6000).

Further rows: CD-1 with the same settings, and a tuned PCD (100 persistent chains, learning rate
decaying linearly to zero, trained on the binarised data). Timing: the fit-time ratio at the
digits settings, a larger scale (784 visible units from digits upsampled to 28 x 28 with random
shifts of up to 2 pixels and binarised, 500 hidden units, batch 100), and AIS with 200 chains and
20,000 temperatures on a 64-component model.

Writes ``results/rbm_digits/``: ``rbm_digits.csv/.md`` (one row per model, size and seed),
``summary.csv/.md`` (means and standard deviations over seeds), ``timing.csv/.md`` and
``samples.png`` (Gibbs samples of the tuned PCD model and of scikit-learn's).

Run: ``python -m experiments.rbm_digits`` (``--quick`` for a smoke run of about a minute).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM as SklearnBernoulliRBM
from threadpoolctl import threadpool_limits

from ebrl.boltzmann import BernoulliRBM, ais, log_likelihood, pseudo_log_likelihood
from ebrl.boltzmann.sklearn import BernoulliRBMEstimator
from experiments._common import (
    environment_info,
    parse_args,
    pick_device,
    pyplot,
    results_dir,
    save_figure,
    synchronize,
    write_table,
)


@dataclass
class Args:
    """Configuration of the RBM digits experiment (every field is a command-line option)."""

    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"help": "training seeds (random_state)"})
    sizes: tuple[int, ...] = field(default=(64, 256), metadata={"help": "numbers of hidden units (n_components)"})
    learning_rate: float = field(default=0.06, metadata={"help": "SGD step of both libraries"})
    batch_size: int = field(default=10, metadata={"help": "minibatch size (and PCD chains at scikit-learn's settings)"})
    epochs: int = field(default=20, metadata={"help": "passes over the training set (scikit-learn's n_iter)"})
    tuned_chains: int = field(default=100, metadata={"help": "persistent chains of the tuned PCD model"})
    ais_chains: int = field(default=200, metadata={"help": "AIS runs per log Z estimate"})
    ais_temperatures: int = field(default=20_000, metadata={"help": "AIS intermediate distributions"})
    ais_timing_temperatures: int = field(
        default=20_000, metadata={"help": "temperatures of the timed AIS run (200 chains, the 64-unit model)"}
    )
    logistic_c: float = field(default=6000.0, metadata={"help": "inverse regularisation C of the logistic regression"})
    timing_repeats: int = field(default=3, metadata={"help": "fit-time repeats; the minimum is reported"})
    large_samples: int = field(default=20_000, metadata={"help": "training samples of the 784-unit timing"})
    large_hidden: int = field(default=500, metadata={"help": "hidden units of the 784-unit timing"})
    large_batch: int = field(default=100, metadata={"help": "batch size of the 784-unit timing"})
    large_epochs: int = field(default=3, metadata={"help": "epochs of the 784-unit timing"})
    threads: int = field(
        default=1, metadata={"help": "torch and BLAS threads for both libraries, and AIS worker threads"}
    )
    device: str = field(default="cpu", metadata={"help": "device of ebrl's models: cpu, cuda or auto"})
    quick: bool = field(default=False, metadata={"help": "smoke run: one seed, short AIS, small 784-unit timing"})


QUICK = {
    "seeds": (0,), "ais_chains": 100, "ais_temperatures": 2000, "timing_repeats": 1,
    "large_samples": 3000, "large_epochs": 1,
}


# ------------------------------------------------------------------------------------------ data
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels / 16 and labels, split 80/20 as the protocol prescribes."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, test_size=0.2, stratify=y, random_state=0)
    return x_train, x_test, y_train, y_test


def large_digits(n: int, seed: int) -> np.ndarray:
    """``n`` binary 28 x 28 digits ``(n, 784)``: upsampled bilinearly, shifted by up to 2 pixels, > 0.5."""
    images = torch.tensor(load_digits().images / 16.0, dtype=torch.float32)  # (1797, 8, 8)
    up = F.interpolate(images[:, None], size=(28, 28), mode="bilinear", align_corners=False)[:, 0]  # (1797, 28, 28)
    padded = F.pad(up, (2, 2, 2, 2))  # (1797, 32, 32)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(images.shape[0], (n,), generator=g)
    shift = torch.randint(-2, 3, (n, 2), generator=g)
    grid = torch.arange(28)
    rows = (2 + shift[:, :1] + grid)[:, :, None]  # (n, 28, 1)
    cols = (2 + shift[:, 1:] + grid)[:, None, :]  # (n, 1, 28)
    crops = padded[idx[:, None, None], rows, cols]  # (n, 28, 28)
    return (crops > 0.5).reshape(n, 784).double().numpy()


# -------------------------------------------------------------------------------------- models
def rbm_from_sklearn(sk: SklearnBernoulliRBM) -> BernoulliRBM:
    """An ebrl ``BernoulliRBM`` holding scikit-learn's learned weights."""
    n_hidden, n_visible = sk.components_.shape
    rbm = BernoulliRBM(n_visible, n_hidden, init_std=0.0)
    with torch.no_grad():
        rbm.weight.copy_(torch.as_tensor(sk.components_.T))
        rbm.visible_bias.copy_(torch.as_tensor(sk.intercept_visible_))
        rbm.hidden_bias.copy_(torch.as_tensor(sk.intercept_hidden_))
    return rbm


def sklearn_from_rbm(rbm: BernoulliRBM) -> SklearnBernoulliRBM:
    """A scikit-learn ``BernoulliRBM`` holding ebrl's weights (for its ``score_samples``)."""
    sk = SklearnBernoulliRBM(n_components=rbm.n_hidden, random_state=0)
    sk.components_ = rbm.weight.detach().T.double().cpu().numpy()
    sk.intercept_hidden_ = rbm.hidden_bias.detach().double().cpu().numpy()
    sk.intercept_visible_ = rbm.visible_bias.detach().double().cpu().numpy()
    sk.n_features_in_ = rbm.n_visible
    return sk


def min_time(fit: Callable[[], Any], repeats: int, device: torch.device) -> tuple[Any, float, float]:
    """Run ``fit`` ``repeats`` times (identically seeded); return its last result and the fastest
    wall-clock and process-CPU times (CPU time is the steadier figure on a loaded machine)."""
    best_wall, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(repeats):
        synchronize(device)
        wall, cpu = time.perf_counter(), time.process_time()
        result = fit()
        synchronize(device)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return result, best_wall, best_cpu


def machine_state(threads: int) -> str:
    """``"loaded"`` when the 1-minute load average exceeds the cores this run does not use."""
    load = os.getloadavg()[0]
    spare = (os.cpu_count() or 1) - threads
    return f"loaded ({load:.1f})" if load > max(spare, 0) + 0.5 else f"quiet ({load:.1f})"


# ---------------------------------------------------------------------------------- evaluation
def evaluate(
    rbm: BernoulliRBM,
    data: dict[str, Any],
    args: Args,
    *,
    seed: int,
) -> dict[str, Any]:
    """AIS test log-likelihood, pseudo-likelihoods and logistic-regression accuracy of one model."""
    rbm = rbm.cpu()
    result = ais(
        rbm, args.ais_chains, args.ais_temperatures, data=data["train_bin"], n_workers=args.threads,
        generator=torch.Generator().manual_seed(1000 + seed),
    )
    test_ll = float(log_likelihood(rbm, data["test_bin"], result.log_z).mean())
    with torch.no_grad():
        f_train = rbm.hidden_mean(torch.as_tensor(data["x_train"], dtype=torch.float32)).double().numpy()
        f_test = rbm.hidden_mean(torch.as_tensor(data["x_test"], dtype=torch.float32)).double().numpy()
    logistic = LogisticRegression(C=args.logistic_c, max_iter=5000).fit(f_train, data["y_train"])
    return {
        "log_z": round(result.log_z, 3),
        "ais_stderr": round(result.stderr, 4),
        "ais_ess": round(result.effective_sample_size, 1),
        "test_ll_nats": round(test_ll, 3),
        "test_pl_exact": round(float(pseudo_log_likelihood(rbm, data["test_bin"]).mean()), 3),
        "test_pl_sklearn": round(float(sklearn_from_rbm(rbm).score_samples(data["x_test"]).mean()), 3),
        "logistic_acc": round(float(logistic.score(f_test, data["y_test"])), 4),
    }


def train_all(
    size: int, seed: int, data: dict[str, Any], args: Args, device: torch.device
) -> list[tuple[str, BernoulliRBM, list[float]]]:
    """The four models of one size and seed: (name, model, [fit wall seconds, fit CPU seconds])."""
    settings = {"n_components": size, "learning_rate": args.learning_rate, "batch_size": args.batch_size,
                "n_iter": args.epochs, "random_state": seed}
    x_train = data["x_train"]
    sk, *sk_s = min_time(lambda: SklearnBernoulliRBM(**settings).fit(x_train), args.timing_repeats, device)
    est, *est_s = min_time(
        lambda: BernoulliRBMEstimator(**settings, device=str(device)).fit(x_train), args.timing_repeats, device
    )
    x_soft = torch.as_tensor(x_train, dtype=torch.float32, device=device)
    x_bin = (x_soft > 0.5).float()

    def fit_torch(x: torch.Tensor, **kwargs: Any) -> BernoulliRBM:
        g = torch.Generator(device=device).manual_seed(seed)
        rbm = BernoulliRBM(64, size, generator=torch.Generator().manual_seed(seed)).to(device)
        return rbm.fit(x, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                       generator=g, **kwargs)

    cd, *cd_s = min_time(lambda: fit_torch(x_soft, method="cd", soft=True), args.timing_repeats, device)
    tuned, *tuned_s = min_time(
        lambda: fit_torch(x_bin, method="pcd", n_chains=args.tuned_chains, lr_schedule="linear"),
        args.timing_repeats, device,
    )
    return [
        ("scikit-learn PCD-1", rbm_from_sklearn(sk), sk_s),
        ("ebrl PCD-1 (sklearn settings)", est.model_, est_s),
        ("ebrl CD-1", cd, cd_s),
        (f"ebrl PCD tuned ({args.tuned_chains} chains, linear lr, binary data)", tuned, tuned_s),
    ]


# -------------------------------------------------------------------------------------- timing
def large_scale_timing(args: Args, device: torch.device) -> list[dict[str, Any]]:
    """Fit times at 784 visible units: scikit-learn on float64 and float32 input, ebrl on float32."""
    x = large_digits(args.large_samples, seed=0)
    settings = {"n_components": args.large_hidden, "learning_rate": 0.01, "batch_size": args.large_batch,
                "n_iter": args.large_epochs, "random_state": 0}
    _, sk64, sk64_cpu = min_time(lambda: SklearnBernoulliRBM(**settings).fit(x), 1, device)
    _, sk32, sk32_cpu = min_time(lambda: SklearnBernoulliRBM(**settings).fit(x.astype(np.float32)), 1, device)
    _, ours, ours_cpu = min_time(lambda: BernoulliRBMEstimator(**settings, device=str(device)).fit(x), 1, device)
    common = {"scale": f"784 x {args.large_hidden}, batch {args.large_batch}, {args.large_samples} samples, "
                       f"{args.large_epochs} epoch(s)"}
    return [
        {**common, "what": "fit, scikit-learn (float64 input)", "seconds": round(sk64, 3),
         "cpu_seconds": round(sk64_cpu, 3)},
        {**common, "what": "fit, scikit-learn (float32 input)", "seconds": round(sk32, 3),
         "cpu_seconds": round(sk32_cpu, 3)},
        {**common, "what": "fit, ebrl", "seconds": round(ours, 3), "cpu_seconds": round(ours_cpu, 3),
         "speedup_vs_sklearn_f64": round(sk64 / ours, 2), "speedup_vs_sklearn_f32": round(sk32 / ours, 2),
         "cpu_speedup_vs_sklearn_f64": round(sk64_cpu / ours_cpu, 2),
         "cpu_speedup_vs_sklearn_f32": round(sk32_cpu / ours_cpu, 2)},
    ]


def ais_timing(rbm: BernoulliRBM, data: dict[str, Any], args: Args) -> dict[str, Any]:
    """Wall and CPU time of one AIS run with 200 chains on the CPU model (``threads`` worker threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = ais(rbm.cpu(), 200, args.ais_timing_temperatures, data=data["train_bin"], n_workers=args.threads,
                 generator=torch.Generator().manual_seed(0))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"scale": f"64 x {rbm.n_hidden}, 200 chains, {args.ais_timing_temperatures} temperatures",
            "what": f"AIS log Z (cpu, {args.threads} worker thread(s))", "seconds": round(wall, 3),
            "cpu_seconds": round(cpu, 3), "log_z": round(result.log_z, 3)}


# -------------------------------------------------------------------------------------- figure
def sample_grid(models: dict[str, BernoulliRBM], path: str, *, seed: int) -> None:
    """10 x 10 Gibbs samples (p(v | h) after 1000 sweeps from random states) of each model, side by side."""
    try:
        plt = pyplot()
    except ImportError as exc:
        raise ImportError('the sample grid needs matplotlib: pip install "ebrl[plot]"') from exc
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 4.6))
    for ax, (name, rbm) in zip(np.atleast_1d(axes), models.items(), strict=True):
        g = torch.Generator().manual_seed(seed)
        rbm = rbm.cpu()
        v = rbm.sample(100, n_steps=1000, generator=g)
        with torch.no_grad():
            means = rbm.visible_mean(rbm.sample_hidden(v, generator=g))  # (100, 64)
        framed = F.pad(means.view(100, 8, 8), (1, 1, 1, 1), value=0.15)  # (100, 10, 10): a light frame per digit
        tiles = framed.view(10, 10, 10, 10).permute(0, 2, 1, 3).reshape(100, 100).numpy()  # (10*10, 10*10)
        ax.imshow(tiles, cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    save_figure(fig, path, dpi=110)


# ---------------------------------------------------------------------------------------- main
def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean (and standard deviation over seeds) of each metric, per model and size."""
    metrics = ("fit_seconds", "fit_cpu_seconds", "test_ll_nats", "test_pl_exact", "test_pl_sklearn", "logistic_acc")
    out = []
    for key in dict.fromkeys((r["model"], r["n_components"]) for r in rows):
        group = [r for r in rows if (r["model"], r["n_components"]) == key]
        row: dict[str, Any] = {"model": key[0], "n_components": key[1], "seeds": len(group)}
        for m in metrics:
            values = [r[m] for r in group]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            row[m] = f"{statistics.mean(values):.3f} ± {sd:.3f}" if len(values) > 1 else f"{values[0]:.3f}"
        out.append(row)
    return out


def main(args: Args) -> list[dict[str, Any]]:
    if args.quick:
        args = replace(args, **QUICK)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    out_dir = results_dir("rbm_digits")
    x_train, x_test, y_train, y_test = digits()
    data = {
        "x_train": x_train, "x_test": x_test, "y_train": y_train, "y_test": y_test,
        "train_bin": torch.as_tensor(x_train > 0.5, dtype=torch.float32),
        "test_bin": torch.as_tensor(x_test > 0.5, dtype=torch.float32),
    }
    rows: list[dict[str, Any]] = []
    timing: list[dict[str, Any]] = []
    grid_models: dict[str, BernoulliRBM] = {}
    ais_model: BernoulliRBM | None = None
    with threadpool_limits(args.threads):
        for size in args.sizes:
            for seed in args.seeds:
                state = machine_state(args.threads)
                models = train_all(size, seed, data, args, device)
                sk_wall, sk_cpu = models[0][2]
                for name, rbm, (wall, cpu) in models:
                    rows.append({
                        "model": name, "n_components": size, "seed": seed, "fit_seconds": round(wall, 3),
                        "fit_cpu_seconds": round(cpu, 3), "fit_time_vs_sklearn": round(wall / sk_wall, 3),
                        "fit_cpu_vs_sklearn": round(cpu / sk_cpu, 3), **evaluate(rbm, data, args, seed=seed),
                        "machine": state,
                    })
                if seed == args.seeds[0]:
                    if size == 64:
                        ais_model = models[1][1]
                    if size == max(args.sizes):
                        grid_models = {f"ebrl PCD tuned, {size} hidden": models[3][1],
                                       f"scikit-learn, {size} hidden": models[0][1]}
        for size in args.sizes:
            first = [r for r in rows if r["n_components"] == size and r["seed"] == args.seeds[0]]
            scale = f"64 x {size}, batch {args.batch_size}, {args.epochs} epochs, 1437 samples"
            timing.append({"scale": scale, "what": "fit, scikit-learn", "seconds": first[0]["fit_seconds"],
                           "cpu_seconds": first[0]["fit_cpu_seconds"]})
            timing.append({"scale": scale, "what": "fit, ebrl (BernoulliRBMEstimator)",
                           "seconds": first[1]["fit_seconds"], "cpu_seconds": first[1]["fit_cpu_seconds"],
                           "speedup_vs_sklearn_f64": round(first[0]["fit_seconds"] / first[1]["fit_seconds"], 2),
                           "cpu_speedup_vs_sklearn_f64": round(
                               first[0]["fit_cpu_seconds"] / first[1]["fit_cpu_seconds"], 2)})
        timing += large_scale_timing(args, device)
        if ais_model is not None:
            timing.append(ais_timing(ais_model, data, args))
    state = machine_state(args.threads)
    for t in timing:
        t["machine"] = state
    sample_grid(grid_models, str(out_dir / "samples.png"), seed=0)
    info = environment_info(device, packages=("scikit-learn", "threadpoolctl"))
    info["threads (torch and BLAS)"] = str(args.threads)
    notes = (
        "Log-likelihoods: mean over the binarised test set (360 digits, pixels/16 > 0.5), in nats, with log Z "
        f"from ebrl's AIS ({args.ais_chains} chains, {args.ais_temperatures} linear-schedule temperatures, "
        "base-rate start from the binarised training marginals); scikit-learn's weights are evaluated by the "
        "same code. test_pl_exact sums all 64 conditionals on the binarised test set; test_pl_sklearn is "
        "scikit-learn's score_samples (64 x one random conditional) on the test set as given.",
        "fit_time_vs_sklearn < 1 means faster than scikit-learn (wall time of fit, minimum of "
        f"{args.timing_repeats} identically seeded runs; fit_cpu_* is the process CPU time, steadier on a busy "
        "machine). 'machine' flags a loaded machine: timings taken while other jobs ran are unreliable.",
    )
    write_table(out_dir, "rbm_digits", rows, title="RBMs on digits: ebrl and scikit-learn, per seed",
                config=args, info=info, notes=notes)
    write_table(out_dir, "summary", summarise(rows), title="RBMs on digits: mean ± sd over seeds",
                config=args, info=info, notes=notes)
    write_table(out_dir, "timing", timing, title="RBM timing: fit and AIS", config=args, info=info,
                notes=("Wall-clock seconds on the device above. The 784-unit data are digits upsampled to "
                       "28 x 28, shifted by up to 2 pixels and binarised.",))
    return rows + timing


if __name__ == "__main__":
    for row in main(parse_args(Args, description=__doc__.splitlines()[0])):
        print(row)
