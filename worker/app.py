"""Entry point for ``celery -A worker.app worker -Q ingest,trials,models``: the control plane's app plus our tasks."""

from __future__ import annotations

from api.queue import celery_app as app
from worker import tasks  # noqa: F401  (registers every task on the app)

__all__ = ["app"]
