#!/usr/bin/env python
"""The agent loop's own time per turn (target < 5 ms) and tokens per trajectory, on real environments.

`agent_rl.rollout.agent_loop.EnvAgentLoop` plays real episodes of each environment through the Ray
pool, as verl's agent-loop worker runs it (one loop object built per trajectory, inside the event
loop), with an instant scripted server in place of vLLM: each turn it answers a well-formed
``<think>…</think><action>…</action>`` whose action is drawn (seeded) from the current admissible
actions (WebShop's ``search[<your query>]`` gets words of the task), so episodes run their full
length. The tiny model's tokenizer is used; the prompt and response lengths and ``max_steps`` are the
environment's own (``conf/env/*.yaml``), not the tiny model's, so the histories are realistic.

Timing, per turn: the wall time from the end of the previous environment call to the end of this
turn's ``env.step``, minus the time inside ``server_manager.generate`` and inside the awaited pool
calls (``env.reset``/``env.step``, lease acquire/release). The rest is the loop's own work; its
per-episode part (spec parsing, pool lookup, output assembly) is spread over the episode's turns.
Instrumentation wraps objects from here (the server, `PooledEnv`, `EnvPool`, the loop's prompt
builder, parser, continuous-token builder and tokenizer); the loop itself is untouched. Parts:

- prompt: ``build_prompt``; tokenise: verl's continuous-token builder (chat template + encode);
  hop: ``ct_build_initial_tokens`` minus the builder (verl's thread-executor hand-off and length cap);
  decode: ``tokenizer.decode`` of the response; parse: ``parse_action``; other: the remainder.
- init: building the loop object (verl does it once per trajectory), reported per episode.

Tokens: prompt and response tokens per step (turn 0 has no history; later turns carry the
``history_length`` window), and per trajectory (one sample per step, so the sums are what a
trajectory costs the trainer). Responses are the scripted ones (``--think-words`` of reasoning).

ScienceWorld: the loop hands the prompt builder ``info["admissible_actions"]``, which for ScienceWorld is
the full list of valid action-object combinations (thousands of entries), where `agent_rl.rollout.prompts`
expects the action templates (``info["action_templates"]``) plus ``objects``; its prompts run to many
thousand tokens and are left-truncated. ``--scienceworld-templates`` hands the loop the templates
instead (through the env wrapper) to measure the loop as it would be with that fixed.

One episode at a time; the first episode of each environment is an untimed warm-up (actor start,
JVM, thread pool, caches). Exits non-zero only on errors (an environment failing), never on the target.

    python bench/agent_loop.py                                   # all three envs
    python bench/agent_loop.py --envs alfworld --episodes 2 --turns 20
    python bench/agent_loop.py --envs scienceworld --scienceworld-templates
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import re
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 5.0
ENVS = ("alfworld", "webshop", "scienceworld")
PARTS = ("prompt", "tokenise", "hop", "decode", "parse", "other")
THINK_SENTENCE = (
    "I look at the current observation and the task, recall what I have already tried, and decide which "
    "admissible action moves me closer to the goal without repeating myself."
)


# ------------------------------------------------------------------------------------------ instrumentation
class Recorder:
    """(kind, start, end, payload) events of the current episode."""

    def __init__(self) -> None:
        self.active = False
        self.events: list[tuple[str, float, float, Any]] = []
        self.info: dict[str, Any] = {}  # the latest env info, for the scripted server

    def add(self, kind: str, start: float, end: float, payload: Any = None) -> None:
        if self.active:
            self.events.append((kind, start, end, payload))


def timed_async(rec: Recorder, kind: str, fn, transform=None):
    """``fn`` timed as ``kind``; ``transform(result)`` (timed with it) may replace the result."""

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        start = time.perf_counter()
        result = await fn(*args, **kwargs)
        if transform is not None:
            result = transform(result)
        rec.add(kind, start, time.perf_counter())
        return result

    return wrapper


def timed_sync(rec: Recorder, kind: str, fn, measure=None):
    """``fn`` timed as ``kind``; ``measure(result)`` is kept with the event (e.g. a length)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        end = time.perf_counter()
        rec.add(kind, start, end, measure(result) if measure else None)
        return result

    return wrapper


