"""A Hydra multirun sweep with W&B and the table builder, and GiGPO with composed methods including a user's
class, end to end on the CPU. The run table is in test_train_cpu.py's docstring."""

from __future__ import annotations

import math

import pytest

from tests.e2e.checks import (
    NO_VALIDATION,
    assert_finite,
    assert_gigpo,
    assert_per_step_samples,
)
from tests.e2e.conftest import run_agent_rl, run_agent_rl_multirun

pytestmark = pytest.mark.e2e


METHODS_SWEPT = ("empg", "aem")


def test_a_multirun_sweep_trains_both_choices_and_makes_a_table(tmp_path, ray_address):
    """`agent-rl -m method=empg,aem` (GRPO, ALFWorld): both jobs train (one step, then validation with EPO's
    protocol: 3 tasks drawn for the evaluation) and log to W&B offline, named, tagged and grouped by their
    choices; EMPG and AEM move GRPO's advantages; the table builder reads the offline W&B runs and reports
    the validation success each one logged, and the protocol it used."""
    from agent_rl.report.table import build_table, compute_rows, read_offline_runs

    jobs = run_agent_rl_multirun(
        tmp_path / "sweep",
        f"method={','.join(METHODS_SWEPT)}",
        "trainer.total_training_steps=1",
        "env.val_protocol=epo",
        "env.val_tasks_per_eval=3",
        ray_address=ray_address,
    )
    names = [job["out"].name for job in jobs]
    assert names == ["0_alfworld-grpo-empg-tiny-s0", "1_alfworld-grpo-aem-tiny-s0"]
    for job, method in zip(jobs, METHODS_SWEPT, strict=True):
        assert [s["step"] for s in job["steps"]] == [1]
        data = job["steps"][0]["data"]
        assert data["val/tasks"] == 3.0  # of the split's 6 games, drawn for this evaluation
        bad = {k: v for k, v in data.items() if isinstance(v, float) and not math.isfinite(v)}
        assert not bad and "entropy_by_turn/0" in data
        if method == "empg":
            assert data["method/empg/g/mean"] == pytest.approx(1.0, abs=1e-5)  # g is self-calibrating
            assert math.isfinite(data["method/empg/f/mean"])
            # zeta * f is added to every non-final step, so the advantages move even when GRPO's are 0
            assert data["method/empg/adv_change_abs_mean"] > 0
        else:
            assert data["method/aem/alpha/min"] > 0  # alpha > 0 keeps every advantage's sign
            assert math.isfinite(data["method/aem/alpha/mean"])
            assert data["method/aem/adv_change_abs_mean"] > 0
    runs, notes = read_offline_runs([tmp_path / "sweep"])
    assert not notes and len(runs) == 2
    for run in runs:
        method = run.config["method"]["name"]
        assert run.name == f"alfworld-grpo-{method}-tiny-s0"
        assert run.config["actor_rollout_ref"]["rollout"]["n"] == 4  # the full config reached W&B
        assert run.group == f"alfworld-grpo-{method}-tiny"  # seeds of one choice share a group
        assert {"env:alfworld", "algo:grpo", f"method:{method}", "model:tiny"} <= set(run.tags)
        # the per-turn entropy plot (W&B stores its table under <key>_table) and the sample trajectories
        media = {k: v for row in run.history for k, v in row.items() if k.endswith(".nrows")}
        assert media.get("samples/trajectories.nrows", 0) > 0, sorted(media)
        assert media.get("plots/entropy_by_turn_table.nrows", 0) > 0, sorted(media)
    assert len({run.run_id for run in runs}) == 2
    spec = {
        "paper": "cpu-sweep",
        "source": "this test",
        "metrics": ["Succ."],
        "rows": {
            m: {"env": "alfworld", "algo": "grpo", "method": m, "model": "tiny", "Succ.": 50.0}
            for m in METHODS_SWEPT
        },
    }
    _, results, missing = compute_rows(runs, spec)
    assert not missing
    ours = {row.key: row.ours["Succ."] for row in results}
    for job, method in zip(jobs, METHODS_SWEPT, strict=True):
        last = job["steps"][-1]["data"]
        logged = [v for k, v in last.items() if k.startswith("val-aux/alfworld/all/won/mean@")]
        assert len(logged) == 1 and ours[method] == [pytest.approx(100.0 * logged[0])]
    table = build_table(runs, spec)
    for method in METHODS_SWEPT:  # the paper's column beside ours, and how the run validated
        row = f"| {method} | alfworld | grpo | {method} | tiny | 0 | epo (3 fresh tasks per eval) | 50.0 |"
        assert f"{row} {ours[method][0]:.1f} |" in table


USER_METHOD = "method._target_=tests.e2e.user_method.OptimismBonus"


def test_gigpo_trains_a_composition_with_a_method_from_the_users_package(tmp_path, ray_address):
    """`algo=gigpo method=[empg,epo] method._target_=<a class in tests/>`: GiGPO's advantages, EMPG's
    transform of them, the user's class (imported by path in the trainer's process; agent_rl names it
    nowhere) transforming EMPG's output, and EPO's loss on the workers, all in one step, each with the
    signature it has alone (see the DAPO and EPO runs above); the state of every method is saved in the
    checkpoint."""
    import json

    run = run_agent_rl(
        tmp_path,
        "algo=gigpo",
        "method=[empg,epo]",
        USER_METHOD,
        "+method.bonus=0.25",
        "logger=console",
        "trainer.total_training_steps=1",
        NO_VALIDATION,
        "trainer.save_freq=1",
        ray_address=ray_address,
    )
    assert [s["step"] for s in run["steps"]] == [1]
    required = ("actor/pg_loss", "actor/grad_norm", "env/success_rate", "method/empg/g/mean")
    assert_finite(run, required=(*required, "actor/epo_regularizer"))
    assert_per_step_samples(run)
    data = run["steps"][0]["data"]
    assert_gigpo(data)
    # the user's class adds exactly its bonus to every token of what EMPG handed it
    assert data["method/OptimismBonus/adv_change_abs_mean"] == pytest.approx(0.25, abs=1e-5)
    assert data["method/optimism/steps_seen"] == 1.0 and data["method/optimism/rows"] > 0
    assert data["method/empg/g/mean"] == pytest.approx(1.0, abs=1e-5)  # g is self-calibrating
    assert data["method/empg/adv_change_abs_mean"] > 0
    assert data["method/epo/history_steps"] == 0.0
    assert data["actor/epo_regularizer"] == pytest.approx(-0.001 * data["actor/epo/entropy"], rel=0.02)
    saved = json.loads((tmp_path / "checkpoints" / "global_step_1" / "method_state.json").read_text())
    assert saved["method"] == "empg+epo+OptimismBonus" and saved["optimism_steps_seen"] == 1
    assert len(saved["epo_history"]["step_means"]) == 1
