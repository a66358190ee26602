"""The Celery app of the control plane: broker, queues, routing, serializer. Workers register task bodies on it.

Messages carry ids only (JSON); the database is the source of truth. Services enqueue with
:func:`enqueue_after_commit`, so a worker can never see a row whose transaction has not committed.

Every task is stated once, in :data:`TASKS`: its name, queue, delivery policy and time limits. Services enqueue a
:class:`Task` from there; the worker's task modules only bind a function to it (:func:`task_options`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Celery
from kombu import Connection, Queue
from sqlalchemy.orm import Session

from api.broker_filesystem import TRANSPORT as FILESYSTEM_TRANSPORT
from api.db import run_after_commit
from api.settings import Settings, get_settings

log = logging.getLogger(__name__)

QUEUES = ("ingest", "trials", "models")


@dataclass(frozen=True, slots=True)
class Task:
    """One kind of task message: where it goes and how it is delivered.

    ``late`` (every task today): acknowledged after the body returns and re-queued when the worker process dies
    (``acks_late`` + ``reject_on_worker_lost``), for tasks whose second run is safe (status guards, leases,
    idempotent sweeps); False would acknowledge on receipt. ``limits``: the hard and
    soft time limits from the settings (the soft one comes first, so the body marks its row failed itself).
    ``max_retries``: None when something else bounds the retries (a model's attempt counter).
    """

    name: str
    queue: str
    late: bool = True
    limits: Callable[[Settings], tuple[int, int]] | None = None
    max_retries: int | None = 3


INGEST = Task("nas.datasets.ingest", "ingest",
              limits=lambda s: (s.ingest_time_limit_s, max(s.ingest_time_limit_s - 30, 1)))
# Deprecated, served for one release only (nothing sends them now: every worker runs the reaper thread,
# worker.reaper); messages the previous release queued must not be rejected as unknown tasks.
REAP_DATASETS = Task("nas.datasets.reap", "ingest")
SCHEDULE = Task("nas.experiments.schedule", "trials")
RUN_TRIAL = Task("nas.trials.run", "trials",
                 limits=lambda s: (s.trial_time_limit_s + 60, s.trial_time_limit_s))
BUILD_MODEL = Task("nas.models.build", "models", max_retries=None,
                   limits=lambda s: (s.model_time_limit_s, max(s.model_time_limit_s - 60, 1)))
REAP_MODELS = Task("nas.models.reap", "models")  # deprecated, as REAP_DATASETS
TASKS = (INGEST, REAP_DATASETS, SCHEDULE, RUN_TRIAL, BUILD_MODEL, REAP_MODELS)


def task_options(task: Task) -> dict[str, Any]:
    """What ``@celery_app.task(...)`` needs to bind a function to ``task`` (routing and limits come from the
    app's configuration, which :func:`celery_config` derives from the same table)."""
    return {"name": task.name, "max_retries": task.max_retries, "acks_late": task.late,
            "reject_on_worker_lost": task.late}


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings derived from ``settings``; every choice that affects crash safety is explained."""
    transport_options: dict[str, Any] = {
        # Redis re-delivers an unacknowledged message after this long; it must exceed the longest task so a
        # healthy long task is not delivered twice (a duplicate would be a no-op anyway: leases). Dead workers'
        # tasks come back much sooner through the heartbeat reapers, not through this timeout.
        "visibility_timeout": max(settings.ingest_time_limit_s, settings.trial_time_limit_s,
                                  settings.model_time_limit_s) + 600,
    }
    if settings.broker_key_prefix:
        transport_options["global_keyprefix"] = settings.broker_key_prefix
    filesystem = settings.broker_url.startswith("filesystem")
    if filesystem:
        folder = settings.broker_dir
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        transport_options = {"data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
                             "processed_folder": str(folder / "processed"), "store_processed": False,
                             # The filesystem transport polls; kombu's 1 s default would add up to a second of
                             # queue pickup to every short trial.
                             "polling_interval": 0.05, "control_folder": str(folder / "control")}
    return {
        "broker_url": settings.broker_url,
        # The filesystem broker's messages must appear whole (see api.broker_filesystem); None: the URL's transport.
        "broker_transport": FILESYSTEM_TRANSPORT if filesystem else None,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        # State lives in the database; nobody reads Celery results.
        "task_ignore_result": True,
        "task_queues": [Queue(name) for name in QUEUES],
        "task_default_queue": "ingest",
        "task_routes": {task.name: {"queue": task.queue} for task in TASKS},
        # Acknowledge after the task body returns: a worker killed mid-task leaves the message to be re-delivered.
        "task_acks_late": True,
        # A child process that dies (OOM, SIGKILL) re-queues its message instead of acknowledging it as failed.
        "task_reject_on_worker_lost": True,
        # Reserve one message at a time: long CPU/GPU tasks must not hold back messages another worker could run.
        "worker_prefetch_multiplier": 1,
        # A broker outage must not kill running trials: their leases live in the database, so a trial keeps
        # training through a broker restart (Celery 6 will default to cancelling them; stated here explicitly).
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        # Hard and soft time limits (prefork pools enforce the hard one; the soft one fails the row cleanly).
        "task_annotations": {task.name: dict(zip(("time_limit", "soft_time_limit"), task.limits(settings),
                                                 strict=True))
                             for task in TASKS if task.limits is not None},
        "worker_hijack_root_logger": False,
    }


def create_celery(settings: Settings) -> Celery:
    app = Celery("nas")
    app.conf.update(celery_config(settings))
    return app


celery_app = create_celery(get_settings())


def enqueue(task_name: str, *, args: list[Any], queue: str) -> None:
    """Send a task by name now (ids only)."""
    celery_app.send_task(task_name, args=args, queue=queue)


def enqueue_after_commit(session: Session, task: Task, *, args: list[Any]) -> None:
    """Send ``task(*args)`` to its queue once ``session`` commits; nothing is sent if it rolls back.

    A send that fails after the commit is logged; the resource stays in its pending state and the reaper
    re-enqueues it.
    """
    run_after_commit(session, lambda: enqueue(task.name, args=args, queue=task.queue))


def check_broker(settings: Settings) -> None:
    """Raise if the broker of ``settings`` cannot be reached (readiness)."""
    config = celery_config(settings)
    with Connection(config["broker_url"], transport=config["broker_transport"],
                    transport_options=config["broker_transport_options"],
                    connect_timeout=3) as connection:
        connection.ensure_connection(max_retries=1, timeout=3)
