"""Celery worker: registers task bodies on the control plane's Celery app (``celery -A worker.app worker``)."""
