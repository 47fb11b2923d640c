"""The environment factory."""

from __future__ import annotations

import pytest

from agent_rl.envs.base import TextEnv
from agent_rl.envs.registry import ENVS, make_env


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="valid: alfworld, frozenlake, scienceworld, webshop"):
        make_env("nethack")


def test_webshop_is_registered_lazily():
    assert ENVS["webshop"] == "agent_rl.envs.webshop:WebShopEnv"


@pytest.mark.env
def test_make_env_builds_with_kwargs():
    env = make_env("alfworld", max_steps=7)
    assert isinstance(env, TextEnv) and env.name == "alfworld" and env.max_steps == 7
