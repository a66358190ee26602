"""Reaping final models: requeue those whose job died or whose message was lost (the model sweep of the worker's
reaper thread)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session

from api.db import utcnow
from api.queue import BUILD_MODEL, enqueue_after_commit
from api.repositories import models as repository
from api.settings import Settings
from api.statuses import ModelStatus

log = logging.getLogger(__name__)


def reap_stale_models(*, session: Session, settings: Settings) -> list[str]:
    """Requeue models whose job died (silent heartbeat) or whose message was lost (queued for too long).

    A running model silent for ``model_stale_after_s`` goes back to ``queued`` and is re-enqueued, unless it has
    used ``model_max_attempts`` attempts: then it is ``failed``. Returns the ids acted on. Every change is a
    conditional UPDATE, so of several workers sweeping at once exactly one acts on a model.
    """
    now = utcnow()
    stale_before = now - timedelta(seconds=settings.model_stale_after_s)
    acted = []
    for model_id, attempts in repository.stale_running(session, stale_before=stale_before):
        if attempts >= settings.model_max_attempts:
            detail = f"the model job stopped responding in all {attempts} attempts"
            if repository.requeue_if_stale(session, model_id, stale_before=stale_before, status=ModelStatus.FAILED,
                                           lease_token=None, detail=detail, finished_at=now):
                acted.append(model_id)
            continue
        # Clearing the lease makes any write of the dead attempt (should it still be alive) refused.
        if repository.requeue_if_stale(session, model_id, stale_before=stale_before, status=ModelStatus.QUEUED,
                                       lease_token=None):
            enqueue_after_commit(session, BUILD_MODEL, args=[model_id])
            acted.append(model_id)
    untouched_since = now - timedelta(seconds=settings.model_queued_stale_after_s)
    for model_id in repository.stale_queued_ids(session, untouched_since=untouched_since):
        # The touch makes the next sweep wait a full period, and a concurrent sweep's touch fail.
        if repository.touch_if_queued_since(session, model_id, untouched_since=untouched_since):
            enqueue_after_commit(session, BUILD_MODEL, args=[model_id])
            acted.append(model_id)
    if acted:
        log.warning("reaped %d stale models: %s", len(acted), acted)
    return acted
