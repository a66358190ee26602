"""Dataset tasks: thin doors that parse the id and call the service command."""

from __future__ import annotations

import logging

from api.queue import INGEST, REAP_DATASETS, celery_app, task_options
from api.runtime import get_runtime
from api.services import datasets as service
from worker import reaper

log = logging.getLogger(__name__)


# Delivered late (api.queue.INGEST): a worker killed mid-ingest leaves the message to be delivered again; the
# service's status guard and deterministic object names make that second run safe.
@celery_app.task(**task_options(INGEST))
def ingest(dataset_id: str) -> str:
    runtime = get_runtime()
    status = service.run_ingest(unit_of_work=runtime.unit_of_work, store=runtime.store, settings=runtime.settings,
                                dataset_id=str(dataset_id))
    log.info("dataset %s: %s", dataset_id, status)
    return status


# Deprecated, kept one release: the previous release's beat and worker start-up sent this message, and a worker
# rejects a message of a task it does not know. The reaper thread (worker.reaper) sweeps on its own now.
@celery_app.task(**task_options(REAP_DATASETS))
def reap() -> list[str]:
    """Re-enqueue datasets stuck in ``processing``: the reaper's dataset sweep, run once."""
    runtime = get_runtime()
    return reaper.sweep("datasets", unit_of_work=runtime.unit_of_work, settings=runtime.settings)
