"""The method API (agent_rl.methods.api): registry, composition from the command line, refusals of
conflicting hooks in one sentence before Ray, a user's class by path, and a trainer that names no method."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose

from agent_rl.cli import train
from agent_rl.methods import api, empg
from agent_rl.methods.api import Method, StepBatch
from agent_rl.rows.step_rows import StepRows

REPO = Path(__file__).resolve().parents[2]


def test_the_trainer_names_no_method():
    """`git grep` of the issue: no method name anywhere in agent_rl/training/trainer.py (words such as
    "epoch" or "report" would match too, so the file avoids them)."""
    text = (REPO / "agent_rl" / "training" / "trainer.py").read_text()
    hits = [line for line in text.splitlines() if re.search(r"epo|spear|empg|aem|dr_bot", line)]
    assert hits == []
    tracked = subprocess.run(
        ["git", "grep", "-n", "-E", "epo|spear|empg|aem|dr_bot", "--", "agent_rl/training/trainer.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert tracked.stdout == ""


def test_the_methods_import_without_verl():
    """The maths and the wiring classes import without verl, Ray or TransferQueue (those are imported by
    the hooks that run in the trainer), so the pre-Ray checks stay light and the maths stays pure."""
    code = (
        "import sys; from agent_rl.methods import api\n"
        "for name in api.BUILTIN: api.method_class(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'verl', 'ray', 'transfer_queue'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_builtin_is_registered_under_its_name():
    for name in api.BUILTIN:
        cls = api.method_class(name)
        assert issubclass(cls, Method) and cls.name == name
        assert api.METHOD_REGISTRY[name] is cls


@pytest.mark.parametrize(
    ("choice", "names", "label"),
    [
        ("none", [], "none"),
        ("empg", ["empg"], "empg"),
        ("[empg,epo]", ["empg", "epo"], "empg+epo"),
        ("[aem,epo]", ["aem", "epo"], "aem+epo"),
        ("[spear,empg]", ["spear", "empg"], "spear+empg"),
    ],
)
def test_a_list_of_choices_composes_the_methods_in_order(hydra_ctx, choice, names, label):
    cfg = compose("config", overrides=[f"method={choice}"])
    assert [n for n, _ in api.method_specs(cfg.method)] == names
    assert cfg.method.name == label and cfg.run_name == f"alfworld-grpo-{label}-tiny-s0"
    train.check_method(cfg)
    assert [cls.name for cls in api.method_classes(cfg)] == names
    if "epo" in names:  # each method's keys arrive in the one method node
        assert cfg.method.kappa_r == 2.0 and cfg.actor_rollout_ref.actor.entropy_coeff == 0
    if "empg" in names:
        assert cfg.method.zeta == 0.05


def test_no_two_method_files_share_a_key():
    """A composition merges the method files into one node: a key two methods shared would silently take
    the last one's value."""
    from omegaconf import OmegaConf

    shared = {"name", "use", "_target_", "dr_bot_filters"}
    seen: dict[str, str] = {}
    for path in sorted((train.CONF_DIR / "method").glob("*.yaml")):
        for key in OmegaConf.load(path).method:
            if key in shared:
                continue
            assert key not in seen, f"method.{key} is in {seen.get(key)} and {path.name}"
            seen[key] = path.name


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["method=[epo,spear]"], r"^method epo and method spear both claim the actor loss on the workers"),
        (["method=[empg,aem]"], r"^method empg and method aem both claim the advantages"),
        (["method=[aem,epo]", "actor_rollout_ref.rollout.n=1"], r"rollout.n >= 2"),
        (["method=[empg,epo]", "actor_rollout_ref.actor.entropy_coeff=0.01"], r"entropy_coeff must be 0"),
        (["method._target_=no_such_package.Method"], r"does not import"),
        (
            ["method._target_=agent_rl.rows.step_rows.StepRows"],
            r"is not a subclass of agent_rl.methods.api.Method",
        ),
        (["method=[empg,epo]", "algorithm.adv_estimator=aem"], r"adv_estimator=aem and method=empg\+epo"),
    ],
)
def test_conflicting_or_broken_methods_are_refused_in_one_sentence(hydra_ctx, overrides, message):
    with pytest.raises(train.ConfigError, match=message) as err:
        train.check_method(compose("config", overrides=overrides))
    text = str(err.value)
    assert text.endswith(".") and ". " not in text.replace("e.g. ", "")


