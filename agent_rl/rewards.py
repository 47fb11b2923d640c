"""Rule-based rewards for single-turn tasks (verl's reward-loop signature).

The multi-turn environments score themselves inside the agent loop; this module only serves tasks whose
answer is checked after one response (``env=arith``).
"""

from __future__ import annotations

import re

_ANSWER = re.compile(r"<answer>\s*(-?\d+)\s*</answer>")


def arith_score(solution: str, ground_truth: str) -> float:
    """1.0 for the right number inside <answer></answer>, 0.1 for a well-formed wrong answer, else 0."""
    match = _ANSWER.search(solution)
    if match is None:
        return 0.0
    return 1.0 if match.group(1) == str(ground_truth).strip() else 0.1


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info=None, **kwargs) -> float:
    if data_source != "agent_rl/arith":
        raise ValueError(f"agent_rl.rewards has no rule for data_source={data_source!r}")
    return arith_score(solution_str, ground_truth)
