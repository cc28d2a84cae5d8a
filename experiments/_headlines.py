"""The README's results table, computed from the per-seed rows under ``results/``.

Each headline is one function that reads the CSV rows an experiment wrote and returns a
:class:`Headline`: the task (with the number of seeds), ebrl's figure, the baseline's figure from the
same run, and a verdict taken from the 95% bootstrap interval of the paired (by seed) difference, so
that a difference whose interval includes zero is called a tie. Nothing in the table is typed by hand:
``python -m experiments.all --no-run`` rewrites the table between the README's ``<!-- headlines -->``
markers, and ``tests/test_readme.py`` fails when the README differs from what this module computes.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments._common import RESULTS_ROOT
from experiments.stats import Interval, bootstrap_ci, final_window, mean, paired_difference_ci

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- headlines: start -->", "<!-- headlines: end -->"
"""The README lines between which the generated table sits."""


@dataclass(frozen=True)
class Headline:
    """One row of the README's results table."""

    task: str
    link: str
    ebrl: str
    baseline: str
    verdict: str


def rows(path: Path, **match: str) -> list[dict[str, str]]:
    """The rows of the CSV at ``path`` whose columns equal ``match``; a missing file raises."""
    if not path.is_file():
        raise FileNotFoundError(f"headline source not found: {path}")
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if all(r.get(k) == v for k, v in match.items())]


def by_seed(table: list[dict[str, str]], column: str) -> dict[int, float]:
    """``seed -> float(row[column])`` over the rows whose seed is an integer (not a summary row)."""
    return {int(r["seed"]): float(r[column]) for r in table if r["seed"].isdigit()}


