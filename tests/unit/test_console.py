"""The quiet console (agent_rl.cli.console): the step line, the summary, and where output goes, on real file
descriptors in a child process (Python prints, C-level writes, a child process, a traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent_rl.cli import console

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"

# Two steps of the default run as metrics.jsonl holds them (trimmed to the keys the line reads).
STEP_1 = {
    "env/success_rate": 0.25,
    "env/return/mean": -0.0375,
    "actor/entropy": 0.2759,
    "env/episode_length/mean": 4.0,
    "timing_s/step": 33.72,
    "timing_s/gen": 16.05,
    "timing_s/update_actor": 7.68,
}
STEP_2 = {
    **STEP_1,
    "timing_s/step": 18.14,
    "timing_s/testing": 4.05,
    "val-aux/alfworld/all/won/mean@1": 0.5,
    "val-aux/alfworld/pick_and_place_simple/won/mean@1": 1.0,
}


def test_the_step_line_says_step_success_validation_return_entropy_length_times_and_eta():
    line = console.step_line(2, 150, STEP_2, eta_s=125.0)
    assert line == (
        "step 2/150 | success 0.25 | val 0.50 | return -0.04 | entropy 0.276 | length 4.0 | "
        "18.1s (gen 16.1s, update 7.7s) | ETA 2m05s"
    )
    # a step without validation has no val column; a missing metric shows as "-"
    assert console.step_line(1, None, {"env/success_rate": 0.0}) == (
        "step 1 | success 0.00 | return - | entropy - | length - | -s (gen -s, update -s)"
    )


def test_validation_success_is_the_environment_wide_value_or_the_mean_of_verls_per_source_scores():
    assert console.validation_success(STEP_2) == 0.5
    assert console.validation_success(STEP_1) is None
    # env=arith: verl's score per data source (agent_rl/arith), no episodes
    single_turn = {"val-core/agent_rl/arith/acc/mean@1": 0.5, "val-core/other/acc/mean@1": 1.0}
    assert console.validation_success(single_turn) == pytest.approx(0.75)


def test_eta_counts_the_wall_time_of_the_steps_trained_so_far():
    progress = console.Progress(total=4)
    # the first step (33.7 s) ends at t=100: training began at t=66.3
    assert progress.add(1, STEP_1, now=100.0).endswith("ETA 1m41s")  # 3 x 33.72
    line = progress.add(2, STEP_2, now=122.0)  # (122 - 66.28) / 2 steps x 2 left
    assert line.endswith(f"ETA {console.duration(2 * (122.0 - 66.28) / 2)}")
    assert progress.best == (0.5, 2)
    assert console.duration(7322) == "2h02m"


def test_the_summary_says_the_start_up_the_first_step_logged():
    ui = console.RunConsole(Path("/nonexistent"), verbose=False)
    ui.progress = console.Progress(total=2)
    ui.progress.add(1, {**STEP_1, "startup/first_generation_s": 52.4, "startup/first_step_end_s": 95.6})
    ui.progress.add(2, STEP_2)
    lines = ui.summary()
    assert lines[-1] == "[agent_rl] start-up: first generation 52 s after launch, first step ended at 96 s"
    ui.progress = console.Progress(total=1)  # a step without the trainer's start-up numbers: no line
    ui.progress.add(1, STEP_1)
    assert not any("start-up:" in line for line in ui.summary())


def test_the_traceback_filter_passes_each_python_traceback_with_its_process_name():
    lines = [
        "\x1b[36m(TaskRunner pid=12)\x1b[0m INFO: step 1",
        "\x1b[36m(AgentLoopWorker pid=7)\x1b[0m Traceback (most recent call last):",
        '\x1b[36m(AgentLoopWorker pid=7)\x1b[0m   File "loop.py", line 3, in run',
        "\x1b[36m(AgentLoopWorker pid=7)\x1b[0m     env.step(action)",
        "\x1b[36m(AgentLoopWorker pid=7)\x1b[0m RuntimeError: the environment died",
        "\x1b[36m(AgentLoopWorker pid=7)\x1b[0m WARNING: retrying",
        "UserWarning: torchtitan engine is not available",
    ]
    f = console.TracebackFilter()
    shown = [out for line in lines for out in f.feed(line)]
    assert shown == lines[1:5]


CHILD = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    from pathlib import Path
    from agent_rl.cli import console

    out, verbose, fail = Path(sys.argv[1]), sys.argv[2] == "1", sys.argv[3] == "1"
    step1, step2 = json.loads(sys.argv[4]), json.loads(sys.argv[5])
    with console.session(out, verbose=verbose) as ui:
        print("python print from verl")
        os.write(1, b"C-level stdout\\n")
        os.write(2, b"C-level stderr\\n")
        subprocess.run(["echo", "a child process"], check=True)
        console.say("[agent_rl] run demo: outputs in " + str(out))
        metrics = out / "metrics.jsonl"
        ui.watch(metrics, 2)
        metrics.write_text(json.dumps({"step": 1, "data": step1}) + "\\n")
        time.sleep(1.0)
        sys.stderr.write("(Worker pid=3) Traceback (most recent call last):\\n")
        sys.stderr.write('(Worker pid=3)   File "w.py", line 1, in <module>\\n')
        sys.stderr.write("(Worker pid=3) ValueError: a worker failed\\n")
        sys.stderr.flush()
        with open(metrics, "a") as f:
            f.write(json.dumps({"step": 2, "data": step2}) + "\\n")
        time.sleep(1.0)
        if fail:
            raise RuntimeError("verl failed deep inside")
        for line in ui.summary():
            console.say(line)
    """
)


