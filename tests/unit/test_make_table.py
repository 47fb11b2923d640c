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
SPEAR table (recipes/spear/table.yaml; AIME24 / AIME25 = the final ``won`` of task type aime2024 / aime2025,
``val-aux/math_python/<task type>/won/mean@32``; its own runs, `aime_runs`):
  aime-qwen3-32b-drbot-spear
      seed 0: aime2024 {5: 50, 10: 80}, aime2025 {5: 40, 10: 75}, all {5: 45, 10: 77.5}
      seed 1: aime2024 {10: 90}, aime2025 {10: 85}, all {10: 87.5}
      AIME24 = 85.0 ± 5.0, AIME25 = 80.0 ± 5.0, Succ. (env-wide, both years) = 82.5 ± 5.0
  aime-qwen3-32b-drbot
      seed 0: all {10: 60} only: no AIME24 / AIME25 (no fallback to `all`)
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
    validation_key,
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
    # a mapping may name the validation task type; without one a metric is the env-wide one ("all")
    assert metric_spec("Succ.", "spear").task_type == "all"
    aime = metric_spec({"name": "AIME24", "task_type": "aime2024"}, "spear")
    assert (aime.quantity, aime.agg, aime.split, aime.task_type) == ("won", "final", None, "aime2024")
    for bad in (
        {"name": "AIME24", "task-type": "aime2024"},
        {"task_type": "aime2024"},
        {"name": "x", "task_type": "a/b"},
    ):
        with pytest.raises(ValueError):
            metric_spec(bad, "spear")


def test_validation_key_of_a_task_type():
    """The largest N of ``mean@N`` of the named task type; never another task type's, nor verl's other
    statistics of the same one (std@N, best@N/mean)."""
    keys = [
        "val-aux/math_python/all/won/mean@32",
        "val-aux/math_python/aime2024/won/mean@4",
        "val-aux/math_python/aime2024/won/mean@32",
        "val-aux/math_python/aime2024/won/std@32",
        "val-aux/math_python/aime2024/won/best@32/mean",
        "val-aux/math_python/aime2025/won/mean@32",
    ]
    assert validation_key(keys, "math_python") == "val-aux/math_python/all/won/mean@32"
    assert (
        validation_key(keys, "math_python", "won", "aime2024") == "val-aux/math_python/aime2024/won/mean@32"
    )
    assert (
        validation_key(keys, "math_python", "won", "aime2025") == "val-aux/math_python/aime2025/won/mean@32"
    )
    assert validation_key(keys, "math_python", "won", "aime2026") is None
    assert validation_key(keys, "math_python", "score", "aime2024") is None


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


# ----------------------------------------------------------------------------------------------------------
# Metrics of one task type: SPEAR's AIME table


def aime_config(row: str, seed: int) -> dict:
    method = "spear" if row.endswith("-spear") else "none"
    return {
        "env": {"name": "math_python", "val_split": "aime", "val_protocol": "fixed", "max_val_tasks": None},
        "algo": {"name": "grpo"},
        "method": {"name": method, "dr_bot_filters": True},
        "model": {"name": "qwen3-32b"},
        "seed": seed,
        "trainer": {"total_training_steps": 10},
        "experiment": {"paper": "spear", "row": row},
    }


def log_validations(
    root: Path, cfg: dict, validations: dict[int, dict[str, float]], steps=range(1, 11)
) -> None:
    """One offline run: a training row per step, and at a validation step the given keys (and the keys
    verl logs beside them, which must not be read: another N, std@N, best@N/mean)."""
    out = root / f"run{len(list(root.iterdir()))}"
    out.mkdir()
    run = wandb.init(
        mode="offline",
        dir=out,
        project="agent_rl",
        config=cfg,
        settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
    )
    for step in steps:
        row = {"training/global_step": step, "env/success_rate": 0.9}
        for key, value in validations.get(step, {}).items():
            row[key] = value
            row[key.replace("mean@32", "mean@4")] = 0.0
            row[key.replace("mean@32", "std@32")] = 0.5
            row[key.replace("mean@32", "best@32/mean")] = 1.0
        run.log(row, step=step)
    run.finish()


