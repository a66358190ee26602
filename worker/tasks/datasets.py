"""Dataset tasks: thin doors that parse the id and call the service command."""

from __future__ import annotations

import logging

from celery.signals import worker_ready

from api.queue import INGEST, REAP_DATASETS, celery_app, task_options
from api.runtime import get_runtime
from api.services import datasets as service

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


@celery_app.task(**task_options(REAP_DATASETS))
def reap() -> list[str]:
    """Re-enqueue datasets stuck in ``processing`` (run by beat and once when a worker starts)."""
    runtime = get_runtime()
    with runtime.unit_of_work() as session:
        return service.reap_stale_datasets(session=session, settings=runtime.settings)


@worker_ready.connect
def _reap_on_start(**_: object) -> None:
    # Brokers without acknowledgements (the filesystem transport) lose a message whose worker died; a restarted
    # worker therefore sweeps once instead of waiting for the first beat tick.
    reap.apply_async(queue=REAP_DATASETS.queue)
