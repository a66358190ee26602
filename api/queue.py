"""The Celery app of the control plane: broker, queues, routing, serializer. Workers register task bodies on it.

Messages carry ids only (JSON); the database is the source of truth. Services enqueue with
:func:`enqueue_after_commit`, so a worker can never see a row whose transaction has not committed.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from kombu import Connection, Queue
from sqlalchemy.orm import Session

from api.broker_filesystem import TRANSPORT as FILESYSTEM_TRANSPORT
from api.db import run_after_commit
from api.settings import Settings, get_settings

log = logging.getLogger(__name__)

QUEUES = ("ingest", "trials", "models")


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
        "task_routes": {"nas.datasets.*": {"queue": "ingest"}, "nas.trials.*": {"queue": "trials"},
                        "nas.models.*": {"queue": "models"}},
        # Acknowledge after the task body returns: a worker killed mid-task leaves the message to be re-delivered.
        "task_acks_late": True,
        # A child process that dies (OOM, SIGKILL) re-queues its message instead of acknowledging it as failed.
        "task_reject_on_worker_lost": True,
        # Reserve one message at a time: long CPU/GPU tasks must not hold back messages another worker could run.
        "worker_prefetch_multiplier": 1,
        # A broker outage must not kill running trials: their leases live in the database, so a trial keeps
        # training through a broker restart (Celery 6 will default to cancelling them; stated here explicitly).
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "task_annotations": {"nas.datasets.ingest": {"time_limit": settings.ingest_time_limit_s,
                                                      "soft_time_limit": max(settings.ingest_time_limit_s - 30, 1)},
                             # The soft limit fails the trial cleanly (a domain failure, not a crash to retry).
                             "nas.trials.run": {"time_limit": settings.trial_time_limit_s + 60,
                                                "soft_time_limit": settings.trial_time_limit_s}},
        "beat_schedule": {"nas.datasets.reap": {"task": "nas.datasets.reap", "schedule": settings.reaper_interval_s,
                                                "options": {"queue": "ingest"}}},
        "beat_schedule_filename": str(settings.data_dir / "celerybeat-schedule"),
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


def enqueue_after_commit(session: Session, task_name: str, *, args: list[Any], queue: str) -> None:
    """Send ``task_name(*args)`` to ``queue`` once ``session`` commits; nothing is sent if it rolls back.

    A send that fails after the commit is logged; the resource stays in its pending state and the reaper
    re-enqueues it.
    """
    run_after_commit(session, lambda: enqueue(task_name, args=args, queue=queue))


def check_broker(settings: Settings) -> None:
    """Raise if the broker of ``settings`` cannot be reached (readiness)."""
    config = celery_config(settings)
    with Connection(config["broker_url"], transport=config["broker_transport"],
                    transport_options=config["broker_transport_options"],
                    connect_timeout=3) as connection:
        connection.ensure_connection(max_retries=1, timeout=3)
