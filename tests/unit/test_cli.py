"""The `agent-rl` command as a user meets it: errors before Ray starts, --cfg job, --help, multirun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def agent_rl(tmp_path: Path, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    """Run `agent-rl` with its outputs and Ray's temp dir under tmp_path."""
    env = {**os.environ, "RAY_TMPDIR": str(tmp_path / "ray")}
    (tmp_path / "ray").mkdir(exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "agent_rl.cli.train",
        *args,
        f"hydra.run.dir={tmp_path}/run",
        f"hydra.sweep.dir={tmp_path}/sweep",
    ]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def ray_started(tmp_path: Path) -> bool:
    return any((tmp_path / "ray").iterdir())


def test_unknown_choice_lists_the_valid_ones_before_ray(tmp_path):
    out = agent_rl(tmp_path, "algo=reinforce")
    assert out.returncode != 0
    assert "Could not find 'algo/reinforce'" in out.stderr
    assert all(name in out.stderr for name in ("dapo", "grpo", "ppo"))
    assert not ray_started(tmp_path)


def test_verl_file_in_a_shared_group_name_is_refused(tmp_path):
    out = agent_rl(tmp_path, "model=hf_model")
    assert out.returncode == 2
    valid = "qwen2.5-1.5b, qwen2.5-32b, qwen2.5-3b, qwen2.5-7b, qwen3-32b, tiny"
    assert f"unknown model='hf_model'; valid choices: {valid}\n" in out.stderr
    assert not ray_started(tmp_path)


def test_too_large_model_on_cpu_fails_in_one_sentence(tmp_path):
    out = agent_rl(tmp_path, "model=qwen2.5-3b", "cluster=cpu")
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines == [
        "agent-rl: model=qwen2.5-3b (3.09B parameters) is too large for cluster=cpu, which trains at most "
        "0.5B; choose a larger cluster (1gpu, 8gpu, multinode) or a smaller model."
    ]
    assert not ray_started(tmp_path)


def test_cfg_job_prints_the_config_without_starting_anything(tmp_path):
    out = agent_rl(tmp_path, "--cfg", "job", "algo=dapo")
    assert out.returncode == 0, out.stderr
    assert "clip_ratio_high: 0.28" in out.stdout and "name: dapo" in out.stdout
    assert not ray_started(tmp_path)
    assert not (tmp_path / "run").exists()


def test_help_lists_the_groups_without_starting_anything(tmp_path):
    out = agent_rl(tmp_path, "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("agent-rl is powered by Hydra.")
    for line in (
        "algo: dapo, gigpo, grpo, ppo",
        "cluster: 1gpu, 8gpu, cpu, multinode",
        "model: qwen2.5-1.5b",
    ):
        assert line in out.stdout
    assert not ray_started(tmp_path)


def test_multirun_launches_one_job_per_choice(tmp_path):
    """A sweep over two algorithms, as dry runs: each job composes, builds, and passes verl's checks."""
    out = agent_rl(tmp_path, "-m", "algo=grpo,dapo", "dry_run=true", "logger=console")
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert jobs == ["0_alfworld-grpo-none-tiny-s0", "1_alfworld-dapo-none-tiny-s0"]
    for job in jobs:
        resolved = (tmp_path / "sweep" / job / "resolved_config.yaml").read_text()
        assert "train_files: auto" not in resolved and "tiny-qwen2-" in resolved
    assert not ray_started(tmp_path)


@pytest.mark.parametrize("algo", ["grpo", "dapo", "ppo"])
def test_dry_run_passes_verls_own_validation_on_cpu(tmp_path, algo):
    out = agent_rl(tmp_path, f"algo={algo}", "dry_run=true", "logger=console")
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"dry run alfworld-{algo}-none-tiny-s0: config valid" in out.stdout


def test_a_multirun_leaks_no_platform_from_a_cpu_job_into_a_gpu_job(tmp_path):
    """`-m cluster=cpu,8gpu`: the CPU job sets VERL_PLATFORM=cpu (for its Ray workers, which inherit this
    process's environment); the GPU job after it, in the same process, starts from the launch environment."""
    out = agent_rl(tmp_path, "-m", "cluster=cpu,8gpu", "dry_run=true", "logger=console")
    assert out.returncode == 0, out.stderr[-3000:]
    platforms = [line for line in out.stdout.splitlines() if line.startswith("[agent_rl] platform:")]
    assert platforms == [
        "[agent_rl] platform: cpu (VERL_PLATFORM=cpu)",
        "[agent_rl] platform: detected by verl in each worker (VERL_PLATFORM unset)",
    ]
    gpu_job = (tmp_path / "sweep" / "1_alfworld-grpo-none-tiny-s0" / "resolved_config.yaml").read_text()
    assert "VERL_PLATFORM" not in gpu_job and "device: cuda" in gpu_job
    assert "[agent_rl] memory plan: model=tiny" in out.stdout  # the GPU job printed its plan
    assert not ray_started(tmp_path)


def test_7b_on_one_gpu_is_refused_in_one_sentence_before_ray(tmp_path):
    out = agent_rl(tmp_path, "model=qwen2.5-7b", "cluster=1gpu")
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("agent-rl: model=qwen2.5-7b does not fit cluster=1gpu: ")
    assert lines[0].endswith("train LoRA adapters (model.lora_rank=64), which needs 72.6 GiB per GPU.")
    assert not ray_started(tmp_path)


def test_an_aime_experiment_prints_its_plan_without_weights_and_names_the_data_script_without_data(tmp_path):
    """`agent-rl experiment=spear/aime-qwen3-32b-drbot-spear dry_run=true`: with the prepared files in
    MATH_DATA (here stand-ins), the run's plan on its 16 nodes of 8 GPUs, no weights fetched; without
    them, one sentence naming scripts/prepare_math.py; Ray never starts."""
    experiment = "experiment=spear/aime-qwen3-32b-drbot-spear"
    out = agent_rl(tmp_path, experiment, "dry_run=true")
    assert out.returncode == 2 and "scripts/prepare_math.py" in out.stderr
    data = tmp_path / "math"
    data.mkdir()
    line = '{"problem": "What is 6 times 7?", "answer": "42", "kind": "%s"}\n'
    for name in ("dapo_math", "aime2024", "aime2025"):
        (data / f"{name}.jsonl").write_text(line % name)
    env = {**os.environ, "MATH_DATA": str(data), "HF_HUB_OFFLINE": "1", "RAY_TMPDIR": str(tmp_path / "ray")}
    cmd = [
        sys.executable,
        "-m",
        "agent_rl.cli.train",
        experiment,
        "dry_run=true",
        f"hydra.run.dir={tmp_path}/run",
    ]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "[agent_rl] memory plan: model=qwen3-32b" in out.stdout and "128 x 80 GiB" in out.stdout
    assert "[agent_rl]   verdict: fits" in out.stdout
    assert not ray_started(tmp_path)
