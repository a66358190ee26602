"""A per-process cache of ready datasets as tensors on the worker's device.

Trials of one experiment all train on the same dataset: downloading and verifying its shards once per worker process
(not once per trial) is what keeps a short trial's overhead small. Entries are keyed by the dataset id and the
manifest's content hash, so a dataset that was deleted and re-uploaded can never be served stale.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch

from api.orm import Dataset
from api.services.object_keys import MANIFEST_OBJECT
from nas_core.data import SplitTensors, unpack_dataset
from api.storage import ObjectStore

CACHE_SIZE = 2  # datasets kept per process; workers usually serve one experiment at a time


@dataclass(frozen=True, slots=True)
class DeviceDataset(SplitTensors):
    """A dataset's split tensors on one device, plus what preprocessing needs and the manifest they came from."""

    manifest_sha256: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


_cache: OrderedDict[tuple[str, str, str], DeviceDataset] = OrderedDict()
_lock = threading.Lock()
stats = {"hits": 0, "misses": 0}


def load(*, store: ObjectStore, dataset: Dataset, device: torch.device) -> DeviceDataset:
    """The dataset's tensors on ``device``, from this process's cache when present."""

    # A ready dataset never changes (a re-upload is a new id), so id + upload hash identify its tensors and a hit
    # costs no storage round trip.
    key = (dataset.id, dataset.sha256, str(device))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            stats["hits"] += 1
            return _cache[key]
    manifest = json.loads(store.read_bytes(dataset.storage_prefix + MANIFEST_OBJECT))
    tensors = unpack_dataset(manifest, lambda name: store.read_bytes(dataset.storage_prefix + name))
    parts = {}
    for part in ("train", "val", "test"):
        index = tensors.split[part]
        parts[f"{part}_x"] = tensors.images[index].contiguous().to(device)
        parts[f"{part}_y"] = tensors.labels[index].contiguous().to(device)
    entry = DeviceDataset(manifest_sha256=manifest["sha256"], classes=list(tensors.classes),
                          channels=tensors.channels, height=tensors.height, width=tensors.width,
                          mean=tuple(tensors.mean), std=tuple(tensors.std), **parts)
    with _lock:
        stats["misses"] += 1
        _cache[key] = entry
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return entry


def clear() -> None:
    with _lock:
        _cache.clear()
