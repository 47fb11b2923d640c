"""The multi-turn agent loop: one environment episode, returned as one training sample per step.

verl's agent-loop worker calls ``run`` once per trajectory (each task row is repeated ``rollout.n`` times;
``session_id`` tells the copies apart). The loop leases an environment from this worker's pool, resets it
from the row's ``env_spec`` (so every member of a GRPO group starts from the same state), and then, until
the episode ends or ``env.max_steps`` is reached:

1. builds the step prompt (task, step count, the last ``history_length`` observation/action pairs, the
   current observation, the admissible actions, the think/action instruction; `agent_rl.rollout.prompts`),
2. generates through verl's server manager (token in, token out, with log-probs),
3. parses ``<think>…</think><action>…</action>`` (`agent_rl.rollout.parsing`); a malformed answer is
   an invalid step and never an error,
4. steps the environment with the parsed action.

Output layout (verl-agent's, on which EPO, EMPG, AEM and SPEAR trained): ``list[AgentLoopOutput]``, one per
step, each with that step's prompt as ``prompt_ids`` and that turn's tokens as the response. Every step
carries the trajectory's outcome reward ``success_reward * won`` as ``reward_score``; the invalid-action
penalty of a step is in its ``extra_fields["step_penalty"]`` and applied by `agent_rl.training.trainer` (verl
copies the final step's ``reward_score`` onto all earlier steps, so a per-step score cannot travel there).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopMetrics, AgentLoopOutput

from agent_rl.envs.api import env_class, env_spec
from agent_rl.envs.pool import EnvPool, auto_pool_size
from agent_rl.rollout.parsing import parse_action
from agent_rl.rollout.prompts import build_prompt

logger = logging.getLogger(__name__)

AGENT_NAME = "agent_rl_env"

# One pool per (environment, settings) in each agent-loop worker process; a pool belongs to the event
# loop that created it (agent_rl.envs.pool).
_POOLS: dict[tuple, EnvPool] = {}


def _pool_for(env_cfg: dict[str, Any], config: Any) -> EnvPool:
    kwargs = dict(env_cfg.get("env_kwargs") or {})
    key = (env_spec(env_cfg), repr(sorted(kwargs.items())), asyncio.get_running_loop())
    if key not in _POOLS:
        size = env_cfg.get("pool_size", "auto")
        if size == "auto":  # agent-rl resolves it at launch; a config composed elsewhere sizes for training
            rollout = config.actor_rollout_ref.rollout
            size = auto_pool_size(
                int(config.data.train_batch_size), int(rollout.n), 0, 0, rollout.agent.num_workers
            )
        expected = env_cfg.get("expected_tasks")
        _POOLS[key] = EnvPool(
            env_spec(env_cfg),
            size=int(size),
            env_kwargs=kwargs,
            max_retries=int(env_cfg.get("max_env_retries", 2)),
            expected_tasks=dict(expected) if expected else None,
        )
    return _POOLS[key]


def request_seed(key: str) -> int:
    """vLLM's per-request sampling seed for ``key`` (a validation row's spec, member and turn): 32 bits of
    its SHA-256, the same in every process and run."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little")


