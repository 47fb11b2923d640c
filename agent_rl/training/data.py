"""Task tables that verl's dataloader reads: one parquet file per environment and split.

Each row is one task; verl repeats it ``rollout.n`` times to form a GRPO group, and our agent loop resets
the environment from the row's ``env_spec``, so all members of a group start alike. Tables are written
deterministically (same config -> same rows) into ``$AGENT_RL_CACHE/data/<env>/`` and reused. The tasks of a
split come from the environment's class (`agent_rl.envs.api.Environment.tasks`; ``docs/envs/`` lists each
environment's splits); a single-turn environment gives verl's rows itself (``table_rows``).

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

from agent_rl.envs.api import env_class, env_spec
from agent_rl.models.tiny_model import cache_root

AGENT_NAME = "agent_rl_env"


# Bumped when the rows change shape (part of the tables' cache key). 2: extra_info["table"].
TABLE_VERSION = 2


def _row(env: str, spec: dict[str, Any], task_type: str, index: int, table: str) -> dict[str, Any]:
    spec = {"name": env, **spec}
    return {
        "data_source": f"{env}/{task_type}",
        "agent_name": AGENT_NAME,
        "prompt": [{"role": "user", "content": f"{env} task {json.dumps(spec, sort_keys=True)}"}],
        "env_spec": json.dumps(spec, sort_keys=True),
        "ability": "agent",
        "extra_info": {"index": index, "task_type": task_type, "table": table},
    }


def env_rows(
    env_cfg: dict[str, Any], split: str, limit: int | None, seed: int, table: str = "train"
) -> list[dict[str, Any]]:
    """Rows for one split of a multi-turn environment; ``limit`` keeps a seeded sample of that many; ``table``
    ("train" or "val") tells the agent loop which table a row is from (validation may be seeded)."""
    cls = env_class(env_spec(env_cfg))
    name = env_cfg["name"]
    kwargs = dict(env_cfg.get("env_kwargs") or {})
    specs = cls.tasks(split, kwargs)  # an unknown split: the class's own error (agent-rl checks before)
    if not specs:
        raise ValueError(f"{name} split {split!r} has no tasks")
    if limit is not None and limit < len(specs):
        specs = random.Random(f"{name}-{split}-{seed}").sample(specs, limit)
    return [_row(name, spec, task_type, i, table) for i, (spec, task_type) in enumerate(specs)]


def split_rows(env_cfg: dict[str, Any], which: str, seed: int) -> list[dict[str, Any]]:
    """Rows of the training (``which="train"``) or validation (``"val"``) table of an environment."""
    cls = env_class(env_spec(env_cfg))
    if not cls.multi_turn:
        return cls.table_rows(env_cfg, which, seed)
    limit = env_cfg.get(f"max_{which}_tasks")
    if which == "val" and env_cfg.get("val_protocol") == "epo":
        limit = None  # every task of the split; each evaluation draws its own (AgentTrainer._validate)
    return env_rows(env_cfg, env_cfg[f"{which}_split"], limit, seed, which)


def _write(rows: list[dict[str, Any]], path: Path) -> Path:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{random.getrandbits(32):08x}.tmp")
    pd.DataFrame(rows).to_parquet(tmp, index=False)
    tmp.rename(path)
    return path


def build_tables(env_cfg: dict[str, Any], seed: int) -> tuple[str, str]:
    """Write (or reuse) the train and validation tables of ``env_cfg``; return their paths."""
    variables = env_class(env_spec(env_cfg)).data_variables
    sources = {var: os.environ.get(var) for var in variables}
    fingerprint = json.dumps(
        {"env": env_cfg, "seed": seed, "sources": sources, "version": TABLE_VERSION}, sort_keys=True
    )
    key = hashlib.sha256(fingerprint.encode()).hexdigest()[:10]
    folder = cache_root() / "data" / env_cfg["name"]
    train, val = folder / f"train-{key}.parquet", folder / f"val-{key}.parquet"
    for which, path in (("train", train), ("val", val)):
        if not path.exists():
            _write(split_rows(env_cfg, which, seed), path)
    return str(train), str(val)
