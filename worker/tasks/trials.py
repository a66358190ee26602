"""Search tasks: thin doors that parse ids and call the search commands; plus the trial reaper thread."""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown

# A warm worker pays the engine's imports (torch, optuna) once at start, not inside its first trial.
import nas_core.builder  # noqa: F401
import nas_core.metrics  # noqa: F401
import nas_core.pruning  # noqa: F401
import nas_core.space  # noqa: F401
import nas_core.strategies  # noqa: F401
import nas_core.trainer  # noqa: F401
from api import logs
from api.queue import RUN_TRIAL, SCHEDULE, celery_app, task_options
from api.runtime import get_runtime
from api.services import models as models_service
from api.services.search import reaper, scheduler, trials

log = logging.getLogger(__name__)


# One trial occupies one device for minutes to hours. Delivered late (api.queue.RUN_TRIAL): a worker that dies
# mid-trial leaves the message to be re-delivered; the lease on the trial row turns any duplicate delivery into a
# no-op, and the reaper (heartbeats, below) re-runs a dead attempt long before Redis' visibility timeout would.
@celery_app.task(**task_options(RUN_TRIAL))
def run_trial(trial_id: str) -> str:
    runtime = get_runtime()
    token = logs.trial_id.set(str(trial_id))  # every log line of this trial carries its id
    try:
        status = trials.run_trial(unit_of_work=runtime.unit_of_work, store=runtime.store,
                                  settings=runtime.settings, trial_id=str(trial_id))
        log.info("trial %s: %s", trial_id, status)
        return status
    finally:
        logs.trial_id.reset(token)


@celery_app.task(**task_options(SCHEDULE))
def schedule(experiment_id: str) -> list[str]:
    runtime = get_runtime()
    scheduler.warm_throughput(unit_of_work=runtime.unit_of_work, settings=runtime.settings,
                              experiment_id=str(experiment_id))
    with runtime.unit_of_work() as session:
        return scheduler.schedule(session=session, settings=runtime.settings, experiment_id=str(experiment_id))


class Reaper(threading.Thread):
    """Sweeps for dead attempts every ``trial_reaper_interval_s`` in every worker (idempotent, so no leader).

    A thread rather than a beat entry: a lone worker restarted after a crash must recover its experiments without a
    separate beat process.
    """

    def __init__(self) -> None:
        super().__init__(name="nas-reaper", daemon=True)
        self.stopped = threading.Event()

    def run(self) -> None:
        runtime = get_runtime()
        while not self.stopped.wait(runtime.settings.trial_reaper_interval_s):
            try:
                reap_once()
            except Exception:
                log.warning("reaper sweep failed", exc_info=True)


def reap_once() -> None:
    runtime = get_runtime()
    with runtime.unit_of_work() as session:
        reaper.reap(session=session, settings=runtime.settings)
    with runtime.unit_of_work() as session:
        models_service.reap_stale_models(session=session, settings=runtime.settings)


_reaper: Reaper | None = None


@worker_ready.connect
def _start_reaper(**_: object) -> None:
    global _reaper
    _reaper = Reaper()
    _reaper.start()


@worker_shutdown.connect
def _stop_reaper(**_: object) -> None:
    if _reaper is not None:
        _reaper.stopped.set()
