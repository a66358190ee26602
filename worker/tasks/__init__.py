"""Task modules, one per area; importing this package registers them all."""

from worker.tasks import datasets, models, trials

__all__ = ["datasets", "models", "trials"]
