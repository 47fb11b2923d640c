"""The memory planner (agent_rl.training.plan): parameter counts against the published models, the papers'
setups on the clusters they name (8 x 80 GiB; SPEAR's AIME rows 16 nodes of 8), 7B on one GPU refused with the
knob that fixes it, and each kind of refusal in one sentence.

The expected GiB below are the planner's own sums, written out so that a change to a formula shows up
here; the few that are checked by hand say so."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hydra import compose

from agent_rl.cli import train
from agent_rl.envs.pool import auto_pool_size
from agent_rl.models.tiny_model import TinyModelSpec, build_tiny_model
from agent_rl.training import plan

EXPERIMENTS = sorted(
    str(p.relative_to(train.CONF_DIR / "experiment").with_suffix(""))
    for p in (train.CONF_DIR / "experiment").rglob("*.yaml")
    if p.parent.name != "laptop"  # the laptop recipe runs on the CPU
)


def setup_of(*overrides: str, pool_size: int | None = None) -> plan.Setup:
    return plan.setup_from_config(compose("config", overrides=list(overrides)), pool_size)


def one_sentence(text: str) -> bool:
    return text.endswith(".") and text.count(". ") == 0


@pytest.mark.parametrize(
    ("model", "params"),
    # the published sizes (model cards: 1.54B, 3.09B, 7.62B), to the parameter for these architectures
    [("qwen2.5-1.5b", 1_543_714_304), ("qwen2.5-3b", 3_085_938_688), ("qwen2.5-7b", 7_615_616_512)],
)
def test_shapes_give_the_published_parameter_counts(hydra_ctx, model, params):
    assert setup_of(f"model={model}").shape.params() == params


def test_the_tiny_shape_is_the_built_model(hydra_ctx):
    """conf/model/tiny.yaml states TinyModelSpec; with the trained tokenizer's vocabulary the formula counts
    exactly the tensors of the built model (tied embeddings, q/k/v biases)."""
    import json

    from safetensors.torch import load_file

    shape = setup_of().shape
    spec = TinyModelSpec()
    assert (shape.hidden_size, shape.intermediate_size, shape.num_layers) == (
        spec.hidden_size,
        spec.intermediate_size,
        spec.num_hidden_layers,
    )
    assert (shape.num_heads, shape.num_kv_heads, shape.vocab_size) == (
        spec.num_attention_heads,
        spec.num_key_value_heads,
        spec.vocab_size,
    )
    folder = Path(build_tiny_model())
    vocab = json.loads((folder / "config.json").read_text())["vocab_size"]
    numel = sum(t.numel() for t in load_file(folder / "model.safetensors").values())
    assert plan.Shape(**{**shape.__dict__, "vocab_size": vocab}).params() == numel


def test_lora_adapters_of_7b_by_hand(hydra_ctx):
    """Rank 64 on q, k, v, o, gate, up, down: 64 x (in + out) per matrix, 28 layers (hand-computed)."""
    shape = setup_of("model=qwen2.5-7b").shape
    per_layer = 64 * ((3584 + 3584) * 2 + (3584 + 512) * 2 + (3584 + 18944) * 3)
    assert shape.lora_params(64) == 28 * per_layer == 161_480_704


# Validation tasks of a split that experiments validate on in full (env.max_val_tasks: null) where the task
# table is not built here (it needs $MATH_DATA): AIME 2024 + 2025, 30 problems each.
SPLIT_TASKS = {("math_python", "aime"): 60}

# SPEAR's AIME scripts keep more episodes in flight than vLLM holds at full length: TP 4 at 0.9 of the GPU
# holds 49 sequences of 2,048 + 16,384 tokens per replica, for 128 tasks x 16 over 32 replicas = 64. vLLM
# then queues some until others finish (most responses are far shorter than 16,384 tokens), as in the
# authors' runs. (Qwen3-32B holds more here only because the planner's Shape has no head_dim: conf/model.)
QUEUES_AT_FULL_LENGTH = {"spear/aime-qwen2.5-32b-drbot", "spear/aime-qwen2.5-32b-drbot-spear"}


def _paper_plan(name: str) -> plan.Plan:
    cfg = compose("config", overrides=[f"experiment={name}", "trainer.default_local_dir=/ckpt"])
    rollout = cfg.actor_rollout_ref.rollout
    val_tasks = cfg.env.max_val_tasks
    if val_tasks is None:
        val_tasks = SPLIT_TASKS[(cfg.env.name, cfg.env.val_split)]
    pool = auto_pool_size(  # as agent-rl sizes it at launch (cli/train.py, _prepare_pools)
        int(cfg.data.train_batch_size),
        int(rollout.n),
        int(val_tasks),
        int(rollout.val_kwargs.n),
        rollout.agent.num_workers,
    )
    return plan.make_plan(plan.setup_from_config(cfg, pool))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_paper_setup_fits_the_cluster_it_names(hydra_ctx, name):
    """Each experiment on its own cluster (conf/cluster/<name>.yaml, tests/unit/test_experiments.py checks it
    is the paper's): its GPUs, 80 GiB each, hold every phase, and vLLM holds the episodes in flight."""
    cfg = compose("config", overrides=[f"experiment={name}", "trainer.default_local_dir=/ckpt"])
    result = _paper_plan(name)
    assert result.setup.cluster == cfg.cluster.name
    assert result.setup.gpus == cfg.trainer.nnodes * cfg.trainer.n_gpus_per_node
    assert result.setup.gpu_gb == cfg.cluster.gpu_memory_gb == 80
    assert result.fits(), result.problem()
    in_flight = math.ceil(result.setup.episodes / (result.setup.gpus // result.setup.tp))  # per replica
    queues = result.kv_sequences() < in_flight
    assert queues is (name in QUEUES_AT_FULL_LENGTH), (result.kv_sequences(), in_flight)


# GiB per GPU (actor update, generation) and per node (host) of one row per model and algorithm family
PAPER_NUMBERS = {
    # 7B GRPO by hand: fp32 weights, gradients, AdamW / 8 GPUs (14.2) + bf16 root and two layers gathered
    # and a layer's fp32 gradient (3.8) + 16,384 tokens x (28 bf16 layer inputs + 2 layers' activations)
    # (9.5) + fused logits (0.9) + SDPA mask (0.8) + vLLM asleep (1) + two CUDA contexts (3) = 33.1
    "epo/scienceworld-7b-grpo-epo": (33.1, 45.6, 164.4),
    "epo/scienceworld-7b-ppo-epo": (44.4, 57.0, 164.4),  # + the critic's resident state and context
    "epo/alfworld-3b-ppo-epo": (24.3, 61.1, 121.9),
    "epo/alfworld-3b-grpo-epo": (18.5, 55.3, 121.9),
    "empg/alfworld-7b-grpo-empg": (33.1, 61.6, 138.8),
    "empg/webshop-1.5b-dapo-empg": (13.6, 53.2, 123.2),
    "aem/webshop-7b-dapo-aem": (33.1, 61.6, 123.2),
    "spear/webshop-1.5b-grpo-spear": (13.6, 53.2, 174.4),
    # 32B on 128 GPUs, its FSDP shards offloaded to the host (offload=True); vLLM at 0.9 of the GPU
    "spear/aime-qwen2.5-32b-drbot-spear": (38.0, 75.0, 133.9),
}


@pytest.mark.parametrize("name", sorted(PAPER_NUMBERS))
def test_the_papers_setups_by_phase(hydra_ctx, name):
    result = _paper_plan(name)
    update, generation, host = PAPER_NUMBERS[name]
    assert sum(result.update.values()) == pytest.approx(update, abs=0.05)
    assert sum(result.rollout.values()) == pytest.approx(generation, abs=0.05)
    assert result.host_total() == pytest.approx(host, abs=0.05)
    assert result.peak()[0] == "generation"  # vLLM's share is the largest single item everywhere


def test_7b_on_one_gpu_is_refused_with_lora_as_the_fix(hydra_ctx):
    """fp32 weights (28.4 GiB) + fp32 gradients (28.4) + AdamW's two fp32 moments (56.7): 7.62B x 16 bytes
    = 113.5 GiB before any activation (hand-computed), on an 80 GiB GPU."""
    result = plan.make_plan(setup_of("model=qwen2.5-7b", "cluster=1gpu"))
    assert result.update["actor weights"] == pytest.approx(7_615_616_512 * 4 / 2**30)
    assert result.update["actor AdamW"] == pytest.approx(7_615_616_512 * 8 / 2**30)
    message = plan.refusal(result)
    assert message == (
        "model=qwen2.5-7b does not fit cluster=1gpu: the actor update needs 132.4 GiB per GPU (56.7 actor "
        "AdamW + 28.4 actor weights + 28.4 actor gradients, ...) of the 80 GiB cluster.gpu_memory_gb, 52.4 "
        "GiB over; train LoRA adapters (model.lora_rank=64), which needs 72.6 GiB per GPU."
    )
    assert one_sentence(message)
    lora = plan.make_plan(setup_of("model=qwen2.5-7b", "cluster=1gpu", "model.lora_rank=64"))
    assert lora.fits() and lora.peak() == ("generation", pytest.approx(72.6, abs=0.05))
    assert "reference (CPU offload)" not in lora.host  # under LoRA the reference is the base model


def test_7b_ppo_on_one_gpu_needs_more_gpus(hydra_ctx):
    """LoRA trains only the actor; PPO's full critic still does not fit one GPU."""
    message = plan.refusal(plan.make_plan(setup_of("model=qwen2.5-7b", "cluster=1gpu", "algo=ppo")))
    assert message.endswith("; use more GPUs (cluster=8gpu), which needs 65.0 GiB per GPU.")
    assert one_sentence(message)


def test_full_logits_are_what_the_fused_kernels_save(hydra_ctx):
    """Without verl's fused kernels a 65,536-token micro-batch holds 65,536 x 151,936 bf16 logits three
    times (logits, softmax, gradient: 55.6 GiB); the fix named is a smaller token budget."""
    overrides = ("model=qwen2.5-1.5b", "cluster=1gpu", "cluster.tokens_per_gpu=65536")
    full = plan.make_plan(setup_of(*overrides, "actor_rollout_ref.model.use_fused_kernels=false"))
    assert full.update["actor logits"] == pytest.approx(65536 * 151936 * 6 / 2**30)
    message = plan.refusal(full)
    assert "use a smaller token budget (cluster.tokens_per_gpu=32768)" in message and one_sentence(message)
    fused = plan.make_plan(setup_of(*overrides))
    assert fused.update["actor logits"] == pytest.approx(512 * 151936 * 12 / 2**30)


def test_environments_count_against_the_host(hydra_ctx):
    setup = setup_of("model=qwen2.5-1.5b", "cluster=1gpu", "env=scienceworld", pool_size=300)
    result = plan.make_plan(setup)
    assert result.host["environments"] == pytest.approx(300 * 8 * 0.5)  # pool x workers x JVM env
    message = plan.refusal(result)
    assert "the host needs 1221.8 GiB per node" in message and "env.pool_size=26" in message
    assert one_sentence(message)


def test_a_vllm_share_too_small_for_the_weights_is_refused(hydra_ctx):
    result = plan.make_plan(
        setup_of(
            "model=qwen2.5-7b",
            "cluster=1gpu",
            "model.lora_rank=64",
            "actor_rollout_ref.rollout.gpu_memory_utilization=0.15",
        )
    )
    kind, clause = result.problem()
    assert kind == "kv" and "less than one sequence of 2560 tokens" in clause
    assert one_sentence(plan.refusal(result))


def test_dry_run_prints_the_plan(hydra_ctx):
    lines = plan.make_plan(
        setup_of("experiment=epo/scienceworld-7b-ppo-epo", "trainer.default_local_dir=/c")
    ).lines()
    assert lines[0].startswith(
        "memory plan: model=qwen2.5-7b (7.62B parameters, 7.62B trained) on cluster=8gpu"
    )
    assert [line.split()[0] for line in lines[1:5]] == ["actor", "log-probs", "generation", "critic"]
    assert lines[-1] == "  verdict: fits"


@pytest.mark.parametrize(
    ("args", "size"),
    [
        ((16, 8, 128, 1, 8), 16),  # EPO/SPEAR GRPO: 16 tasks x 8 over 8 workers; validation 128 x 1
        ((32, 8, 128, 1, 8), 32),  # AEM's 32 groups
        ((128, 1, 128, 1, 8), 16),  # EPO's PPO: 128 tasks x 1
        ((4, 4, 6, 1, 1), 16),  # the tiny CPU run: one worker
        ((5, 2, 0, 0, 4), 4),  # verl's chunks are ceil(5 / 4) = 2 tasks
    ],
)
def test_pools_hold_every_episode_a_worker_runs_at_once(args, size):
    assert auto_pool_size(*args) == size