def aime_keys(aime2024: float | None, aime2025: float | None, everything: float) -> dict[str, float]:
    keys = {"val-aux/math_python/all/won/mean@32": everything}
    if aime2024 is not None:
        keys["val-aux/math_python/aime2024/won/mean@32"] = aime2024
    if aime2025 is not None:
        keys["val-aux/math_python/aime2025/won/mean@32"] = aime2025
    return keys


@pytest.fixture(scope="module")
def aime_runs(tmp_path_factory) -> list[Run]:
    root = tmp_path_factory.mktemp("aime_runs")
    spear = "aime-qwen3-32b-drbot-spear"
    log_validations(
        root,
        aime_config(spear, 0),
        {5: aime_keys(0.5, 0.4, 0.45), 10: aime_keys(0.8, 0.75, 0.775)},
    )
    log_validations(root, aime_config(spear, 1), {10: aime_keys(0.9, 0.85, 0.875)})
    log_validations(root, aime_config("aime-qwen3-32b-drbot", 0), {10: aime_keys(None, None, 0.6)})
    runs, problems = read_offline_runs([root])
    assert problems == [] and len(runs) == 3
    return runs


def test_aime_columns_are_the_won_metric_of_each_task_type(aime_runs):
    specs, results, notes = compute_rows(
        aime_runs, yaml.safe_load((REPO / "recipes/spear/table.yaml").read_text())
    )
    assert [(s.name, s.task_type) for s in specs] == [
        ("Succ.", "all"),
        ("AIME24", "aime2024"),
        ("AIME25", "aime2025"),
    ]
    by = {r.key: r for r in results}
    spear, drbot = by["aime-qwen3-32b-drbot-spear"], by["aime-qwen3-32b-drbot"]
    assert spear.seeds == [0, 1]
    assert spear.ours["AIME24"] == pytest.approx([80.0, 90.0])
    assert spear.ours["AIME25"] == pytest.approx([75.0, 85.0])
    assert spear.ours["Succ."] == pytest.approx([77.5, 87.5])  # the env-wide value, both years together
    assert drbot.seeds == [0] and drbot.ours == {"Succ.": pytest.approx([60.0])}  # no fallback to `all`
    assert not any("no validation metric" in n for n in notes)


def test_aime_markdown(aime_runs):
    table = REPO / "recipes" / "spear" / "table.yaml"
    text = build_table(aime_runs, table)
    assert "AIME24 = last validation evaluation (task type aime2024)" in text
    lines = [line for line in text.splitlines() if line.startswith("| aime-qwen3")]
    assert lines == [
        "| aime-qwen3-32b-drbot | math_python | grpo | none | qwen3-32b | 0 | fixed "
        "| — | 60.0 | 82.5 | — | 77.3 | — |",
        "| aime-qwen3-32b-drbot-spear | math_python | grpo | spear | qwen3-32b | 0, 1 | fixed "
        "| — | 82.5 ± 5.0 | 85.6 | 85.0 ± 5.0 | 80.5 | 80.0 ± 5.0 |",
    ]
    # a run that logged no metric the table reads is named in the notes, with the key it lacks
    config = aime_config("aime-qwen3-32b-drbot", 1)
    run = Run(config=config, history=[{"training/global_step": 1}], name="x", source="fake")
    aime24 = {"paper": "spear", "metrics": [{"name": "AIME24", "task_type": "aime2024"}]}
    _, _, notes = compute_rows([run], aime24)
    missing = (
        "run `x` (fake, row `aime-qwen3-32b-drbot`): no validation metric `val-aux/math_python/aime2024/won`"
    )
    assert missing in notes