def paired(a: dict[int, float], b: dict[int, float]) -> tuple[list[int], Interval]:
    """The seeds both ran and the interval of the mean difference ``a - b`` over them."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("no seed was run by both methods")
    return seeds, paired_difference_ci([a[s] for s in seeds], [b[s] for s in seeds])


def verdict(diff: Interval, *, higher_is_better: bool = True, unit: str = "") -> str:
    """``ahead``, ``behind`` or ``tie`` from the interval of ebrl - baseline, with the interval itself."""
    word = "tie" if diff.includes(0.0) else "ahead" if (diff.low > 0) == higher_is_better else "behind"
    return f"{word}: difference {fmt(diff.point)} [{fmt(diff.low)}, {fmt(diff.high)}]{unit}"


def fmt(x: float) -> str:
    """Three significant figures, no exponent for the magnitudes the table holds."""
    if x == 0:
        return "0"
    if float(x).is_integer() and abs(x) < 1e6:
        return f"{x:,.0f}"
    digits = max(0, 2 - int(np.floor(np.log10(abs(x)))))
    return f"{x:,.{digits}f}"


def pending(text: str, done: int, declared: int, history: bool) -> str:
    """``text``, or, while a held-out run has fewer seeds than it declared, that no verdict is given yet."""
    if history or done >= declared:
        return text
    so_far = text.replace(": difference", ", difference")
    return f"no verdict until all {declared} seeds have run (so far {so_far})"


def ci(values: Sequence[float]) -> str:
    """``mean [low, high]``: the mean over seeds with its 95% bootstrap interval."""
    i = bootstrap_ci(list(values), mean)
    return f"{fmt(i.point)} [{fmt(i.low)}, {fmt(i.high)}]"


def per_seed(values: dict[int, float], seeds: Sequence[int]) -> str:
    """The values of ``seeds``; from 3 seeds on, their mean and interval first, the values in brackets."""
    listed = " / ".join(fmt(values[s]) for s in seeds)
    return f"{ci([values[s] for s in seeds])} (seeds {listed})" if len(seeds) >= 3 else listed


def multigoal(root: Path) -> Headline:
    from experiments.multigoal import HELD_OUT_SEEDS

    learnt = rows(root / "auto_alpha/multigoal/multigoal.csv", policy="stochastic")
    hand = rows(root / "multigoal/multigoal.csv", policy="stochastic", algo="SoftQ")
    softq = by_seed([r for r in learnt if r["algo"] == "SoftQ"], "goals_reached")
    sac = by_seed([r for r in learnt if r["algo"] == "SAC"], "goals_reached")
    seeds, diff = paired(softq, sac)
    hand_set = by_seed(hand, "goals_reached")
    shared = sorted(set(hand_set) & set(softq))  # where the hand-set α ran too
    fewer = sum(softq[s] < hand_set[s] for s in shared)
    return Headline(
        f"MultiGoal: goals of 4 reached by the stochastic policy, {len(seeds)} held-out seeds",
        "docs/algorithms/softq.md",
        f"SoftQ {per_seed(softq, seeds)} with the learnt α (hand-set α, seeds "
        f"{', '.join(map(str, sorted(hand_set)))}: {', '.join(fmt(hand_set[s]) for s in sorted(hand_set))})",
        f"SAC {per_seed(sac, seeds)}",
        pending(verdict(diff) + " goals", len(seeds), len(HELD_OUT_SEEDS), False)
        + f"; the learnt α reaches fewer goals than the hand-set one on {fewer} of {len(shared)} seeds",
    )


def softq_against_sac(table: list[dict[str, str]], seconds: str, score: str = "final_window_return") -> tuple[
        dict[int, float], dict[int, float], list[int], Interval, float]:
    """SoftQ's and SAC's final scores (the ``score`` column) by seed, the seeds both ran, the paired difference
    SoftQ - SAC and the ratio of their total training ``seconds`` column over those seeds."""
    softq = by_seed([r for r in table if r["algo"] == "SoftQ"], score)
    sac = by_seed([r for r in table if r["algo"] == "SAC"], score)
    seeds, diff = paired(softq, sac)
    time_q = by_seed([r for r in table if r["algo"] == "SoftQ"], seconds)
    time_s = by_seed([r for r in table if r["algo"] == "SAC"], seconds)
    return softq, sac, seeds, diff, sum(time_q[s] for s in seeds) / sum(time_s[s] for s in seeds)


def pendulum(root: Path) -> Headline:
    softq, sac, seeds, diff, ratio = softq_against_sac(rows(root / "auto_alpha/pendulum/pendulum.csv"), "train_seconds")
    speed = f"; SoftQ trains {ratio:.2f}x slower (critics 128 wide against SAC's 256)"
    equal = root / "pendulum_equal_width/pendulum/pendulum.csv"
    if equal.exists():  # the timing run at equal widths (256), side by side, ABBA
        table = rows(equal)
        *_, eq_seeds, _, eq_ratio = softq_against_sac(table, "train_seconds", score="final_return")  # timing only
        steps = max(int(r["step"]) for r in rows(equal.with_name("curves.csv")))
        speed += f"; {eq_ratio:.2f}x at equal widths (a timing run: {steps:,} steps, {len(eq_seeds)} seeds)"
    return Headline(
        f"Pendulum-v1: final score = mean of the last 10% of evaluations, {len(seeds)} seeds, current defaults",
        "docs/algorithms/softq.md",
        f"SoftQ {ci([softq[s] for s in seeds])}", f"SAC {ci([sac[s] for s in seeds])}", verdict(diff) + speed,
    )


def mujoco(env_id: str) -> Callable[[Path], Headline]:
    """The headline of one MuJoCo environment: SoftQ against SAC (rl-zoo3's hyperparameters), held-out seeds."""

    def make(root: Path) -> Headline:
        from experiments.mujoco import HELD_OUT_SEEDS, SOFTQ_CONFIG

        table = [r for r in rows(root / "mujoco/mujoco.csv", env=env_id) if int(r["seed"]) in HELD_OUT_SEEDS]
        softq, sac, seeds, diff, ratio = softq_against_sac(table, "train_wall_s")
        what = f"{len(seeds)} of {len(HELD_OUT_SEEDS)} held-out seeds" if len(seeds) < len(HELD_OUT_SEEDS) \
            else f"{len(seeds)} held-out seeds"
        def show(values: dict[int, float]) -> str:  # one seed has no interval
            return ci([values[s] for s in seeds]) if len(seeds) > 1 else fmt(round(values[seeds[0]]))

        text = verdict(diff) if len(seeds) > 1 else f"one seed: difference {fmt(round(diff.point))}"
        return Headline(
            f"{env_id}: final score at 50,000 steps (mean of the last 10% of evaluations), {what}",
            "docs/algorithms/softq.md",
            f"SoftQ (sampler={SOFTQ_CONFIG['sampler']!r}) {show(softq)}", f"SAC (rl-zoo3) {show(sac)}",
            pending(text, len(seeds), len(HELD_OUT_SEEDS), False) + f"; SoftQ trains {ratio:.2f}x SAC's wall-clock",
        )

    make.__name__ = f"mujoco_{env_id.split('-')[0].lower()}"
    return make


def latency(root: Path) -> Headline:
    """Acting latency against SAC's actor: from the quiet machine's one-thread CPU run when there is one."""
    quiet = root / "bench_policy_device/cpu_quiet_machine.csv"
    table = rows(quiet if quiet.is_file() else root / "bench_policy/bench_policy.csv")

    def ms(policy: str) -> dict[int, float]:
        return {int(r["n_states"]): float(r["latency_ms"]) for r in table if r["policy"] == policy}

    sac = ms("SAC actor")
    lo, hi = min(sac), max(sac)

    def span(x: dict[int, float]) -> str:
        return f"{fmt(x[lo])} to {fmt(x[hi])} ms"

    def ratios(x: dict[int, float]) -> str:
        r = [x[n] / sac[n] for n in sorted(sac)]
        return f"{fmt(min(r))}-{fmt(max(r))}x"

    stochastic, deterministic = ms("SoftQ stochastic"), ms("SoftQ deterministic")
    fast, fast_mode = ms("SoftQ stochastic, proposal"), ms("SoftQ deterministic, proposal")
    where = "CPU, one thread, quiet machine" if quiet.is_file() else "CPU"
    if fast and fast_mode:
        return Headline(
            f"Acting latency, {lo:,} to {hi:,} states, {where}", "docs/algorithms/softq.md",
            f"SoftQ sampler='proposal': stochastic {span(fast)}, deterministic {span(fast_mode)}; "
            f"default sampler: stochastic {span(stochastic)}", f"SAC actor {span(sac)}",
            f"proposal {ratios(fast)} (stochastic), {ratios(fast_mode)} (deterministic); "
            f"default sampler behind: {ratios(stochastic)} (stochastic), {ratios(deterministic)} (deterministic)",
        )
    return Headline(
        f"Acting latency, {lo:,} to {hi:,} states, {where}", "docs/benchmarks.md",
        f"SoftQ stochastic {span(stochastic)}, deterministic {span(deterministic)}", f"SAC actor {span(sac)}",
        f"behind: {ratios(stochastic)} (stochastic), {ratios(deterministic)} (deterministic)",
    )


def cartpole(root: Path) -> Headline:
    from experiments.classic_discrete import HELD_OUT_SEEDS, PREVIOUS_HELD_OUT

    def held_out_rows(folder: str, seeds: tuple[int, ...]) -> list[dict[str, str]]:
        path = root / folder / "classic_discrete.csv"
        return [r for r in rows(path, env="CartPole-v1") if int(r["seed"]) in seeds] if path.is_file() else []

    table = held_out_rows("classic_discrete", HELD_OUT_SEEDS)
    soft = {int(r["seed"]): r for r in table if r["algo"] == "SoftDQN"}
    dqn = {int(r["seed"]): r for r in table if r["algo"] == "DQN"}
    score = "final_window_return"
    previous = len(set(soft) & set(dqn)) < 2  # the current default's run lacks two seeds: the previous default's
    if previous:
        seeds_before, folder = PREVIOUS_HELD_OUT
        table = held_out_rows(folder, seeds_before)
        soft = {int(r["seed"]): r for r in table if r["algo"] == "SoftDQN"}
        dqn = {int(r["seed"]): r for r in table if r["algo"] == "DQN"}
    if len(set(soft) & set(dqn)) < 2:  # no held-out run has reached two seeds: say so, show the history
        table = [r for name in ("classic_discrete_history/classic_discrete.csv",
                                "classic_discrete_more_seeds/classic_discrete/classic_discrete.csv")
                 for r in rows(root / name, env="CartPole-v1")]
        soft = {int(r["seed"]): r for r in table if r["algo"] == "SoftDQN"}
        dqn = {int(r["seed"]): r for r in table if r["algo"] == "DQN"}
        score = "final_return"
    seeds, diff = paired({s: float(r[score]) for s, r in soft.items()}, {s: float(r[score]) for s, r in dqn.items()})

    def show(runs: dict[int, dict[str, str]]) -> str:
        solved = sum(runs[s]["solved_at_end"] == "True" for s in seeds)
        return f"solved {solved} of {len(seeds)}, final score {ci([float(runs[s][score]) for s in seeds])}"

    if score == "final_return":
        what = (f"{len(seeds)} seeds, hand-set α, last evaluation (history: seen while the configuration changed; "
                "the held-out run is in progress)")
        alpha = "α = 1"
    else:
        declared = PREVIOUS_HELD_OUT[0] if previous else HELD_OUT_SEEDS
        what = f"{len(seeds)} fresh held-out seeds" + (
            f" of {len(declared)} (run in progress)" if len(seeds) < len(declared) else "")
        what += ", final score = mean of the last 10% of evaluations"
        alpha = "α learnt by a Newton step"
        if previous:
            what += "; the previous default (α learnt by Adam from 1), the current default's run is in progress"
            alpha = "α learnt by Adam"
    history = score == "final_return"
    text = pending(verdict(diff), len(seeds), len(PREVIOUS_HELD_OUT[0] if previous else HELD_OUT_SEEDS), history)
    before = held_out_rows(PREVIOUS_HELD_OUT[1], PREVIOUS_HELD_OUT[0]) if not previous and not history else []
    if before:  # the previous default's held-out result, on its own seeds (not paired with these)
        old_soft = {int(r["seed"]): float(r[score]) for r in before if r["algo"] == "SoftDQN"}
        old_dqn = {int(r["seed"]): float(r[score]) for r in before if r["algo"] == "DQN"}
        old_seeds, old_diff = paired(old_soft, old_dqn)
        old_solved = sum(r["solved_at_end"] == "True" for r in before if r["algo"] == "SoftDQN")
        text += (f"; the previous default (α learnt by Adam from 1) on its own held-out seeds "
                 f"{old_seeds[0]}-{old_seeds[-1]}: SoftDQN solved {old_solved} of {len(old_seeds)}, "
                 f"{verdict(old_diff)}")
    return Headline(f"CartPole-v1: {what}", "docs/algorithms/softdqn.md", f"SoftDQN ({alpha}) {show(soft)}",
                    f"DQN {show(dqn)}", text)


def ibc_success(path: Path, seeds: tuple[int, ...], method: str) -> dict[int, float]:
    """2-D success by seed of ``method`` in an ``ibc_particle.csv``, over ``seeds`` (``{}`` if the file is absent)."""
    if not path.is_file():
        return {}
    return by_seed([r for r in rows(path, dim="2", method=method) if r["seed"].isdigit() and int(r["seed"]) in seeds],
                   "success")


def ibc(root: Path) -> Headline:
    from experiments.ibc_particle import HELD_OUT_SEEDS, REPORTED_METHOD, TUNING_SEEDS

    held_out = root / "ibc_particle/ibc_particle.csv"
    ours, mse = (ibc_success(held_out, HELD_OUT_SEEDS, m) for m in (REPORTED_METHOD, "MSE-BC"))
    history = len(ours) < 2  # the held-out run has not reached two seeds: say so
    if history:
        tuning = root / "ibc_particle_history/ibc_particle.csv"
        ours, mse = (ibc_success(tuning, TUNING_SEEDS, m) for m in (REPORTED_METHOD, "MSE-BC"))
    seeds, diff = paired(ours, mse)
    if history:
        what = f"{len(seeds)} tuning seeds (history: the held-out run is in progress)"
    else:
        what = f"{len(seeds)} fresh held-out seeds" + (
            f" of {len(HELD_OUT_SEEDS)} (run in progress)" if len(seeds) < len(HELD_OUT_SEEDS) else "")
    pd = ibc_pd(root)  # the same comparison on the IBC authors' task, once it has run
    return Headline(
        f"Particle task 2-D: success rate, {what}", "docs/algorithms/ibc.md",
        f"IBC, {REPORTED_METHOD} {ci([ours[s] for s in seeds])}",
        f"MSE BC {ci([mse[s] for s in seeds])}",
        pending(verdict(diff), len(seeds), len(HELD_OUT_SEEDS), history)
        + ("" if pd else "; not the IBC authors' particle task")
        + ("" if history else ibc_tuning(root, ours, seeds)) + pd,
    )


def ibc_tuning(root: Path, held_out: dict[int, float], seeds: list[int]) -> str:
    """How the held-out figure compares with the tuning seeds' (the history), so a fall is stated."""
    from experiments.ibc_particle import REPORTED_METHOD, TUNING_SEEDS

    tuning = ibc_success(root / "ibc_particle_history/ibc_particle.csv", TUNING_SEEDS, REPORTED_METHOD)
    held, tuned = mean([held_out[s] for s in seeds]), mean(list(tuning.values()))
    word = "lower than" if held < tuned else "at least"
    return f"; {word} the {len(tuning)} tuning seeds' {fmt(tuned)}, where the configuration was chosen"


def ibc_pd(root: Path) -> str:
    """The same comparison on the IBC authors' PD particle task, once two held-out seeds have run there ("" before)."""
    from experiments.ibc_particle import HELD_OUT_SEEDS, REPORTED_METHOD

    path = root / "ibc_particle_pd/ibc_particle.csv"
    ours, mse = (ibc_success(path, HELD_OUT_SEEDS, m) for m in (REPORTED_METHOD, "MSE-BC"))
    if len(set(ours) & set(mse)) < 2:
        return ""
    seeds, diff = paired(ours, mse)
    text, done = verdict(diff), len(seeds) >= len(HELD_OUT_SEEDS)
    which = f"{len(seeds)}" if done else f"{len(seeds)} of {len(HELD_OUT_SEEDS)}"
    which += " held-out seeds" + ("" if done else " (no verdict yet)")
    return (f"; IBC authors' PD task, {which}: {ci([ours[s] for s in seeds])} against {ci([mse[s] for s in seeds])}, "
            + (text if done else "so far " + text.replace(": difference", ", difference")))


def priors(root: Path) -> Headline:
    """SparseGoal: the final deterministic success of SoftQ with the implicit-BC residual prior against none.

    The fresh held-out seeds of the later configuration (``NEXT_HELD_OUT_SEEDS``) once two of them have run both
    arms; until then the first held-out seeds. The other set's outcome is given beside it."""
    from experiments.priors import HELD_OUT_SEEDS, NEXT_HELD_OUT_SEEDS

    table = rows(root / "priors/runs.csv", algo="SoftQ")

    def arms(seed_set: tuple[int, ...]) -> tuple[dict[int, float], dict[int, float], list[dict[str, str]]]:
        mine = [r for r in table if int(r["seed"]) in seed_set]
        return (by_seed([r for r in mine if r["variant"] == "ibc_residual"], "final_success_rate"),
                by_seed([r for r in mine if r["variant"] == "none"], "final_success_rate"), mine)

    residual, none, mine = arms(NEXT_HELD_OUT_SEEDS)
    declared, other = NEXT_HELD_OUT_SEEDS, HELD_OUT_SEEDS
    if len(set(residual) & set(none)) < 2:
        (residual, none, mine), declared, other = arms(HELD_OUT_SEEDS), HELD_OUT_SEEDS, NEXT_HELD_OUT_SEEDS
    seeds, diff = paired(residual, none)
    steps = max(int(float(r["steps_trained"])) for r in mine if int(r["seed"]) in seeds)

    solved = sum(residual[s] >= 0.8 for s in seeds)
    curves = rows(root / "priors/runs_curves.csv", algo="SoftQ")
    configs = {(r["variant"], r["seed"]): r["config"] for r in mine}

    def window(variant: str) -> list[float]:  # each seed's final score: its evaluations in the last 10%
        return [final_window([(int(c["step"]), float(c["success_rate"])) for c in curves
                              if (c["variant"], c["seed"], c["config"]) == (variant, str(s), configs[variant, str(s)])],
                             steps) for s in seeds]

    windows = window("ibc_residual"), window("none")
    if windows == ([residual[s] for s in seeds], [none[s] for s in seeds]):
        window_text = "; the same over the last 10% of evaluations"
    else:
        window_text = f"; over the last 10% of evaluations {ci(windows[0])} against {ci(windows[1])}"
    elsewhere, _, elsewhere_rows = arms(other)
    if elsewhere:
        budget = max(int(float(r["steps_trained"])) for r in elsewhere_rows if r["variant"] == "ibc_residual")
        elsewhere_text = (f"; on seeds {min(other)}-{max(other)} ({budget:,} steps) "
                          f"{sum(v >= 0.8 for v in elsewhere.values())} of {len(elsewhere)}")
    else:
        elsewhere_text = ""
    return Headline(
        f"Sparse goal: final deterministic success after {steps:,} steps, {len(seeds)} held-out seeds (SoftQ)",
        "docs/algorithms/value-priors.md",
        f"implicit-BC state-action prior under the critic {per_seed(residual, seeds)}",
        f"no prior {per_seed(none, seeds)}",
        pending(verdict(diff), len(seeds), len(declared), False)
        + f"; at least 80% on {solved} of {len(seeds)} seeds (the target is every seed){window_text}{elsewhere_text}",
    )


def mountaincar(root: Path) -> Headline | None:
    """MountainCarContinuous: SoftQ with the implicit-BC state-action prior against every other arm, over the runs
    that finished the budget (``None``, no row, before any has). Unfinished runs are in the table of
    ``results/mountaincar/`` but not here.

    Arms with no solving evaluation on any seed are listed together; the others with their final score. The
    verdict pairs SoftQ+ibc with SoftQ (the same agent without the prior) and, when an arm with a solving
    evaluation has a higher mean final score than SoftQ, with the best such arm (the strongest baseline)."""
    from experiments.mountaincar import ARMS, SOLVED_RETURN, Args

    path = root / "mountaincar/runs.csv"
    if not path.is_file():
        return None
    budget, declared = Args().total_timesteps, len(Args().seeds)
    done = [r for r in rows(path) if int(float(r["steps_trained"])) >= budget]

    def arm(name: str) -> tuple[dict[int, float], dict[int, str]]:
        mine = [r for r in done if r["arm"] == name]
        return by_seed(mine, "final_window_return"), {int(r["seed"]): r["steps_to_solving_eval"] for r in mine}

    def solved(name: str) -> str:
        score = arm(name)[0]
        return f"solved {sum(v >= SOLVED_RETURN for v in score.values())} of {len(score)}"

    def show(name: str) -> str:
        score, first = arm(name)
        if not score:
            return f"{name} not run yet"
        seeds = sorted(score)
        steps = ""
        firsts = sorted(int(first[s]) for s in seeds if first[s])
        if firsts:  # the range of the steps of the first solving evaluation, over the seeds that had one
            steps = f", first at {firsts[0]:,}" + (f"-{firsts[-1]:,}" if firsts[-1] > firsts[0] else "")
        value = ci([score[s] for s in seeds]) if len(seeds) > 1 else fmt(score[seeds[0]])
        return f"{name} {value}, {solved(name)}{steps}"

    baselines = [name for name in ARMS if name != "SoftQ+ibc" and arm(name)[0]]
    never = [name for name in baselines if not any(arm(name)[1].values())]
    shown = [show(name) for name in baselines if name not in never]
    counts = {len(arm(name)[0]) for name in never}
    if len(counts) == 1:
        n = counts.pop()
        shown.append(f"no solving evaluation on {n} seed{'s each' if n > 1 else ''}: {', '.join(never)}")
    elif never:
        shown.append("no solving evaluation: " + ", ".join(f"{name} ({len(arm(name)[0])} seeds)" for name in never))
    prior = arm("SoftQ+ibc")[0]

    def versus(name: str) -> tuple[str, int]:  # the verdict, and on how many paired seeds
        other = arm(name)[0]
        shared = sorted(set(prior) & set(other))
        if len(shared) < 2:
            return f"none yet: {len(shared)} of {declared} seeds have finished SoftQ+ibc and {name}", len(shared)
        return verdict(paired(prior, other)[1]) + f" (SoftQ+ibc - {name})", len(shared)

    comparisons = [versus("SoftQ")]
    means = {name: float(np.mean(list(arm(name)[0].values()))) for name in baselines if name not in never}
    best = max(means, key=means.__getitem__, default="SoftQ")  # the strongest arm that ever solved
    if best != "SoftQ" and means[best] > means.get("SoftQ", -np.inf):
        comparisons.append(versus(best))
    text = "; ".join(c for c, _ in comparisons)
    done_seeds = min(n for _, n in comparisons)
    if done_seeds < declared:  # said once for the whole row
        text = f"no verdict until all {declared} seeds have run; so far " + text.replace(": difference",
                                                                                                ", difference")
    references = root / "mountaincar/references.csv"
    if references.is_file():  # what the demonstrations and the prior give without learning
        demo = [float(r["eval_return"]) for r in rows(references, policy="energy-pumping controller")]
        alone = [float(r["eval_return"]) for r in rows(references, policy="implicit BC alone")]
        text += (f"; demonstrator {ci(demo)}, IBC alone solved {sum(v >= SOLVED_RETURN for v in alone)} "
                 f"of {len(alone)}")
    return Headline(
        f"MountainCarContinuous-v0: final score at {budget:,} steps, "
        + (f"{declared}" if done_seeds >= declared else f"{len(prior)} of {declared}")
        + f" held-out seeds (solved: >= {SOLVED_RETURN:g})",
        "docs/algorithms/value-priors.md", show("SoftQ+ibc"), "; ".join(shown), text,
    )


def rbm(root: Path) -> Headline:
    table = rows(root / "rbm_digits/rbm_digits.csv", n_components="64")

    def ll(model: str, representation: str, column: str = "test_ll_nats") -> dict[int, float]:
        return by_seed([r for r in table if r["model"].startswith(model) and r["representation"] == representation],
                       column)

    ours, sk = "ebrl PCD-1 (BoltzmannModel.fit)", "scikit-learn PCD-1"
    seeds, diff_bin = paired(ll(ours, "binary"), ll(sk, "binary"))
    _, diff_grey = paired(ll(ours, "greyscale"), ll(sk, "greyscale"))
    cpu = sum(ll(ours, rep, "fit_cpu_seconds")[s] for rep in ("binary", "greyscale") for s in seeds) / sum(
        ll(sk, rep, "fit_cpu_seconds")[s] for rep in ("binary", "greyscale") for s in seeds)
    return Headline(
        f"Digits RBM, 64 hidden, scikit-learn's settings on the same data: test log-likelihood (nats), "
        f"{len(seeds)} seeds", "docs/algorithms/rbm.md",
        f"binarised {ci([ll(ours, 'binary')[s] for s in seeds])}; greyscale "
        f"{ci([ll(ours, 'greyscale')[s] for s in seeds])}",
        f"scikit-learn binarised {ci([ll(sk, 'binary')[s] for s in seeds])}; greyscale "
        f"{ci([ll(sk, 'greyscale')[s] for s in seeds])}",
        f"binarised {verdict(diff_bin)}; greyscale {verdict(diff_grey)}; fit CPU time {cpu:.2f}x scikit-learn's "
        "(1 thread each)",
    )


def anomaly(root: Path) -> Headline:
    table = rows(root / "anomaly/anomaly_runs.csv", benchmark="breast_cancer")

    def auroc(prefix: str) -> dict[int, float]:
        return by_seed([r for r in table if r["method"].startswith(prefix)], "auroc")

    # covariance="auto" is post hoc (its candidates grew after a test result; experiments/anomaly.py), whether
    # or not the table predates the label; Ledoit-Wolf is the Gaussian fixed a priori.
    auto, shrunk, iso = auroc("ebrl gaussian, covariance=auto"), auroc("ebrl gaussian, Ledoit-Wolf"), auroc(
        "IsolationForest")
    seeds, diff_auto = paired(auto, iso)
    _, diff_shrunk = paired(shrunk, iso)
    return Headline(
        f"Breast-cancer anomalies: AUROC, {len(seeds)} seeds", "docs/algorithms/anomaly.md",
        f"Gaussian energy, Ledoit-Wolf (a priori) {ci([shrunk[s] for s in seeds])}; auto covariance [post hoc] "
        f"{ci([auto[s] for s in seeds])}",
        f"IsolationForest {ci([iso[s] for s in seeds])}",
        f"a priori {verdict(diff_shrunk)}; post hoc {verdict(diff_auto)}; neural energies behind",
    )


def denoising(root: Path) -> Headline:
    table = rows(root / "denoise_digits/denoise_digits_runs.csv", sigma="0.2")
    methods = sorted({r["method"] for r in table})
    psnr = {m: by_seed([r for r in table if r["method"] == m], "psnr_db") for m in methods}
    ours = "dsm_tweedie (ebrl)"
    baselines = [m for m in methods if m.startswith(("pca", "gaussian_filter", "wiener"))]
    best = max(baselines, key=lambda m: float(np.mean(list(psnr[m].values()))))
    seeds, diff = paired(psnr[ours], psnr[best])
    return Headline(
        f"Digits denoising at σ = 0.2: PSNR (dB), {len(seeds)} seeds", "docs/algorithms/denoising.md",
        f"DSM + Tweedie {ci([psnr[ours][s] for s in seeds])}",
        f"best baseline, {best} {ci([psnr[best][s] for s in seeds])}", verdict(diff, unit=" dB"),
    )


def generation(root: Path) -> Headline:
    labelled = rows(root / "generate_digits/generate_digits.csv")
    unlabelled = rows(root / "generate_digits_unlabelled/generate_digits.csv")

    def cell(table: list[dict[str, str]], prefix: str) -> str:
        return next(r["mmd2"] for r in table if r["method"].startswith(prefix))

    def tie(table: list[dict[str, str]], prefix: str) -> str:
        text = cell(table, "paired difference: " + prefix)
        low, high = (float(x) for x in re.findall(r"\[([^,]+), ([^\]]+)\]", text)[0])
        return "tie" if low <= 0 <= high else "ahead" if high < 0 else "behind"

    seeds = next(r["seeds"] for r in labelled if r["method"].startswith("gmm"))
    return Headline(
        f"Digits generation: squared MMD (lower is better), {seeds} held-out seeds", "docs/algorithms/generation.md",
        f"noise-conditional energy {cell(labelled, 'ncsn ancestral')} with class labels, "
        f"{cell(unlabelled, 'ncsn without labels')} without",
        f"GaussianMixture {cell(labelled, 'gmm')}",
        f"{tie(labelled, 'ncsn ancestral')} with labels, {tie(unlabelled, 'ncsn without labels')} without "
        "(paired intervals in the linked page)",
    )


HEADLINES: tuple[Callable[[Path], Headline | None], ...] = (
    multigoal, pendulum, mujoco("HalfCheetah-v5"), mujoco("Hopper-v5"), latency, cartpole,
    ibc, priors, mountaincar, rbm, anomaly, denoising, generation,
)
"""The README's rows, in order (a row whose function returns ``None`` has no results yet and is left out)."""


def table(root: Path = RESULTS_ROOT) -> str:
    """The README's results table (Markdown), computed from the CSVs under ``root``."""
    lines = ["| task (link: details) | ebrl | baseline, same run | verdict (ebrl - baseline, 95% CI) |",
             "|---|---|---|---|"]
    for make in HEADLINES:
        h = make(root)
        if h is None:
            continue
        lines.append(f"| [{h.task}]({h.link}) | {h.ebrl} | {h.baseline} | {h.verdict} |")
    return "\n".join(lines)


def render(readme: str, root: Path = RESULTS_ROOT) -> str:
    """``readme`` with the text between the headline markers replaced by :func:`table`."""
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), flags=re.S)
    if not pattern.search(readme):
        raise ValueError(f"the README has no '{START}' ... '{END}' block to fill")
    return pattern.sub(lambda _: f"{START}\n{table(root)}\n{END}", readme)


