"""Entry point for ``celery -A worker.app worker -Q ingest,trials,models``: the control plane's app plus our tasks."""

from __future__ import annotations

from celery.signals import setup_logging

from api.logs import configure_logging
from api.queue import celery_app as app
from api.settings import get_settings
from worker import tasks  # noqa: F401  (registers every task on the app)


@setup_logging.connect
def _logging(**_: object) -> None:
    # Connecting this signal stops Celery from installing its own handlers: workers log like the API.
    configure_logging(get_settings().log_format)


__all__ = ["app"]
