"""Shared fixtures for the environment tests: one small local Ray per test module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _start_ray(num_cpus: int = 2):
    """A new local Ray (``address="local"``: never another session's cluster found through the
    shared temp dir), with no dashboard, no token auth and its temp dir under the repo.

    The temp dir must stay short: Ray puts unix sockets under it and a socket path may
    not exceed ~107 bytes.
    """
    os.environ["RAY_AUTH_MODE"] = "disabled"
    import ray

    temp_dir = REPO / ".ray_tmp"
    temp_dir.mkdir(exist_ok=True)
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        _temp_dir=str(temp_dir),
        log_to_driver=False,
        configure_logging=False,
    )
    return ray


@pytest.fixture(scope="module")
def ray_local():
    """``ray`` initialised for one test module, shut down after it."""
    ray = _start_ray()
    try:
        yield ray
    finally:
        ray.shutdown()
