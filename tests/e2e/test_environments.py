"""The other environments and DAPO with the methods, end to end on the CPU (one step each): ScienceWorld with
DAPO alone, math_python with DAPO + SPEAR (trajectory rows) and with GRPO + EMPG + EPO (2 steps and
validation), DAPO with AEM (WebShop, LoRA adapters), DAPO with EMPG on the user's own environment. The run
table is in test_train_cpu.py's docstring."""

from __future__ import annotations

import json

import pytest

from tests.e2e.checks import (
    CHECKPOINT_HF,
    NO_EXTRAS,
    NO_PENALTY,
    NO_VALIDATION,
    assert_dapo_sampling,
    assert_finite,
    assert_parameters_changed,
    assert_per_step_samples,
)
from tests.e2e.conftest import run_agent_rl

pytestmark = pytest.mark.e2e


# ScienceWorld trains with DAPO alone; DAPO with SPEAR trains on math_python, SPEAR's own tool benchmark, on
# trajectory rows (its default layout): the tool-call bonus counts the code interpreter's calls, the replay
# stores trajectory rows. The rest of the DAPO x method matrix is below (DAPO x EMPG evicts every group).
# One step each: the default run shows a second step after the weight sync.
@pytest.mark.parametrize(
    ("env", "method", "extra"),
    [
        ("scienceworld", "none", ()),
        # a penalty for malformed turns gives DAPO groups with signal (math_python's own is SPEAR's 0)
        ("math_python", "spear", ("env.invalid_action_penalty=0.1", "data.max_response_length=256")),
    ],
)
def test_environment_trains(env, method, extra, tmp_path, ray_address):
    run = run_agent_rl(
        tmp_path,
        f"env={env}",
        "algo=dapo",
        f"method={method}",
        "logger=console",
        "trainer.total_training_steps=1",
        NO_VALIDATION,
        CHECKPOINT_HF,
        *extra,
        ray_address=ray_address,
    )
    assert [s["step"] for s in run["steps"]] == [1]
    expected = ("method/spear/bonus_mean", "method/spear/stored_rows") if method == "spear" else ()
    assert_finite(run, required=("actor/entropy", "actor/pg_loss", "env/success_rate", *expected))
    assert_per_step_samples(run, rows="trajectory" if env == "math_python" else "step")
    assert_parameters_changed(run, step=1)
    assert_dapo_sampling(run, every_group_evicted=False)
    if method == "spear":  # the bonus counts tool calls; the buffer stores trajectory rows (one per episode)
        data = run["steps"][0]["data"]
        assert data["method/spear/stored_rows"] <= data["env/trajectories"]


# DAPO with the remaining methods (none and spear are in test_environment_trains, epo in its resume test,
# empg on the user's environment below; GRPO with EMPG and AEM in the sweep at the end).
# AEM trains LoRA adapters (model.lora_rank=8) instead of the whole model: AEM's checks concern the
# advantages, which LoRA leaves as they are, and the run also shows verl's LoRA end to end on the CPU (the
# reference is the base model, vLLM serves base + adapters, the adapters are saved with the checkpoint).
@pytest.mark.parametrize(
    ("method", "env", "penalty", "expected", "lora"),
    [
        ("aem", "webshop", True, ("method/aem/alpha/mean", "method/aem/adv_change_abs_mean"), True),
    ],
)
def test_dapo_trains_with_every_method(method, env, penalty, expected, lora, tmp_path, ray_address):
    run = run_agent_rl(
        tmp_path,
        "algo=dapo",
        f"method={method}",
        f"env={env}",
        "logger=console",
        "trainer.total_training_steps=1",
        *(("model.lora_rank=8", NO_VALIDATION) if lora else NO_EXTRAS),
        *(() if penalty else (NO_PENALTY,)),
        ray_address=ray_address,
    )
    assert [s["step"] for s in run["steps"]] == [1]
    assert_finite(run, required=(*expected, "actor/pg_loss", "env/success_rate"))
    assert_dapo_sampling(run, every_group_evicted=not penalty)
    for step in run["steps"]:
        data = step["data"]
        if method in ("empg", "aem"):
            assert data[f"method/{method}/adv_change_abs_mean"] > 0
    if lora:
        import json

        # vLLM generated with the weights the actor scores with: the LoRA sync reached it
        assert run["steps"][0]["data"]["training/rollout_actor_probs_pearson_corr"] > 0.999
        assert run["steps"][0]["data"]["actor/grad_norm"] > 0
        meta = tmp_path / "checkpoints" / "global_step_1" / "actor" / "lora_train_meta.json"
        assert json.loads(meta.read_text())["r"] == 8


