"""rl-zoo3 with ebrl's agents: ``python -m agents.zoo`` trains SoftQ and SoftDQN through rl-zoo3's own train and
Optuna machinery; the saved models load with ``ebrl eval`` and rl-zoo3's ``enjoy``; the YAML files are what the
experiment scripts use."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("rl_zoo3")

from agents import SoftDQN, SoftQ
from agents.zoo import HYPERPARAMS, main
from ebrl.cli import main as ebrl_main

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent

# Tiny budgets: rl-zoo3's flags (-n, --eval-freq) and -params overrides of the YAML entries.
RUNS = {
    "softq": ("Pendulum-v1", SoftQ, ["learning_starts:50", "batch_size:16", "policy_kwargs:dict(net_arch=[16])"], 210),
    "softdqn": ("CartPole-v1", SoftDQN, ["learning_starts:50", "train_freq:4", "gradient_steps:1",
                                        "policy_kwargs:dict(net_arch=[16])"], 500),
}


@pytest.mark.parametrize("algo", ["softq", "softdqn"])
def test_a_zoo_run_saves_a_model_that_ebrl_eval_and_rl_zoo3_enjoy_load(algo, tmp_path, capsys):
    env_id, cls, params, enjoy_steps = RUNS[algo]
    logs = tmp_path / "logs"
    main(["--algo", algo, "--env", env_id, "-n", "150", "--eval-freq", "100", "--eval-episodes", "1",
          "-f", str(logs), "--seed", "3", "--num-threads", "1", "--verbose", "0", "-params", *params])
    run = logs / algo / f"{env_id}_1"
    saved = run / f"{env_id}.zip"
    assert saved.is_file() and (run / "evaluations.npz").is_file()  # rl-zoo3's EvalCallback ran (--eval-freq)
    config = yaml.load((run / env_id / "config.yml").read_text(), Loader=yaml.UnsafeLoader)
    assert dict(config)["alpha"] == "auto"  # the entry of hyperparams/<algo>.yml, with the -params overrides
    assert dict(config)["learning_starts"] == 50

    model = cls.load(saved)
    assert model.num_timesteps >= 150 and model._n_updates > 0  # -n 150 (SB3 rounds up to a whole train_freq)

    capsys.readouterr()
    assert ebrl_main(["eval", str(saved), "--env", env_id, "--episodes", "1"]) in (0, None)
    assert f"{cls.__name__} on {env_id}: mean return" in capsys.readouterr().out

    main(["enjoy", "--algo", algo, "--env", env_id, "-f", str(logs), "--exp-id", "1", "-n", str(enjoy_steps),
          "--no-render", "--deterministic"])
    out = capsys.readouterr().out
    assert f"Loading {saved}" in out and "Episode Reward" in out  # enjoy loaded it and played an episode


@pytest.mark.parametrize("algo", ["softq", "softdqn"])
def test_rl_zoo3_optuna_search_runs_trials_of_ebrl_agents(algo, tmp_path):
    env_id, _, params, _ = RUNS[algo]
    logs = tmp_path / "logs"
    main(["--algo", algo, "--env", env_id, "-n", "120", "-optimize", "--n-trials", "2", "--n-evaluations", "1",
          "--eval-episodes", "1", "--sampler", "random", "--pruner", "none", "--no-optim-plots", "-f", str(logs),
          "--seed", "0", "--num-threads", "1", "--verbose", "0", "-params", *params])
    reports = list((logs / algo).glob("report_*.csv"))
    assert len(reports) == 1
    lines = reports[0].read_text().strip().splitlines()
    assert len(lines) == 1 + 2  # a header and the two trials
    assert "learning_rate" in lines[0] and "net_arch" in lines[0]  # the search space of agents.zoo's sampler


def test_the_default_conf_file_is_the_repository_yaml_and_a_missing_one_is_named(tmp_path, monkeypatch):
    from agents import zoo

    assert zoo._with_default_conf(["--algo", "softq"])[-1] == str(HYPERPARAMS / "softq.yml")
    assert zoo._with_default_conf(["--algo", "softq", "--conf-file", "x.yml"]) == ["--algo", "softq", "--conf-file",
                                                                                   "x.yml"]
    assert zoo._with_default_conf(["--algo", "sac"]) == ["--algo", "sac"]  # rl-zoo3's own algorithms: its files
    monkeypatch.setattr(zoo, "HYPERPARAMS", tmp_path)
    with pytest.raises(FileNotFoundError, match="--conf-file"):
        zoo._with_default_conf(["--algo", "softdqn"])


def _committed_configuration(path: Path) -> dict[str, str]:
    """The ``## Configuration`` list of a committed results table: field -> the text between backticks."""
    text = path.read_text().split("## Configuration", 1)[1].split("##", 1)[0]
    return dict(re.findall(r"^- (\w+): `(.*)`$", text, flags=re.MULTILINE))


