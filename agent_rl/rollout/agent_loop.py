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

The conversation (tool environments, `agent_rl.envs.api.ToolEnvironment`, and any environment with
``agent.rows=trajectory``): every turn stays in the context. The first prompt is the environment's
``messages`` (tool environments, with its tools through the chat template's ``tools=``) or its no-history
turn text; each turn's generated tokens join the context **exactly as vLLM returned them**, and what the
environment answers joins it as new messages (tool results as ``tool`` messages; a text game's next turn as a
``user`` message), tokenized by verl's continuous-token builder (``ct_merge_assistant_token`` /
``ct_merge_context_msg``: only the appended messages are rendered, nothing generated is re-encoded). A tool
environment's answer is parsed into tool calls (`agent_rl.envs.tools.calls`): malformed calls cost the
invalid-action penalty and go back to the model as tool errors. ``agent.rows`` then lays the episode out as:

- ``step``: one row per turn whose prompt is the whole context before the turn (capped at
  ``rollout.prompt_length``, the cap noted per row) and whose response is the turn's tokens;
- ``trajectory``: one row per episode: the first prompt, then every turn's tokens and the context between
  them under response mask 0, capped at ``rollout.response_length`` in all; ``extra_fields["token_turn"]``
  gives each response token's turn and the per-turn lists (``turn_valid``, ``turn_penalty``,
  ``turn_anchor``, ``turn_calls``) what the step rows carry one by one (`agent_rl.rows.segments` cuts the
  row into turn segments for the advantage step).
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

