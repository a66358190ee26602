"""Datasets: accept an upload, list/get/delete, and the ingestion command run by the worker.

Ingestion (``run_ingest``) is written to survive crashes: it claims the dataset (counting attempts), does the heavy
work without holding a transaction, writes every object (manifest last) and only then flips the row to ``ready`` —
guarded by ``status = 'processing'`` so a duplicate or late run can never overwrite a finished dataset. Every run
writes the same objects for the same upload, so a re-delivered or re-enqueued message is harmless.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from api.db import UnitOfWork, new_id, run_after_commit, run_after_rollback, storable_text, utcnow
from api.errors import Conflict, NotFound
from api.orm import Dataset, Project
from api.queue import INGEST, enqueue_after_commit
from api.repositories import datasets as repository
from api.services import quotas
from api.services.object_keys import MANIFEST_OBJECT
from api.settings import Settings
from api.statuses import DatasetStatus
from api.storage import ObjectStore, dataset_prefix
from nas_core.errors import DatasetRejected

log = logging.getLogger(__name__)

UPLOAD_OBJECT = "upload.zip"


# Checks that refuse deleting a dataset still in use: each returns a reason or None. Resources that reference
# datasets (experiments) append theirs here; DELETE answers 409 with the first reason.
DATASET_IN_USE_CHECKS: list[Callable[[Session, Dataset], str | None]] = []


@dataclass(frozen=True, slots=True)
class ReceivedUpload:
    """A zip streamed to a local temporary file, hashed on the way."""

    path: Path
    filename: str
    sha256: str
    size_bytes: int


def create_dataset(*, session: Session, store: ObjectStore, project: Project, upload: ReceivedUpload,
                   name: str | None, settings: Settings | None = None) -> Dataset:
    """Store the upload under the dataset's prefix, add the row as ``processing`` and enqueue ingestion.

    With ``settings`` (API requests), refused with 413 ``storage-quota-exceeded`` before anything is stored when
    the upload would pass the project's storage quota.
    """
    if settings is not None:
        quotas.check_storage_quota(session=session, settings=settings, project_id=project.id,
                                           adding_bytes=upload.size_bytes)
    dataset_id = new_id()
    prefix = dataset_prefix(project.id, dataset_id)
    store.put_file(prefix + UPLOAD_OBJECT, upload.path)
    # A transaction that does not commit (a concurrent duplicate won the Idempotency-Key race) takes the file along.
    run_after_rollback(session, lambda: store.delete_prefix(prefix))
    from_filename = storable_text(Path(upload.filename).stem, max_chars=200)
    dataset = Dataset(id=dataset_id, project_id=project.id, name=name or from_filename or dataset_id,
                      status=DatasetStatus.PROCESSING, sha256=upload.sha256, size_bytes=upload.size_bytes,
                      storage_prefix=prefix, errors=[])
    repository.add(session, dataset)
    enqueue_after_commit(session, INGEST, args=[dataset_id])
    return dataset


def list_datasets(*, session: Session, project: Project, limit: int, offset: int) -> tuple[list[Dataset], int]:
    return repository.list_for_project(session, project_id=project.id, limit=limit, offset=offset)


def get_dataset(*, session: Session, project: Project, dataset_id: str) -> Dataset:
    """The project's dataset; another project's id is indistinguishable from a missing one (404)."""
    dataset = repository.get_for_project(session, project_id=project.id, dataset_id=dataset_id)
    if dataset is None:
        raise NotFound("dataset")
    return dataset


@dataclass(frozen=True, slots=True)
class DatasetSample:
    """One thumbnail: the image's class, its position in the train split and the PNG bytes (as stored, no resize)."""

    class_name: str
    index: int
    png: bytes


