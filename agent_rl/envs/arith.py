"""``arith``: a single-turn task with a verifiable reward, add two numbers and answer in <answer></answer>.

It exercises the full verl loop (rollout, log-probs, advantage, update, weight sync) in seconds; the
multi-turn environments are the real workloads. verl's own single-turn agent loop answers it, and verl's
reward loop scores it with `compute_score` (``reward.custom_reward_function`` in ``conf/env/arith.yaml``).
"""

from __future__ import annotations

import random
import re
from typing import Any

from agent_rl.envs.api import SingleTurn, register_env

PROMPT = "What is {a} + {b}? Think inside <think></think> and give the answer inside <answer></answer>."
DATA_SOURCE = "agent_rl/arith"
_ANSWER = re.compile(r"<answer>\s*(-?\d+)\s*</answer>")


def arith_rows(n: int, seed: int, split: str) -> list[dict[str, Any]]:
    """``n`` sums of two numbers in 0-50, seeded by ``seed`` and ``split``: verl's rows."""
    rng = random.Random(f"arith-{split}-{seed}")
    rows = []
    for i in range(n):
        a, b = rng.randint(0, 50), rng.randint(0, 50)
        rows.append(
            {
                "data_source": DATA_SOURCE,
                "prompt": [{"role": "user", "content": PROMPT.format(a=a, b=b)}],
                "ability": "arithmetic",
                "reward_model": {"style": "rule", "ground_truth": str(a + b)},
                "extra_info": {"split": split, "index": i},
            }
        )
    return rows


def arith_score(solution: str, ground_truth: str) -> float:
    """1.0 for the right number inside <answer></answer>, 0.1 for a well-formed wrong answer, else 0."""
    match = _ANSWER.search(solution)
    if match is None:
        return 0.0
    return 1.0 if match.group(1) == str(ground_truth).strip() else 0.1


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info=None, **kwargs) -> float:
    """verl's reward-loop signature."""
    if data_source != DATA_SOURCE:
        raise ValueError(f"agent_rl.envs.arith has no rule for data_source={data_source!r}")
    return arith_score(solution_str, ground_truth)


@register_env("arith")
class Arith(SingleTurn):
    """The task table of ``env.num_train_tasks`` / ``env.num_val_tasks`` sums."""

    title = "Arithmetic"

    @classmethod
    def table_rows(cls, env_cfg: dict[str, Any], which: str, seed: int) -> list[dict[str, Any]]:
        return arith_rows(int(env_cfg[f"num_{which}_tasks"]), seed, which)