def test_a_conflict_names_both_methods_whatever_their_order(hydra_ctx):
    with pytest.raises(train.ConfigError, match=r"method spear and method epo both claim"):
        train.check_method(compose("config", overrides=["method=[spear,epo]"]))


def test_dr_bot_filters_add_a_method_to_any_run(hydra_ctx):
    cfg = compose("config", overrides=["method=[empg,epo]", "method.dr_bot_filters=true"])
    assert [cls.name for cls in api.method_classes(cfg)] == ["empg", "epo", "dr_bot"]
    train.check_method(cfg)


def test_a_users_class_runs_by_path(hydra_ctx):
    cfg = compose(
        "config", overrides=["method._target_=tests.e2e.user_method.OptimismBonus", "+method.bonus=0.25"]
    )
    assert cfg.method.name == "OptimismBonus" and cfg.run_name == "alfworld-grpo-OptimismBonus-tiny-s0"
    train.check_method(cfg)
    (method,) = api.build_methods(cfg)
    assert type(method).__module__ == "tests.e2e.user_method" and method.bonus == 0.25
    # its own check, in one sentence, before Ray
    bad = compose(
        "config", overrides=["method._target_=tests.e2e.user_method.OptimismBonus", "+method.bonus=-1"]
    )
    with pytest.raises(train.ConfigError, match=r"^method.bonus must be a number >= 0 \(got -1\)\.$"):
        train.check_method(bad)
    # and it composes with a built-in
    both = compose("config", overrides=["method=epo", "method._target_=tests.e2e.user_method.OptimismBonus"])
    assert [c.name for c in api.method_classes(both)] == ["epo", "OptimismBonus"]
    assert both.method.name == "epo+OptimismBonus"


def test_an_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown method 'emgp'; valid: aem, dr_bot, empg, epo, spear"):
        api.method_class("emgp")


def test_register_method_makes_a_name_usable():
    @api.register_method("test_registered_noop")
    class Noop(Method):
        pass

    try:
        assert api.method_class("test_registered_noop") is Noop and Noop.name == "test_registered_noop"
        with pytest.raises(ValueError, match="already registered"):
            api.register_method("test_registered_noop")(type("Other", (Method,), {}))
    finally:
        del api.METHOD_REGISTRY["test_registered_noop"]


def _step(entropy=True):
    """Two groups x two trajectories x up to three steps, with entropies."""
    traj = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3])
    turn = torch.tensor([0, 1, 2, 0, 1, 0, 0, 1])
    group = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1])
    outcome = torch.tensor([1.0, 1, 1, 0, 0, 1, 0, 0])
    rows = StepRows(outcome=outcome, penalty=torch.zeros(8), group=group, traj=traj, turn=turn)
    mask = torch.ones(8, 5)
    mask[:, 4] = 0
    g = torch.Generator().manual_seed(0)
    ent = torch.rand(8, 5, generator=g) if entropy else None
    real = torch.ones(8, dtype=torch.bool)
    return StepBatch(rows=rows, extra=[{}] * 8, real=real, mask=mask, entropy=ent, responses=None, step=1)


