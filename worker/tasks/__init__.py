"""Task modules, one per area; importing this package registers them all."""

from worker.tasks import datasets

__all__ = ["datasets"]
