"""A bounded sample of each training step's trajectories, saved in the run folder for the viewer.

Each step writes ``<run>/trajectories/step_<N>.json`` (`agent_rl.training.trainer`, after verl's metrics):
``logger.samples_per_step`` trajectories (the ones W&B's ``samples/trajectories`` table shows), the first
member of each rollout group first, so that a sample spans several tasks. One file per step::

    {"step": N, "env": "alfworld",
     "trajectories": [{"id", "group", "task_type", "won", "return", "score", "length",
                       "turns": [{"turn", "observation", "prompt", "token_ids", "tokens", "entropy",
                                  "response", "action", "valid", "reason"}, ...]}, ...]}

``entropy`` is the old policy's per-token entropy (verl's ``entropy`` field, in nats), one value per
response token (absent when verl computed none: rollout-correction bypass mode); ``tokens`` is each token
decoded alone; ``action`` the parsed action (`agent_rl.rollout.parsing`, the agent loop's own parser);
``observation`` the observation the action answered (the agent loop's ``anchor_obs``, else as the step's
prompt quoted it: `observation_of`). ``return`` is
the episode return minus its invalid-action penalties, as GRPO's trajectory statistics score it.

`agent-rl-report` reads these files back (`read_steps`). Pure Python + numbers: no verl import.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

FOLDER = "trajectories"
FILE = re.compile(r"step_(\d+)\.json")
# The step prompts (agent_rl.rollout.prompts) quote the current observation after this phrase and
# continue with the action list on the next line.
_OBSERVATION = re.compile(
    r"current observation is:[ \n]?(.*?)\n(?:Your admissible actions|Here are the actions)", re.S
)


def observation_of(prompt: str) -> str:
    """The current observation quoted in a step prompt of the built-in templates (its last occurrence, with
    what the template adds after it, e.g. WebShop's full stop), or the whole prompt: the viewer's fallback
    for a row without the agent loop's ``anchor_obs``."""
    found = _OBSERVATION.findall(prompt)
    return found[-1].strip() if found else prompt.strip()


def pick(extra: Sequence[dict[str, Any]], real: Sequence[bool], k: int) -> list[str]:
    """``k`` trajectory ids of a batch: each rollout group's first trajectory, then each group's second, ...

    ``extra``: the rows' ``extra_fields``; ``real``: which rows are environment steps (not padding).
    Groups are told apart by the trajectory id's prefix (``<uid>_<session>``, `agent_rl.rollout`)."""
    order: dict[str, list[str]] = {}
    for fields, is_real in zip(extra, real, strict=True):
        if is_real:
            tid = str(fields["trajectory_id"])
            members = order.setdefault(tid.rsplit("_", 1)[0], [])
            if tid not in members:
                members.append(tid)
    rounds = max((len(m) for m in order.values()), default=0)
    ranked = [m[i] for i in range(rounds) for m in order.values() if i < len(m)]
    return ranked[: max(int(k), 0)]


def episode_returns(extra: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Each trajectory's return: its episode return minus the invalid-action penalties of its steps."""
    returns: dict[str, float] = {}
    for fields in extra:
        tid = str(fields["trajectory_id"])
        if tid not in returns:
            returns[tid] = float(fields.get("episode_return", 0.0))
        returns[tid] -= float(fields.get("step_penalty", 0.0))
    return returns


def _ints(x: Any) -> list[int]:
    return [int(v) for v in (x.tolist() if hasattr(x, "tolist") else x)]


def _floats(x: Any) -> list[float]:
    return [float(v) for v in (x.float().tolist() if hasattr(x, "float") else x)]


def step_sample(
    step: int,
    env: str,
    extra: Sequence[dict[str, Any]],
    real: Sequence[bool],
    prompts: Sequence[Sequence[int]],
    responses: Sequence[Sequence[int]],
    entropy: Sequence[Sequence[float]] | None,
    decode: Callable[[Sequence[int]], str],
    decode_each: Callable[[Sequence[int]], list[str]],
    k: int,
    parse: Callable[[str], Any] | None = None,
    masks: Sequence[Sequence[int]] | None = None,
) -> dict[str, Any]:
    """The saved sample of one step from its rows (one row per environment step, or one per episode with
    ``agent.rows=trajectory``, cut into its turns by each token's turn and the response ``masks``).

    ``decode(ids)`` decodes a text (without special tokens), ``decode_each(ids)`` each token alone;
    ``parse(text)`` returns the parsed action (with ``.action``, ``.valid``, ``.reason``) for rows without
    the agent loop's own ``action``, else the rows' own action and validity are kept."""
    chosen = pick(extra, real, k)
    returns = episode_returns([e for e, r in zip(extra, real, strict=True) if r])
    rows: dict[str, list[int]] = {tid: [] for tid in chosen}
    for i, (fields, is_real) in enumerate(zip(extra, real, strict=True)):
        if is_real and str(fields["trajectory_id"]) in rows:
            rows[str(fields["trajectory_id"])].append(i)
    trajectories = []
    for tid in chosen:
        indices = sorted(rows[tid], key=lambda i: int(extra[i].get("turn", 0)))
        first = extra[indices[0]]
        turns = []
        for i in indices:
            row_entropy = None if entropy is None else _floats(entropy[i])
            mask = None if masks is None else _ints(masks[i])
            for fields, ids, ent in _turns_of_row(extra[i], _ints(responses[i]), row_entropy, mask):
                text = decode(ids)
                parsed = parse(text) if parse is not None and "action" not in fields else None
                prompt = (
                    decode(_ints(prompts[i])) if int(fields.get("turn", 0)) == 0 or len(indices) > 1 else ""
                )
                turn = {
                    "turn": int(fields.get("turn", 0)),
                    "observation": str(fields.get("anchor_obs") or observation_of(prompt)),
                    "prompt": prompt,
                    "token_ids": ids,
                    "tokens": decode_each(ids),
                    "response": text,
                    "action": parsed.action if parsed is not None else str(fields.get("action", "")),
                    "valid": bool(fields.get("action_valid", parsed.valid if parsed is not None else True)),
                    "reason": fields.get("invalid_reason"),
                    "tool_calls": list(fields.get("tool_calls") or []),
                    "tool_results": list(fields.get("tool_results") or []),
                }
                if ent is not None:
                    turn["entropy"] = [round(float(h), 4) for h in ent[: len(ids)]]
                turns.append(turn)
        trajectories.append(
            {
                "id": tid,
                "group": tid.rsplit("_", 1)[0],
                "task_type": first.get("task_type") or "",
                "won": bool(first.get("won", 0.0)),
                "return": returns.get(tid, 0.0),
                "score": float(first.get("score", 0.0)),
                "length": int(first.get("episode_length", len(indices))),
                "turns": turns,
            }
        )
    return {"step": int(step), "env": env, "trajectories": trajectories}


def _turns_of_row(
    fields: dict[str, Any], ids: list[int], entropy: list[float] | None, mask: list[int] | None
) -> list[tuple[dict[str, Any], list[int], list[float] | None]]:
    """A row's turns: a step row is one; a trajectory row gives one per turn, with the turn's model tokens
    (and their entropies) and the turn's own fields (`agent_rl.rows.segments.turn_fields`)."""
    if fields.get("rows") != "trajectory":
        return [(fields, ids, entropy)]
    from agent_rl.rows.segments import turn_fields

    token_turn = list(fields.get("token_turn") or [])
    mask = mask if mask is not None else [1] * len(ids)
    out = []
    for k in range(int(fields.get("num_steps", 0))):
        at = [j for j in range(min(len(ids), len(token_turn), len(mask))) if token_turn[j] == k and mask[j]]
        out.append(
            (
                turn_fields(fields, k),
                [ids[j] for j in at],
                None if entropy is None else [entropy[j] for j in at],
            )
        )
    return out


def save_step(run_dir: str | os.PathLike, sample: dict[str, Any]) -> Path:
    """Write one step's sample (``<run_dir>/trajectories/step_<N>.json``); returns its path."""
    folder = Path(run_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{int(sample['step']):06d}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(sample, ensure_ascii=False, separators=(",", ":")))
    tmp.replace(path)  # a reader never sees half a file
    return path


def read_steps(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every saved step sample of a run, in step order."""
    folder = Path(run_dir) / FOLDER
    if not folder.is_dir():
        return []
    files = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := FILE.fullmatch(p.name)))
    return [json.loads(p.read_text()) for _, p in files]
