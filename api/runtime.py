"""Process-wide handles for code outside a request (worker tasks, CLI): settings, engine, sessions, store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.db import make_engine, make_sessionmaker, unit_of_work
from api.settings import Settings, get_settings
from api.storage import ObjectStore, store_from_settings


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    engine: Engine
    sessionmaker: sessionmaker[Session]
    store: ObjectStore

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        with unit_of_work(self.sessionmaker) as session:
            yield session


def build_runtime(settings: Settings) -> Runtime:
    engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
    return Runtime(settings=settings, engine=engine, sessionmaker=make_sessionmaker(engine),
                   store=store_from_settings(settings))


@lru_cache(maxsize=1)
def get_runtime() -> Runtime:
    return build_runtime(get_settings())