def test_composed_transforms_chain_in_order(hydra_ctx):
    """method=[empg, user's bonus]: the trainer's loop (each transform sees the previous one's output)
    equals EMPG's function followed by the bonus, and each writes its own metrics."""
    cfg = compose(
        "config",
        overrides=["method=empg", "method._target_=tests.e2e.user_method.OptimismBonus", "+method.bonus=0.5"],
    )
    methods = api.build_methods(cfg)
    batch = _step()
    base = torch.randn(8, 1).expand(8, 5) * batch.mask
    out = base
    for m in methods:
        out = m.transform_advantages(out, batch)
    rows = batch.rows
    expected = empg.empg_advantages(
        base, batch.entropy, batch.mask, rows.traj, rows.turn, k=1.0, k_next=1.0, zeta=0.05
    )
    torch.testing.assert_close(out, expected + 0.5 * batch.mask)
    assert "method/empg/g/mean" in batch.metrics and batch.metrics["method/optimism/steps_seen"] == 1.0


def test_epo_keeps_its_history_in_its_state(hydra_ctx):
    from types import SimpleNamespace

    from omegaconf import open_dict

    cfg = compose("config", overrides=["method=epo"])
    (epo,) = api.build_methods(cfg)
    batch = _step()
    fields = epo.after_advantages(torch.zeros(8, 5), batch)
    assert set(fields) == {"traj_index", "turn_index", "epo_row_reference"}
    meta = SimpleNamespace(extra_info={})
    trainer = SimpleNamespace(global_steps=1, total_training_steps=2)
    epo.before_update(trainer, meta, {})
    assert meta.extra_info == {"epo_has_reference": False, "epo_step": 0, "epo_total_steps": 2}
    epo.after_update(trainer, meta, {})
    state = epo.state_dict()
    assert len(state["epo_history"]["step_means"]) == 1
    with open_dict(cfg):
        pass
    again = api.build_methods(cfg)[0]
    again.load_state_dict(state)
    assert len(again.history) == 1
    assert again.after_advantages(torch.zeros(8, 5), batch)["epo_row_reference"].ne(0).all()


def test_dr_bot_keeps_the_rows_its_filters_pass(hydra_ctx):
    """Dr.BoT's hook on a batch: an invalid action and a response with a 20-gram repeated 10 times leave
    the loss; the group whose returns do not vary (group 2: all its trajectories win) is the 25% the
    group filter drops when groups are ranked by the std of their returns."""
    cfg = compose(
        "config", overrides=["method.dr_bot_filters=true", "actor_rollout_ref.rollout.response_length=400"]
    )
    (dr_bot,) = api.build_methods(cfg)
    batch = _step(entropy=False)
    rows = batch.rows
    # four groups: group 2's trajectories both win (no variance), so keeping 75% of 4 drops it alone
    extra_rows = StepRows(
        outcome=torch.tensor([1.0, 1.0, 1.0, 0.0]),
        penalty=torch.zeros(4),
        group=torch.tensor([2, 2, 3, 3]),
        traj=torch.tensor([4, 5, 6, 7]),
        turn=torch.zeros(4, dtype=torch.long),
    )
    fields = ("outcome", "penalty", "group", "traj", "turn")
    batch.rows = StepRows(**{f: torch.cat([getattr(rows, f), getattr(extra_rows, f)]) for f in fields})
    n = 12
    batch.real = torch.ones(n, dtype=torch.bool)
    batch.mask = torch.ones(n, 300)
    batch.extra = [{"action_valid": i != 1} for i in range(n)]
    responses = torch.arange(n * 300).reshape(n, 300) % 1000 + 1
    responses[2, :200] = torch.arange(20).repeat(10)  # a 20-gram repeated 10 times
    batch.responses = responses
    batch.metrics = {}
    keep = dr_bot.keep_rows(batch)
    flat = batch.rows.group == 2
    assert not keep[1] and not keep[2]  # invalid action; repetitive
    assert not keep[flat].any()  # the group without variance in its returns
    assert keep[~flat & (torch.arange(n) > 2)].all() and keep[0]
    assert batch.metrics["dr_bot/all_filtered"] == 0.0
    assert batch.metrics["dr_bot/kept_share"] == pytest.approx(float(keep.float().mean()))
