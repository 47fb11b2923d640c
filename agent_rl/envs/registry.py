"""Environment factory: ``make_env("scienceworld", max_steps=30)``.

Classes are imported lazily, so naming one environment never imports another's
simulator (the JVM bridge, TextWorld, the WebShop catalog).
"""

from __future__ import annotations

import importlib
from typing import Any

from agent_rl.envs.base import TextEnv

ENVS: dict[str, str] = {
    "alfworld": "agent_rl.envs.alfworld:ALFWorldEnv",
    "frozenlake": "agent_rl.envs.frozenlake:FrozenLakeEnv",
    "scienceworld": "agent_rl.envs.scienceworld:ScienceWorldEnv",
    "webshop": "agent_rl.envs.webshop:WebShopEnv",
}


def env_class(name: str) -> type[TextEnv]:
    """The `TextEnv` subclass registered under ``name``."""
    try:
        target = ENVS[name]
    except KeyError:
        raise ValueError(f"unknown environment {name!r}; valid: {', '.join(sorted(ENVS))}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def make_env(name: str, **kwargs: Any) -> TextEnv:
    """Build the environment registered under ``name`` with its constructor arguments."""
    return env_class(name)(**kwargs)
