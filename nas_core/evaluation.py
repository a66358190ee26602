"""Held-out evaluation of a final model: confusion matrix, per-class precision/recall, ONNX latency.

Pure functions over predicted and true labels; nothing here trains or reads settings.

>>> report = classification_report([0, 1, 1, 0], [0, 1, 0, 0], classes=["cat", "dog"])
>>> report.accuracy, report.confusion_matrix
(0.75, [[2, 0], [1, 1]])
>>> report.per_class[1]
{'name': 'dog', 'precision': 1.0, 'recall': 0.5, 'support': 2}
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch


@dataclass(frozen=True, slots=True)
class ClassificationReport:
    """``confusion_matrix[true][predicted]`` counts; ``per_class`` in label order."""

    accuracy: float
    confusion_matrix: list[list[int]]
    per_class: list[dict]
    count: int


def classification_report(true_labels: Sequence[int] | torch.Tensor, predicted_labels: Sequence[int] | torch.Tensor,
                          *, classes: Sequence[str]) -> ClassificationReport:
    """Accuracy, confusion matrix and per-class precision/recall/support of ``predicted_labels``.

    A class never predicted has precision 0.0 (and one absent from the labels recall 0.0) rather than NaN, so the
    report stays valid JSON.
    """
    true = torch.as_tensor(true_labels, dtype=torch.int64).flatten().cpu()
    predicted = torch.as_tensor(predicted_labels, dtype=torch.int64).flatten().cpu()
    if true.shape != predicted.shape:
        raise ValueError(f"{true.numel()} true labels but {predicted.numel()} predictions")
    num_classes = len(classes)
    if true.numel() and (int(true.min()) < 0 or int(max(true.max(), predicted.max())) >= num_classes
                         or int(predicted.min()) < 0):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    matrix = torch.bincount(true * num_classes + predicted, minlength=num_classes * num_classes)
    matrix = matrix.reshape(num_classes, num_classes)
    correct = matrix.diagonal()
    support = matrix.sum(1)  # row: images of that true class
    predicted_count = matrix.sum(0)  # column: images predicted as that class
    per_class = [{"name": str(name),
                  "precision": float(correct[i] / predicted_count[i]) if predicted_count[i] else 0.0,
                  "recall": float(correct[i] / support[i]) if support[i] else 0.0,
                  "support": int(support[i])} for i, name in enumerate(classes)]
    count = int(true.numel())
    accuracy = float(correct.sum()) / count if count else 0.0
    return ClassificationReport(accuracy=accuracy, confusion_matrix=matrix.tolist(), per_class=per_class,
                                count=count)


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """onnxruntime CPU latency of one ONNX graph: median (``p50_ms``) and 90th percentile (``p90_ms``) milliseconds
    of one run on a batch of ``batch`` images, over ``repeats`` runs after ``warmup`` untimed ones, with ``threads``
    intra-op threads."""

    p50_ms: float
    p90_ms: float
    batch: int
    threads: int
    repeats: int
    warmup: int


def latency_session_options(threads: int = 1):
    """onnxruntime session options of a latency measurement: ``threads`` intra-op threads, one inter-op thread
    (sequential execution), so runs are comparable on a shared machine."""
    import onnxruntime  # imported here: only artifact checks and latency need it

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return options


def onnx_latency(path: str | Path | bytes, *, channels: int, height: int, width: int, batch: int = 1, repeats: int = 50,
                 warmup: int = 5, threads: int = 1) -> LatencyStats:
    """p50 and p90 milliseconds of one onnxruntime CPU run of the graph at ``path`` (or serialised in ``path``'s
    bytes) on a batch of ``batch`` zero images (a fresh session with :func:`latency_session_options`)."""
    import onnxruntime

    source = path if isinstance(path, bytes) else str(path)  # a file, or a serialised graph in memory
    session = onnxruntime.InferenceSession(source, latency_session_options(threads),
                                           providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    x = np.zeros((batch, channels, height, width), dtype=np.float32)
    repeats = max(1, repeats)
    timings = []
    for index in range(warmup + repeats):
        start = time.perf_counter()
        session.run(None, {input_name: x})
        if index >= warmup:
            timings.append((time.perf_counter() - start) * 1000.0)
    p90 = float(np.percentile(timings, 90)) if len(timings) > 1 else timings[0]
    return LatencyStats(p50_ms=float(statistics.median(timings)), p90_ms=p90, batch=batch, threads=int(threads),
                        repeats=repeats, warmup=warmup)


def onnx_latency_ms(path: str | Path, *, channels: int, height: int, width: int, batch: int = 1, repeats: int = 50,
                    warmup: int = 5) -> float:
    """Median milliseconds of one onnxruntime CPU run on a batch of ``batch`` images (one thread, so runs are
    comparable): :func:`onnx_latency`'s ``p50_ms``."""
    return onnx_latency(path, channels=channels, height=height, width=width, batch=batch, repeats=repeats,
                        warmup=warmup).p50_ms
