"""The sampler benchmark's timing core runs on a tiny configuration and reports what it promises.

No assertion on timings or their ratios: these tests check the table (columns, positive
throughputs, statuses) and that the implementations compare the same computation: started from
the same x0 with the same generator seed, the bare loop, ebrl and torchebm must produce the same
samples up to float32 rounding (1e-5 after 2 steps of size 1e-2), which fails at once if one of
them used another step size, noise scale or noise stream.
"""

from __future__ import annotations

import csv
import importlib.util
import shutil

import pytest
import torch

from experiments import _common
from experiments.bench_samplers import (
    COLUMNS,
    Args,
    bench_langevin,
    flops_per_chain_step,
    main,
    make_energy,
)

HAS_TORCHEBM = importlib.util.find_spec("torchebm") is not None
HAS_CXX = any(shutil.which(c) is not None for c in ("g++", "c++", "clang++"))
CPU = torch.device("cpu")


def tiny(dim: int = 3, chains: int = 8) -> tuple:
    energy = make_energy(dim, 16, seed=0, device=CPU)
    x0 = torch.randn(chains, dim, generator=torch.Generator().manual_seed(0))
    return energy, x0


def test_bench_core_reports_positive_throughputs_and_same_samples_for_every_implementation():
    energy, x0 = tiny()
    rows, samples = bench_langevin(energy, x0, n_steps=2, step_size=0.01, repeats=2, matmul_gflop_per_s=10.0)
    assert [r["implementation"] for r in rows] == ["bare", "ebrl", "torchebm"]
    for row in rows:
        assert tuple(row) == COLUMNS
        assert (row["dim"], row["chains"], row["steps"]) == (3, 8, 2)
    ran = [r for r in rows if r["status"] == "ok"]
    assert {r["implementation"] for r in ran} >= {"bare", "ebrl"}
    for row in ran:
        assert row["chain_steps_per_s"] > 0 and row["median_ms"] > 0 and row["gflop_per_s"] > 0
        assert row["frac_of_matmul"] == pytest.approx(row["gflop_per_s"] / 10.0)
        assert row["time_vs_bare"] > 0
        assert samples[row["implementation"]].shape == x0.shape
    ebrl = next(r for r in rows if r["implementation"] == "ebrl")
    assert ebrl["target"].startswith("≤ 1.1 × bare") and ebrl["meets_target"] in ("yes", "no")
    for name in samples:
        torch.testing.assert_close(samples[name], samples["bare"], rtol=0, atol=1e-5)
    torchebm = rows[2]
    if HAS_TORCHEBM:
        assert torchebm["status"] == "ok", torchebm["status"]
        assert ebrl["time_vs_torchebm"] > 0
    else:
        assert torchebm["status"].startswith("unavailable") and torchebm["median_ms"] == ""


def test_flop_count_is_forward_plus_backward_to_input_of_the_matmuls():
    # D=2, W=128: forward 2·(2·128 + 128·128 + 128·1) = 33,536; backward to x the same.
    assert flops_per_chain_step(2, 128) == 2 * 33_536


@pytest.mark.slow
@pytest.mark.skipif(not HAS_CXX, reason="torch.compile on CPU needs a C++ compiler")
def test_bench_core_runs_the_compiled_sampler_of_the_small_batch_section():
    # On a GPU this section compares against CUDA graphs; on the CPU it checks the code path runs.
    torch._dynamo.reset()
    energy, x0 = tiny(dim=2, chains=2)
    rows, samples = bench_langevin(
        energy, x0, implementations=("bare", "ebrl", "ebrl compiled"), n_steps=2, step_size=0.01, repeats=1,
        matmul_gflop_per_s=10.0, section="gpu small batch",
    )
    compiled = rows[2]
    assert compiled["implementation"] == "ebrl compiled" and compiled["status"] == "ok"
    assert compiled["target"].startswith("≤ 0.333 × bare") and compiled["warmup_s"] > 0
    torch.testing.assert_close(samples["ebrl compiled"], samples["bare"], rtol=0, atol=1e-5)


