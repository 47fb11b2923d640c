"""Task tables: one row per task, deterministic, with the spec the agent loop resets from."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from agent_rl.training.data import AGENT_NAME, build_tables, env_rows, split_rows

pytestmark = pytest.mark.env


def test_alfworld_rows_cover_the_shipped_games_per_task_type():
    rows = env_rows({"name": "alfworld"}, "valid_seen", None, seed=0)
    assert len(rows) == 6
    assert {r["data_source"] for r in rows} == {
        "alfworld/pick_and_place_simple",
        "alfworld/look_at_obj_in_light",
        "alfworld/pick_clean_then_place_in_recep",
        "alfworld/pick_heat_then_place_in_recep",
        "alfworld/pick_cool_then_place_in_recep",
        "alfworld/pick_two_obj_and_place",
    }
    for i, row in enumerate(rows):
        assert row["agent_name"] == AGENT_NAME
        assert json.loads(row["env_spec"]) == {"name": "alfworld", "split": "valid_seen", "task_id": i}


def test_webshop_splits_follow_the_goal_ranges():
    test = env_rows({"name": "webshop"}, "test", None, seed=0)
    assert len(test) == 500 and json.loads(test[-1]["env_spec"])["goal_idx"] == 499
    sample = env_rows({"name": "webshop"}, "train", 10, seed=0)
    assert len(sample) == 10 and sample == env_rows({"name": "webshop"}, "train", 10, seed=0)
    assert sample != env_rows({"name": "webshop"}, "train", 10, seed=1)
    with pytest.raises(ValueError, match="unknown WebShop split 'dev2'"):
        env_rows({"name": "webshop"}, "dev2", None, seed=0)


def test_scienceworld_epo_split_l2_holds_out_ten_task_types():
    rows = env_rows({"name": "scienceworld"}, "L2-test", None, seed=0)
    assert len({r["data_source"] for r in rows}) == 10
    spec = json.loads(rows[0]["env_spec"])
    assert spec["name"] == "scienceworld" and {"task", "variation"} <= spec.keys()


def test_tables_are_written_once_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENT_RL_CACHE", str(tmp_path))
    cfg = {
        "name": "webshop",
        "train_split": "train",
        "val_split": "test",
        "max_train_tasks": 8,
        "max_val_tasks": 4,
        "env_kwargs": {},
    }
    train, val = build_tables(cfg, seed=0)
    assert len(pd.read_parquet(train)) == 8 and len(pd.read_parquet(val)) == 4
    mtime = (tmp_path / "data" / "webshop").stat().st_mtime_ns
    assert build_tables(cfg, seed=0) == (train, val)
    assert (tmp_path / "data" / "webshop").stat().st_mtime_ns == mtime
    assert build_tables(cfg, seed=1)[0] != train


def test_unknown_environment_lists_the_valid_ones():
    valid = "valid: alfworld, arith, frozenlake, math_python, scienceworld, webshop"
    with pytest.raises(ValueError, match=valid):
        env_rows({"name": "minecraft"}, "train", None, seed=0)


def test_epo_validation_keeps_every_task_of_the_split_to_draw_from():
    env = {"name": "alfworld", "val_split": "valid_seen", "max_val_tasks": 2}
    assert len(split_rows(env, "val", seed=0)) == 2
    assert len(split_rows({**env, "val_protocol": "epo"}, "val", seed=0)) == 6  # all shipped games