def update_readme(path: Path = ROOT / "README.md", root: Path = RESULTS_ROOT) -> bool:
    """Rewrite the README's table from ``root``; return whether it changed."""
    old = path.read_text(encoding="utf-8")
    new = render(old, root)
    if new != old:
        path.write_text(new, encoding="utf-8")
    return new != old


def pendulum_pooled(root: Path) -> list[dict[str, object]]:
    """Pendulum-v1 at the earlier defaults, seeds 0-5 pooled from the three folders that hold them: per seed, then
    each agent's mean final return (95% bootstrap CI), the paired difference SoftQ - SAC and the wall-clock ratio."""
    folders = ("pendulum/pendulum.csv", "pendulum_seeds_3_4/pendulum/pendulum.csv",
               "pendulum_seed_5/pendulum/pendulum.csv")
    table = [r for name in folders for r in rows(root / name) if r["seed"].isdigit()]
    ret = {a: by_seed([r for r in table if r["algo"] == a], "final_return") for a in ("SoftQ", "SAC")}
    sec = {a: by_seed([r for r in table if r["algo"] == a], "train_seconds") for a in ("SoftQ", "SAC")}
    seeds, diff = paired(ret["SoftQ"], ret["SAC"])
    out: list[dict[str, object]] = [
        {"seed": s, "SoftQ": fmt(ret["SoftQ"][s]), "SAC": fmt(ret["SAC"][s]),
         "SoftQ - SAC": fmt(ret["SoftQ"][s] - ret["SAC"][s]),
         "wall-clock ratio SoftQ / SAC": f"{sec['SoftQ'][s] / sec['SAC'][s]:.2f}"} for s in seeds
    ]
    ratio = bootstrap_ci([sec["SoftQ"][s] / sec["SAC"][s] for s in seeds], mean)
    out.append({"seed": f"mean of {len(seeds)} [95% CI]", "SoftQ": ci([ret["SoftQ"][s] for s in seeds]),
                "SAC": ci([ret["SAC"][s] for s in seeds]), "SoftQ - SAC": verdict(diff),
                "wall-clock ratio SoftQ / SAC": f"{ratio.point:.2f} [{ratio.low:.2f}, {ratio.high:.2f}]"})
    return out


POOLED: dict[str, tuple[str, Callable[[Path], list[dict[str, object]]]]] = {
    "pendulum_seeds_0_5": ("Pendulum-v1, SoftQ against SAC at the earlier defaults (hand-set α): seeds 0-5 pooled "
                           "from results/pendulum, pendulum_seeds_3_4 and pendulum_seed_5", pendulum_pooled),
}
"""Tables pooled across result folders: name -> (title, rows)."""


def write_pooled(root: Path = RESULTS_ROOT) -> list[Path]:
    """Write each :data:`POOLED` table to ``root/pooled/<name>.{csv,md}``; return the Markdown paths."""
    from experiments._common import results_dir, write_table

    out = results_dir("pooled", root=root)
    return [write_table(out, name, make(root), title=title,
                        notes=("Computed by experiments/_headlines.py from the per-seed rows of the folders named in "
                               "the title (python -m experiments.all --no-run); each interval is a 95% bootstrap "
                               "interval over seeds, and a difference whose interval includes zero is a tie.",))[1]
            for name, (title, make) in POOLED.items()]