def instrument_module(rec: Recorder, scienceworld_templates: bool = False) -> None:
    """Wrap the pool calls and the loop's prompt builder and parser (module globals and classes).

    ``scienceworld_templates``: hand the loop ScienceWorld's action templates as ``admissible_actions``
    (what `agent_rl.rollout.prompts` expects) instead of the env's full list of valid action-object
    combinations, to measure the loop as it would be if it passed the templates.
    """
    from agent_rl.envs import pool
    from agent_rl.rollout import agent_loop

    def keep_info(result):
        info = result[-1] if isinstance(result, tuple) and isinstance(result[-1], dict) else {}
        if scienceworld_templates and "action_templates" in info:
            info = {
                **info,
                "valid_combinations": info["admissible_actions"],
                "admissible_actions": info["action_templates"],
            }
            result = (*result[:-1], info)
        rec.info = info
        return result

    pool.PooledEnv.reset = timed_async(rec, "env", pool.PooledEnv.reset, keep_info)
    pool.PooledEnv.step = timed_async(rec, "env", pool.PooledEnv.step, keep_info)
    pool.EnvPool.acquire = timed_async(rec, "lease", pool.EnvPool.acquire)
    pool.EnvPool.release = timed_async(rec, "lease", pool.EnvPool.release)
    agent_loop.build_prompt = timed_sync(
        rec, "prompt", agent_loop.build_prompt, measure=lambda m: sum(len(x["content"]) for x in m)
    )
    agent_loop.parse_action = timed_sync(rec, "parse", agent_loop.parse_action)


def instrument_loop(rec: Recorder, loop) -> None:
    """Wrap the continuous-token builder (runs in an executor thread) and its async entry point."""
    builder = loop.continuous_token_builder
    builder.build_initial_tokens = timed_sync(rec, "tokenise", builder.build_initial_tokens, measure=len)
    loop.ct_build_initial_tokens = timed_async(rec, "ct", loop.ct_build_initial_tokens)


def pick(rng: random.Random, info: dict[str, Any]) -> str:
    """A random admissible action; WebShop's ``search[<your query>]`` gets words of the task.

    ScienceWorld: a valid action-object combination, never ``focus on`` (focusing on a wrong object
    ends the episode at once).
    """
    actions = info.get("valid_combinations") or info.get("admissible_actions") or ()
    actions = [a for a in actions if a != "help" and not a.startswith("focus on")] or ["look around"]
    action = rng.choice(actions)
    if action.startswith("search[") and "<" in action:
        words = re.findall(r"[a-z]+", str(info.get("task", "")).lower()) or ["item"]
        action = f"search[{' '.join(rng.sample(words, min(4, len(words))))}]"
    return action


class InstantServer:
    """Stands in for verl's LLM server client: answers at once with a well-formed random admissible action."""

    def __init__(self, tokenizer, rec: Recorder, seed: int, think_words: int) -> None:
        words = THINK_SENTENCE.split()
        self.think = " ".join(words[i % len(words)] for i in range(think_words))
        self.tokenizer, self.rec, self.rng = tokenizer, rec, random.Random(seed)

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs):
        from verl.workers.rollout.replica import TokenOutput

        start = time.perf_counter()
        text = f"<think>{self.think}</think>\n<action>{pick(self.rng, self.rec.info)}</action><|im_end|>"
        ids = self.tokenizer.encode(text)
        out = TokenOutput(token_ids=ids, log_probs=[-0.5] * len(ids), extra_fields={"min_global_steps": 0})
        self.rec.add("generate", start, time.perf_counter())
        return out


# ------------------------------------------------------------------------------------------------ analysis
def _inside(events, kind: str, lo: float, hi: float) -> list[tuple]:
    return [e for e in events if e[0] == kind and e[1] >= lo and e[2] <= hi]


def _dur(events) -> float:
    return sum(e[2] - e[1] for e in events)


