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