from agent_rl.envs.api import ToolEnvironment, env_class, env_spec
from agent_rl.envs.pool import EnvPool, auto_pool_size
from agent_rl.envs.tools.calls import parse_tool_turn
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
        self.max_model_len = int(
            self.rollout_config.get("max_model_len") or self.prompt_length + self.response_length
        )
        self.tool_env = issubclass(self.env_cls, ToolEnvironment)
        self.rows = str((self.config.get("agent") or {}).get("rows", "step"))
        self.max_tool_calls = int(self.env_cfg.get("max_tool_calls_per_turn", 4))
        self.tools = [dict(t) for t in getattr(self.env_cls, "tools", ())] or None

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> list[AgentLoopOutput]:
        spec = json.loads(kwargs["env_spec"])
        trajectory_id = f"{kwargs['uid']}_{kwargs.get('session_id', 0)}"
        pool = _pool_for(self.env_cfg, self.config)
        extra_info = kwargs.get("extra_info")
        seeded = self.val_seeded and isinstance(extra_info, dict) and extra_info.get("table") == "val"
        seed_key = f"{kwargs['env_spec']}|{kwargs.get('session_id', 0)}|{self.seed}" if seeded else None
        if self.tool_env or self.rows == "trajectory":
            return await self._run_conversation(sampling_params, spec, trajectory_id, pool, seed_key)
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

    async def _run_conversation(
        self,
        sampling_params: dict[str, Any],
        spec: dict[str, Any],
        trajectory_id: str,
        pool: EnvPool,
        seed_key: str | None,
    ) -> list[AgentLoopOutput]:
        """One episode as a conversation (module docstring); step or trajectory rows."""
        trajectory = self.rows == "trajectory"
        steps: list[dict[str, Any]] = []
        done, won, score, env_failed, tool_calls = False, False, 0.0, False, 0
        async with pool.lease() as env:
            observation, info = await env.reset(spec)
            task, task_type = info.get("task", ""), info.get("task_type", "")
            inputs = self.env_cls.turn_inputs(info, None)
            messages = self._first_messages(task, observation, info, inputs)
            self._prompt_truncated = False
            ids = await self.ct_build_initial_tokens(messages, tools=self.tools)
            first_prompt_truncated = self._prompt_truncated
            prompt_len = len(ids)
            mask: list[int] = []  # over the tokens after the first prompt (the trajectory row's response)
            logprobs: list[float] = []
            token_turn: list[int] = []
            for turn in range(self.max_steps):
                budget = self.response_length - len(mask) if trajectory else self.response_length
                budget = min(budget, self.max_model_len - len(ids))  # step rows: the context grows each turn
                if budget < 1:
                    break  # no room left for another turn
                params = {**sampling_params, "max_tokens": budget}
                if seed_key is not None:
                    params["seed"] = request_seed(f"{seed_key}|{turn}")
                context = list(ids)
                start = time.perf_counter()
                out = await self.server_manager.generate(
                    request_id=uuid4().hex, prompt_ids=context, sampling_params=params
                )
                response_ids = list(out.token_ids[:budget])
                out_logprobs = list(out.log_probs[:budget]) if out.log_probs else None
                merged, mask, aligned = await self.ct_merge_assistant_token(
                    ids,
                    response_ids,
                    mask,
                    logprobs if out_logprobs else None,
                    assistant_logprobs=out_logprobs,
                )
                ids, logprobs = merged.token_ids, aligned or []
                token_turn = _aligned_turns(token_turn, merged, len(mask), turn)
                text = self.tokenizer.decode(response_ids, skip_special_tokens=True)
                step_prompt = context if not trajectory else []
                step_truncated = False
                if not trajectory and len(step_prompt) > self.prompt_length:
                    step_prompt, step_truncated = step_prompt[-self.prompt_length :], True
                step = {
                    "prompt_ids": step_prompt,
                    "response_ids": response_ids,
                    "log_probs": out_logprobs,
                    "generate_s": time.perf_counter() - start,
                    "generated_at": time.time(),
                    "prompt_truncated": step_truncated or (turn == 0 and first_prompt_truncated),
                    "server_fields": dict(out.extra_fields or {}),
                    "turn": turn,
                    "observation": observation,
                }
                previous = messages + [{"role": "assistant", "content": text}]
                if self.tool_env:
                    parsed = parse_tool_turn(text, self.tools or [], self.max_tool_calls)
                    results, _, done, info = await env.step(parsed)
                    calls = [c for c in parsed.calls if c.name == self.env_cls.counted_tool]
                    tool_calls += len(calls)
                    added = [{"role": "tool", "content": str(r)} for r in results]
                    added += [{"role": "tool", "content": e} for e in parsed.errors]
                    if not added and not done:  # neither a call nor an answer: say what the turn lacks
                        added = [{"role": "user", "content": NO_CALL_OR_ANSWER}]
                    step.update(
                        valid=parsed.valid,
                        reason=parsed.reason or "ok",
                        action=_describe_turn(parsed),
                        calls=len(calls),
                        tool_calls=[_call_text(c) for c in parsed.calls],
                        tool_results=[m["content"] for m in added],
                    )
                    observation = "\n".join(m["content"] for m in added)
                else:
                    parsed_action = parse_action(text, self.env_name)
                    observation, _, done, info = await env.step(parsed_action.action)
                    step.update(
                        valid=parsed_action.valid,
                        reason=parsed_action.reason,
                        action=parsed_action.action,
                        calls=1,
                    )
                    tool_calls += 1
                    inputs = self.env_cls.turn_inputs(info, inputs)
                    added = [
                        {"role": "user", "content": self._turn_text(task, turn + 1, observation, inputs)}
                    ]
                steps.append(step)
                won, score = bool(info.get("won", False)), float(info.get("score", 0.0))
                env_failed = bool(info.get("env_failed", False))
                if done or turn == self.max_steps - 1:
                    break  # the row ends with the model's last tokens (no observation nobody answers)
                messages = previous + added
                merged, new_mask, aligned = await self.ct_merge_context_msg(
                    previous, messages, ids, mask, logprobs if logprobs else None, tools=self.tools
                )
                if trajectory and len(new_mask) >= self.response_length:
                    break  # no room left for another turn
                ids, mask, logprobs = merged.token_ids, new_mask, aligned or []
                token_turn = _aligned_turns(token_turn, merged, len(mask), turn)
        episode = {"tool_calls": tool_calls}
        if not trajectory:
            return self._outputs(steps, trajectory_id, task_type, won, score, done, env_failed, episode)
        response = ids[prompt_len:]
        return [
            self._trajectory_output(
                ids[:prompt_len],
                response,
                mask,
                logprobs,
                token_turn,
                steps,
                trajectory_id,
                task_type,
                (won, score, done, env_failed),
                episode,
                first_prompt_truncated,
            )
        ]

    def _first_messages(
        self, task: str, observation: str, info: dict[str, Any], inputs: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if self.tool_env:
            return [dict(m) for m in self.env_cls.messages(task, info)]
        return [{"role": "user", "content": self._turn_text(task, 0, observation, inputs)}]

    def _turn_text(self, task: str, turn: int, observation: str, inputs: dict[str, Any]) -> str:
        """A text game's turn in a conversation: its no-history text (the history is the context)."""
        extras = {k: v for k, v in inputs.items() if k != "admissible_actions" and v is not None}
        messages = build_prompt(
            self.env_name, task, turn, [], observation, inputs.get("admissible_actions") or [], 0, **extras
        )
        return messages[-1]["content"]

    def _trajectory_output(
        self,
        prompt_ids: list[int],
        response_ids: list[int],
        mask: list[int],
        logprobs: list[float],
        token_turn: list[int],
        steps: list[dict[str, Any]],
        trajectory_id: str,
        task_type: str,
        outcome: tuple[bool, float, bool, bool],
        episode: dict[str, Any],
        prompt_truncated: bool,
    ) -> AgentLoopOutput:
        """The whole episode as one row (module docstring)."""
        won, score, done, env_failed = outcome
        n = min(len(response_ids), self.response_length)
        info = self._episode_info(steps, won, score, env_failed, episode)
        return AgentLoopOutput(
            prompt_ids=list(prompt_ids),
            response_ids=list(response_ids[:n]),
            response_mask=list(mask[:n]),
            response_logprobs=list(logprobs[:n]) if logprobs else None,
            reward_score=info["episode_return"],
            num_turns=2 * len(steps),
            metrics=AgentLoopMetrics(generate_sequences=sum(s["generate_s"] for s in steps)),
            extra_fields={
                **(steps[0]["server_fields"] if steps else {}),
                "trajectory_id": trajectory_id,
                "rows": "trajectory",
                "turn": 0,
                "num_steps": len(steps),
                "token_turn": list(token_turn[:n]),
                "turn_valid": [bool(s["valid"]) for s in steps],
                "turn_reason": [s["reason"] for s in steps],
                "turn_penalty": [0.0 if s["valid"] else self.invalid_action_penalty for s in steps],
                "turn_anchor": [s["observation"] for s in steps],
                "turn_action": [s["action"] for s in steps],
                "turn_calls": [int(s.get("calls", 0)) for s in steps],
                "turn_tool_calls": [s.get("tool_calls", []) for s in steps],
                "turn_tool_results": [s.get("tool_results", []) for s in steps],
                "action_valid": all(s["valid"] for s in steps),
                "invalid_reason": next((s["reason"] for s in steps if not s["valid"]), "ok"),
                "step_penalty": sum(0.0 if s["valid"] else self.invalid_action_penalty for s in steps),
                "prompt_truncated": bool(prompt_truncated),
                "response_truncated": len(response_ids) > n,
                "generated_at": min((s["generated_at"] for s in steps), default=time.time()),
                "env_reward": info["episode_return"],
                "anchor_obs": steps[0]["observation"] if steps else "",
                "task_type": task_type,
                "episode_done": bool(done),
                **info,
                "reward_extra_info": dict(info),
            },
        )

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

    def _episode_info(
        self,
        steps: list[dict[str, Any]],
        won: bool,
        score: float,
        env_failed: bool,
        episode: dict[str, Any] | None,
    ) -> dict[str, Any]:
        num_steps = len(steps)
        return {
            "won": float(won),
            "score": score,
            "episode_return": self.success_reward * float(won),
            "episode_length": num_steps,
            "valid_action_ratio": sum(s["valid"] for s in steps) / max(num_steps, 1),
            "env_failed": float(env_failed),
        } | (
            # SPEAR's tool-call bonus counts these (a conversation's counted tool; else it counts the steps)
            {"episode_tool_calls": float(episode["tool_calls"])} if episode is not None else {}
        )

    def _outputs(
        self,
        steps: list[dict[str, Any]],
        trajectory_id: str,
        task_type: str,
        won: bool,
        score: float,
        done: bool,
        env_failed: bool,
        episode: dict[str, Any] | None = None,
    ) -> list[AgentLoopOutput]:
        episode_info = self._episode_info(steps, won, score, env_failed, episode)
        episode_return = episode_info["episode_return"]
        num_steps = len(steps)
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
                        # a conversation's turn: its action, tool calls and results, for the viewer
                        **{k: s[k] for k in ("action", "tool_calls", "tool_results") if "tool_calls" in s},
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


NO_CALL_OR_ANSWER = (
    "Your answer had neither a tool call nor a final answer. Call a tool, or give the final answer as "
    "<answer>...</answer>."
)


def _aligned_turns(token_turn: list[int], merged: Any, length: int, turn: int) -> list[int]:
    """Each response token's turn after a continuous-token merge: the merge's trimmed prefix tokens leave,
    its inserted and appended tokens (``length`` in all) belong to ``turn``."""
    kept = token_turn[: len(token_turn) - merged.removed_prefix_token_count]
    return kept + [turn] * (length - len(kept))


def _call_text(call: Any) -> str:
    """A tool call as the model's Hermes JSON (for the viewer)."""
    return json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)


def _describe_turn(turn: Any) -> str:
    """A tool turn in one line, for the viewer's head line: its calls and its answer."""
    parts = [f"{c.name}({json.dumps(c.arguments, ensure_ascii=False)[:500]})" for c in turn.calls]
    if turn.answer is not None:
        parts.append(f"answer: {turn.answer[:500]}")
    return "; ".join(parts) or f"(invalid: {turn.reason})"
