"""Mixed precision on the training device: bf16 autocast wherever it makes a training step faster.

- CUDA: on GPUs with bf16 tensor cores, compute capability 8.0 (Ampere) and later (no loss scaling needed); older
  ones (T4, V100) only emulate bf16, slower than float32, so they train in float32.
- CPU: oneDNN runs bf16 convolutions and matrix products natively on CPUs with AVX512-BF16 or AMX (AMD Zen 4 and
  later, Intel Sapphire Rapids and later) and emulates them elsewhere. Even where they are native, not every network
  gains: on one core of an AMD EPYC (Zen 4, AVX512-BF16), batch 64, the plain reference network's training step
  (:func:`nas_core.space.reference_candidates`) took 122 ms in bf16 against 211 ms in float32 at 64 px (473 against
  955 ms at 128 px), the residual reference 37 against 58 ms and the pooled plain network
  (:func:`nas_core.space.reference_stand_ins`) 44 against 91 ms, but the MBConv reference 139 against 101 ms at
  every side, kernel and activation tried, while a depthwise-separable network gained 1.4× and another MBConv
  network 1.2×: no rule of thumb predicts it. So the CPU's choice is measured per network:
  :func:`use_bf16` times a few forward and backward passes of a copy of the network in both precisions, once per
  process for each network structure, input shape and batch size, and picks bf16 where it is at least
  :data:`CPU_BF16_SPEEDUP` times faster.
- Accuracy: trained for the same 420 s on one core (``bench.budget``'s ``scenes`` seed 0, the plain reference at
  72 px with TrivialAugment phased in, scored on the 480 held-back images) bf16 fitted 81 epochs and scored 0.910,
  float32 49 epochs and 0.904.

Weights, optimizer state, the weight average and the loss stay float32 in either case; exported files and the final
model's test report are float32 whatever the network trained in.
"""

from __future__ import annotations

import copy
import threading
import time
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

# The first CUDA compute capability with bf16 tensor cores (Ampere); older GPUs emulate bf16 (module docstring).
CUDA_BF16_CAPABILITY = (8, 0)
CPU_BF16_SPEEDUP = 1.15  # bf16 must make a CPU training step at least this much faster to be used
PROBE_BATCH = 32  # the most images per timed step: the speed ratio barely moves with the batch beyond this
PROBE_STEPS = 3  # timed steps per precision (the least counts), after one untimed warm-up step each

_decided: dict[tuple, bool] = {}
_lock = threading.Lock()


def autocast(device: torch.device, bf16: bool) -> AbstractContextManager:
    """bf16 autocast on ``device`` when ``bf16``, else a no-op context."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def use_bf16(model: nn.Module, input_shape: tuple[int, int, int], batch_size: int,
             device: torch.device | str) -> bool:
    """Whether :func:`nas_core.trainer.train` runs ``model`` under bf16 autocast on ``device`` at ``input_shape``
    (C, H, W) and ``batch_size``: on CUDA GPUs of compute capability :data:`CUDA_BF16_CAPABILITY` and later, never
    on other non-CPU devices, on the CPU where oneDNN has bf16 and a timed probe finds it at least
    :data:`CPU_BF16_SPEEDUP` times faster (see the module docstring). The model is left untouched and the caller's
    RNG state too; the answer is cached per process."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= CUDA_BF16_CAPABILITY
    if device.type != "cpu" or not _cpu_has_bf16():
        return False
    batch = max(1, min(batch_size, PROBE_BATCH))
    key = (_structure(model), tuple(int(v) for v in input_shape), batch, torch.get_num_threads())
    with _lock:
        if key not in _decided:
            float32_s, bf16_s = _probe(model, input_shape, batch)
            _decided[key] = float32_s >= CPU_BF16_SPEEDUP * bf16_s
        return _decided[key]


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN's bf16 query
        return False


def _structure(model: nn.Module) -> tuple:
    """What the step time depends on: the layers, their order and their weights' shapes (convolution groups show in
    the weights' shapes)."""
    return (tuple(type(module).__name__ for module in model.modules()),
            tuple(tuple(parameter.shape) for parameter in model.parameters()))


def _probe(model: nn.Module, input_shape: tuple[int, int, int], batch: int) -> tuple[float, float]:
    """The least seconds of a forward and backward pass of a copy of ``model`` in float32 and in bf16, the two timed
    in turns so that a change in the machine's load falls on both."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        probe = copy.deepcopy(model).to("cpu", memory_format=torch.channels_last).train()
        for module in probe.modules():  # the caller's hooks watch the caller's network, not this timing copy
            for hooks in (module._forward_pre_hooks, module._forward_hooks, module._backward_hooks):
                hooks.clear()
        x = torch.randn(batch, *input_shape).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            classes = probe(x[:1]).shape[1]
        y = torch.arange(batch) % classes
        best = {False: float("inf"), True: float("inf")}
        for step in range(PROBE_STEPS + 1):
            for bf16 in (False, True):
                start = time.perf_counter()
                with autocast(torch.device("cpu"), bf16):
                    logits = probe(x)
                F.cross_entropy(logits.float(), y).backward()
                probe.zero_grad(set_to_none=True)
                if step:  # the first step of each warms up kernels and allocators
                    best[bf16] = min(best[bf16], time.perf_counter() - start)
    return best[False], best[True]
