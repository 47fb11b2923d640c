"""What a GPU run gets from its config, checked on the CPU: micro-batches by tokens, fused log-probs, SDPA,
tensor parallelism per model, a real training length, the refusals before Ray starts, the variables every
Ray worker sees, a clean environment per multirun job, run folders keyed by run_name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose
from omegaconf import OmegaConf, open_dict

from agent_rl.cli import train

GPU_CLUSTERS = ("1gpu", "8gpu", "multinode")


def one_sentence(text: str) -> bool:
    return text.endswith(".") and text.count(". ") == 0


@pytest.mark.parametrize("cluster", GPU_CLUSTERS)
def test_gpu_clusters_batch_by_tokens_with_fused_log_probs_and_sdpa(hydra_ctx, cluster):
    cfg = compose("config", overrides=[f"cluster={cluster}", "model=qwen2.5-1.5b"])
    actor, rollout, ref = (
        cfg.actor_rollout_ref.actor,
        cfg.actor_rollout_ref.rollout,
        cfg.actor_rollout_ref.ref,
    )
    assert actor.use_dynamic_bsz is True and actor.ppo_max_token_len_per_gpu == cfg.cluster.tokens_per_gpu
    # verl's log-prob and critic keys follow the actor's (ppo_trainer.yaml interpolations)
    assert rollout.log_prob_use_dynamic_bsz is True and ref.log_prob_use_dynamic_bsz is True
    assert rollout.log_prob_max_token_len_per_gpu == ref.log_prob_max_token_len_per_gpu == 16384
    assert cfg.critic.use_dynamic_bsz is True and cfg.critic.ppo_max_token_len_per_gpu == 16384
    assert cfg.actor_rollout_ref.model.use_fused_kernels is True
    assert cfg.actor_rollout_ref.model.fused_kernel_options.impl_backend == "torch"
    assert train.attention(cfg) == "sdpa"
    assert cfg.trainer.total_training_steps == 150  # a real length without an experiment file
    assert rollout.tensor_model_parallel_size == 1


def test_the_cpu_cluster_keeps_its_fixed_micro_batches_and_two_steps(hydra_ctx):
    cfg = compose("config")
    assert cfg.actor_rollout_ref.actor.use_dynamic_bsz is False
    assert cfg.actor_rollout_ref.model.use_fused_kernels is False
    assert train.attention(cfg) == "sdpa" and cfg.trainer.total_training_steps == 2


@pytest.mark.parametrize(("model", "tp"), [("qwen2.5-1.5b", 1), ("qwen2.5-3b", 1), ("qwen2.5-7b", 2)])
def test_tensor_parallel_size_comes_with_the_model(hydra_ctx, model, tp):
    rollout = compose("config", overrides=[f"model={model}", "cluster=8gpu"]).actor_rollout_ref.rollout
    assert rollout.tensor_model_parallel_size == tp
    one = compose("config", overrides=[f"model={model}", "cluster=1gpu"]).actor_rollout_ref.rollout
    assert one.tensor_model_parallel_size == 1  # one GPU whatever the model says


def test_gpu_configs_instantiate_verl_dataclasses(hydra_ctx):
    """Unknown keys inside verl's dataclass-backed nodes would fail here, as they would at launch."""
    from verl.utils.config import omega_conf_to_dataclass

    cfg = compose("config", overrides=["cluster=8gpu", "model=qwen2.5-7b", "actor_rollout_ref.model.path=x"])
    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    assert actor.use_dynamic_bsz and actor.ppo_max_token_len_per_gpu == 16384
    assert omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout).tensor_model_parallel_size == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["cluster=8gpu", "model=qwen2.5-7b", "actor_rollout_ref.rollout.tensor_model_parallel_size=3"],
            r"tensor_model_parallel_size=3 does not divide the 8 GPUs per node of cluster=8gpu",
        ),
        (
            ["cluster=8gpu", "env=webshop", "model=qwen2.5-1.5b", "cluster.tokens_per_gpu=4096"],
            r"ppo_max_token_len_per_gpu=4096 \(cluster.tokens_per_gpu\) is below the longest row, .* 4608",
        ),
        (["cluster.attn_implementation=flash_attention_2"], r"flash_attention_2 needs CUDA; use .*=sdpa"),
        (
            ["cluster=8gpu", "cluster.attn_implementation=flash_attention_3"],
            r"unknown cluster.attn_implementation",
        ),
    ],
)
def test_gpu_settings_that_cannot_run_are_refused_in_one_sentence(hydra_ctx, overrides, message):
    cfg = compose("config", overrides=overrides)
    with pytest.raises(train.ConfigError, match=message) as err:
        train.check_parallelism(cfg)
        train.check_tokens(cfg)
        train.check_attention(cfg)
    assert one_sentence(str(err.value))


