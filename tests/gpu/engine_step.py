"""One actor update as verl's FSDP2 engine runs it, on a randomly initialised model of a conf/model/ shape,
with one micro-batch of the configured token budget; prints peak memory beside the planner's estimate.

    python -m tests.gpu.engine_step --model qwen2.5-1.5b --tokens 16384      # CUDA, bf16 (the GPU path)
    python -m tests.gpu.engine_step --model tiny --tokens 2048 --device cpu  # the same code on the CPU

What runs is what verl's engine does per micro-batch on agent_rl's GPU clusters (verl 0.9.1,
workers/engine/fsdp/transformer_impl.py): the model loaded with SDPA attention, verl's monkey patch with
remove-padding and fused kernels (torch backend), FSDP2 ``fully_shard`` through verl's ``apply_fsdp2`` with
bf16 compute and fp32 master weights, gradient checkpointing, a packed micro-batch (one row, position ids
restarting per sequence, no attention mask, no KV cache), log-probs and entropy from the fused head,
backward and an AdamW step. Printed (JSON, last line): peak allocated GiB, the planner's sum of the same
items, and how far the packed SDPA log-probs are from those of each sequence run alone.
"""

from __future__ import annotations

import argparse
import json
import os
import socket

import torch
import torch.distributed as dist
import yaml

from agent_rl.cli import train
from agent_rl.training import plan


def shape_of(model: str) -> plan.Shape:
    cfg = yaml.safe_load((train.CONF_DIR / "model" / f"{model}.yaml").read_text())
    return plan.Shape(**cfg["model"]["shape"])


def build(shape: plan.Shape, device: str):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=shape.vocab_size,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads,
        tie_word_embeddings=shape.tie_word_embeddings,
        max_position_embeddings=32768,
        attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(torch.float32)  # verl's model_dtype fp32 (master weights)
    return model


def packed_batch(tokens: int, seq_len: int, vocab: int, device: str):
    """Sequences of ``seq_len`` (the last shorter) packed into one row, as verl's remove-padding does."""
    lengths = [seq_len] * (tokens // seq_len) + ([tokens % seq_len] if tokens % seq_len else [])
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (1, tokens), generator=g).to(device)
    positions = torch.cat([torch.arange(n) for n in lengths])[None].to(device)
    return ids, positions, lengths


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--model", default="qwen2.5-1.5b")
    args.add_argument("--tokens", type=int, default=16384)
    args.add_argument("--seq-len", type=int, default=2560)
    args.add_argument("--device", default="cuda")
    a = args.parse_args()

    from torch.distributed.fsdp import MixedPrecisionPolicy
    from verl.models.transformers.monkey_patch import apply_monkey_patch
    from verl.utils.fsdp_utils import apply_fsdp2

    cuda = a.device == "cuda"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(port))
    dist.init_process_group("nccl" if cuda else "gloo", rank=0, world_size=1)
    shape = shape_of(a.model)
    model = build(shape, "cpu")
    apply_monkey_patch(model, use_remove_padding=True, use_fused_kernels=True, fused_kernels_backend="torch")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    compute = torch.bfloat16 if cuda else torch.float32
    mp = MixedPrecisionPolicy(param_dtype=compute, reduce_dtype=torch.float32, cast_forward_inputs=True)
    if cuda:
        model = model.cuda()
    apply_fsdp2(model, {"mp_policy": mp, "reshard_after_forward": True}, {"wrap_policy": {}})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    ids, positions, lengths = packed_batch(a.tokens, a.seq_len, shape.vocab_size, a.device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    labels = torch.roll(ids, shifts=-1, dims=1)
    out = model(input_ids=ids, position_ids=positions, use_cache=False, return_dict=True, shift_labels=labels)
    loss = -out.log_probs.mean() - 1e-3 * out.entropy.mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")

    # the packed micro-batch attends within each sequence only (transformers' mask from position_ids)
    with torch.no_grad():
        # use_cache=False as verl passes it: with a cache transformers skips the packed-sequence mask
        packed = model(
            input_ids=ids, position_ids=positions, use_cache=False, return_dict=True, shift_labels=labels
        ).log_probs
        start, worst = 0, 0.0
        for n in lengths[:3]:
            alone = model(
                input_ids=ids[:, start : start + n],
                position_ids=positions[:, start : start + n],
                use_cache=False,
                return_dict=True,
                shift_labels=labels[:, start : start + n],
            ).log_probs
            # the last token's label wraps to the next sequence in both; compare the others
            worst = max(worst, (packed[:, start : start + n - 1] - alone[:, : n - 1]).abs().max().item())
            start += n

    setup = plan.Setup(
        model=a.model,
        cluster="engine_step",
        shape=shape,
        gpus_per_node=1,
        nodes=1,
        gpu_gb=float("inf"),
        host_gb=float("inf"),
        actor=plan.Trainee(tokens=a.tokens),
        fused_kernels=True,
        attention="sdpa",
        max_seq_len=a.seq_len,
    )
    parts = plan.make_plan(setup).update
    planned = sum(v for k, v in parts.items() if k.startswith("actor "))
    print(
        json.dumps(
            {"peak_gib": peak, "planned_gib": planned, "packed_vs_alone_max_abs": worst, "loss": float(loss)}
        )
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