def run_child(tmp_path: Path, verbose: bool = False, fail: bool = False) -> subprocess.CompletedProcess:
    args = [str(tmp_path), str(int(verbose)), str(int(fail)), json.dumps(STEP_1), json.dumps(STEP_2)]
    return subprocess.run(
        [sys.executable, "-c", CHILD, *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_quiet_console_shows_our_lines_and_steps_and_the_log_gets_everything(tmp_path):
    proc = run_child(tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"[agent_rl] run demo: outputs in {tmp_path}"
    assert lines[1].startswith("step 1/2 | success 0.25 | return -0.04 | entropy 0.276 | length 4.0 | 33.7s")
    assert lines[2].startswith("step 2/2 | success 0.25 | val 0.50 |") and lines[2].endswith("ETA 0s")
    assert lines[3].startswith("[agent_rl] trained steps 1-2; ") and lines[3].endswith(
        "best validation success 0.50 (step 2)"
    )
    assert len(lines) == 4
    # the worker's traceback reaches the console in full, and nothing else of what was printed
    assert proc.stderr.splitlines() == [
        "(Worker pid=3) Traceback (most recent call last):",
        '(Worker pid=3)   File "w.py", line 1, in <module>',
        "(Worker pid=3) ValueError: a worker failed",
    ]
    log = (tmp_path / console.LOG_NAME).read_text()
    for text in ("python print from verl", "C-level stdout", "C-level stderr", "a child process", *lines):
        assert text in log


def test_a_failing_run_prints_its_error_in_full_on_the_console(tmp_path):
    proc = run_child(tmp_path, fail=True)
    assert proc.returncode == 1
    assert "the run failed; everything it printed is in" in proc.stderr
    assert "Traceback (most recent call last):" in proc.stderr
    assert proc.stderr.rstrip().endswith("RuntimeError: verl failed deep inside")
    assert "python print from verl" not in proc.stdout + proc.stderr
    assert "RuntimeError: verl failed deep inside" in (tmp_path / console.LOG_NAME).read_text()


def test_verbose_shows_everything_and_still_writes_the_log(tmp_path):
    proc = run_child(tmp_path, verbose=True)
    assert proc.returncode == 0, proc.stderr
    for text in (
        "python print from verl",
        "C-level stdout",
        "a child process",
        "[agent_rl] trained steps 1-2",
    ):
        assert text in proc.stdout
    assert "C-level stderr" in proc.stderr
    assert "step 1/2 |" not in proc.stdout  # verl's own console logger prints each step's metrics
    log = (tmp_path / console.LOG_NAME).read_text()
    assert "C-level stdout" in log and "C-level stderr" in log and "python print from verl" in log


GROUP_ALGOS = [a for a in ("grpo", "dapo", "gigpo") if (CONF / "algo" / f"{a}.yaml").exists()]


def one_rollout_refusal(algo: str) -> str:
    return (
        f"algo={algo} normalises each advantage within its rollout group, which needs "
        "actor_rollout_ref.rollout.n >= 2 (got 1); set actor_rollout_ref.rollout.n=2 or more."
    )


@pytest.mark.parametrize("algo", GROUP_ALGOS)
def test_every_group_algorithm_refuses_one_rollout_per_task(hydra_ctx, algo):
    from hydra import compose

    from agent_rl.cli import train

    with pytest.raises(train.ConfigError) as refused:
        train.check_method(compose("config", overrides=[f"algo={algo}", "actor_rollout_ref.rollout.n=1"]))
    assert str(refused.value) == one_rollout_refusal(algo)
    train.check_method(compose("config", overrides=[f"algo={algo}", "actor_rollout_ref.rollout.n=2"]))
    train.check_method(compose("config", overrides=["algo=ppo", "actor_rollout_ref.rollout.n=1"]))


def test_one_rollout_per_task_with_grpo_fails_in_one_sentence_before_ray(tmp_path):
    """As a user meets it: the command prints that one sentence and nothing else, and Ray never starts
    (verl would otherwise stop deep inside: "data size must be divisible by force_group_size * ...")."""
    env = {**os.environ, "RAY_TMPDIR": str(tmp_path / "ray")}
    (tmp_path / "ray").mkdir()
    cmd = [
        sys.executable,
        "-m",
        "agent_rl.cli.train",
        "actor_rollout_ref.rollout.n=1",
        f"hydra.run.dir={tmp_path}/run",
    ]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 2
    assert [line for line in out.stderr.splitlines() if line.strip()] == [
        f"agent-rl: {one_rollout_refusal('grpo')}"
    ]
    assert not any((tmp_path / "ray").iterdir())  # Ray never started
