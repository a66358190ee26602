"""Cost of a network: parameters, FLOPs and CPU latency, and the constraint check run before training.

- FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts 2; convolutions and matmuls
  only, which dominate CNN cost), for one forward pass in eval mode.
- Latency is the median wall time of a forward pass on the CPU, in eval mode under ``torch.no_grad()``, with
  ``torch.set_num_threads(1)`` for the measurement (restored afterwards): one thread makes numbers repeatable on a
  shared machine and comparable across workers. Pass a batch-1 shape for per-image latency.
- Deployment latency (:func:`measure_onnx_latency`) is what a trial records: the network's ONNX graph (exported in
  memory, about 0.1 s) run by onnxruntime on the CPU, batch 1, with a set number of intra-op threads,
  :data:`LATENCY_WARMUP` untimed runs, then the median (p50) and 90th percentile (p90) of :data:`LATENCY_REPEATS`
  timed runs; screening takes the p50 of fewer runs (:func:`probe_onnx_latency_ms`).

>>> from torch import nn
>>> model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Flatten(), nn.Linear(8 * 14 * 14, 10))
>>> count_params(model), count_flops(model, (1, 1, 16, 16))
(15770, 59584)
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nas_core.errors import ConstraintViolation

LATENCY_REPEATS = 50  # timed onnxruntime runs of a trial's deployment latency
LATENCY_WARMUP = 5  # untimed runs first (allocations, caches)


@dataclass(frozen=True, slots=True)
class ModelCost:
    """``latency_ms`` is per image on the CPU; None when it was not measured (no latency limit asked for it)."""

    params: int
    flops: int
    latency_ms: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _batch_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    """Accept ``(C, H, W)`` (batch 1 prepended) or ``(N, C, H, W)``."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        return (1, *shape)
    if len(shape) != 4:
        raise ValueError(f"input_shape must be (C, H, W) or (N, C, H, W), got {shape}")
    return shape


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _cpu_eval_copy(model: nn.Module) -> nn.Module:
    # a copy: measuring must not move the caller's model off its device or change its train/eval mode
    return copy.deepcopy(model).to("cpu", memory_format=torch.contiguous_format).eval()


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass on ``input_shape`` (``(C, H, W)`` means batch 1)."""
    model = _cpu_eval_copy(model)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(_batch_shape(input_shape)))
    return int(counter.get_total_flops())


def measure_latency_ms(model: nn.Module, input_shape: Sequence[int], *, repeats: int = 20,
                       warmup: int = 3) -> float:
    """Median milliseconds of one CPU forward pass (eval, no_grad, one thread) on ``input_shape``."""
    model = _cpu_eval_copy(model)
    x = torch.zeros(_batch_shape(input_shape))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        timings = []
        with torch.no_grad():
            for index in range(warmup + max(1, repeats)):
                start = time.perf_counter()
                model(x)
                if index >= warmup:
                    timings.append((time.perf_counter() - start) * 1000.0)
    finally:
        torch.set_num_threads(threads)
    return float(statistics.median(timings))


def measure_onnx_latency(model: nn.Module, input_shape: Sequence[int], *, threads: int = 1,
                         repeats: int = LATENCY_REPEATS, warmup: int = LATENCY_WARMUP):
    """Deployment latency of ``model`` per image: its ONNX graph (:func:`_onnx_graph`) timed by
    :func:`nas_core.evaluation.onnx_latency` on ``input_shape`` (``(C, H, W)`` means batch 1). Returns its
    :class:`~nas_core.evaluation.LatencyStats` with ``p50_ms`` and ``p90_ms`` divided by the batch (per image).
    Weights do not matter: an untrained network times like a trained one. Raises
    :class:`~nas_core.errors.NASError` when no exporter takes the network."""
    import dataclasses

    from nas_core.evaluation import onnx_latency

    batch, channels, height, width = _batch_shape(input_shape)
    stats = onnx_latency(_onnx_graph(model, (batch, channels, height, width)), channels=channels, height=height,
                         width=width, batch=batch, repeats=repeats, warmup=warmup, threads=threads)
    return dataclasses.replace(stats, p50_ms=stats.p50_ms / batch, p90_ms=stats.p90_ms / batch)


def probe_onnx_latency_ms(model: nn.Module, input_shape: Sequence[int], *, threads: int = 1, repeats: int = 10,
                          warmup: int = 2) -> float:
    """Screening's quick :func:`measure_onnx_latency`: the p50 per image over fewer runs."""
    return measure_onnx_latency(model, input_shape, threads=threads, repeats=repeats, warmup=warmup).p50_ms


def _onnx_graph(model: nn.Module, shape: tuple[int, int, int, int]) -> bytes:
    """The serialised ONNX graph of ``model`` at batch shape ``shape``: TorchScript's exporter in memory (about
    0.1 s; the same operators as the final model's ``torch.export`` graph, which takes seconds: timed alike within a
    few percent, ``bench.latency``), or that final export where TorchScript's refuses the network."""
    import io
    import tempfile
    import warnings

    from nas_core.export import ONNX_OPSET, export_onnx

    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_cpu_eval_copy(model), (torch.zeros(*shape),), buffer, dynamo=False,
                              opset_version=ONNX_OPSET, input_names=["input"])
        return buffer.getvalue()
    except Exception:  # the exporter raises many types: the final export is the authority
        _, channels, height, width = shape
        with tempfile.TemporaryDirectory(prefix="nas-latency-") as folder:
            path = export_onnx(model, channels=channels, height=height, width=width, path=f"{folder}/model.onnx")
            return Path(path).read_bytes()


def check_constraints(cost: ModelCost, *, max_params: int | None = None, max_latency_ms: float | None = None,
                      max_mflops: float | None = None) -> None:
    """Raise :class:`ConstraintViolation` (with per-constraint ``errors``) when ``cost`` breaks a limit."""
    errors = []
    if max_params is not None and cost.params > max_params:
        errors.append({"field": "max_params", "error": f"{cost.params} parameters > {max_params}"})
    if max_mflops is not None and cost.flops / 1e6 > max_mflops:
        errors.append({"field": "max_mflops", "error": f"{cost.flops / 1e6:.1f} MFLOPs > {max_mflops} MFLOPs"})
    if max_latency_ms is not None:
        if cost.latency_ms is None:
            raise ValueError("max_latency_ms is set but the cost has no measured latency")
        if cost.latency_ms > max_latency_ms:
            errors.append({"field": "max_latency_ms",
                           "error": f"{cost.latency_ms:.3f} ms per image > {max_latency_ms} ms"})
    if errors:
        raise ConstraintViolation("; ".join(e["error"] for e in errors), errors=errors)


def measure_cost(model: nn.Module, input_shape: Sequence[int], *, max_params: int | None = None,
                 max_latency_ms: float | None = None, latency: bool | None = None, repeats: int = 20,
                 warmup: int = 3) -> ModelCost:
    """Measure ``model`` on a batch-1 ``input_shape`` and enforce the limits, cheapest first.

    The parameter limit is checked before anything runs; latency is measured only when ``max_latency_ms`` is set
    or ``latency=True``. Raises :class:`ConstraintViolation` before the caller spends time training.
    """
    params = count_params(model)
    check_constraints(ModelCost(params, 0), max_params=max_params)
    flops = count_flops(model, input_shape)
    measure = latency if latency is not None else max_latency_ms is not None
    latency_ms = measure_latency_ms(model, input_shape, repeats=repeats, warmup=warmup) if measure else None
    cost = ModelCost(params=params, flops=flops, latency_ms=latency_ms)
    check_constraints(cost, max_latency_ms=max_latency_ms)
    return cost
