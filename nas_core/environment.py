"""What a result was produced with: package versions for reproducibility records and model cards."""

from __future__ import annotations

import platform
from importlib import metadata

PACKAGES = ("nas-service", "torch", "torchvision", "optuna", "onnx", "onnxruntime", "onnxscript", "numpy", "pillow")


def package_versions() -> dict[str, str | None]:
    """Python's and each relevant package's version (None when a package is not installed).

    >>> package_versions()["python"] == platform.python_version()
    True
    """
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s ``model name`` on Linux, else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def latency_device(threads: int) -> dict[str, object]:
    """What a latency figure was measured on: CPU model, logical CPUs, onnxruntime intra-op threads and version.

    >>> sorted(latency_device(1))
    ['cpu_model', 'logical_cpus', 'onnxruntime', 'runtime', 'threads']
    """
    import os

    try:
        runtime_version = metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        runtime_version = None
    return {"cpu_model": cpu_model(), "logical_cpus": os.cpu_count(), "threads": int(threads),
            "runtime": "onnxruntime CPUExecutionProvider", "onnxruntime": runtime_version}


# What makes two latency figures comparable: the same CPU model, intra-op threads and runtime build (the machine's
# logical CPU count is recorded but does not change a single-stream run's time).
LATENCY_DEVICE_IDENTITY = ("cpu_model", "threads", "runtime", "onnxruntime")


def same_latency_device(first: dict[str, object], second: dict[str, object]) -> bool:
    """Whether latencies measured on ``first`` and ``second`` are comparable (same CPU model, threads and runtime).

    >>> same_latency_device(latency_device(1), {**latency_device(1), "logical_cpus": 1024})
    True
    >>> same_latency_device(latency_device(1), latency_device(2))
    False
    """
    return all(first.get(key) == second.get(key) for key in LATENCY_DEVICE_IDENTITY)
