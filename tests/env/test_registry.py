"""The environment registry: names, lazy imports, class paths, and the refusals of a class that is not one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent_rl.envs.api import BUILTIN, Environment, env_class, make_env, missing_parts


def test_unknown_name_lists_valid_names():
    valid = "alfworld, arith, frozenlake, math_python, scienceworld, webshop"
    with pytest.raises(ValueError, match=f"valid: {valid}$"):
        make_env("nethack")


def test_naming_one_environment_imports_no_other_simulator():
    """Classes are imported on demand: FrozenLake's class brings neither TextWorld nor the JVM bridge."""
    code = (
        "import sys; from agent_rl.envs.api import env_class; env_class('frozenlake')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'textworld', 'py4j', 'scienceworld'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert BUILTIN["webshop"] == "agent_rl.envs.webshop.env.WebShopEnv"


def test_a_class_path_that_is_not_an_environment_is_refused_by_name():
    with pytest.raises(ValueError, match=r"env._target_=collections.OrderedDict: .* is not an environment"):
        env_class("collections.OrderedDict")
    with pytest.raises(ValueError, match=r"does not import here \(ModuleNotFoundError"):
        env_class("no_such_package.envs.Maze")

    class NoTasks(Environment):  # the simulator but neither tasks nor prompt nor splits
        def reset(self, spec):
            return "", {}

        def step(self, action):
            return "", 0.0, True, {}

    assert missing_parts(NoTasks) == "NoTasks lacks prompt, tasks (see agent_rl.envs.api.Environment)."


@pytest.mark.env
def test_make_env_builds_with_kwargs():
    env = make_env("alfworld", max_steps=7)
    assert isinstance(env, Environment) and env.name == "alfworld" and env.max_steps == 7