def test_main_writes_csv_and_markdown_with_versions_and_device(tmp_path):
    args = Args(device="cpu", dims=(2,), chains=(4,), n_steps=2, repeats=1, width=8, matmul_size=64, out=str(tmp_path))
    threads = torch.get_num_threads()
    try:
        rows = main(args)
    finally:
        torch.set_num_threads(threads)  # main() sets the script's thread count; keep other tests' intact
    out = tmp_path / "bench_samplers"
    with open(out / "bench_samplers.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) == 3 and tuple(table[0]) == COLUMNS
    md = (out / "bench_samplers.md").read_text()
    for needle in ("| section |", "torch threads", "load average", "torchebm:", "numpy:", "ebrl:", "skipped: no CUDA"):
        assert needle in md, needle


def test_write_table_unions_columns_and_records_config(tmp_path):
    rows = [{"a": 1, "b": 2.5}, {"a": 3, "c": "x|y"}]
    csv_path, md_path = _common.write_table(tmp_path, "t", rows, title="T", config=Args(), notes=["note"])
    with open(csv_path) as f:
        assert list(csv.reader(f)) == [["a", "b", "c"], ["1", "2.5", ""], ["3", "", "x|y"]]
    md = md_path.read_text()
    assert "| a | b | c |" in md and "x\\|y" in md and "- n_steps: `100`" in md and "note" in md
    with pytest.raises(ValueError, match="at least one row"):
        _common.write_table(tmp_path, "t", [], title="T")


def test_parse_args_builds_options_from_the_dataclass():
    args = _common.parse_args(Args, description="x", argv=["--quick", "--dims", "2", "8", "--threads", "2"])
    assert args.quick is True and args.dims == (2, 8) and args.threads == 2 and args.device == "auto"


def test_parse_args_refuses_a_bool_field_that_argparse_would_read_as_a_negation():
    # BooleanOptionalAction reads any "--no-..." as the negation: "--no-run" for a field `no_run` set it False.
    import dataclasses

    @dataclasses.dataclass
    class Negated:
        no_run: bool = False

    with pytest.raises(TypeError, match="'no_run' must not start with 'no_'"):
        _common.parse_args(Negated, description="x", argv=["--no-run"])

    @dataclasses.dataclass
    class Positive:
        run: bool = True

    assert _common.parse_args(Positive, description="x", argv=["--no-run"]).run is False


def test_parse_args_reads_optional_fields_and_keeps_none_when_left_out():
    from experiments.classic_discrete import Args as CDArgs

    assert _common.parse_args(CDArgs, description="x", argv=[]).softdqn_alpha is None
    assert _common.parse_args(CDArgs, description="x", argv=["--softdqn-alpha", "0.5"]).softdqn_alpha == 0.5
    with pytest.raises(SystemExit):
        _common.parse_args(CDArgs, description="x", argv=["--softdqn-alpha", "hot"])


def test_every_experiment_prints_its_help(capsys):
    # argparse %-formats help texts: a literal "%" in one (such as "2% of the steps") broke --help.
    import importlib

    from experiments.all import experiment_names

    for name in experiment_names():
        module = importlib.import_module(f"experiments.{name}")
        with pytest.raises(SystemExit) as exit_info:
            _common.parse_args(module.Args, description=name, argv=["--help"])
        assert exit_info.value.code == 0, name
        assert "--quick" in capsys.readouterr().out, name


def test_save_figure_writes_a_png_and_closes_the_figure(tmp_path):
    pytest.importorskip("matplotlib")
    plt = _common.pyplot()
    assert plt.get_backend().lower() == "agg"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    _common.save_figure(fig, tmp_path / "line.png")
    assert (tmp_path / "line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.number not in plt.get_fignums()  # closed: a long sweep does not pile up figures


def test_classic_discrete_eval_curve_records_every_eval_freq_steps_and_the_end_of_one_learn_call():
    # classic_discrete trains each agent in one learn() call (learn() chunks restart SB3's progress,
    # which ended DQN's epsilon decay within the first chunk) and evaluates from this callback.
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.monitor import Monitor

    from experiments.classic_discrete import EvalCurve

    model = DQN("MlpPolicy", "CartPole-v1", learning_starts=10_000, exploration_fraction=0.5,
                exploration_final_eps=0.0, policy_kwargs={"net_arch": [8]}, seed=0)
    rates = []
    callback = EvalCurve(Monitor(gym.make("CartPole-v1")), eval_freq=300, n_eval_episodes=1)
    callback._evaluate = (lambda original: lambda: (rates.append(model.exploration_rate), original())[1])(
        callback._evaluate
    )
    model.learn(1_000, callback=callback)
    assert [step for step, _, _ in callback.curve] == [300, 600, 900, 1000]  # and once at the end
    assert all(mean >= 1 for _, mean, _ in callback.curve)
    # epsilon falls from 1 to 0 over the first half of the 1,000 steps: 0.4 at step 300, 0 after 500
    assert rates[0] == pytest.approx(0.4, abs=0.01) and rates[1:] == [0.0, 0.0, 0.0]


def test_ibc_particle_resume_keeps_only_rows_of_the_same_configuration(tmp_path):
    from experiments.ibc_particle import Args as IBCArgs
    from experiments.ibc_particle import config_key, earlier_rows

    args = IBCArgs()
    same, other = config_key(args), config_key(IBCArgs(epochs=args.epochs + 1))
    assert same != other and same == config_key(IBCArgs(dims=(16,), seeds=(5,), resume=True))
    (tmp_path / "ibc_particle.csv").write_text(
        "dim,seed,method,success,config,demo_steps\n"
        f"2,0,expert,1,{same},7166.0\n"  # an earlier table wrote the integer as a float
        f"8,0,expert,1,{other},900\n"  # another configuration: dropped
        f"2,mean of 1,expert,1,,\n"  # a summary row: dropped
    )
    rows = earlier_rows(tmp_path, args)
    assert rows == [{"dim": 2, "seed": 0, "method": "expert", "success": 1.0, "config": same, "demo_steps": 7166}]


def test_classic_discrete_resume_reruns_only_the_agent_whose_settings_changed(tmp_path):
    from experiments.classic_discrete import SOFTDQN_ALPHA, config_key, earlier_runs
    from experiments.classic_discrete import Args as CDArgs

    base, env = CDArgs(), "CartPole-v1"
    dqn, soft = config_key(base, "DQN", env), config_key(base, "SoftDQN", env)
    changed = CDArgs(softdqn_double_q=not base.softdqn_double_q)
    assert config_key(changed, "DQN", env) == dqn and config_key(changed, "SoftDQN", env) != soft
    assert config_key(CDArgs(eval_freq=1000), "DQN", env) != dqn  # a shared setting changes both
    assert config_key(CDArgs(seeds=(7,), algos=("DQN",), resume=True), "DQN", env) == dqn
    # SoftDQN's alpha comes from SOFTDQN_ALPHA (learnt, "auto") unless given; the digest holds the value used
    assert SOFTDQN_ALPHA[env] == "auto" and config_key(base, "DQN", "Acrobot-v1") == dqn
    given = config_key(CDArgs(softdqn_alpha=0.5), "SoftDQN", env)
    assert given != soft and given == config_key(CDArgs(softdqn_alpha=0.5), "SoftDQN", env)
    (tmp_path / "classic_discrete.csv").write_text(
        "env,algo,seed,final_return,best_return,threshold,solved_at_step,solved_at_end,late_collapse,steps,"
        "seconds,config\n"
        f"CartPole-v1,DQN,0,19.0,500.0,475.0,5000,False,True,50176,158.2,{dqn}\n"
        f"CartPole-v1,SoftDQN,0,500.0,500.0,475.0,,True,False,50176,194.7,{soft}\n"
    )
    (tmp_path / "curves.csv").write_text(
        "env,algo,seed,step,eval_return,eval_std,config\n"
        f"CartPole-v1,DQN,0,2500,194.5,21.1,{dqn}\nCartPole-v1,SoftDQN,0,2500,9.0,1.0,{soft}\n"
    )
    rows, curves = earlier_runs(tmp_path, base)
    assert [r["algo"] for r in rows] == ["DQN", "SoftDQN"] and len(curves) == 2
    assert rows[0]["late_collapse"] is True and rows[0]["solved_at_step"] == 5000 and rows[1]["solved_at_step"] == ""
    rows, curves = earlier_runs(tmp_path, changed)  # SoftDQN's settings changed: only DQN is kept
    assert [r["algo"] for r in rows] == ["DQN"] and rows[0]["final_return"] == 19.0 and rows[0]["seed"] == 0
    assert curves == [{"env": "CartPole-v1", "algo": "DQN", "seed": 0, "step": 2500, "eval_return": 194.5,
                       "eval_std": 21.1, "config": dqn}]
    assert earlier_runs(tmp_path / "missing", base) == ([], [])


def quick_main(bench, tmp_path, monkeypatch):
    """``bench.main`` at its quick settings, writing under ``tmp_path``, with the caller's torch thread count kept
    (``main`` sets the script's own)."""
    monkeypatch.setattr(_common, "RESULTS_ROOT", tmp_path)
    threads = torch.get_num_threads()
    try:
        return bench.main(bench.Args(quick=True))
    finally:
        torch.set_num_threads(threads)


def test_softq_update_bench_times_every_agent_in_alternating_rounds_against_sac(tmp_path, monkeypatch):
    from experiments import bench_softq_update as bench

    summary = quick_main(bench, tmp_path, monkeypatch)
    assert [r["agent"] for r in summary] == ["SAC", "SoftQ", "SoftQ, 2 value draws", "SoftQ, 2 value draws, ReLU"]
    assert summary[0]["cpu x SAC"] == 1 and summary[0]["cpu x SAC, per round: median [min, max]"] == "1.00 [1.00, 1.00]"
    assert all(r["cpu ms per update"] > 0 and r["wall ms per update"] > 0 for r in summary)
    out = tmp_path / "quick" / "bench_softq_update"
    with open(out / "bench_softq_update_rounds.csv") as f:
        rounds = list(csv.DictReader(f))
    repeats = bench.QUICK["repeats"]
    assert len(rounds) == 4 * repeats and [r["agent"] for r in rounds[:4]] == [r["agent"] for r in rounds[4:8]][::-1]
    assert "QUICK SMOKE RUN" in (out / "bench_softq_update.md").read_text()
    assert (out / "bench_softq_update.png").is_file()


def test_denormal_bench_times_both_losses_in_alternating_rounds_at_every_sharpness(tmp_path, monkeypatch):
    from experiments import bench_denormals as bench

    summary = quick_main(bench, tmp_path, monkeypatch)
    assert [r["sharpness"] for r in summary] == list(bench.QUICK["sharpness"])
    assert all(r[f"{name} {kind} ms"] > 0 for r in summary for name in bench.LOSSES for kind in ("cpu", "wall"))
    out = tmp_path / "quick" / "bench_denormals"
    with open(out / "bench_denormals_rounds.csv") as f:
        rounds = list(csv.DictReader(f))
    assert len(rounds) == 2 * bench.QUICK["repeats"] * len(summary)
    assert [r["loss"] for r in rounds[:4]] == ["plain", "ebrl", "ebrl", "plain"]  # the order reversed every round
    assert "QUICK SMOKE RUN" in (out / "bench_denormals.md").read_text()


def test_denormal_share_counts_counter_examples_beyond_float32s_underflow():
    from experiments.bench_denormals import denormal_share

    e = torch.tensor([[0.0, 10.0, 80.0, 95.0, 200.0]])  # weights e^-10, e^-80 normal; e^-95 denormal; e^-200 is 0
    assert denormal_share(e) == 0.25
