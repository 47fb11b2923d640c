"""`agent-rl-eval` without Ray: which checkpoint folders it accepts, its argument errors, its verl keys and
its report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from agent_rl.cli import evaluate
from agent_rl.cli.train import ConfigError

REPO = Path(__file__).resolve().parents[2]


def agent_rl_eval(tmp_path: Path, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_TMPDIR": str(tmp_path / "ray")}
    (tmp_path / "ray").mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "agent_rl.cli.evaluate", *args, f"hydra.run.dir={tmp_path}/run"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def checkpoints(root: Path, steps=(1, 2), latest=2) -> Path:
    """A checkpoints folder as agent-rl writes it (only the parts that are looked at)."""
    for step in steps:
        (root / "checkpoints" / f"global_step_{step}" / "actor").mkdir(parents=True)
    (root / "checkpoints" / "latest_checkpointed_iteration.txt").write_text(f"{latest}\n")
    return root / "checkpoints"


@pytest.mark.parametrize("args", [(), ("checkpoint=",)], ids=["missing", "empty"])
def test_eval_without_checkpoint_says_what_is_expected_before_ray(tmp_path, args):
    out = agent_rl_eval(tmp_path, *args)
    assert out.returncode == 2, out.stderr[-3000:]
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("agent-rl-eval: checkpoint=... is required:")
    assert "global_step_N (holding actor/)" in lines[0] and "latest_checkpointed_iteration.txt" in lines[0]
    assert not any((tmp_path / "ray").iterdir())


def test_eval_of_a_missing_folder_fails_before_ray(tmp_path):
    out = agent_rl_eval(tmp_path, f"checkpoint={tmp_path}/nowhere/global_step_2")
    assert out.returncode == 2, out.stderr[-3000:]
    assert f"agent-rl-eval: checkpoint={tmp_path}/nowhere/global_step_2 is not a folder;" in out.stderr
    assert "expected a checkpoint folder written by agent-rl" in out.stderr
    assert not any((tmp_path / "ray").iterdir())


def test_agent_rl_refuses_the_eval_only_checkpoint_key(tmp_path):
    env = {**os.environ, "RAY_TMPDIR": str(tmp_path / "ray")}
    cmd = [
        sys.executable,
        "-m",
        "agent_rl.cli.train",
        f"checkpoint={tmp_path}",
        f"hydra.run.dir={tmp_path}/run",
    ]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 2
    assert "checkpoint=... is agent-rl-eval's; to resume training" in out.stderr


def test_eval_resolves_a_step_folder_a_checkpoints_root_or_a_run_folder(tmp_path):
    root = checkpoints(tmp_path)
    step1 = root / "global_step_1"
    assert evaluate.resolve_checkpoint(step1) == step1
    assert evaluate.resolve_checkpoint(str(root)) == root / "global_step_2"  # the tracker's step
    assert evaluate.resolve_checkpoint(tmp_path) == root / "global_step_2"


def test_eval_refuses_folders_that_are_no_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="neither a global_step_N folder nor holds"):
        evaluate.resolve_checkpoint(tmp_path)
    with pytest.raises(ConfigError, match="is not a folder"):
        evaluate.resolve_checkpoint(tmp_path / "global_step_3")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is not a folder"):
        evaluate.resolve_checkpoint(tmp_path / "file")
    root = checkpoints(tmp_path / "run", steps=(1,), latest=2)
    with pytest.raises(ConfigError, match="names step 2, but .*global_step_2 does not exist"):
        evaluate.resolve_checkpoint(root)
    (tmp_path / "global_step_5").mkdir()
    with pytest.raises(ConfigError, match="has no actor/ folder"):
        evaluate.resolve_checkpoint(tmp_path / "global_step_5")


def test_eval_configures_a_validation_only_run_from_the_checkpoint(tmp_path):
    cfg = OmegaConf.create(
        {
            "checkpoint": "x",
            "run_name": "r",
            "env": {"max_val_tasks": 8},
            "trainer": {"logger": ["console"], "experiment_name": "${run_name}", "resume_mode": "auto"},
        }
    )
    OmegaConf.set_struct(cfg, True)
    evaluate.configure(cfg, tmp_path / "global_step_2", overrides=["checkpoint=x", "env=alfworld"])
    t = cfg.trainer
    assert (t.val_only, t.val_before_train, t.resume_mode) == (True, True, "resume_path")
    assert t.resume_from_path == str(tmp_path / "global_step_2") and t.del_local_ckpt_after_load is False
    assert list(t.logger) == ["console", "file"] and t.experiment_name == "eval-r"
    assert cfg.env.max_val_tasks is None  # every task of the split
    cfg.env.max_val_tasks = 8
    evaluate.configure(cfg, tmp_path / "global_step_2", overrides=["++env.max_val_tasks=8"])
    assert cfg.env.max_val_tasks == 8  # the user's choice


def test_eval_report_has_one_row_per_task_type_and_the_whole_environment():
    metrics = {
        "val-aux/alfworld/clean/won/mean@2": 0.5,
        "val-aux/alfworld/heat/won/mean@2": 0.0,
        "val-core/alfworld/heat/reward/mean@2": -0.3,
        "val-aux/alfworld/all/won/mean@2": 1 / 6,
    }
    result = evaluate.report(metrics, {"alfworld/heat": 2, "alfworld/clean": 1}, 2, Path("c"), 2, "valid")
    assert [(r["task_type"], r["tasks"], r["success_pct"]) for r in result["rows"]] == [
        ("clean", 1, 50.0),
        ("heat", 2, 0.0),
    ]
    assert result["all"]["tasks"] == 3 and result["all"]["success_pct"] == pytest.approx(100 / 6)
    assert result["metric"] == "won/mean@2" and result["env"] == "alfworld"
    table = evaluate.format_table(result).splitlines()
    assert table[0].split() == ["task", "type", "tasks", "success", "%"]
    assert table[1].split() == ["clean", "1", "50.0"] and table[-1].split() == ["all", "3", "16.7"]
