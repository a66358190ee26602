"""Search tasks: thin doors that parse ids and call the search commands (the reaper is :mod:`worker.reaper`)."""

from __future__ import annotations

import logging

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
from api.services.search import scheduler, trials

log = logging.getLogger(__name__)


# One trial occupies one device for minutes to hours. Delivered late (api.queue.RUN_TRIAL): a worker that dies
# mid-trial leaves the message to be re-delivered; the lease on the trial row turns any duplicate delivery into a
# no-op, and the reaper (worker.reaper) re-runs a dead attempt long before Redis' visibility timeout would.
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
