"""Entry point for ``celery -A worker.app worker -Q ingest,trials,models``: the control plane's app plus our tasks,
and the reaper thread every worker process runs (:mod:`worker.reaper`), whatever queues it consumes."""

from __future__ import annotations

from celery.signals import setup_logging, worker_ready, worker_shutdown

from api.logs import configure_logging
from api.queue import celery_app as app
from api.runtime import get_runtime
from api.settings import get_settings
from worker import reaper
from worker import tasks  # noqa: F401  (registers every task on the app)


@setup_logging.connect
def _logging(**_: object) -> None:
    # Connecting this signal stops Celery from installing its own handlers: workers log like the API.
    configure_logging(get_settings().log_format)


@worker_ready.connect
def _start_reaper(**_: object) -> None:
    # The worker's main process: it keeps sweeping while the pool's children train.
    runtime = get_runtime()
    reaper.start(unit_of_work=runtime.unit_of_work, settings=runtime.settings)


@worker_shutdown.connect
def _stop_reaper(**_: object) -> None:
    reaper.stop()


__all__ = ["app"]