def test_an_environment_from_the_users_package_trains_with_dapo_and_empg(tmp_path, ray_address):
    """The user's own environment (tests/e2e/user_env.py, a corridor game with three task types), chosen
    from the user's own config folder (``--config-dir tests/e2e/user_conf env=corridor``, its yaml naming the
    class by ``_target_``); agent_rl names it nowhere. Its class is imported by path in the driver, the
    trainer, the agent-loop worker and every environment actor. Two steps of DAPO with EMPG (no invalid-
    action penalty: every group without a success is evicted), then a validation whose success comes per
    task type of the user's environment."""
    run = run_agent_rl(
        tmp_path,
        "--config-dir=tests/e2e/user_conf",
        "env=corridor",
        "algo=dapo",
        "method=empg",
        "logger=console",
        "trainer.total_training_steps=2",
        "trainer.test_freq=2",
        "trainer.save_freq=-1",
        NO_PENALTY,
        ray_address=ray_address,
    )
    assert [s["step"] for s in run["steps"]] == [1, 2]
    assert_finite(run, required=("method/empg/g/mean", "actor/pg_loss", "env/success_rate"))
    assert_dapo_sampling(run, every_group_evicted=True)
    for step in run["steps"]:
        assert step["data"]["method/empg/adv_change_abs_mean"] > 0
    validated = run["steps"][-1]["data"]
    types = {key.split("/")[2] for key in validated if key.startswith("val-aux/corridor/")}
    assert {"reach", "fetch", "unlock"} <= types, sorted(validated)


def test_math_python_trains_on_trajectory_rows_with_tool_calls_empg_and_epo(tmp_path, ray_address):
    """`env=math_python` (tool calls into the bubblewrap sandbox, math-verify) on its default layout,
    ``agent.rows=trajectory``: one row per episode, every turn inside it; EMPG and EPO run on the rows' turn
    segments (EPO's regulariser on the workers too: its reference there is the driver's), the viewer's
    sample shows each turn's tokens and tool results; then validation, seeded, per task type."""
    run = run_agent_rl(
        tmp_path,
        "env=math_python",
        "method=[empg,epo]",
        "logger=console",
        "data.max_response_length=256",  # the whole episode's budget (model=tiny: 48 a turn elsewhere)
        "trainer.save_freq=-1",
        ray_address=ray_address,
    )
    assert [s["step"] for s in run["steps"]] == [1, 2]
    assert_finite(
        run,
        required=("method/empg/adv_change_abs_mean", "actor/epo_regularizer", "entropy_by_turn/1"),
    )
    for step in run["steps"]:
        data = step["data"]
        assert data["env/trajectories"] == 16 and data["env/steps_per_trajectory"] == 1.0  # one row each
        assert data["env/episode_length/mean"] > 1  # several turns in a row
        assert data["response_length/mean"] <= 256
    second = run["steps"][1]["data"]  # EPO's reference, from step 1's entropy, reaches the workers' segments
    assert second["actor/epo/reference"] == pytest.approx(second["method/epo/reference_mean"], rel=1e-3)
    assert "val-aux/math_python/all/won/mean@1" in run["steps"][-1]["data"]
    sample = json.loads(sorted((run["out"] / "trajectories").glob("step_*.json"))[-1].read_text())
    for traj in sample["trajectories"]:  # each turn: its own tokens; the environment's answer but the last's
        turns = traj["turns"]
        assert len(turns) == traj["length"] > 1
        assert all(len(t["entropy"]) == len(t["token_ids"]) > 0 for t in turns)
        assert all(t["tool_results"] for t in turns[:-1])
