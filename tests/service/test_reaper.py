"""The one reaper (worker/reaper.py), in process: the thread every worker starts on ``worker_ready``, whatever its
queues, sweeps stale datasets, dead trial attempts and stale models right at start; a sweep that read the same stale
rows as another one (two workers at once) acts on none of them a second time."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

from celery.signals import worker_ready, worker_shutdown
from sqlalchemy import update

import worker.app  # noqa: F401  (connects the reaper to the worker's signals)
from api.db import utcnow
from api.orm import Dataset, Experiment, Model
from api.queue import BUILD_MODEL, INGEST, RUN_TRIAL
from api.repositories import datasets as datasets_repository
from api.repositories import experiments as experiments_repository
from api.repositories import models as models_repository
from api.services.models import requests as models_service
from tests import archives
from tests.service.helpers import add_experiment, ready_dataset, trial_rows, upload
from worker import reaper

STALE_S = 9 * 24 * 3600.0  # rows are ten days old: no other test's row on the shared database is this stale
SETTINGS = {"ingest_stale_after_s": int(STALE_S), "trial_stale_after_s": STALE_S, "model_stale_after_s": STALE_S,
            "model_queued_stale_after_s": STALE_S, "reaper_interval_s": 3600, "trial_reaper_interval_s": 3600.0}


def _stale_rows(app_service, app_client, app_key) -> tuple[dict[str, str], str]:
    """One of each kind, as a crash leaves them: a dataset left ``processing``, a trial whose worker died mid-attempt
    and a model whose job stopped heartbeating, each silent for ten days."""
    long_ago = utcnow() - timedelta(days=10)
    ready = ready_dataset(app_client, drain=app_service.drain, seed=11)
    experiment_id, _ = add_experiment(app_service, project_id=app_key.project_id, dataset_id=ready["id"], trials=[
        {"status": "succeeded", "val_accuracy": 0.5, "params": 500},
        {"status": "running", "attempts": 1, "lease_token": "dead-lease", "heartbeat_at": long_ago,
         "started_at": long_ago}])
    trial_id = trial_rows(app_service, experiment_id)[1].id
    with app_service.runtime.unit_of_work() as session:
        model = models_service.create_model(session=session, settings=app_service.settings,
                                            project_id=app_key.project_id,
                                            experiment=session.get(Experiment, experiment_id), epochs=1)
        session.info.pop("after_commit")
        session.execute(update(Experiment).where(Experiment.id == experiment_id).values(status="running"))
    with app_service.runtime.unit_of_work() as session:
        session.execute(update(Model).where(Model.id == model.id).values(status="running", attempts=1,
                                                                         lease_token="m" * 32, heartbeat_at=long_ago))
    dataset_id = upload(app_client, archives.make_image_folder_zip(seed=12)).json()["id"]
    app_service.queued.clear()  # its ingest message is lost
    with app_service.runtime.unit_of_work() as session:
        session.execute(update(Dataset).where(Dataset.id == dataset_id).values(ingest_attempts=1, updated_at=long_ago))
    return {"dataset": dataset_id, "trial": trial_id, "model": model.id}, experiment_id


def _sent(app_service, ids: dict[str, str]) -> set[tuple[str, str, str]]:
    return {(task.name, task.args[0], task.queue) for task in app_service.queued if task.args[0] in ids.values()}


def test_every_worker_reaps_every_kind_at_start_and_concurrent_sweeps_act_once(app_service, app_client, app_key,
                                                                              monkeypatch):
    ids, experiment_id = _stale_rows(app_service, app_client, app_key)
    settings = app_service.settings.model_copy(update=SETTINGS)
    expected = {(INGEST.name, ids["dataset"], INGEST.queue), (RUN_TRIAL.name, ids["trial"], RUN_TRIAL.queue),
                (BUILD_MODEL.name, ids["model"], BUILD_MODEL.queue)}

    # What a worker does on start, any worker (an ingest-only one too): its reaper sweeps all three kinds at once.
    monkeypatch.setattr(worker.app, "get_runtime", lambda: SimpleNamespace(
        unit_of_work=app_service.runtime.unit_of_work, settings=settings))
    worker_ready.send(sender=None)
    thread = reaper._reaper
    try:
        deadline = time.monotonic() + 30
        while _sent(app_service, ids) != expected and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker_shutdown.send(sender=None)
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert _sent(app_service, ids) == expected
    with app_service.runtime.unit_of_work() as session:
        model = session.get(Model, ids["model"])
        assert (model.status, model.lease_token) == ("queued", None)  # the dead job can no longer write
    assert trial_rows(app_service, experiment_id)[1].status == "pending"  # a new attempt is on its way

    # A second worker's sweep that read the same stale rows before the first one committed: every conditional
    # UPDATE (or the re-check under the experiment's lock) refuses, so nothing is re-enqueued a second time.
    app_service.queued.clear()
    monkeypatch.setattr(datasets_repository, "stale_processing_ids", lambda *_, **__: [ids["dataset"]])
    monkeypatch.setattr(experiments_repository, "stale_running_trial_ids", lambda *_, **__: [ids["trial"]])
    monkeypatch.setattr(experiments_repository, "stale_pending_trial_ids", lambda *_, **__: [ids["trial"]])
    monkeypatch.setattr(models_repository, "stale_running", lambda *_, **__: [(ids["model"], 1)])
    monkeypatch.setattr(models_repository, "stale_queued_ids", lambda *_, **__: [ids["model"]])
    reaped = reaper.sweep_all(unit_of_work=app_service.runtime.unit_of_work, settings=settings)
    assert (reaped["datasets"], reaped["trials"]["trials"], reaped["models"]) == ([], [], [])
    assert _sent(app_service, ids) == set()
