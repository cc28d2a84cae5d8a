"""experiments/gpu_check.py on a CPU-only machine: it refuses to run, and it reads pytest's summary right."""

from __future__ import annotations

import sys

import pytest
import torch

from experiments.gpu_check import Args, main, pytest_counts, run_step


def test_pytest_counts_reads_the_final_summary_line():
    log = "tests/test_x.py ..s.F\nSKIPPED [1] tests/test_x.py:3: needs CUDA\n3 passed, 1 skipped, 1 failed in 4.20s\n"
    assert pytest_counts(log) == {"passed": 3, "skipped": 1, "failed": 1}
    assert pytest_counts("==== 21 passed, 859 deselected, 2 errors in 30.1s ====") == {
        "passed": 21, "deselected": 859, "error": 2}
    assert pytest_counts("collected 0 items\nno tests ran in 0.01s") == {}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_gpu_check_refuses_to_run_without_cuda(tmp_path):
    with pytest.raises(ValueError, match="needs CUDA"):
        main(Args(out=str(tmp_path)))
    assert not any(tmp_path.iterdir())


def test_a_step_that_runs_out_of_time_is_recorded_and_its_output_kept(tmp_path):
    log = tmp_path / "step.log"
    cmd = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(30)"]
    row = run_step("sleeper", cmd, 2, env={"PATH": ""}, log=log)
    assert row["status"] == "timed out after 2 s" and row["seconds"] < 20
    assert "started" in log.read_text()
    row = run_step("fails", [sys.executable, "-c", "raise SystemExit(3)"], 20, env={"PATH": ""}, log=log)
    assert row["status"] == "exit status 3"
