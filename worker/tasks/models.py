"""Final-model tasks: thin doors that parse the id and call the service command."""

from __future__ import annotations

import logging

from api.queue import BUILD_MODEL, REAP_MODELS, celery_app, task_options
from api.runtime import get_runtime
from api.services.models import build as service
from worker import reaper

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


# Deprecated, kept one release: the previous release's workers sent this message when they started, and a worker
# rejects a message of a task it does not know. The reaper thread (worker.reaper) sweeps on its own now.
@celery_app.task(**task_options(REAP_MODELS))
def reap() -> list[str]:
    """Requeue models whose job died or whose message was lost: the reaper's model sweep, run once."""
    runtime = get_runtime()
    return reaper.sweep("models", unit_of_work=runtime.unit_of_work, settings=runtime.settings)
