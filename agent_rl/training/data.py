"""Task tables that verl's dataloader reads: one parquet file per environment and split.

Each row is one task; verl repeats it ``rollout.n`` times to form a GRPO group, and our agent loop resets
the environment from the row's ``env_spec``, so all members of a group start alike. Tables are written
deterministically (same config -> same rows) into ``$AGENT_RL_CACHE/data/<env>/`` and reused.

Splits (``env.train_split`` / ``env.val_split``):

- ALFWorld: ``train`` (3,553 games in the full set), ``valid_seen`` (in-distribution, EPO's and
  verl-agent's evaluation set), ``valid_unseen`` (out-of-distribution). Without ``$ALFWORLD_DATA`` the
  six shipped games stand for every split.
- ScienceWorld: the simulator's ``train``/``dev``/``test`` variations of all 30 tasks, or EPO's splits
  ``L0-train``, ``L0-test`` (= dev), ``L1-test`` (= test), ``L2-train`` (19 task types), ``L2-test``
  (10 held-out types); EPO leaves out use-thermometer (methods.md, environments.md §4).
- WebShop: ``test`` = goals 0-499, ``train`` = goals 500 on (verl-agent's and EPO's split;
  ``env.env_kwargs.num_test_goals`` moves the boundary), ``eval`` = goals 500-1499 (WebShop's own dev range,
  inside train).

Each row: ``data_source`` = ``<env>/<task type>`` (so verl's validation metrics come per task type),
``agent_name`` = our agent loop, ``env_spec`` = the reset spec, ``prompt`` = a one-line task label (verl's
dataset requires a prompt column; the agent loop builds the real prompts).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

from agent_rl.models.tiny_model import cache_root

AGENT_NAME = "agent_rl_env"
ARITH_PROMPT = "What is {a} + {b}? Think inside <think></think> and give the answer inside <answer></answer>."


def arith_rows(n: int, seed: int, split: str) -> list[dict[str, Any]]:
    rng = random.Random(f"arith-{split}-{seed}")
    rows = []
    for i in range(n):
        a, b = rng.randint(0, 50), rng.randint(0, 50)
        rows.append(
            {
                "data_source": "agent_rl/arith",
                "prompt": [{"role": "user", "content": ARITH_PROMPT.format(a=a, b=b)}],
                "ability": "arithmetic",
                "reward_model": {"style": "rule", "ground_truth": str(a + b)},
                "extra_info": {"split": split, "index": i},
            }
        )
    return rows


def _row(env: str, spec: dict[str, Any], task_type: str, index: int) -> dict[str, Any]:
    spec = {"name": env, **spec}
    return {
        "data_source": f"{env}/{task_type}",
        "agent_name": AGENT_NAME,
        "prompt": [{"role": "user", "content": f"{env} task {json.dumps(spec, sort_keys=True)}"}],
        "env_spec": json.dumps(spec, sort_keys=True),
        "ability": "agent",
        "extra_info": {"index": index, "task_type": task_type},
    }


def alfworld_specs(split: str) -> list[tuple[dict[str, Any], str]]:
    from agent_rl.envs import alfworld

    games = alfworld.list_games(str(alfworld.default_data_dir()), split)
    return [({"split": split, "task_id": i}, alfworld.task_type_of(g)) for i, g in enumerate(games)]


def scienceworld_specs(split: str) -> list[tuple[dict[str, Any], str]]:
    from agent_rl.envs import scienceworld

    if "-" in split:  # EPO's splits, e.g. "L0-train"
        level, part = split.split("-", 1)
        specs = scienceworld.epo_split(level, part)
    else:
        specs = scienceworld.split_specs(split)
    return [({**s}, s["task"]) for s in specs]


def webshop_specs(split: str, env_kwargs: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    from agent_rl.envs.webshop import env as webshop

    sizes = webshop.split_sizes(
        env_kwargs.get("data_dir"),
        env_kwargs.get("human_goals", False),
        env_kwargs.get("seed", 0),
        catalog=env_kwargs.get("catalog", "small"),
        num_test_goals=env_kwargs.get("num_test_goals", 500),
    )
    if split not in sizes:
        raise ValueError(f"unknown WebShop split {split!r}; valid: {', '.join(sizes)}")
    return [({"split": split, "goal_idx": i}, "webshop") for i in range(sizes[split])]


def frozenlake_specs(split: str, env_kwargs: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    from agent_rl.envs import frozenlake

    size = frozenlake.check_size(env_kwargs.get("size", 4))
    specs = frozenlake.split_specs(split)
    return [({"split": split, "task_id": s["task_id"]}, f"{size}x{size}") for s in specs]


def env_rows(env_cfg: dict[str, Any], split: str, limit: int | None, seed: int) -> list[dict[str, Any]]:
    """Rows for one split of a multi-turn environment; ``limit`` keeps a seeded sample of that many."""
    name = env_cfg["name"]
    if name == "alfworld":
        specs = alfworld_specs(split)
    elif name == "scienceworld":
        specs = scienceworld_specs(split)
    elif name == "webshop":
        specs = webshop_specs(split, dict(env_cfg.get("env_kwargs") or {}))
    elif name == "frozenlake":
        specs = frozenlake_specs(split, dict(env_cfg.get("env_kwargs") or {}))
    else:
        raise ValueError(
            f"no task tables for env={name!r}; valid: alfworld, scienceworld, webshop, arith, frozenlake"
        )
    if not specs:
        raise ValueError(f"{name} split {split!r} has no tasks")
    if limit is not None and limit < len(specs):
        specs = random.Random(f"{name}-{split}-{seed}").sample(specs, limit)
    return [_row(name, spec, task_type, i) for i, (spec, task_type) in enumerate(specs)]


def split_rows(env_cfg: dict[str, Any], which: str, seed: int) -> list[dict[str, Any]]:
    """Rows of the training (``which="train"``) or validation (``"val"``) table of an environment."""
    if env_cfg["name"] == "arith":
        return arith_rows(env_cfg[f"num_{which}_tasks"], seed, which)
    limit = env_cfg.get(f"max_{which}_tasks")
    if which == "val" and env_cfg.get("val_protocol") == "epo":
        limit = None  # every task of the split; each evaluation draws its own (AgentTrainer._validate)
    return env_rows(env_cfg, env_cfg[f"{which}_split"], limit, seed)


def _write(rows: list[dict[str, Any]], path: Path) -> Path:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{random.getrandbits(32):08x}.tmp")
    pd.DataFrame(rows).to_parquet(tmp, index=False)
    tmp.rename(path)
    return path


def build_tables(env_cfg: dict[str, Any], seed: int) -> tuple[str, str]:
    """Write (or reuse) the train and validation tables of ``env_cfg``; return their paths."""
    sources = {var: os.environ.get(var) for var in ("ALFWORLD_DATA", "WEBSHOP_DATA")}
    fingerprint = json.dumps({"env": env_cfg, "seed": seed, "sources": sources}, sort_keys=True)
    key = hashlib.sha256(fingerprint.encode()).hexdigest()[:10]
    folder = cache_root() / "data" / env_cfg["name"]
    train, val = folder / f"train-{key}.parquet", folder / f"val-{key}.parquet"
    for which, path in (("train", train), ("val", val)):
        if not path.exists():
            _write(split_rows(env_cfg, which, seed), path)
    return str(train), str(val)
