"""agent_rl.report.table / scripts/make_table.py on real offline W&B runs (``wandb.init(mode="offline")``).

Fake seeds: every run logs a training row per step (``env/success_rate`` 0.9, never used) and, at its
evaluation steps, the env-wide validation keys the trainer logs (``val-aux/<env>/all/won/mean@1``, ...).
T = trainer.total_training_steps = 12, so the default convergence window (the last 1/6) is steps 10 and 12.

EPO table, success in % per evaluation step:
  alfworld-grpo      seed 0: {4: 25, 6: NaN, 8: 50, 10: 40, 12: 50}   best 50, window (40+50)/2 = 45
                     seed 1: run A {4: 50, 8: 60}, resumed run B {8: 75, 10: 60, 12: 70}
                             merged {4: 50, 8: 75, 10: 60, 12: 70}     best 75, window (60+70)/2 = 65
                     Succ.* = 62.5 ± 12.5, Succ. = 55.0 ± 10.0
                     seed 0 on valid_unseen: {6: 35, 12: 30}, only in OOD metrics: OOD Succ.* 35, OOD Succ. 30
  alfworld-grpo-epo  seed 0 (matched by env/algo/method/model): {4: 80, 8: 90, 10: 70, 12: 80}
                             best 90, window 75; seed 1: no validation metric (noted, not counted)
  alfworld-ppo       (experiment.row not in the table) seed 0: {12: 30} -> 30.0, 30.0
EMPG table (final = last evaluation):
  webshop-grpo-empg  seed 0: won {5: 20, 10: 40}, score {5: 50, 10: 70}; seed 1: won {10: 60}, score {10: 80}
                     Succ. = (40+60)/2 = 50.0 ± 10.0, Score = (70+80)/2 = 75.0 ± 5.0
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import yaml

wandb = pytest.importorskip("wandb")

from agent_rl.report.table import (  # noqa: E402
    Run,
    build_table,
    compute_rows,
    find_offline_runs,
    metric_spec,
    read_offline_run,
    read_offline_runs,
)

REPO = Path(__file__).resolve().parents[2]
NAN = float("nan")

EPO_TABLE = {
    "paper": "epo",
    "source": "EPO Table 1 (ALFWorld IID)",
    "metrics": ["Succ.*", "Succ."],
    "rows": {
        "alfworld-grpo": {
            "env": "alfworld",
            "algo": "grpo",
            "method": "none",
            "model": "qwen2.5-3b",
            "Succ.*": 87.5,
            "Succ.": 63.3,
        },
        "alfworld-grpo-epo": {
            "env": "alfworld",
            "algo": "grpo",
            "method": "epo",
            "model": "Qwen2.5-3B-Instruct",
            "Succ.*": 91.7,
            "Succ.": 75.8,
        },
        "alfworld-ppo-epo": {"env": "alfworld", "algo": "ppo", "method": "epo", "Succ.*": 85.4},
    },
}
EMPG_TABLE = {
    "paper": "empg",
    "metrics": ["Succ.", "Score"],
    "rows": {
        "webshop-grpo-empg": {"env": "webshop", "algo": "grpo", "method": "empg", "Succ.": 60.8},
        "alfworld-grpo-empg": {"env": "alfworld", "algo": "grpo", "method": "empg", "Succ.": 73.7},
    },
}


def config(
    env, method, seed, paper, row, algo="grpo", model="qwen2.5-3b", val_split="valid_seen", protocol="fixed"
):
    return {
        "env": {
            "name": env,
            "val_split": val_split,
            "val_protocol": protocol,
            "max_val_tasks": 128,
            "val_tasks_per_eval": 16,
        },
        "algo": {"name": algo},
        "method": {"name": method},
        "model": {"name": model},
        "seed": seed,
        "trainer": {"total_training_steps": 12},
        "experiment": None if paper is None else {"paper": paper, "row": row},
    }


def log_run(root: Path, cfg: dict, steps, won: dict, score: dict | None = None) -> None:
    """One offline run in its own Hydra-like folder ``root/<n>/wandb/offline-run-*``."""
    out = root / f"run{len(list(root.iterdir()))}"
    out.mkdir()
    env = cfg["env"]["name"]
    run = wandb.init(
        mode="offline",
        dir=out,
        project="agent_rl",
        config=cfg,
        settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
    )
    for step in steps:
        row = {"training/global_step": step, "env/success_rate": 0.9}
        if step in won:
            row[f"val-aux/{env}/all/won/mean@1"] = won[step]
            row[f"val-core/{env}/all/reward/mean@1"] = 10 * won[step]
            row[f"val-aux/{env}/pick_and_place_simple/won/mean@1"] = 1.0
        if score and step in score:
            row[f"val-aux/{env}/all/score/mean@1"] = score[step]
        run.log(row, step=step)
    run.finish()


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wandb_runs")
    every = range(1, 13)
    log_run(
        root,
        config("alfworld", "none", 0, "epo", "alfworld-grpo"),
        every,
        {4: 0.25, 6: NAN, 8: 0.5, 10: 0.4, 12: 0.5},
    )
    log_run(root, config("alfworld", "none", 1, "epo", "alfworld-grpo"), range(1, 9), {4: 0.5, 8: 0.6})
    log_run(
        root, config("alfworld", "none", 1, "epo", "alfworld-grpo"), range(8, 13), {8: 0.75, 10: 0.6, 12: 0.7}
    )
    ood = config("alfworld", "none", 0, "epo", "alfworld-grpo", val_split="valid_unseen")
    log_run(root, ood, every, {6: 0.35, 12: 0.3})
    epo = {"protocol": "epo"}  # these two validated as EPO did: 16 fresh tasks per evaluation
    log_run(root, config("alfworld", "epo", 0, None, None, **epo), every, {4: 0.8, 8: 0.9, 10: 0.7, 12: 0.8})
    log_run(root, config("alfworld", "epo", 1, None, None, **epo), every, {})
    log_run(root, config("alfworld", "none", 0, "epo", "alfworld-ppo", algo="ppo"), every, {12: 0.3})
    log_run(root, config("alfworld", "none", 0, "spear", "alfworld-grpo"), every, {12: 1.0})  # other paper
    shop = {"model": "qwen2.5-1.5b"}
    log_run(
        root,
        config("webshop", "empg", 0, "empg", "webshop-grpo-empg", **shop),
        range(1, 11),
        {5: 0.2, 10: 0.4},
        {5: 0.5, 10: 0.7},
    )
    log_run(
        root,
        config("webshop", "empg", 1, "empg", "webshop-grpo-empg", **shop),
        range(1, 11),
        {10: 0.6},
        {10: 0.8},
    )
    return root


@pytest.fixture(scope="module")
def runs(runs_dir) -> list[Run]:
    runs, problems = read_offline_runs([runs_dir])
    assert problems == []
    return runs


def test_offline_reader_recovers_config_and_history(runs_dir, runs):
    assert len(find_offline_runs([runs_dir])) == 10 == len(runs)  # wandb/latest-run links are not followed
    run = read_offline_run(next((runs_dir / "run0" / "wandb").glob("offline-run-*")))
    assert run.config["env"]["name"] == "alfworld" and run.config["env"]["val_split"] == "valid_seen"
    assert run.config["experiment"] == {"paper": "epo", "row": "alfworld-grpo"}
    assert run.config["seed"] == 0 and "_wandb" not in run.config
    assert [row["_step"] for row in run.history] == list(range(1, 13))
    assert run.history[3]["val-aux/alfworld/all/won/mean@1"] == 0.25
    assert math.isnan(run.history[5]["val-aux/alfworld/all/won/mean@1"])
    assert run.history[0]["env/success_rate"] == 0.9 and run.history[0]["training/global_step"] == 1


def test_unreadable_run_folder_is_a_note(tmp_path):
    bad = tmp_path / "wandb" / "offline-run-20260101_000000-bad"
    bad.mkdir(parents=True)
    (bad / "run-bad.wandb").write_bytes(b"not a wandb file")
    runs, problems = read_offline_runs([tmp_path])
    assert runs == [] and len(problems) == 1 and "offline-run-20260101_000000-bad" in problems[0]


def test_metric_names():
    assert metric_spec("Succ.*", "epo").agg == "best"
    assert metric_spec("Succ.", "epo").agg == "window"
    assert metric_spec("Succ.", "empg").agg == "final"
    assert metric_spec("Score", "empg") == metric_spec("Score", "epo")
    assert metric_spec("Score", "spear").quantity == "score"
    assert metric_spec("OOD Succ.*", "epo").split == "ood"
    assert metric_spec({"name": "x", "agg": "best"}, "empg").agg == "best"
    with pytest.raises(ValueError):
        metric_spec({"name": "x", "agg": "median"})


def test_epo_numbers(runs):
    specs, results, notes = compute_rows(runs, EPO_TABLE)
    assert [s.name for s in specs] == ["Succ.*", "Succ."]
    by = {r.key: r for r in results}
    assert list(by) == ["alfworld-grpo", "alfworld-grpo-epo", "alfworld-ppo-epo", "alfworld-ppo"]
    assert by["alfworld-grpo"].seeds == [0, 1]
    assert by["alfworld-grpo"].ours["Succ.*"] == pytest.approx([50.0, 75.0])
    assert by["alfworld-grpo"].ours["Succ."] == pytest.approx([45.0, 65.0])
    assert by["alfworld-grpo-epo"].seeds == [0]
    assert by["alfworld-grpo-epo"].ours["Succ.*"] == pytest.approx([90.0])
    assert by["alfworld-grpo-epo"].ours["Succ."] == pytest.approx([75.0])
    assert by["alfworld-ppo-epo"].ours == {} and not by["alfworld-ppo"].in_table
    assert any("no runs" in n and "alfworld-ppo-epo" in n for n in notes)
    assert any("no validation metric" in n and "alfworld-grpo-epo" in n for n in notes)
    # a fixed window start instead of the last 1/6: steps 8, 10, 12
    _, results, _ = compute_rows(runs, EPO_TABLE, window_start=8)
    assert results[0].ours["Succ."] == pytest.approx([140 / 3, 205 / 3])
    # IID and OOD columns: the runs with env.val_split valid_seen / valid_unseen
    split_table = {**EPO_TABLE, "metrics": ["IID Succ.*", "OOD Succ.*", "OOD Succ."]}
    _, results, _ = compute_rows(runs, split_table)
    assert results[0].ours["IID Succ.*"] == pytest.approx([50.0, 75.0])
    assert results[0].ours["OOD Succ.*"] == pytest.approx([35.0])
    assert results[0].ours["OOD Succ."] == pytest.approx([30.0])
    assert results[0].seeds == [0, 1]


def test_epo_markdown(runs):
    text = build_table(runs, EPO_TABLE)
    assert "Paper numbers: EPO Table 1 (ALFWorld IID)." in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table == [
        "| Row | Env | Algo | Method | Model | Seeds | Validation "
        "| Succ.* paper | Succ.* ours | Succ. paper | Succ. ours |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        "| alfworld-grpo | alfworld | grpo | none | qwen2.5-3b | 0, 1 | fixed (128 tasks) "
        "| 87.5 | 62.5 ± 12.5 | 63.3 | 55.0 ± 10.0 |",
        "| alfworld-grpo-epo | alfworld | grpo | epo | Qwen2.5-3B-Instruct | 0 "
        "| epo (16 fresh tasks per eval) | 91.7 | 90.0 | 75.8 | 75.0 |",
        "| alfworld-ppo-epo | alfworld | ppo | epo | — | — | — | 85.4 | — | — | — |",
        "| alfworld-ppo (not in table) | alfworld | ppo | none | qwen2.5-3b | 0 | fixed (128 tasks) "
        "| — | 30.0 | — | 30.0 |",
    ]
    assert "- row `alfworld-ppo-epo`: no runs" in text
    assert "- row `alfworld-grpo`, seed 1: 2 runs merged by step" in text


def test_empg_final_success_and_webshop_score(runs, tmp_path):
    table = [line for line in build_table(runs, EMPG_TABLE).splitlines() if line.startswith("| webshop")]
    assert table == [
        "| webshop-grpo-empg | webshop | grpo | empg | — | 0, 1 | fixed (128 tasks) "
        "| 60.8 | 50.0 ± 10.0 | — | 75.0 ± 5.0 |"
    ]
    # the command line: table.yaml + offline run folders -> markdown file
    spec = importlib.util.spec_from_file_location("make_table", REPO / "scripts" / "make_table.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    (tmp_path / "table.yaml").write_text(yaml.safe_dump(EMPG_TABLE, sort_keys=False))
    out = tmp_path / "table.md"
    runs_dir = Path(runs[0].source).parents[2]
    assert (
        cli.main(["--table", str(tmp_path / "table.yaml"), "--runs", str(runs_dir), "--out", str(out)]) == 0
    )
    assert out.read_text() == build_table(runs, EMPG_TABLE)
