"""Which device a worker trains on: the one place that reads ``NAS_WORKER_DEVICE``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from api.settings import Settings

if TYPE_CHECKING:
    import torch


def resolve_device(settings: Settings) -> torch.device:
    """``worker_device`` as a torch device; ``auto`` is the GPU when one is visible, else the CPU."""
    import torch  # loaded by the workers that train, never by the API process for this module alone

    wanted = settings.worker_device
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(wanted)