class EnvAgentLoop(AgentLoopBase):
    """Plays one episode of ``config.env`` and returns one `AgentLoopOutput` per environment step."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env_cfg: dict[str, Any] = dict(self.config.env)
        self.env_name: str = env_spec(self.env_cfg)  # a name, or a user's class path (env._target_)
        self.env_cls = env_class(self.env_name)
        self.max_steps = int(self.env_cfg["max_steps"])
        self.history_length = int(self.env_cfg["history_length"])
        self.success_reward = float(self.env_cfg["success_reward"])
        self.invalid_action_penalty = float(self.env_cfg["invalid_action_penalty"])
        # validation samples seeded per (task, member, turn): the same weights validate alike (env.val_seeded)
        self.val_seeded = bool(self.env_cfg.get("val_seeded", True))
        self.seed = int(self.config.get("seed", 0) or 0)
        self.prompt_length = int(self.rollout_config.prompt_length)
        self.response_length = int(self.rollout_config.response_length)

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> list[AgentLoopOutput]:
        spec = json.loads(kwargs["env_spec"])
        trajectory_id = f"{kwargs['uid']}_{kwargs.get('session_id', 0)}"
        pool = _pool_for(self.env_cfg, self.config)
        extra_info = kwargs.get("extra_info")
        seeded = self.val_seeded and isinstance(extra_info, dict) and extra_info.get("table") == "val"
        seed_key = f"{kwargs['env_spec']}|{kwargs.get('session_id', 0)}|{self.seed}" if seeded else None
        steps: list[dict[str, Any]] = []
        history: list[tuple[str, str]] = []
        done, won, score, env_failed = False, False, 0.0, False
        async with pool.lease() as env:
            observation, info = await env.reset(spec)
            task, task_type = info.get("task", ""), info.get("task_type", "")
            inputs = None  # what of each info the prompt shows (the environment's turn_inputs)
            for turn in range(self.max_steps):
                inputs = self.env_cls.turn_inputs(info, inputs)
                params = sampling_params
                if seed_key is not None:
                    params = {**sampling_params, "seed": request_seed(f"{seed_key}|{turn}")}
                step = await self._generate(params, task, turn, history, observation, inputs)
                parsed = parse_action(step.pop("text"), self.env_name)
                next_observation, _, done, info = await env.step(parsed.action)
                step.update(
                    turn=turn,
                    valid=parsed.valid,
                    reason=parsed.reason,
                    action=parsed.action,
                    observation=observation,  # the state the action was taken in: GiGPO's anchor
                )
                steps.append(step)
                history.append((observation, parsed.action))
                observation = next_observation
                won, score = bool(info.get("won", False)), float(info.get("score", 0.0))
                env_failed = bool(info.get("env_failed", False))
                if done:
                    break
        return self._outputs(steps, trajectory_id, task_type, won, score, done, env_failed)

    def _cap_text_prompt_length(self, prompt_ids: list[int]) -> list[int]:
        """verl's cap on the prompt (keeps its last ``rollout.prompt_length`` tokens); noted per step."""
        self._prompt_truncated = len(prompt_ids) > self.prompt_length
        return super()._cap_text_prompt_length(prompt_ids)

    async def _generate(
        self,
        sampling_params: dict[str, Any],
        task: str,
        turn: int,
        history: list[tuple[str, str]],
        observation: str,
        inputs: dict[str, Any],
    ) -> dict[str, Any]:
        extras = {k: v for k, v in inputs.items() if k != "admissible_actions" and v is not None}
        messages = build_prompt(
            self.env_name,
            task,
            turn,
            history,
            observation,
            inputs.get("admissible_actions") or [],
            self.history_length,
            **extras,
        )
        self._prompt_truncated = False
        prompt_ids = await self.ct_build_initial_tokens(messages)
        truncated = self._prompt_truncated
        start = time.perf_counter()
        out = await self.server_manager.generate(
            request_id=uuid4().hex, prompt_ids=prompt_ids, sampling_params=dict(sampling_params)
        )
        response_ids = list(out.token_ids[: self.response_length])
        log_probs = list(out.log_probs[: self.response_length]) if out.log_probs else None
        text = self.tokenizer.decode(response_ids, skip_special_tokens=True)
        return {
            "prompt_ids": list(prompt_ids),
            "response_ids": response_ids,
            "log_probs": log_probs,
            "text": text,
            "generate_s": time.perf_counter() - start,
            "generated_at": time.time(),  # wall clock: the run's start-up ends at its first generation
            "prompt_truncated": truncated,
            "server_fields": dict(out.extra_fields or {}),
        }

    def _outputs(
        self,
        steps: list[dict[str, Any]],
        trajectory_id: str,
        task_type: str,
        won: bool,
        score: float,
        done: bool,
        env_failed: bool,
    ) -> list[AgentLoopOutput]:
        episode_return = self.success_reward * float(won)
        num_steps = len(steps)
        valid_ratio = sum(s["valid"] for s in steps) / max(num_steps, 1)
        episode_info = {
            "won": float(won),
            "score": score,
            "episode_return": episode_return,
            "episode_length": num_steps,
            "valid_action_ratio": valid_ratio,
            "env_failed": float(env_failed),
        }
        outputs = []
        for s in steps:
            outputs.append(
                AgentLoopOutput(
                    prompt_ids=s["prompt_ids"],
                    response_ids=s["response_ids"],
                    response_mask=[1] * len(s["response_ids"]),
                    response_logprobs=s["log_probs"],
                    reward_score=episode_return,
                    num_turns=2,
                    metrics=AgentLoopMetrics(generate_sequences=s["generate_s"]),
                    extra_fields={
                        **s["server_fields"],
                        "trajectory_id": trajectory_id,
                        "turn": s["turn"],
                        "num_steps": num_steps,
                        "action_valid": bool(s["valid"]),
                        "invalid_reason": s["reason"],
                        "step_penalty": 0.0 if s["valid"] else self.invalid_action_penalty,
                        "prompt_truncated": bool(s["prompt_truncated"]),
                        "generated_at": s["generated_at"],
                        "env_reward": episode_return if s["turn"] == num_steps - 1 else 0.0,
                        "anchor_obs": s["observation"],
                        "task_type": task_type,
                        "episode_done": bool(done),
                        **episode_info,
                        # verl copies the final output's reward_extra_info to every step; DAPO's dynamic
                        # sampling filters groups on one of these keys (algorithm.filter_groups.metric).
                        "reward_extra_info": dict(episode_info),
                    },
                )
            )
        return outputs
