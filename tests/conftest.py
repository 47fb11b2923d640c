"""Shared test settings: no Ray auth files, W&B offline, Ray's temp dir and caches inside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("RAY_TMPDIR", str(REPO / ".ray_tmp"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config, items):
    """GPU tests run only where CUDA is available."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# ---- where the suite's time goes: the end of every run says how much of it the e2e tests took ----------
_SECONDS: dict[str, float] = {}
_TESTS: dict[str, set[str]] = {}


def _kind(keywords) -> str:
    return "e2e" if "e2e" in keywords else "env" if "env" in keywords else "unit"


def pytest_runtest_logreport(report):
    """Each test's setup, call and teardown, summed by kind (on the controller too, under xdist)."""
    kind = _kind(report.keywords)
    _SECONDS[kind] = _SECONDS.get(kind, 0.0) + report.duration
    _TESTS.setdefault(kind, set()).add(report.nodeid)


def pytest_terminal_summary(terminalreporter):
    total = sum(_SECONDS.values())
    if not total:
        return
    parts = [
        f"{kind} {_SECONDS[kind]:.0f} s ({len(_TESTS[kind])} tests, {100 * _SECONDS[kind] / total:.0f}%)"
        for kind in ("e2e", "env", "unit")
        if kind in _SECONDS
    ]
    terminalreporter.write_line(f"test time by kind (setup + call + teardown): {', '.join(parts)}")