def list_dataset_samples(*, session: Session, store: ObjectStore, project: Project, dataset_id: str,
                         per_class: int) -> list[DatasetSample]:
    """The first ``per_class`` train-split images of each class, as PNGs; 409 unless the dataset is ready.

    Only the train split is shown, so looking at samples never reveals the held-out test images.
    """
    import torch
    from PIL import Image

    from api.services import dataset_cache  # loads torch: only when samples are asked for

    dataset = get_dataset(session=session, project=project, dataset_id=dataset_id)
    if dataset.status != DatasetStatus.READY:
        raise Conflict("dataset-not-ready", f"the dataset is {dataset.status}; samples exist once it is ready")
    tensors = dataset_cache.load(store=store, dataset=dataset, device=torch.device("cpu"))
    samples = []
    for label, class_name in enumerate(tensors.classes):
        for index in torch.nonzero(tensors.train_y == label).flatten()[:per_class].tolist():
            # CHW uint8 → HW (Pillow "L") or HWC ("RGB").
            pixels = tensors.train_x[index].permute(1, 2, 0).squeeze(2).numpy()
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="PNG")
            samples.append(DatasetSample(class_name=class_name, index=index, png=buffer.getvalue()))
    return samples


def delete_dataset(*, session: Session, store: ObjectStore, project: Project, dataset_id: str) -> None:
    """Delete the row now and its objects once that is committed (orphans are harmless, dangling rows are not)."""
    dataset = get_dataset(session=session, project=project, dataset_id=dataset_id)
    for check in DATASET_IN_USE_CHECKS:
        if reason := check(session, dataset):
            raise Conflict("dataset-in-use", reason)
    prefix = dataset.storage_prefix
    repository.delete(session, dataset)
    run_after_commit(session, lambda: store.delete_prefix(prefix))


# The engine's IngestLimits field → the setting that sets it.
_INGEST_LIMIT_SETTINGS = {"max_members": "zip_max_members", "max_uncompressed_bytes": "zip_max_uncompressed_bytes",
                          "max_compression_ratio": "zip_max_compression_ratio", "max_image_pixels": "max_image_pixels",
                          "max_dataset_pixels": "max_dataset_pixels", "min_images_per_class": "min_images_per_class",
                          "max_resolution": "max_resolution"}


def ingest_limits(settings: Settings):
    """The archive limits of ``settings`` as the engine's :class:`IngestLimits`, whose reports then name each limit
    by its environment variable (``NAS_MAX_IMAGE_PIXELS = 40000000``)."""
    from nas_core.images import IngestLimits

    prefix = Settings.model_config["env_prefix"]
    return IngestLimits(**{limit: getattr(settings, name) for limit, name in _INGEST_LIMIT_SETTINGS.items()},
                        setting_names={limit: f"{prefix}{name.upper()}"
                                       for limit, name in _INGEST_LIMIT_SETTINGS.items()})


def split_seed(sha256: str) -> int:
    """The split seed is derived from the content, so the same upload always gets the same split."""
    return int(sha256[:8], 16)


MAX_LISTED_ERRORS = 1000  # per dataset; an archive of a million broken files must not become a huge row
MAX_REPORTED_CHARS = 1000  # per name or message of the report (a zip member name can be 64 KiB)
_DETAIL_CHARS = Dataset.__table__.c.detail.type.length


def capped_errors(errors: list[dict[str, Any]], limit: int = MAX_LISTED_ERRORS) -> list[dict[str, Any]]:
    """The first ``limit`` per-file errors, then one entry counting the rest; every name and message storable
    (member names come from the archive: NUL and other control characters are escaped, long ones cut)."""
    listed = [{key: storable_text(value, max_chars=MAX_REPORTED_CHARS) if isinstance(value, str) else value
               for key, value in error.items()} for error in errors[:limit]]
    if len(errors) <= limit:
        return listed
    return [*listed, {"file": None, "error": f"{len(errors) - limit} more files with errors are not listed "
                                             f"(the first {limit} are)"}]


def _failure(message: str) -> str:
    """A failed dataset's ``detail``: the engine's message may quote a member name, so it is made storable."""
    return storable_text(message, max_chars=_DETAIL_CHARS)


