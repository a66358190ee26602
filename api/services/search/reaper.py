"""Reaping: hand dead attempts' trials to new attempts and nudge experiments whose messages were lost."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session

from api.db import utcnow
from api.queue import RUN_TRIAL, enqueue_after_commit
from api.repositories import experiments as repository
from api.services.search.scheduler import schedule
from api.services.search.trials import STOP_REQUESTED, abandon_attempt
from api.settings import Settings
from api.statuses import TrialStatus

log = logging.getLogger(__name__)


def reap(*, session: Session, settings: Settings) -> dict[str, list[str]]:
    """Hand dead attempts' trials to new attempts and nudge experiments whose messages were lost.

    A trial ``running`` without a heartbeat for ``trial_stale_after_s`` lost its worker: it goes back to ``pending``
    (same id and number) and is enqueued again, or fails once it used up ``trial_max_attempts``, or ends ``stopped``
    when a user asked it to stop. Pending trials and active experiments idle for that long are re-enqueued /
    rescheduled (a crash between commit and enqueue, or a broker that lost the message). Every step is idempotent,
    so several workers may reap at once: a running trial is re-checked under its experiment's lock, a pending one is
    nudged by a conditional UPDATE, and :func:`schedule` plans under the experiment's lock.
    """
    older_than = utcnow() - timedelta(seconds=settings.trial_stale_after_s)
    requeued, touched = [], set()
    for trial_id in repository.stale_running_trial_ids(session, older_than=older_than):
        trial = repository.get_trial(session, trial_id)
        repository.lock(session, trial.experiment_id)
        trial = repository.get_trial(session, trial_id, for_update=True)
        if trial.status != TrialStatus.RUNNING or (trial.heartbeat_at and trial.heartbeat_at >= older_than):
            continue
        abandon_attempt(session, trial, "worker stopped sending heartbeats")
        trial.heartbeat_at = utcnow()  # the re-enqueued message gets a full period before it is nudged again
        touched.add(trial.experiment_id)
        if trial.stop_requested_at is not None:
            trial.status, trial.finished_at, trial.error = TrialStatus.STOPPED, utcnow(), STOP_REQUESTED
        elif trial.attempts >= settings.trial_max_attempts:
            trial.status, trial.finished_at = TrialStatus.FAILED, utcnow()
            trial.error = f"the worker running this trial was lost {trial.attempts} times"
        else:
            enqueue_after_commit(session, RUN_TRIAL, args=[trial.id])
            requeued.append(trial.id)
    for trial_id in repository.stale_pending_trial_ids(session, older_than=older_than):
        if trial_id in requeued or not repository.nudge_pending_trial(session, trial_id, older_than=older_than):
            continue
        enqueue_after_commit(session, RUN_TRIAL, args=[trial_id])
        requeued.append(trial_id)
    rescheduled = []
    # In one order in every worker: concurrent sweeps then take the experiments' locks in the same order.
    for experiment_id in sorted(set(repository.experiments_needing_schedule(session, older_than=older_than)) | touched):
        schedule(session=session, settings=settings, experiment_id=experiment_id)
        rescheduled.append(experiment_id)
    if requeued:
        log.warning("re-enqueued %d trials: %s", len(requeued), requeued)
    return {"trials": requeued, "experiments": rescheduled}
