"""The memory plan of a GPU run, made before Ray starts: what verl will hold on each GPU and on each node.

``make_plan(setup_from_config(cfg))`` adds up, per GPU, for the two phases of a step (vLLM generating; the
actor or critic updating while vLLM sleeps) and for the host RAM of a node:

- weights, gradients and AdamW state of the actor (and of PPO's critic) under FSDP2, sharded over every
  GPU of the run (verl's default ``fsdp_size: -1``), in the dtype verl keeps them (``fsdp_config.
  model_dtype``: fp32 master weights, fp32 gradients, two fp32 AdamW moments per trainable parameter),
  on the GPU or on the host as the offload keys say;
- the unsharded working copies FSDP2 gathers in bf16 (``mixed_precision.param_dtype``): the root module
  (embeddings and LM head), which verl never reshards after forward (verl/utils/fsdp_utils.py
  ``apply_fsdp2``), plus the current and the prefetched decoder layer and its full-precision gradient;
- activations of one micro-batch of ``tokens`` tokens: with gradient checkpointing each layer keeps its
  bf16 input and one layer at a time is recomputed (and differentiated); without, every layer keeps all;
- logits and entropy: the whole micro-batch's ``tokens x vocab`` logits (bf16, plus the softmax and the
  gradient) unless verl's fused kernels compute them 512 tokens at a time
  (verl/utils/experimental/torch_functional.py ``FusedLinearForPPO``, chunk_size 512, fp32);
- SDPA on a packed micro-batch: transformers builds one ``tokens x tokens`` boolean mask (masking_utils
  ``find_packed_sequence_indices``) and PyTorch turns it into an additive bf16 mask per call;
- vLLM's share, ``gpu_memory_utilization`` of the GPU while it generates (its weights, bf16 and split
  over the tensor-parallel group, and the KV cache); asleep it keeps only its context (verl frees the KV
  cache and, for full fine-tuning, discards the weights: level-2 sleep, vllm_async_server.py
  ``_resolve_sleep_level``; LoRA's level 1 keeps a host copy of the base weights);
- the reference policy: verl gives the forward-only reference FSDP2's ``CPUOffloadPolicy`` (transformer_impl
  ``_build_fsdp_module``), so it lives in pinned host RAM (under LoRA it is the actor without adapters);
- the environments: ``pool_size`` actors per agent-loop worker, ``env.ram_per_env_gb`` each (else the
  environment class's ``ram_per_env_gb``).

Sizes are GiB (2**30 bytes, what torch and nvidia-smi report). Model shapes come from ``conf/model/``
(``model.shape``), so a plan needs no download. The allowances below (CUDA contexts, vLLM's workspace,
worker processes) are our estimates, not measurements; scripts/gpu_check.sh compares the training phase
with the peak memory a real CUDA run reaches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

GIB = 2**30

# Our allowances (estimates): per CUDA process on a GPU (context, NCCL buffers, allocator slack), vLLM's
# activation workspace while it generates and what it keeps asleep (context, CUDA graphs), the host memory of
# one GPU's worker processes (torch + CUDA libraries of the trainer and of the vLLM worker) and of one
# agent-loop worker.
GPU_PROCESS_GB = 1.5
VLLM_WORKSPACE_GB = 1.5
VLLM_ASLEEP_GB = 1.0
HOST_PER_GPU_GB = 8.0
HOST_PER_AGENT_WORKER_GB = 1.0
FUSED_CHUNK = 512  # verl's FusedLinearForPPO chunk_size
LORA_SUGGESTION = 64  # the rank the planner suggests when full fine-tuning does not fit


@dataclass(frozen=True)
class Shape:
    """A Qwen2-style decoder (q/k/v with bias, o/gate/up/down without, RMSNorm, SwiGLU)."""

    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    vocab_size: int
    tie_word_embeddings: bool

    @property
    def kv_dim(self) -> int:
        return self.hidden_size // self.num_heads * self.num_kv_heads

    def layer_params(self) -> int:
        h, kv, inter = self.hidden_size, self.kv_dim, self.intermediate_size
        attention = h * h + h + 2 * (h * kv + kv) + h * h  # q (+bias), k and v (+bias), o
        return attention + 3 * h * inter + 2 * h  # gate, up, down; two RMSNorms

    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    def params(self) -> int:
        return self.num_layers * self.layer_params() + self.embedding_params() + self.hidden_size

    def lora_params(self, rank: int) -> int:
        """Adapters of rank ``rank`` on every linear layer of the decoder (PEFT's ``all-linear``, which
        leaves the LM head out): ``rank x (in + out)`` per layer."""
        h, kv, inter = self.hidden_size, self.kv_dim, self.intermediate_size
        per_layer = (h + h) + 2 * (h + kv) + (h + h) + 2 * (h + inter) + (inter + h)
        return rank * per_layer * self.num_layers

    def layer_activation_bytes(self) -> int:
        """bf16 bytes one decoder layer saves for backward, per token: its two norms' inputs and outputs,
        q/k/v, the attention output, o_proj's output, gate and up, the SiLU and the product, down's
        output."""
        h, kv, inter = self.hidden_size, self.kv_dim, self.intermediate_size
        return 2 * (8 * h + 2 * kv + 4 * inter)

    def kv_bytes_per_token(self) -> int:
        """bf16 K and V of every layer for one token (vLLM's KV cache)."""
        return 2 * 2 * self.num_layers * self.kv_dim


@dataclass(frozen=True)
class Trainee:
    """A model verl trains with FSDP2 (the actor, PPO's critic) and where its state lives."""

    tokens: int  # micro-batch token budget per GPU of its update
    weight_bytes: int = 4  # fsdp_config.model_dtype (fp32)
    param_offload: bool = False  # verl's auto offload: on the host outside the update
    optimizer_offload: bool = False
    offload_policy: bool = False  # FSDP2 CPUOffloadPolicy: on the host always, CPU optimizer step
    vocab_logits: bool = True  # the actor computes log-probs over the vocabulary; the critic a value


@dataclass(frozen=True)
class Setup:
    """Everything the plan depends on, read from the config by `setup_from_config`."""

    model: str
    cluster: str
    shape: Shape
    gpus_per_node: int
    nodes: int
    gpu_gb: float
    host_gb: float
    actor: Trainee
    lora_rank: int = 0
    critic: Trainee | None = None
    reference: bool = False  # a separate reference model (KL), host-offloaded by verl
    gradient_checkpointing: bool = True
    fused_kernels: bool = False
    attention: str = "sdpa"
    remove_padding: bool = True
    logprob_tokens: int = 0  # micro-batch budget of the old/ref log-prob passes (forward only)
    max_seq_len: int = 0  # prompt + response
    vllm_util: float = 0.5
    tp: int = 1
    episodes: int = 0  # episodes in flight in a training step (tasks x rollout.n)
    envs: int = 0  # environment actors at most (pool_size x agent-loop workers)
    ram_per_env_gb: float = 0.0
    agent_workers: int = 8

    @property
    def gpus(self) -> int:
        return self.gpus_per_node * self.nodes


@dataclass
class Plan:
    """GiB per GPU in each phase and per node on the host, with the checks' findings."""

    setup: Setup
    update: dict[str, float] = field(default_factory=dict)  # the actor update (vLLM asleep)
    critic_update: dict[str, float] = field(default_factory=dict)
    log_probs: dict[str, float] = field(default_factory=dict)  # old and reference log-probs (forward only)
    rollout: dict[str, float] = field(default_factory=dict)  # vLLM generating
    host: dict[str, float] = field(default_factory=dict)
    kv_cache_gb: float = 0.0

    @property
    def phases(self) -> dict[str, dict[str, float]]:
        out = {"actor update": self.update, "log-probs": self.log_probs, "generation": self.rollout}
        if self.critic_update:
            out["critic update"] = self.critic_update
        return out

    def peak(self) -> tuple[str, float]:
        """The phase that needs the most GPU memory, and how much."""
        return max(((name, sum(parts.values())) for name, parts in self.phases.items()), key=lambda x: x[1])

    def host_total(self) -> float:
        return sum(self.host.values())

    def kv_sequences(self) -> float:
        """KV cache of one vLLM replica in sequences of ``max_seq_len`` tokens."""
        s = self.setup
        per_token = s.shape.kv_bytes_per_token() / GIB / min(s.tp, s.shape.num_kv_heads)
        return self.kv_cache_gb / (per_token * max(s.max_seq_len, 1)) if per_token else 0.0

    def fits(self) -> bool:
        return self.problem() is None

    def problem(self) -> tuple[str, str] | None:
        """What does not fit: ``(kind, clause)`` with kind ``gpu``, ``kv`` or ``host``; None if it fits."""
        s = self.setup
        phase, need = self.peak()
        if need > s.gpu_gb:
            top = sorted(self.phases[phase].items(), key=lambda kv: -kv[1])[:3]
            parts = " + ".join(f"{v:.1f} {k}" for k, v in top)
            return "gpu", (
                f"the {phase} needs {need:.1f} GiB per GPU ({parts}, ...) of the {s.gpu_gb:g} GiB "
                f"cluster.gpu_memory_gb, {need - s.gpu_gb:.1f} GiB over"
            )
        if self.kv_sequences() < 1:
            return "kv", (
                f"vLLM's share ({s.vllm_util:g} x {s.gpu_gb:g} GiB) leaves {self.kv_cache_gb:.1f} GiB of KV "
                f"cache per GPU after the weights, less than one sequence of {s.max_seq_len} tokens"
            )
        if self.host_total() > s.host_gb:
            top = sorted(self.host.items(), key=lambda kv: -kv[1])[:3]
            parts = " + ".join(f"{v:.1f} {k}" for k, v in top)
            return "host", (
                f"the host needs {self.host_total():.1f} GiB per node ({parts}, ...) of the {s.host_gb:g} "
                f"GiB cluster.host_memory_gb, {self.host_total() - s.host_gb:.1f} GiB over"
            )
        return None

    def lines(self) -> list[str]:
        """The plan as `dry_run=true` prints it."""
        s = self.setup
        trainable = s.shape.lora_params(s.lora_rank) if s.lora_rank else s.shape.params()
        out = [
            f"memory plan: model={s.model} ({s.shape.params() / 1e9:.2f}B parameters, "
            f"{trainable / 1e9:.3g}B trained{f', LoRA rank {s.lora_rank}' if s.lora_rank else ''}) on "
            f"cluster={s.cluster} ({s.gpus} x {s.gpu_gb:g} GiB, host {s.host_gb:g} GiB per node); "
            f"micro-batches of {s.actor.tokens} tokens, attention {s.attention}, "
            f"{'fused' if s.fused_kernels else 'full'} logits"
        ]
        for name, parts in self.phases.items():
            detail = ", ".join(f"{k} {v:.1f}" for k, v in parts.items() if v >= 0.05)
            out.append(f"  {name:<14} {sum(parts.values()):6.1f} GiB per GPU: {detail}")
        detail = ", ".join(f"{k} {v:.1f}" for k, v in self.host.items() if v >= 0.05)
        out.append(f"  {'host':<14} {self.host_total():6.1f} GiB per node: {detail}")
        replicas = max(s.gpus // s.tp, 1)
        out.append(
            f"  vLLM: {replicas} replicas (TP {s.tp}), KV cache {self.kv_cache_gb:.1f} GiB per GPU = "
            f"{self.kv_sequences():.0f} sequences of {s.max_seq_len} tokens per replica for "
            f"{math.ceil(s.episodes / replicas)} episodes in flight per replica"
        )
        problem = self.problem()
        out.append(f"  verdict: {'fits' if problem is None else 'does not fit: ' + problem[1]}")
        return out


def _trainee_gpu(s: Setup, t: Trainee, params: int, trainable: int) -> dict[str, float]:
    """GPU memory of one trainee during its own update (bytes -> GiB), its state and working set."""
    n = s.gpus
    parts: dict[str, float] = {}
    if not t.offload_policy:
        parts["weights"] = params * t.weight_bytes / n / GIB
        parts["gradients"] = trainable * 4 / n / GIB
        parts["AdamW"] = trainable * 8 / n / GIB
    gathered = s.shape.embedding_params() * 2 + 2 * s.shape.layer_params() * 2 + s.shape.layer_params() * 4
    parts["gathered bf16 params"] = gathered / GIB
    tokens, layer = t.tokens, s.shape.layer_activation_bytes()
    if s.gradient_checkpointing:
        saved = s.shape.num_layers * s.shape.hidden_size * 2 + 2 * layer
    else:
        saved = s.shape.num_layers * layer + layer
    parts["activations"] = tokens * saved / GIB
    if t.vocab_logits:
        rows = FUSED_CHUNK if s.fused_kernels else tokens
        parts["logits"] = rows * s.shape.vocab_size * (4 * 3 if s.fused_kernels else 2 * 3) / GIB
    if s.attention == "sdpa" and s.remove_padding:
        parts["SDPA mask"] = tokens * tokens * 3 / GIB
    return parts


def _forward_gpu(s: Setup, tokens: int) -> dict[str, float]:
    """Working set of a forward-only pass (old or reference log-probs) over ``tokens`` tokens: one layer's
    outputs at a time, no saved activations."""
    gathered = s.shape.embedding_params() * 2 + 2 * s.shape.layer_params() * 2
    parts = {
        "gathered bf16 params": gathered / GIB,
        "activations": tokens * s.shape.layer_activation_bytes() / GIB,
    }
    rows = FUSED_CHUNK if s.fused_kernels else tokens
    parts["logits"] = rows * s.shape.vocab_size * (4 * 2 if s.fused_kernels else 2 * 2) / GIB
    if s.attention == "sdpa" and s.remove_padding:
        parts["SDPA mask"] = tokens * tokens * 3 / GIB
    return parts


def _resident(s: Setup, t: Trainee, params: int, trainable: int) -> dict[str, float]:
    """What a trainee keeps on the GPU outside its update (weights and AdamW unless offloaded)."""
    n, parts = s.gpus, {}
    if not (t.offload_policy or t.param_offload):
        parts["weights"] = params * t.weight_bytes / n / GIB
    if not (t.offload_policy or t.optimizer_offload):
        parts["AdamW"] = trainable * 8 / n / GIB
    return parts


def _host_state(s: Setup, t: Trainee, params: int, trainable: int) -> float:
    """Host GiB per node of a trainee's offloaded state (its share of the shards on this node's GPUs)."""
    per_gpu = 0.0
    if t.offload_policy or t.param_offload:
        per_gpu += params * t.weight_bytes + trainable * 4
    if t.offload_policy or t.optimizer_offload:
        per_gpu += trainable * 8
    return per_gpu / s.gpus * s.gpus_per_node / GIB


def make_plan(s: Setup) -> Plan:
    """Add up the memory of every phase of a step; see the module docstring for what is counted."""
    plan = Plan(setup=s)
    params = s.shape.params()
    trainable = s.shape.lora_params(s.lora_rank) if s.lora_rank else params
    actor = {f"actor {k}": v for k, v in _trainee_gpu(s, s.actor, params, trainable).items()}
    context = GPU_PROCESS_GB * (2 + (s.critic is not None))  # trainer, vLLM worker(, critic) processes
    critic_params = params - s.shape.vocab_size * s.shape.hidden_size * (
        0 if s.shape.tie_word_embeddings else 1
    )
    critic_resident = (
        {f"critic {k}": v for k, v in _resident(s, s.critic, critic_params, critic_params).items()}
        if s.critic
        else {}
    )
    plan.update = {**actor, **critic_resident, "vLLM asleep": VLLM_ASLEEP_GB, "CUDA contexts": context}
    if s.critic:
        critic = {
            f"critic {k}": v for k, v in _trainee_gpu(s, s.critic, critic_params, critic_params).items()
        }
        actor_resident = {f"actor {k}": v for k, v in _resident(s, s.actor, params, trainable).items()}
        plan.critic_update = {
            **critic,
            **actor_resident,
            "vLLM asleep": VLLM_ASLEEP_GB,
            "CUDA contexts": context,
        }
    actor_resident = {f"actor {k}": v for k, v in _resident(s, s.actor, params, trainable).items()}
    if s.actor.param_offload and not s.actor.offload_policy:  # verl's eval mode loads the weights back
        actor_resident["actor weights"] = params * s.actor.weight_bytes / s.gpus / GIB
    forward = {f"log-prob {k}": v for k, v in _forward_gpu(s, s.logprob_tokens or s.actor.tokens).items()}
    plan.log_probs = {**actor_resident, **forward, **critic_resident, "vLLM asleep": VLLM_ASLEEP_GB}
    plan.log_probs["CUDA contexts"] = context
    vllm = s.vllm_util * s.gpu_gb
    plan.rollout = {
        **{f"actor {k}": v for k, v in _resident(s, s.actor, params, trainable).items()},
        **critic_resident,
        "vLLM share": vllm,
        "CUDA contexts": context,
    }
    weights = params * 2 / s.tp / GIB
    plan.kv_cache_gb = vllm - weights - VLLM_WORKSPACE_GB

    host: dict[str, float] = {}
    if s.reference and not s.lora_rank:
        host["reference (CPU offload)"] = params * 4 / s.gpus * s.gpus_per_node / GIB
    actor_host = _host_state(s, s.actor, params, trainable)
    if actor_host:
        host["actor offload"] = actor_host
    if s.critic and _host_state(s, s.critic, critic_params, critic_params):
        host["critic offload"] = _host_state(s, s.critic, critic_params, critic_params)
    if s.lora_rank:  # vLLM's level-1 sleep keeps the base weights on the host
        host["vLLM sleeping weights"] = params * 2 * s.gpus_per_node / s.tp / GIB
    workers_per_node = math.ceil(s.agent_workers / s.nodes)
    host["worker processes"] = HOST_PER_GPU_GB * s.gpus_per_node + HOST_PER_AGENT_WORKER_GB * workers_per_node
    host["environments"] = s.envs / s.nodes * s.ram_per_env_gb
    plan.host = host
    return plan


# ---- knobs the planner suggests ------------------------------------------------------------------------
def _with_lora(s: Setup) -> Setup:
    return replace(s, lora_rank=LORA_SUGGESTION) if not s.lora_rank else s


def _with_offload(s: Setup) -> Setup:
    return replace(s, actor=replace(s.actor, offload_policy=True))


def _with_tokens(s: Setup) -> Setup:
    tokens = max(s.actor.tokens // 2, s.max_seq_len)
    critic = replace(s.critic, tokens=max(s.critic.tokens // 2, s.max_seq_len)) if s.critic else None
    return replace(s, actor=replace(s.actor, tokens=tokens), critic=critic)


def _with_vllm_share(s: Setup) -> Setup:
    return replace(s, vllm_util=round(max(s.vllm_util - 0.1, 0.1), 2))


def _with_gpus(s: Setup) -> Setup:
    if s.nodes == 1 and s.gpus_per_node < 8:
        return replace(s, gpus_per_node=8, cluster="8gpu", host_gb=max(s.host_gb, 1000.0))
    return replace(s, nodes=s.nodes * 2)


def _knob(s: Setup, fixed: Setup) -> str:
    if fixed.lora_rank != s.lora_rank:
        return f"train LoRA adapters (model.lora_rank={fixed.lora_rank})"
    if fixed.actor.offload_policy != s.actor.offload_policy:
        return "offload the actor to the host (actor_rollout_ref.actor.fsdp_config.offload_policy=true)"
    if fixed.actor.tokens != s.actor.tokens:
        return f"use a smaller token budget (cluster.tokens_per_gpu={fixed.actor.tokens})"
    if fixed.vllm_util != s.vllm_util:
        return f"give vLLM less (actor_rollout_ref.rollout.gpu_memory_utilization={fixed.vllm_util:g})"
    if fixed.cluster != s.cluster:
        return f"use more GPUs (cluster={fixed.cluster})"
    return f"use more GPUs (trainer.nnodes={fixed.nodes})"


def suggestion(s: Setup, kind: str = "gpu") -> str:
    """The knob that fixes a problem of ``kind`` (`Plan.problem`), as a clause: for GPU memory the first
    of LoRA, offload, a smaller token budget, a smaller vLLM share and more GPUs whose plan fits."""
    if kind == "kv":
        return (
            "raise actor_rollout_ref.rollout.gpu_memory_utilization or split the model over more GPUs "
            "(actor_rollout_ref.rollout.tensor_model_parallel_size)"
        )
    if kind == "host":
        plan = make_plan(s)
        envs = plan.host.get("environments", 0.0)
        over = plan.host_total() - s.host_gb
        if envs > over and s.envs:
            per_worker = s.envs // max(s.agent_workers, 1)
            fewer = max(int(per_worker * (1 - over / envs)), 1)
            return f"cap the environments (env.pool_size={fewer}; episodes beyond it wait for one)"
        return "set cluster.host_memory_gb to this machine's RAM if it has more, or use more nodes"
    for fix in (_with_lora, _with_offload, _with_tokens, _with_vllm_share, _with_gpus):
        fixed = fix(s)
        if fixed == s:
            continue
        plan = make_plan(fixed)
        if plan.fits():
            return f"{_knob(s, fixed)}, which needs {plan.peak()[1]:.1f} GiB per GPU"
    return (
        "no single knob makes it fit (LoRA, offload, a smaller token budget, more GPUs): use a smaller model"
    )


def refusal(plan: Plan) -> str | None:
    """One sentence for `agent_rl.cli.train.ConfigError`: what does not fit, by how much, and the knob."""
    problem = plan.problem()
    if problem is None:
        return None
    kind, clause = problem
    s = plan.setup
    return f"model={s.model} does not fit cluster={s.cluster}: {clause}; {suggestion(s, kind)}."


# ---- from the config -----------------------------------------------------------------------------------
def _get(cfg: Any, key: str, default: Any = None) -> Any:
    from omegaconf import OmegaConf

    value = OmegaConf.select(cfg, key, default=default)
    return default if value is None else value


def _tokens(cfg: Any, node: str, budget_key: str, rows_key: str, max_seq_len: int) -> int:
    """A micro-batch's tokens: verl's token budget with dynamic batch sizes, else rows x the longest row."""
    if _get(cfg, "actor_rollout_ref.actor.use_dynamic_bsz", False):
        return int(_get(cfg, f"{node}.{budget_key}", 16384))
    return int(_get(cfg, f"{node}.{rows_key}", 1)) * max_seq_len


def _trainee(cfg: Any, node: str, engine: str, tokens: int, vocab_logits: bool) -> Trainee:
    dtype = str(_get(cfg, f"{node}.{engine}.model_dtype", "fp32"))
    return Trainee(
        tokens=tokens,
        weight_bytes=2 if dtype in ("bf16", "bfloat16", "fp16", "float16") else 4,
        param_offload=bool(_get(cfg, f"{node}.{engine}.param_offload", False)),
        optimizer_offload=bool(_get(cfg, f"{node}.{engine}.optimizer_offload", False)),
        offload_policy=bool(_get(cfg, f"{node}.{engine}.offload_policy", False)),
        vocab_logits=vocab_logits,
    )


def _class_ram(cfg: Any) -> float:
    """The environment class's own ``ram_per_env_gb`` where the config gives none (0 without a class)."""
    from agent_rl.envs.api import env_class, env_spec

    try:
        return float(env_class(env_spec(cfg.env)).ram_per_env_gb)
    except (ValueError, AttributeError, KeyError):
        return 0.0


def setup_from_config(cfg: Any, pool_size: int | None = None) -> Setup:
    """The `Setup` of a composed agent_rl config (resolved or not); ``pool_size`` overrides ``env.pool_size``
    where that is still "auto"."""
    shape = Shape(**{k: v for k, v in dict(cfg.model.shape).items()})
    seq = int(cfg.data.max_prompt_length) + int(cfg.data.max_response_length)
    actor_tokens = _tokens(
        cfg, "actor_rollout_ref.actor", "ppo_max_token_len_per_gpu", "ppo_micro_batch_size_per_gpu", seq
    )
    critic = None
    if bool(_get(cfg, "critic.enable", False)) or _get(cfg, "algorithm.adv_estimator") == "gae":
        tokens = _tokens(cfg, "critic", "ppo_max_token_len_per_gpu", "ppo_micro_batch_size_per_gpu", seq)
        critic = _trainee(cfg, "critic", "fsdp", tokens, vocab_logits=False)
    rollout = cfg.actor_rollout_ref.rollout
    workers = int(_get(cfg, "actor_rollout_ref.rollout.agent.num_workers", 8))
    pool = pool_size if pool_size is not None else _get(cfg, "env.pool_size", 0)
    pool = int(pool) if str(pool).isdigit() else 0
    logprob_key = "log_prob_max_token_len_per_gpu"
    return Setup(
        model=str(cfg.model.name),
        cluster=str(cfg.cluster.name),
        shape=shape,
        gpus_per_node=int(cfg.trainer.n_gpus_per_node),
        nodes=int(cfg.trainer.nnodes),
        gpu_gb=float(_get(cfg, "cluster.gpu_memory_gb", 80)),
        host_gb=float(_get(cfg, "cluster.host_memory_gb", 1000)),
        actor=_trainee(cfg, "actor_rollout_ref.actor", "fsdp_config", actor_tokens, vocab_logits=True),
        lora_rank=int(_get(cfg, "actor_rollout_ref.model.lora_rank", 0)),
        critic=critic,
        reference=bool(_get(cfg, "actor_rollout_ref.actor.use_kl_loss", False))
        or bool(_get(cfg, "algorithm.use_kl_in_reward", False)),
        gradient_checkpointing=bool(_get(cfg, "actor_rollout_ref.model.enable_gradient_checkpointing", True)),
        fused_kernels=bool(_get(cfg, "actor_rollout_ref.model.use_fused_kernels", False)),
        attention=str(
            _get(cfg, "actor_rollout_ref.model.override_config.attn_implementation", "flash_attention_2")
        ),
        remove_padding=bool(_get(cfg, "actor_rollout_ref.model.use_remove_padding", True)),
        logprob_tokens=_tokens(
            cfg, "actor_rollout_ref.rollout", logprob_key, "log_prob_micro_batch_size_per_gpu", seq
        ),
        max_seq_len=seq,
        vllm_util=float(rollout.gpu_memory_utilization),
        tp=int(rollout.tensor_model_parallel_size),
        episodes=int(cfg.data.train_batch_size) * int(rollout.n),
        envs=pool * workers,
        ram_per_env_gb=float(_get(cfg, "env.ram_per_env_gb", None) or _class_ram(cfg)),
        agent_workers=workers,
    )
