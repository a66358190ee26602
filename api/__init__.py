"""The control plane: HTTP API, persistence, object storage and the Celery app that carries ids to workers."""