def test_a_missing_flash_attn_says_how_to_install_it(hydra_ctx):
    pytest.importorskip("torch")
    if _imports("flash_attn"):
        pytest.skip("flash-attn is installed here")
    cfg = compose("config", overrides=["cluster=8gpu", "cluster.attn_implementation=flash_attention_2"])
    with pytest.raises(train.ConfigError, match=r"pip install flash-attn --no-build-isolation") as err:
        train.check_attention(cfg)
    assert one_sentence(str(err.value))


def _imports(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def test_7b_on_one_gpu_is_refused_before_ray(hydra_ctx):
    with pytest.raises(train.ConfigError, match=r"train LoRA adapters \(model.lora_rank=64\)") as err:
        train.check_plan(compose("config", overrides=["model=qwen2.5-7b", "cluster=1gpu"]))
    assert one_sentence(str(err.value))
    assert train.check_plan(
        compose("config", overrides=["model=qwen2.5-7b", "cluster=1gpu", "model.lora_rank=64"])
    )
    assert train.check_plan(compose("config")) is None  # the CPU cluster has its parameter cap instead


def test_lora_reaches_verls_model_config(hydra_ctx):
    model = compose("config", overrides=["model.lora_rank=8"]).actor_rollout_ref.model
    assert (model.lora_rank, model.lora_alpha, model.target_modules) == (8, 16, "all-linear")


# ---- variables for every Ray worker ---------------------------------------------------------------------
def test_data_and_cache_variables_are_forwarded(hydra_ctx, monkeypatch):
    monkeypatch.setenv("ALFWORLD_DATA", "/data/alfworld")
    monkeypatch.setenv("WEBSHOP_DATA", "/data/webshop")
    monkeypatch.setenv("HF_HOME", "/data/hf")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("VERL_PLATFORM", raising=False)
    env = train._runtime_env_vars(compose("config", overrides=["cluster=8gpu"]))
    assert {k: env[k] for k in ("ALFWORLD_DATA", "HF_HOME", "HF_HUB_OFFLINE")} == {
        "ALFWORLD_DATA": "/data/alfworld",
        "HF_HOME": "/data/hf",
        "HF_HUB_OFFLINE": "1",
    }
    # each environment's own variables (its class's data_variables), not another's
    assert "WEBSHOP_DATA" not in env
    webshop = train._runtime_env_vars(compose("config", overrides=["cluster=8gpu", "env=webshop"]))
    assert webshop["WEBSHOP_DATA"] == "/data/webshop" and "ALFWORLD_DATA" not in webshop
    assert "VERL_PLATFORM" not in env
    assert train._runtime_env_vars(compose("config"))["VERL_PLATFORM"] == "cpu"


def test_a_ray_worker_sees_alfworld_data(hydra_ctx, tmp_path, monkeypatch):
    """The runtime env agent-rl hands to verl's ray.init, merged as verl's run_ppo merges it, reaches a
    Ray worker started without the variable in its own environment."""
    import ray
    from verl.trainer.constants_ppo import get_ppo_ray_runtime_env

    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path / "alfworld"))
    cfg = compose("config", overrides=["logger=console", f"hydra.run.dir={tmp_path}"])
    with open_dict(cfg):
        cfg.ray_kwargs.ray_init.setdefault("runtime_env", {})
        cfg.ray_kwargs.ray_init.runtime_env.env_vars = train._runtime_env_vars(cfg)
    runtime_env = OmegaConf.merge(get_ppo_ray_runtime_env(cfg), cfg.ray_kwargs.ray_init.runtime_env)
    monkeypatch.delenv("ALFWORLD_DATA")  # the worker must get it from the runtime env, not by inheritance
    temp = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "unit-fwd"
    temp.mkdir(parents=True, exist_ok=True)
    ray.init(
        address="local",
        num_cpus=1,
        include_dashboard=False,
        _temp_dir=str(temp),
        runtime_env=OmegaConf.to_container(runtime_env),
        log_to_driver=False,
    )
    try:

        @ray.remote(num_cpus=0)
        def seen():
            return os.environ.get("ALFWORLD_DATA")

        assert ray.get(seen.remote()) == str(tmp_path / "alfworld")
    finally:
        ray.shutdown()


