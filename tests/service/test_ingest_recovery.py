"""Crash safety of ingestion: idempotent re-runs, bounded attempts (in process), and the reaper that retries stuck
datasets (on the stack, through the broker and a worker)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from celery import Celery
from sqlalchemy import update

from api.db import utcnow
from api.orm import Dataset, Project
from api.queue import celery_config
from api.services import datasets as service
from api.services.datasets import ReceivedUpload
from tests import archives
from tests.service.helpers import wait_for_dataset


def _processing_dataset(target, key, tmp_path, data: bytes) -> Dataset:
    """A dataset row in ``processing`` with its upload stored, as ``POST`` leaves it (without enqueueing), in
    ``target``'s database and store (a stack or the in-process service)."""
    path = tmp_path / "upload.zip"
    path.write_bytes(data)
    upload = ReceivedUpload(path=path, filename="upload.zip", sha256=hashlib.sha256(data).hexdigest(),
                            size_bytes=len(data))
    with target.runtime.unit_of_work() as session:
        project = session.get(Project, key.project_id)
        dataset = service.create_dataset(session=session, store=target.runtime.store, project=project,
                                         upload=upload, name="direct")
        session.info.pop("after_commit")  # this test drives ingestion itself instead of the worker
    return dataset


def _set(target, dataset_id: str, **values) -> None:
    with target.runtime.unit_of_work() as session:
        session.execute(update(Dataset).where(Dataset.id == dataset_id).values(**values))


def _run(target, dataset_id: str) -> str:
    return service.run_ingest(unit_of_work=target.runtime.unit_of_work, store=target.runtime.store,
                              settings=target.settings, dataset_id=dataset_id)


def test_rerunning_ingest_is_idempotent_and_finished_datasets_are_left_alone(app_service, app_key, tmp_path):
    dataset = _processing_dataset(app_service, app_key, tmp_path, archives.make_image_folder_zip())
    assert _run(app_service, dataset.id) == "ready"
    store = app_service.runtime.store
    first = {key: store.read_bytes(key) for key in store.list_keys(dataset.storage_prefix)}

    assert _run(app_service, dataset.id) == "skipped"  # a duplicate delivery of a finished dataset does nothing
    # A crash after the objects were written but before the row turned ready: the re-run rewrites the same bytes.
    _set(app_service, dataset.id, status="processing")
    assert _run(app_service, dataset.id) == "ready"
    second = {key: store.read_bytes(key) for key in store.list_keys(dataset.storage_prefix)}
    assert first == second and len(first) >= 4


def test_ingest_gives_up_after_max_attempts_and_removes_objects(app_service, app_key, tmp_path):
    dataset = _processing_dataset(app_service, app_key, tmp_path, archives.make_image_folder_zip())
    _set(app_service, dataset.id, ingest_attempts=app_service.settings.ingest_max_attempts)
    assert _run(app_service, dataset.id) == "failed"
    with app_service.runtime.unit_of_work() as session:
        row = session.get(Dataset, dataset.id)
        assert row.status == "failed" and "attempts" in row.detail
    assert app_service.runtime.store.list_keys(dataset.storage_prefix) == []


@pytest.mark.stack
def test_reaper_retries_a_dataset_left_processing_by_a_dead_worker(stack, client, api_key, tmp_path):
    # The row a crashed ingest leaves behind: processing, one attempt used, untouched for a long time.
    dataset = _processing_dataset(stack, api_key, tmp_path, archives.make_image_folder_zip(seed=3))
    _set(stack, dataset.id, ingest_attempts=1, updated_at=utcnow() - timedelta(hours=2))
    fresh = _processing_dataset(stack, api_key, tmp_path, archives.make_image_folder_zip(seed=4))

    # The message earlier releases sent (still served for one release): the real worker runs the reaper's dataset
    # sweep, which re-enqueues the stale dataset only. (The worker's reaper thread sweeps on its own, every
    # NAS_REAPER_INTERVAL_S.)
    Celery("nas-test", config_source=celery_config(stack.settings)).send_task("nas.datasets.reap", queue="ingest")
    ready = wait_for_dataset(client, dataset.id)
    assert ready["status"] == "ready" and ready["num_images"] == 12
    with stack.runtime.unit_of_work() as session:
        assert session.get(Dataset, dataset.id).ingest_attempts == 2
        assert session.get(Dataset, fresh.id).status == "processing"  # not stale yet: left alone