def test_pendulum_reads_its_hyperparameters_from_the_yaml_and_its_committed_configuration_is_unchanged():
    from experiments import pendulum

    softq = yaml.safe_load((HYPERPARAMS / "softq.yml").read_text())["Pendulum-v1"]
    sac = yaml.safe_load((HYPERPARAMS / "sac.yml").read_text())["Pendulum-v1"]
    args = pendulum.Args()
    assert args.softq_learning_rate == softq["learning_rate"] and args.sac_learning_rate == sac["learning_rate"]
    assert args.softq_alpha == softq["alpha"] and [args.softq_width] * 2 == softq["policy_kwargs"]["net_arch"]
    assert args.total_timesteps == softq["n_timesteps"] == sac["n_timesteps"]
    # The table of the current configuration (SoftQ against SAC with a learnt alpha) was made with these values.
    committed = _committed_configuration(ROOT / "results" / "auto_alpha" / "pendulum" / "pendulum.md")
    what = {k: str(v) for k, v in vars(args).items() if k not in pendulum.NOT_IN_CONFIG}
    assert {k: v for k, v in committed.items() if k not in pendulum.NOT_IN_CONFIG} == what
    # ... and the agents the script builds carry them.
    model = pendulum.make_agent("SoftQ", 0, args)
    assert model.learning_rate == softq["learning_rate"] and model.critic.e1.hidden == (128, 128)
    assert pendulum.make_agent("SAC", 0, args).learning_rate == sac["learning_rate"]


def test_dqn_yaml_is_rl_zoo3s_own_and_is_what_classic_discrete_trains():
    """hyperparams/dqn.yml holds rl-zoo3's DQN entries, and experiments.classic_discrete reads its baseline there."""
    import rl_zoo3

    from experiments import classic_discrete as cd

    ours = yaml.safe_load((HYPERPARAMS / "dqn.yml").read_text())
    theirs = yaml.safe_load((Path(rl_zoo3.__file__).parent / "hyperparams" / "dqn.yml").read_text())
    for env_id, entry in ours.items():
        entry = dict(entry)
        # rl-zoo3 writes policy_kwargs as Python source; ours is the same mapping in YAML
        assert theirs[env_id]["policy_kwargs"] == f"dict(net_arch={entry.pop('policy_kwargs')['net_arch']})"
        assert entry == {k: v for k, v in theirs[env_id].items() if k != "policy_kwargs"}
        assert cd.ZOO[env_id] == {k: v for k, v in ours[env_id].items() if k != "policy"} | {
            "n_timesteps": int(ours[env_id]["n_timesteps"])}
        model = cd.make_agent("DQN", env_id, 0, cd.Args())
        assert model.exploration_final_eps == entry["exploration_final_eps"] and model.batch_size == entry["batch_size"]


def test_softdqn_yaml_is_classic_discretes_softdqn_configuration():
    """hyperparams/softdqn.yml holds what experiments.classic_discrete gives SoftDQN (derived from dqn.yml)."""
    from experiments import classic_discrete as cd

    entries = yaml.safe_load((HYPERPARAMS / "softdqn.yml").read_text())
    for env_id, zoo in cd.ZOO.items():
        entry = dict(entries[env_id])
        schedule, rate = entry.pop("learning_rate").split("_")
        assert schedule == "lin" and float(rate) == zoo["learning_rate"]  # softdqn_lr_decay: linear to 0
        assert entry.pop("alpha") == cd.SOFTDQN_ALPHA[env_id]
        assert entry.pop("double_q") is cd.Args().softdqn_double_q
        assert entry.pop("policy") == "MlpPolicy"
        expected = {k: v for k, v in zoo.items() if k not in (*cd.EPSILON_KEYS, "learning_rate")}
        assert {k: (int(v) if k == "n_timesteps" else v) for k, v in entry.items()} == expected
    assert cd.Args().softdqn_lr_decay


def test_the_yaml_policy_kwargs_build_the_agents():
    for name, cls, env_id in (("softq", SoftQ, "Pendulum-v1"), ("softdqn", SoftDQN, "CartPole-v1")):
        entry = yaml.safe_load((HYPERPARAMS / f"{name}.yml").read_text())[env_id]
        kwargs = {k: v for k, v in entry.items() if k not in ("n_timesteps", "policy", "learning_rate")}
        model = cls(entry["policy"], env_id, **kwargs)
        assert np.isfinite(model.predict(model.observation_space.sample())[0]).all()


def test_sac_yaml_mountaincar_entry_is_rl_zoo3s_own_and_is_what_the_sac_zoo_arm_trains():
    """hyperparams/sac.yml's MountainCarContinuous-v0 entry is rl-zoo3's tuned one, and experiments.mountaincar's
    SAC-zoo arm builds SAC with it."""
    import ast

    import rl_zoo3

    from experiments import mountaincar as mc

    ours = dict(yaml.safe_load((HYPERPARAMS / "sac.yml").read_text())["MountainCarContinuous-v0"])
    theirs = dict(yaml.safe_load((Path(rl_zoo3.__file__).parent / "hyperparams" / "sac.yml").read_text())[
        "MountainCarContinuous-v0"])
    call = ast.parse(theirs.pop("policy_kwargs"), mode="eval").body  # rl-zoo3 writes dict(...) as Python source
    assert isinstance(call, ast.Call) and ast.unparse(call.func) == "dict"
    assert ours.pop("policy_kwargs") == {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    assert ours == theirs
    assert int(ours["n_timesteps"]) == mc.Args().total_timesteps  # rl-zoo3's budget is the experiment's

    model = mc.make_model("SAC-zoo", 0, mc.Args(total_timesteps=100), [])
    assert (model.gamma, model.tau, model.batch_size, model.gradient_steps) == (0.9999, 0.01, 512, 32)
    assert model.use_sde and model.ent_coef == 0.1 and model.learning_starts == 0
    assert model.train_freq.frequency == 32 and model.replay_buffer.buffer_size == 50_000
    assert [m.out_features for m in model.actor.latent_pi if hasattr(m, "out_features")] == [64, 64]