def run_ingest(*, unit_of_work: UnitOfWork, store: ObjectStore, settings: Settings, dataset_id: str) -> str:
    """Ingest one dataset end to end; returns the status it ended in (or ``"skipped"``). Safe to run twice."""
    with unit_of_work() as session:
        dataset = repository.get(session, dataset_id, for_update=True)
        if dataset is None or dataset.status != DatasetStatus.PROCESSING:
            return "skipped"
        prefix, sha256 = dataset.storage_prefix, dataset.sha256
        attempts = dataset.ingest_attempts + 1
        if attempts > settings.ingest_max_attempts:
            detail = f"ingestion did not finish after {settings.ingest_max_attempts} attempts"
            repository.update_if_processing(session, dataset_id, status=DatasetStatus.FAILED, detail=detail,
                                            errors=[{"file": None, "error": detail}])
            run_after_commit(session, lambda: store.delete_prefix(prefix))
            return "failed"
        # Committed before the heavy work, so a crash still counts as an attempt.
        repository.update_if_processing(session, dataset_id, ingest_attempts=attempts)

    try:
        summary = _build_objects(store=store, settings=settings, prefix=prefix, sha256=sha256)
    except DatasetRejected as rejected:
        with unit_of_work() as session:
            repository.update_if_processing(session, dataset_id, status=DatasetStatus.FAILED,
                                            detail=_failure(rejected.message),
                                            errors=capped_errors(rejected.errors or
                                                                 [{"file": None, "error": rejected.message}]))
            # Nothing of a rejected dataset is kept, not even the upload.
            run_after_commit(session, lambda: store.delete_prefix(prefix))
        return "failed"

    with unit_of_work() as session:
        if repository.update_if_processing(session, dataset_id, status=DatasetStatus.READY, detail=None, **summary):
            return "ready"
        if repository.get(session, dataset_id) is None:  # deleted while we worked: drop what we wrote
            run_after_commit(session, lambda: store.delete_prefix(prefix))
    return "skipped"


def _build_objects(*, store: ObjectStore, settings: Settings, prefix: str, sha256: str) -> dict[str, Any]:
    """Decode the upload, split it, write shards then the manifest; return the columns of a ready dataset."""
    from nas_core.data import ingest_zip, pack_dataset, stratified_split

    with tempfile.TemporaryDirectory(prefix="nas-ingest-") as tmp:
        local_zip = Path(tmp) / UPLOAD_OBJECT
        store.download_file(prefix + UPLOAD_OBJECT, local_zip)
        result = ingest_zip(local_zip, ingest_limits(settings))
    seed = split_seed(sha256)
    split = stratified_split(result.labels, seed=seed)
    manifest, objects = pack_dataset(result, split)
    # The manifest's own sha256 identifies the tensors; the upload's hash and the split seed are recorded beside it.
    manifest = {**manifest, "upload_sha256": sha256, "split_seed": seed}
    for name, data in sorted(objects.items()):
        store.put_bytes(prefix + name, data)
    store.put_bytes(prefix + MANIFEST_OBJECT, json.dumps(manifest, sort_keys=True).encode())  # last: marks complete

    # Dropped duplicates are in the engine's errors already, each naming the files it duplicates.
    return {"num_images": int(result.images.shape[0]), "classes": result.class_counts(),
            "image": {"channels": result.channels, "height": result.height, "width": result.width},
            "splits": {part: int(len(split[part])) for part in ("train", "val", "test")},
            "errors": capped_errors(result.errors)}


def reap_stale_datasets(*, session: Session, settings: Settings) -> list[str]:
    """Re-enqueue datasets stuck in ``processing`` (worker crash, lost message, broker down at upload time).

    A dataset is stale once untouched for ``ingest_stale_after_s``, longer than the ingest time limit, so a live
    ingest is never duplicated. The attempt counter in :func:`run_ingest` bounds how often one is retried. Safe to
    run from several workers at once: each dataset is re-enqueued by the one sweep whose conditional touch wins.
    """
    older_than = utcnow() - timedelta(seconds=settings.ingest_stale_after_s)
    stale = []
    for dataset_id in repository.stale_processing_ids(session, older_than=older_than):
        # The touch makes the next sweep wait a full period, and a concurrent sweep's touch fail.
        if repository.touch_if_stale(session, dataset_id, older_than=older_than):
            enqueue_after_commit(session, INGEST, args=[dataset_id])
            stale.append(dataset_id)
    if stale:
        log.warning("re-enqueued %d stale datasets: %s", len(stale), stale)
    return stale
