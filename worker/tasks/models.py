"""Final-model tasks: thin doors that parse the id and call the service command."""

from __future__ import annotations

import logging

from celery.signals import worker_ready

from api.queue import celery_app
from api.runtime import get_runtime
from api.services import models as service
from api.settings import get_settings

log = logging.getLogger(__name__)
_TIME_LIMIT_S = get_settings().model_time_limit_s


# acks_late + reject_on_worker_lost: a worker killed mid-build leaves the message to be delivered again; the lease
# claim makes that second delivery a no-op while a live attempt still heartbeats, and a retry once it is dead.
# The hard time limit (prefork pools only) ends a hung build; the soft one comes first so the row is marked failed.
# max_retries=None: the model's attempt counter (model_max_attempts) bounds outage retries, not Celery's.
@celery_app.task(bind=True, name="nas.models.build", queue="models", acks_late=True, reject_on_worker_lost=True,
                 max_retries=None, time_limit=_TIME_LIMIT_S, soft_time_limit=max(_TIME_LIMIT_S - 60, 1))
def build(self, model_id: str) -> str:
    runtime = get_runtime()
    try:
        status = service.run_model_job(unit_of_work=runtime.unit_of_work, store=runtime.store,
                                       settings=runtime.settings, model_id=str(model_id))
    except service.ModelJobDeferred as deferred:
        # The row is already `queued` again; should this retry message be lost, the reaper re-enqueues it.
        log.warning("%s", deferred)
        raise self.retry(countdown=deferred.retry_in_s) from deferred
    log.info("model %s: %s", model_id, status)
    return status


@celery_app.task(name="nas.models.reap", queue="models")
def reap() -> list[str]:
    """Requeue models whose job died or whose message was lost (also run once when a worker starts)."""
    runtime = get_runtime()
    with runtime.unit_of_work() as session:
        return service.reap_stale_models(session=session, settings=runtime.settings)


@worker_ready.connect
def _reap_on_start(**_: object) -> None:
    # The filesystem transport has no acknowledgements: a message whose worker died is gone, so a restarted
    # worker sweeps once instead of waiting for the next periodic reaper run.
    reap.apply_async(queue="models")