def analyse_episode(events, run_start: float, run_end: float, outputs) -> list[dict[str, float]]:
    """One record per turn: own time and its parts, generate and env time (ms), tokens."""
    env_calls = sorted((e for e in events if e[0] == "env"), key=lambda e: e[1])
    if len(env_calls) != len(outputs) + 1:
        raise RuntimeError(f"{len(env_calls)} env calls for {len(outputs)} steps")
    turns = []
    for k, out in enumerate(outputs):
        lo, hi = env_calls[k][2], env_calls[k + 1][2]
        gen = _dur(_inside(events, "generate", lo, hi))
        env = env_calls[k + 1][2] - env_calls[k + 1][1]
        ct = _dur(_inside(events, "ct", lo, hi))
        tok_events = _inside(events, "tokenise", lo, hi)
        prompt_events = _inside(events, "prompt", lo, hi)
        parts = {
            "prompt": _dur(prompt_events),
            "tokenise": _dur(tok_events),
            "hop": ct - _dur(tok_events),
            "decode": _dur(_inside(events, "decode", lo, hi)),
            "parse": _dur(_inside(events, "parse", lo, hi)),
        }
        own = (hi - lo) - gen - env
        parts["other"] = own - sum(parts.values())
        turns.append(
            {
                "own": own,
                **parts,
                "gen": gen,
                "env": env,
                "prompt_tokens": len(out.prompt_ids),
                "response_tokens": len(out.response_ids),
                "raw_prompt_tokens": sum(e[3] for e in tok_events),
                "prompt_chars": sum(e[3] for e in prompt_events),
                "flagged": bool(out.extra_fields["prompt_truncated"]),
                "turn": k,
            }
        )
    # per-episode own work before the reset and after the last step, lease calls excluded
    head = (env_calls[0][1] - run_start) - _dur(_inside(events, "lease", run_start, env_calls[0][1]))
    tail = (run_end - env_calls[-1][2]) - _dur(_inside(events, "lease", env_calls[-1][2], run_end))
    for t in turns:
        t["own"] += (head + tail) / len(turns)
        t["other"] += (head + tail) / len(turns)
        for key in ("own", *PARTS, "gen", "env"):
            t[key] *= 1e3
    return turns


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


