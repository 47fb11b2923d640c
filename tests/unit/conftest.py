"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from agent_rl.cli import train


@pytest.fixture(scope="module")
def hydra_ctx():
    """Hydra initialised on agent_rl's config folder, for ``hydra.compose`` in a test module."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(train.CONF_DIR), version_base=None):
        yield
    GlobalHydra.instance().clear()