# ---- a clean environment per job ------------------------------------------------------------------------
def test_each_job_starts_from_the_launch_environment(monkeypatch):
    launch = {k: v for k, v in os.environ.items() if k not in train.JOB_VARIABLES}
    monkeypatch.setattr(train, "_LAUNCH_ENV", {**launch, "WANDB_MODE": "online"})
    monkeypatch.setenv("VERL_PLATFORM", "cpu")  # what a cluster=cpu job leaves behind
    monkeypatch.setenv("WANDB_RUN_ID", "earlier")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("SET_BY_AN_IMPORT", "1")  # not the job's: left alone
    train.reset_environment()
    assert "VERL_PLATFORM" not in os.environ and "WANDB_RUN_ID" not in os.environ
    assert os.environ["WANDB_MODE"] == "online" and os.environ["SET_BY_AN_IMPORT"] == "1"


def test_the_cpu_platform_switches_off_again(monkeypatch):
    from verl.plugin.platform import platform_manager
    from verl.utils import distributed

    import agent_rl.training.platform.cpu as cpu

    monkeypatch.delenv("VERL_ENGINE_DEVICE", raising=False)  # activate() sets it; restored after the test
    before = torch.Tensor.pin_memory
    cpu.activate()
    platform_manager._current_platform = cpu.PlatformCPU()
    try:
        assert getattr(distributed.initialize_global_process_group_ray, "_agent_rl_gloo", False)
    finally:
        cpu.deactivate()
    assert torch.Tensor.pin_memory is before
    assert not getattr(distributed.initialize_global_process_group_ray, "_agent_rl_gloo", False)
    assert platform_manager._current_platform is None


# ---- run folders ------------------------------------------------------------------------------------------
def test_a_run_folder_is_named_after_the_run():
    assert train.run_dir("outputs", "alfworld-grpo-none-tiny-s0") == "outputs/alfworld-grpo-none-tiny-s0"
    evaluation = train.run_dir("outputs", "alfworld-grpo-none-tiny-s0", "outputs/x/checkpoints")
    assert evaluation.startswith("outputs/alfworld-grpo-none-tiny-s0/eval/")


def test_resume_neutral_overrides_do_not_define_a_run():
    settings = train.run_settings(
        [
            "seed=1",
            "trainer.total_training_steps=9",
            "++ray_kwargs.ray_init.address=x",
            "logger=console",
            "+a=b",
        ]
    )
    assert settings == ["a=b", "seed=1"]


def test_a_run_folder_holding_another_run_is_refused(hydra_ctx, tmp_path):
    cfg = compose("config", overrides=[f"trainer.default_local_dir={tmp_path}/checkpoints"])
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest_checkpointed_iteration.txt").write_text("3")
    train.record_launch(tmp_path, ["actor_rollout_ref.actor.optim.lr=1e-6", "trainer.total_training_steps=3"])
    train.check_run_folder(cfg, tmp_path, ["actor_rollout_ref.actor.optim.lr=1e-6"])  # a relaunch: fine
    with pytest.raises(
        train.ConfigError, match=r"at step 3, launched with other settings \(now .*lr=3e-6"
    ) as err:
        train.check_run_folder(cfg, tmp_path, ["actor_rollout_ref.actor.optim.lr=3e-6"])
    assert one_sentence(str(err.value))
    fresh = compose(
        "config",
        overrides=[f"trainer.default_local_dir={tmp_path}/checkpoints", "trainer.resume_mode=disable"],
    )
    train.check_run_folder(fresh, tmp_path, ["actor_rollout_ref.actor.optim.lr=3e-6"])


def test_relaunching_a_finished_run_says_so_and_starts_nothing(hydra_ctx, tmp_path, capsys):
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    (ckpt / "latest_checkpointed_iteration.txt").write_text("2")
    cfg = compose("config", overrides=[f"trainer.default_local_dir={ckpt}"])  # model=tiny: 2 steps
    assert train.finished(cfg, tmp_path)
    assert "has trained all 2 steps; relaunch with trainer.total_training_steps=N" in capsys.readouterr().out
    longer = compose(
        "config", overrides=[f"trainer.default_local_dir={ckpt}", "trainer.total_training_steps=3"]
    )
    assert not train.finished(longer, tmp_path)  # the control: more steps to train, so it runs
    (ckpt / "latest_checkpointed_iteration.txt").unlink()
    assert not train.finished(cfg, tmp_path)


