"""agent_rl's CPU platform, as verl sees it in a fresh process with VERL_PLATFORM=cpu."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = r"""
import json, torch
import verl  # loads agent_rl.training.verl_plugin through the verl.plugins entry point
from verl.utils.device import (get_device_name, get_torch_device, get_nccl_backend, get_resource_name,
                               get_device_id)
from verl.utils import distributed
from verl.workers.engine import EngineRegistry
def attempt(fn):
    try:
        return fn()
    except Exception as exc:
        return "error: " + type(exc).__name__
captured = {}
def fake_init(timeout_second=None, backend=None):
    captured["backend"] = backend
from agent_rl.training.platform.cpu import _gloo_process_group
_gloo_process_group(fake_init)()
print(json.dumps({
    "device": get_device_name(), "module_is_torch_cpu": get_torch_device() is torch.cpu,
    "backend": get_nccl_backend(), "resource": get_resource_name(),
    "device_id": attempt(get_device_id),
    "engine": EngineRegistry.get_engine_cls("language_model", "fsdp2").__name__,
    "pg_backend": captured["backend"],
    "pin": attempt(lambda: torch.zeros(2).pin_memory().is_pinned()),
    "wrapped": getattr(distributed.initialize_global_process_group_ray, "_agent_rl_gloo", False),
}))
"""


def run_probe(platform: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("VERL_PLATFORM", None)
    env.pop("VERL_ENGINE_DEVICE", None)
    if platform:
        env["VERL_PLATFORM"] = platform
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)


def test_verl_runs_on_the_cpu_platform():
    out = run_probe("cpu")
    assert out.returncode == 0, out.stderr[-3000:]
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts == {
        "device": "cpu",
        "module_is_torch_cpu": True,
        "backend": "gloo",
        "resource": "GPU",
        "device_id": "cpu",
        "engine": "FSDPEngineWithLMHead",
        "pg_backend": "gloo",
        "pin": False,
        "wrapped": True,
    }


def test_platform_is_inactive_without_the_switch():
    out = run_probe(None)
    assert out.returncode == 0, out.stderr[-3000:]
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts["device"] == "cuda" and facts["wrapped"] is False
    assert facts["pin"] == "error: RuntimeError"  # what the CPU platform's pin_memory patch answers


def test_vllm_gemm_keeps_the_live_weight():
    """After verl writes new weights into a vLLM Linear layer, generation must use them."""
    import torch

    from agent_rl.training.platform.cpu import _keep_weight_cpu_gemm

    layer = torch.nn.Linear(4, 3, bias=False)
    _keep_weight_cpu_gemm(layer, remove_weight=True)
    x = torch.randn(2, 4)
    assert layer.weight.numel() == 12
    with torch.no_grad():
        layer.weight.copy_(torch.ones(3, 4))
    assert torch.allclose(layer.cpu_linear(x, layer.weight, None), x.sum(-1, keepdim=True).expand(2, 3))
