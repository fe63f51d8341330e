"""Choose fp32 or bf16 autocast for training by measuring both on this CPU.

bf16 only pays off on CPUs with native bf16 instructions (AVX512-BF16, AMX); elsewhere
autocast emulates it and is slower (measured on the 2-core AMD EPYC (AVX2) development machine:
a stage-2 step at 160 px takes 2.4x as long in bf16). ``auto`` therefore keeps fp32 on CPUs
without those instructions, and on CPUs with them times a few training steps of each on the
actual model and input size and keeps the faster one.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from karung.training.stages import forward


def _step_seconds(
    model: nn.Module, x: torch.Tensor, frozen_blocks: int, bf16: bool, repeats: int
) -> float:
    """Best wall time of one forward+backward pass (no optimizer step: weights stay put)."""
    y = torch.zeros(x.shape[0], dtype=torch.long)
    best = float("inf")
    for i in range(repeats + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = forward(model, x, frozen_blocks)
        nn.functional.cross_entropy(logits.float(), y).backward()
        if i > 0:  # the first pass warms up kernels and allocators
            best = min(best, time.perf_counter() - start)
    return best


def measure_precisions(
    model: nn.Module, input_size: int, frozen_blocks: int, batch: int = 8, repeats: int = 2
) -> dict[str, float]:
    """Seconds per training step for fp32 and bf16 autocast (on a throw-away copy)."""
    probe = copy.deepcopy(model).train()
    x = torch.randn(batch, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))
    return {
        "fp32_step_s": _step_seconds(probe, x, frozen_blocks, False, repeats),
        "bf16_step_s": _step_seconds(probe, x, frozen_blocks, True, repeats),
    }


def native_bf16() -> bool:
    """Whether the CPU advertises bf16 arithmetic (AVX512-BF16 or AMX-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True  # unknown platform: let the measurement decide
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_precision(
    requested: str, model: nn.Module, input_size: int, frozen_blocks: int
) -> dict[str, Any]:
    """Resolve ``auto|fp32|bf16`` into ``{"use_bf16": bool, "reason": str, ...timings}``."""
    if requested == "fp32":
        return {"use_bf16": False, "reason": "requested fp32"}
    if requested == "bf16":
        return {"use_bf16": True, "reason": "requested bf16"}
    if not native_bf16():
        return {
            "use_bf16": False,
            "reason": "auto: no native bf16 on this CPU (no avx512_bf16/amx_bf16), fp32",
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        }
    timings = measure_precisions(model, input_size, frozen_blocks)
    faster = timings["bf16_step_s"] < timings["fp32_step_s"]
    ratio = timings["fp32_step_s"] / timings["bf16_step_s"]
    reason = f"measured: bf16 autocast is {ratio:.2f}x the speed of fp32 on this CPU"
    return {
        "use_bf16": faster,
        "reason": reason,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        **timings,
    }
