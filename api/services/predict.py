"""Predictions: a ready model's ONNX file answers for uploaded images, inside the API process.

Images pass ingestion's rules (allowed formats, ``NAS_MAX_IMAGE_PIXELS`` read from every header before any image is
decoded, a full decode that refuses truncated files) and are preprocessed as the model's ``preprocessing.json`` says
(:mod:`nas_core.inference`). The loaded models — onnxruntime session, preprocessing and class names — stay in a
per-process LRU of ``NAS_PREDICT_MAX_SESSIONS`` entries keyed by model id and the artifacts' sha256: a ready model's
files never change, so a hit costs no storage round trip. Predictions need numpy, Pillow and onnxruntime, never
torch: :mod:`nas_core.inference` and :mod:`nas_core.images` do not import it, so the API process stays without it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from api.errors import Conflict, ValidationFailed
from api.orm import Project
from api.services.models import requests as models_service
from api.services.datasets import ingest_limits
from api.settings import Settings
from api.storage import ObjectStore

INPUT_NAME, OUTPUT_NAME = "input", "logits"  # the ONNX file's contract (nas_core.export)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReceivedImage:
    """One uploaded image, held in memory (the request's bytes are capped by ``NAS_PREDICT_MAX_BYTES``)."""

    filename: str | None
    data: bytes


@dataclass(frozen=True, slots=True)
class ServableModel:
    """Where a ready model's ONNX file and preprocessing live, and their checksums (from its row)."""

    id: str
    onnx_key: str
    onnx_sha256: str
    preprocessing_key: str
    preprocessing_sha256: str

    @property
    def cache_key(self) -> tuple[str, str, str]:
        return (self.id, self.onnx_sha256, self.preprocessing_sha256)


@dataclass(frozen=True, slots=True)
class Prediction:
    """Per image, the top classes as ``(class, probability)``, most probable first; and the milliseconds spent in
    onnxruntime for the whole batch."""

    top: list[list[tuple[str, float]]]
    latency_ms: float


@dataclass(frozen=True, slots=True)
class LoadedModel:
    session: Any  # onnxruntime.InferenceSession: run() is safe from several threads at once
    preprocessing: dict[str, Any]

    @property
    def classes(self) -> list[str]:
        return list(self.preprocessing["classes"])


class ArtifactMismatch(Exception):
    """The store returned other bytes than the model's row recorded: served by nobody (a 500, logged)."""


def servable_model(*, session: Session, project: Project, model_id: str) -> ServableModel:
    """The project's model (404 as every model route), ready (409 ``model-not-ready`` otherwise)."""
    model = models_service.get_model(session=session, project=project, model_id=model_id)
    if model.status != "ready":
        raise Conflict("model-not-ready", f"the model is {model.status}; it answers predictions once it is ready")
    artifacts = {artifact["format"]: artifact for artifact in model.artifacts}
    onnx, preprocessing = artifacts["onnx"], artifacts["preprocessing"]
    return ServableModel(id=model.id, onnx_key=onnx["object"], onnx_sha256=onnx["sha256"],
                         preprocessing_key=preprocessing["object"], preprocessing_sha256=preprocessing["sha256"])


def predict(*, store: ObjectStore, settings: Settings, model: ServableModel, images: list[ReceivedImage],
            top_k: int) -> Prediction:
    """Classify ``images`` (one batch) with ``model``: the ``top_k`` classes of each (at most all of them).

    Every image's header is read before any is decoded; an unusable image refuses the request with 422
    ``invalid-image``, listing each bad image as ``body.images[i]`` (those refused by their header, else those
    refused by decoding).
    """
    import numpy as np

    from nas_core import inference

    if not images:
        raise ValidationFailed.field("body.images", "Field required")
    limits = ingest_limits(settings)
    _each_image(images, lambda image: inference.image_size(image.data, limits))  # no bomb gets decoded
    loaded = load(store=store, settings=settings, model=model)

    def model_input(image: ReceivedImage) -> np.ndarray:
        # one decoded image at a time: a request holds its encoded bytes, a single full image and small tensors
        with inference.decode_image(image.data, limits) as decoded:
            return inference.image_to_input(decoded, loaded.preprocessing)

    batch = np.stack(_each_image(images, model_input))
    started = time.perf_counter()
    logits = loaded.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
    latency_ms = (time.perf_counter() - started) * 1000
    return Prediction(top=inference.top_classes(logits, loaded.classes, top_k), latency_ms=latency_ms)


def _each_image(images: list[ReceivedImage], apply: Callable[[ReceivedImage], T]) -> list[T]:
    """``apply`` to every image; 422 ``invalid-image`` naming each image it rejected."""
    from nas_core.inference import ImageRejected

    results, errors = [], []
    for index, image in enumerate(images):
        try:
            results.append(apply(image))
        except ImageRejected as error:
            errors.append({"field": f"body.images[{index}]", "file": image.filename, "error": error.message})
    if errors:
        raise ValidationFailed(errors, f"{len(errors)} of {len(images)} images cannot be used",
                               type="invalid-image")
    return results


# ------------------------------------------------------------------------------------------------ loaded models

_cache: OrderedDict[tuple[str, str, str], LoadedModel] = OrderedDict()
_lock = threading.Lock()
stats = {"hits": 0, "misses": 0}


def load(*, store: ObjectStore, settings: Settings, model: ServableModel) -> LoadedModel:
    """The model's session and preprocessing, from this process's LRU when present (else read and checked)."""
    with _lock:
        if (loaded := _cache.get(model.cache_key)) is not None:
            _cache.move_to_end(model.cache_key)
            stats["hits"] += 1
            return loaded
    loaded = _read(store, model)  # outside the lock: a slow store delays only this model's first request
    with _lock:
        stats["misses"] += 1
        _cache[model.cache_key] = loaded
        _cache.move_to_end(model.cache_key)
        while len(_cache) > settings.predict_max_sessions:
            _cache.popitem(last=False)
    return loaded


def cached_models() -> list[tuple[str, str, str]]:
    """The keys held, least recently used first."""
    with _lock:
        return list(_cache)


def _read(store: ObjectStore, model: ServableModel) -> LoadedModel:
    import onnxruntime

    onnx = _verified(store, model.onnx_key, model.onnx_sha256)
    preprocessing = json.loads(_verified(store, model.preprocessing_key, model.preprocessing_sha256))
    options = onnxruntime.SessionOptions()
    # One thread per request, as the model's latency_ms was measured: the API serves many requests at once, and
    # sessions that each spawn a thread per core would fight over the cores.
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(onnx, sess_options=options, providers=["CPUExecutionProvider"])
    return LoadedModel(session=session, preprocessing=preprocessing)


def _verified(store: ObjectStore, key: str, sha256: str) -> bytes:
    data = store.read_bytes(key)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ArtifactMismatch(f"{key}: the stored bytes do not match the model's sha256")
    return data
