"""experiments.mountaincar's arms that use the demonstrations: what goes into SAC's replay buffer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents import add_demonstrations
from experiments import mountaincar as mc

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def demos():
    return mc.demonstrations(mc.Args(n_demos=3), seed=0)


def test_demonstrations_reach_the_flag_and_their_rewards_are_the_environments(demos):
    for demo in demos:
        steps = len(demo["act"])
        assert demo["obs"].shape == (steps, 2) and demo["act"].shape == (steps, 1) and demo["rew"].shape == (steps,)
        assert demo["terminated"] and demo["last"][0] >= 0.45  # the energy-pumping controller reaches the flag
        # MountainCarContinuous: -0.1 a^2 per step, +100 on reaching the flag; the controller pushes with |a| = 1
        np.testing.assert_allclose(demo["rew"].sum(), 100 - 0.1 * steps, rtol=1e-5)


def test_sac_demos_arm_starts_with_exactly_the_demonstrations_in_its_buffer(demos):
    args = mc.Args(total_timesteps=500, n_demos=3)
    model = mc.make_model("SAC+demos", 0, args, demos)
    buf, n = model.replay_buffer, sum(len(d["act"]) for d in demos)
    assert buf.pos == n and buf.buffer_size == args.total_timesteps + n  # nothing of the run is ever evicted
    np.testing.assert_array_equal(buf.observations[:n, 0], np.concatenate([d["obs"] for d in demos]))
    np.testing.assert_array_equal(buf.actions[:n, 0], np.concatenate([d["act"] for d in demos]))
    np.testing.assert_allclose(buf.rewards[:n, 0], np.concatenate([d["rew"] for d in demos]))
    ends = np.cumsum([len(d["act"]) for d in demos]) - 1
    assert set(np.flatnonzero(buf.dones[:n, 0])) == set(ends) and not buf.timeouts[:n].any()
    np.testing.assert_array_equal(buf.next_observations[ends, 0], np.stack([d["last"] for d in demos]))
    np.testing.assert_array_equal(buf.next_observations[ends[0] - 1, 0], demos[0]["obs"][-1])


def test_a_timed_out_demonstration_is_stored_as_a_time_out_not_a_terminal_state(demos):
    cut = dict(demos[0], obs=demos[0]["obs"][:5], act=demos[0]["act"][:5], rew=demos[0]["rew"][:5],
               last=demos[0]["obs"][5], terminated=False)
    model = mc.make_model("SAC", 0, mc.Args(total_timesteps=100), [])
    add_demonstrations(model, mc.as_episodes([cut]))
    buf = model.replay_buffer
    assert buf.pos == 5 and buf.dones[4, 0] == 1 and buf.timeouts[4, 0] == 1 and buf.timeouts[:4].sum() == 0
    batch = buf.sample(64)  # SB3 masks a time-out out of the terminal flag the critic bootstraps on
    assert not batch.dones.any()


def test_the_committed_runs_carry_the_current_configurations_digest():
    """Every committed evaluation was made with today's defaults, so a rerun resumes them instead of training anew
    beside them (a changed default must come with new runs, and this test says so)."""
    import csv
    from pathlib import Path

    from experiments._common import config_digest

    path = Path(mc.__file__).resolve().parent.parent / "results" / "mountaincar" / "curves.csv"
    with open(path, newline="") as f:
        digests = {row["config"] for row in csv.DictReader(f)}
    assert digests == {config_digest(mc.Args(), exclude=mc.NOT_IN_DIGEST)}


def test_differences_pair_softq_ibc_with_each_arm_over_the_seeds_both_finished():
    rows = [{"arm": arm, "seed": seed, "final_window_return": value, "steps_trained": steps}
            for arm, seed, value, steps in [("SoftQ+ibc", 0, 94.0, 100), ("SoftQ+ibc", 1, 93.0, 100),
                                            ("SoftQ+ibc", 2, 95.0, 100), ("SAC", 0, 0.0, 100), ("SAC", 1, 1.0, 100),
                                            ("SAC", 2, 9.0, 50), ("SAC-zoo", 0, 94.0, 100), ("SAC-zoo", 1, 94.0, 100),
                                            ("SoftQ", 0, 0.0, 100)]]
    out = {r["comparison"]: r for r in mc.differences(rows, total=100)}
    assert set(out) == {"SoftQ+ibc - SAC", "SoftQ+ibc - SAC-zoo"}  # SoftQ: one paired seed, no interval
    assert out["SoftQ+ibc - SAC"]["paired seeds"] == 2  # SAC's seed 2 did not finish
    assert out["SoftQ+ibc - SAC"]["verdict"] == "higher" and out["SoftQ+ibc - SAC-zoo"]["verdict"] == "tie"
    assert out["SoftQ+ibc - SAC"]["difference [95% CI]"].startswith("93")  # (94 - 0 + 93 - 1) / 2
