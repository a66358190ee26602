"""Readiness: can this process reach the database, the broker and the object store?"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.queue import check_broker
from api.settings import Settings
from api.storage import ObjectStore


def readiness(*, settings: Settings, engine: Engine, store: ObjectStore) -> dict[str, str]:
    """``{"database": "ok" | error, "broker": …, "store": …}``; each check is independent."""
    def database() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    checks: dict[str, Callable[[], None]] = {"database": database, "broker": lambda: check_broker(settings),
                                             "store": store.check}
    results = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as error:  # readiness reports any failure, whatever its type
            results[name] = f"{type(error).__name__}: {error}"[:300]
    return results
