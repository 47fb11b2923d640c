"""Task tables that verl's dataloader reads: one parquet file per environment and split.

Each row is one task; verl repeats it ``rollout.n`` times to form a GRPO group. Tables are written
deterministically (same config -> same rows) into ``$AGENT_RL_CACHE/data/<env>/``.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from agent_rl.tiny_model import cache_root

ARITH_PROMPT = (
    "What is {a} + {b}? Think inside <think></think> and give the answer inside <answer></answer>."
)


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


def _write(rows: list[dict[str, Any]], path: Path) -> Path:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{random.getrandbits(32):08x}.tmp")
    pd.DataFrame(rows).to_parquet(tmp, index=False)
    tmp.rename(path)
    return path


def build_tables(env_cfg: dict[str, Any], seed: int) -> tuple[str, str]:
    """Write (or reuse) the train and validation tables of ``env_cfg``; return their paths."""
    name = env_cfg["name"]
    key = hashlib.sha256(json.dumps({"env": env_cfg, "seed": seed}, sort_keys=True).encode()).hexdigest()[:10]
    folder = cache_root() / "data" / name
    train, val = folder / f"train-{key}.parquet", folder / f"val-{key}.parquet"
    if name == "arith":
        if not train.exists():
            _write(arith_rows(env_cfg["num_train_tasks"], seed, "train"), train)
        if not val.exists():
            _write(arith_rows(env_cfg["num_val_tasks"], seed, "val"), val)
    else:
        raise ValueError(f"no task tables for env={name!r}")
    return str(train), str(val)
