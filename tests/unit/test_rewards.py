"""The single-turn arithmetic task's rule-based reward and its task table."""

from __future__ import annotations

import pytest

from agent_rl.envs.arith import arith_rows, arith_score, compute_score


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("<think>3+4</think><answer>7</answer>", 1.0),
        ("<answer> 7 </answer>", 1.0),
        ("<answer>8</answer>", 0.1),
        ("7", 0.0),
        ("<answer>seven</answer>", 0.0),
        ("", 0.0),
    ],
)
def test_arith_score(text, score):
    assert arith_score(text, "7") == score


def test_unknown_data_source_is_refused():
    with pytest.raises(ValueError, match="no rule for data_source='other'"):
        compute_score("other", "<answer>1</answer>", "1")


def test_rows_are_deterministic_and_correct():
    rows = arith_rows(20, seed=3, split="train")
    assert rows == arith_rows(20, seed=3, split="train") and rows != arith_rows(20, seed=4, split="train")
    for row in rows:
        a, b = (
            int(x) for x in row["prompt"][0]["content"].split("?")[0].removeprefix("What is ").split(" + ")
        )
        assert row["reward_model"]["ground_truth"] == str(a + b)
