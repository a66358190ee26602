"""nas_core — the search engine as a pure library.

Search space as data, model builder, trainer, strategies, metrics and exporters. It imports torch,
torchvision, optuna and onnx, and never the service (fastapi, celery, sqlalchemy, ``api``, ``worker``).
"""

from nas_core.errors import NASError

__all__ = ["NASError"]
