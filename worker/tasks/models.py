"""Final-model tasks: thin doors that parse the id and call the service command."""

from __future__ import annotations

import logging

from celery.signals import worker_ready

from api.queue import BUILD_MODEL, REAP_MODELS, celery_app, task_options
from api.runtime import get_runtime
from api.services import models as service

log = logging.getLogger(__name__)


# Delivered late (api.queue.BUILD_MODEL): a worker killed mid-build leaves the message to be delivered again; the
# lease claim makes that second delivery a no-op while a live attempt still heartbeats, and a retry once it is dead.
# The hard time limit (prefork pools only) ends a hung build; the soft one comes first so the row is marked failed.
# No retry cap: the model's attempt counter (model_max_attempts) bounds outage retries, not Celery's.
@celery_app.task(bind=True, **task_options(BUILD_MODEL))
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


@celery_app.task(**task_options(REAP_MODELS))
def reap() -> list[str]:
    """Requeue models whose job died or whose message was lost (also run once when a worker starts)."""
    runtime = get_runtime()
    with runtime.unit_of_work() as session:
        return service.reap_stale_models(session=session, settings=runtime.settings)


@worker_ready.connect
def _reap_on_start(**_: object) -> None:
    # The filesystem transport has no acknowledgements: a message whose worker died is gone, so a restarted
    # worker sweeps once instead of waiting for the next periodic reaper run.
    reap.apply_async(queue=REAP_MODELS.queue)