# ----------------------------------------------------------------------------------------------- running
def compose_cfg(env_name: str, turns: int | None):
    """The config as the tests compose it, with the env's own lengths and max_steps (not model=tiny's)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from agent_rl.cli import train

    own = OmegaConf.load(train.CONF_DIR / "env" / f"{env_name}.yaml")
    overrides = [
        f"env={env_name}",
        "model=tiny",
        f"env.max_steps={turns or own.env.max_steps}",
        f"data.max_prompt_length={own.data.max_prompt_length}",
        f"data.max_response_length={own.data.max_response_length}",
    ]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(train.CONF_DIR), version_base=None):
        cfg = compose("config", overrides=overrides)
    GlobalHydra.instance().clear()
    # resolved, as agent_rl.cli.train and verl's main_ppo hand it to the workers: an unresolved
    # interpolation (rollout.prompt_length is ${oc.select:...}) costs ~0.4 ms per read, and verl's
    # ct_build_initial_tokens reads it twice per turn
    # (only what the loop reads: the rest has ${hydra:...} interpolations, unset outside hydra.main)
    for node in (cfg.actor_rollout_ref, cfg.data, cfg.env):
        OmegaConf.resolve(node)
    return cfg


async def bench_env(
    env_name: str, cfg, rows: list[dict], tokenizer, server_tokenizer, rec: Recorder, args
) -> dict[str, Any]:
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap

    from agent_rl.rollout import agent_loop

    episodes, init_ms, failed = [], [], 0
    try:
        for i, row in enumerate(rows):
            warmup = i == 0
            server = InstantServer(server_tokenizer, rec, seed=args.seed + i, think_words=args.think_words)
            t0 = time.perf_counter()
            loop = agent_loop.EnvAgentLoop(
                trainer_config=DictConfigWrap(cfg),
                server_manager=server,
                tokenizer=tokenizer,
                processor=None,
                dataset_cls=None,
                data_config=DictConfigWrap(cfg.data),
                hf_model_type="qwen2",
            )
            init = time.perf_counter() - t0
            instrument_loop(rec, loop)
            if warmup:
                loop.max_steps = min(loop.max_steps, args.warmup_turns)
            rec.events, rec.info, rec.active = [], {}, True
            start = time.perf_counter()
            outputs = await loop.run(
                {"temperature": 1.0}, uid=f"bench{i}", session_id=0, env_spec=row["env_spec"]
            )
            end = time.perf_counter()
            rec.active = False
            if outputs and outputs[-1].extra_fields.get("env_failed"):
                failed += 1
                print(f"  {env_name}: episode {i} failed in the environment", file=sys.stderr)
                continue
            if warmup:
                continue
            init_ms.append(init * 1e3)
            turns = analyse_episode(rec.events, start, end, outputs)
            episodes.append(turns)
            if args.verbose:
                own = [t["own"] for t in turns]
                print(
                    f"  {env_name} episode {i}: {len(turns)} turns, own {statistics.median(own):.2f} ms/turn "
                    f"(median), won={outputs[-1].extra_fields['won']}"
                )
    finally:
        for pool in list(agent_loop._POOLS.values()):
            await pool.shutdown()
        agent_loop._POOLS.clear()
    return {
        "episodes": episodes,
        "init_ms": init_ms,
        "failed": failed,
        "prompt_length": int(cfg.actor_rollout_ref.rollout.prompt_length),
    }


def summarise(env_name: str, result: dict[str, Any]) -> dict[str, Any]:
    turns = [t for ep in result["episodes"] for t in ep]
    own = [t["own"] for t in turns]
    s = {
        "env": env_name,
        "episodes": len(result["episodes"]),
        "turns": len(turns),
        "median": statistics.median(own),
        "p90": pct(own, 0.9),
        "mean": statistics.fmean(own),
        "parts": {p: statistics.median(t[p] for t in turns) for p in PARTS},
        "gen": statistics.median(t["gen"] for t in turns),
        "env_ms": statistics.median(t["env"] for t in turns),
        "init": statistics.median(result["init_ms"]),
    }
    first = [t for t in turns if t["turn"] == 0]
    later = [t for t in turns if t["turn"] > 0] or first
    s["tok"] = {
        "steps": statistics.fmean(len(ep) for ep in result["episodes"]),
        "p_first": statistics.median(t["prompt_tokens"] for t in first),
        "p_later": statistics.median(t["prompt_tokens"] for t in later),
        "p_max": max(t["raw_prompt_tokens"] for t in turns),
        "resp": statistics.median(t["response_tokens"] for t in turns),
        "p_traj": statistics.fmean(sum(t["prompt_tokens"] for t in ep) for ep in result["episodes"]),
        "r_traj": statistics.fmean(sum(t["response_tokens"] for t in ep) for ep in result["episodes"]),
        "truncated": sum(t["raw_prompt_tokens"] > result["prompt_length"] for t in turns),
        "flagged": sum(t["flagged"] for t in turns),
        "chars_per_tok": sum(t["prompt_chars"] for t in turns)
        / max(1, sum(t["raw_prompt_tokens"] for t in turns)),
    }
    return s


def print_tables(summaries: list[dict[str, Any]]) -> None:
    print("\nLoop's own time per turn (ms; generation and env calls excluded), median over turns")
    head = (
        f"{'env':13s} {'eps':>3s} {'turns':>5s} {'median':>7s} {'p90':>7s} {'mean':>7s} {'/5ms':>5s} | "
        + " ".join(f"{p:>8s}" for p in PARTS)
        + f" | {'gen':>6s} {'env':>7s} {'init/ep':>7s}"
    )
    print(head)
    print("-" * len(head))
    for s in summaries:
        print(
            f"{s['env']:13s} {s['episodes']:3d} {s['turns']:5d} {s['median']:7.2f} {s['p90']:7.2f} "
            f"{s['mean']:7.2f} {s['median'] / TARGET_MS:5.2f} | "
            + " ".join(f"{s['parts'][p]:8.3f}" for p in PARTS)
            + f" | {s['gen']:6.2f} {s['env_ms']:7.2f} {s['init']:7.2f}"
        )
    print("\nTokens (tiny tokenizer): per step (median) and per trajectory (mean; one sample per step)")
    head = (
        f"{'env':13s} {'steps/traj':>10s} {'prompt t0':>9s} {'prompt t>0':>10s} {'prompt max':>10s} "
        f"{'resp/step':>9s} {'prompt/traj':>11s} {'resp/traj':>9s} {'total/traj':>10s} {'trunc':>5s} "
        f"{'flagged':>7s} {'chars/tok':>9s}"
    )
    print(head)
    print("-" * len(head))
    for s in summaries:
        t = s["tok"]
        print(
            f"{s['env']:13s} {t['steps']:10.1f} {t['p_first']:9.0f} {t['p_later']:10.0f} {t['p_max']:10d} "
            f"{t['resp']:9.0f} {t['p_traj']:11.0f} {t['r_traj']:9.0f} {t['p_traj'] + t['r_traj']:10.0f} "
            f"{t['truncated']:5d} {t['flagged']:7d} {t['chars_per_tok']:9.2f}"
        )
    print(
        "\nprompt max: before left-truncation to data.max_prompt_length; trunc: steps whose prompt was "
        "truncated; flagged: steps with extra_fields['prompt_truncated'] set."
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=ENVS)
    parser.add_argument("--episodes", type=int, default=3, help="timed episodes per env (plus one warm-up)")
    parser.add_argument("--turns", type=int, default=None, help="max_steps per episode (default: the env's)")
    parser.add_argument("--warmup-turns", type=int, default=5)
    parser.add_argument("--think-words", type=int, default=60, help="words of scripted reasoning per answer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scienceworld-templates",
        action="store_true",
        help="give the loop ScienceWorld's action templates, not the valid combinations, as "
        "admissible_actions (what the prompt builder expects; see the module doc)",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    os.environ["RAY_AUTH_MODE"] = "disabled"
    import logging

    import ray
    from transformers import AutoTokenizer

    from agent_rl.models.tiny_model import build_tiny_model
    from agent_rl.training.data import env_rows

    model_dir = build_tiny_model()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)  # the loop's; its decode is timed
    server_tokenizer = AutoTokenizer.from_pretrained(model_dir)  # the scripted server's own
    # verl warns on every left-truncated prompt; the tokens table counts them instead
    import verl.experimental.agent_loop.agent_loop as verl_agent_loop

    verl_agent_loop.logger.setLevel(logging.ERROR)
    rec = Recorder()
    instrument_module(rec, scienceworld_templates=args.scienceworld_templates)
    tokenizer.decode = timed_sync(rec, "decode", tokenizer.decode)

    temp_dir = REPO / ".ray_tmp"
    temp_dir.mkdir(exist_ok=True)
    # address="local": always a fresh in-process cluster, even when a `ray start` elsewhere left its
    # address in the temp dir (ray.init would otherwise try to join that cluster)
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _temp_dir=str(temp_dir),
        log_to_driver=False,
        configure_logging=False,
    )
    load_before = os.getloadavg()
    summaries, errors = [], []
    try:
        for env_name in args.envs:
            try:
                cfg = compose_cfg(env_name, args.turns)
                rows = env_rows(dict(cfg.env), cfg.env.train_split, args.episodes + 1, seed=args.seed)
                print(
                    f"{env_name}: {len(rows)} episodes (1 warm-up), max_steps {cfg.env.max_steps}, "
                    f"prompt/response length {cfg.data.max_prompt_length}/{cfg.data.max_response_length}",
                    flush=True,
                )
                t = time.perf_counter()
                result = asyncio.run(bench_env(env_name, cfg, rows, tokenizer, server_tokenizer, rec, args))
                print(f"{env_name}: done in {time.perf_counter() - t:.0f} s", flush=True)
                if result["failed"]:
                    errors.append(f"{env_name}: {result['failed']} episode(s) failed in the environment")
                if result["episodes"]:
                    summaries.append(summarise(env_name, result))
            except Exception as e:  # noqa: BLE001 - report, go on with the other envs, exit non-zero
                traceback.print_exc()
                errors.append(f"{env_name}: {type(e).__name__}: {e}")
    finally:
        ray.shutdown()
    if summaries:
        print_tables(summaries)
    load_after = os.getloadavg()
    print(
        f"\n{os.cpu_count()} cores; load average (1 min) {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after; target {TARGET_MS:.0f} ms/turn"
    )
    for e in errors:
        print(f"ERROR {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