# ---- verl on the GPU path, run on the CPU ----------------------------------------------------------------
def test_the_critic_loads_with_the_configured_attention():
    """verl's load_valuehead_model hard-codes flash_attention_2; agent_rl.training.verl_plugin makes it take
    the config's choice, so PPO's critic loads without flash-attn (here: the tiny model with SDPA)."""
    from transformers import AutoConfig
    from verl.utils.model import load_valuehead_model

    import agent_rl.training.verl_plugin  # noqa: F401 - loaded by verl's entry point too
    from agent_rl.models.tiny_model import build_tiny_model

    path = str(build_tiny_model())
    config = AutoConfig.from_pretrained(path, attn_implementation="sdpa")
    config.num_labels = 1
    critic = load_valuehead_model(path, torch.float32, config, False)
    assert critic.config._attn_implementation == "sdpa" and critic.score.out_features == 1


def test_verls_fused_log_probs_equal_the_full_logits():
    """The GPU clusters' use_fused_kernels (torch backend): log-probs and entropy, and their gradients,
    from verl's chunked linear + log-softmax equal those of the materialised logits."""
    from verl.utils.experimental.torch_functional import FusedLinearForPPO

    torch.manual_seed(0)
    hidden = torch.randn(1100, 64, requires_grad=True)  # more than 2 chunks of 512
    weight = (torch.randn(300, 64) / 8).requires_grad_()
    labels = torch.randint(0, 300, (1100,))
    log_probs, entropy = FusedLinearForPPO(chunk_size=512).forward(hidden, weight, labels, temperature=0.7)
    (log_probs.sum() + 0.3 * entropy.sum()).backward()
    grads = hidden.grad.clone(), weight.grad.clone()
    hidden.grad, weight.grad = None, None
    logits = (hidden @ weight.T) / 0.7
    full = torch.log_softmax(logits, -1)
    expected_lp = full.gather(-1, labels[:, None]).squeeze(-1)
    expected_entropy = -(full.exp() * full).sum(-1)
    (expected_lp.sum() + 0.3 * expected_entropy.sum()).backward()
    close = dict(atol=1e-4, rtol=1e-4)
    assert torch.allclose(log_probs, expected_lp, **close) and torch.allclose(
        entropy, expected_entropy, **close
    )
    assert torch.allclose(grads[0], hidden.grad, **close) and torch.allclose(grads[1], weight.grad, **close)


def test_the_gpu_engine_check_runs_on_the_cpu():
    """scripts/gpu_check.sh's engine step (tests/gpu/engine_step.py), here with the tiny model on the CPU:
    FSDP2, verl's fused log-probs, packed SDPA; the packed micro-batch equals each sequence run alone."""
    import json
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "tests.gpu.engine_step", "--model", "tiny", "--device", "cpu"]
    cmd += ["--tokens", "600", "--seq-len", "256"]
    out = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["packed_vs_alone_max_abs"] < 1e-4 and result["planned_gib"] > 0


@pytest.mark.parametrize(
    ("env", "variable", "message"),
    [
        ("alfworld", "ALFWORLD_DATA", r"holds no game set .*python scripts/prepare_alfworld.py"),
        ("webshop", "WEBSHOP_DATA", r"lacks items_shuffle_1000.json, .*python scripts/prepare_webshop.py"),
    ],
)
def test_a_data_variable_without_its_data_is_refused(
    hydra_ctx, tmp_path, monkeypatch, env, variable, message
):
    monkeypatch.setenv(variable, str(tmp_path))
    with pytest.raises(train.ConfigError, match=message) as err:
        train.check_environment(compose("config", overrides=[f"env={env}"]))
    assert one_sentence(str(err.value))


def test_alfworlds_own_default_folder_means_the_shipped_games(hydra_ctx, monkeypatch):
    """Importing alfworld writes its default, ~/.cache/alfworld (created empty), into ALFWORLD_DATA, in
    every process that ever played ALFWorld (the test process too, after the environment tests): that is
    not a folder the user chose, so it is not refused."""
    monkeypatch.setenv("ALFWORLD_DATA", os.path.expanduser("~/.cache/alfworld"))
    train.check_environment(compose("config", overrides=["env=alfworld"]))


def test_scienceworld_without_java_says_how_to_install_it(hydra_ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no java on it
    with pytest.raises(train.ConfigError, match=r"no `java` is on PATH; install a Java runtime") as err:
        train.check_environment(compose("config", overrides=["env=scienceworld"]))
    assert one_sentence(str(err.value))
