"""Engine, sessions and the unit of work shared by request handlers and task wrappers.

Services never commit: whoever opens the unit of work (the request dependency, a task wrapper, a CLI command)
commits on success or rolls back on error. Side effects that must only happen once the data is durable (enqueueing
a task, deleting objects) are registered with :func:`run_after_commit`.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from pathlib import Path

import orjson
from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

# Deterministic constraint names keep Alembic diffs stable across PostgreSQL and SQLite (batch mode needs them).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite hands back naive datetimes otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use utcnow()")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


# What commands that manage their own transactions take: a factory of units of work (see ``unit_of_work``).
UnitOfWork = Callable[[], AbstractContextManager[Session]]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    """A fresh resource id: uuid4 as 32 hex characters (URL-safe, same on every backend)."""
    return uuid.uuid4().hex


SQLITE_MMAP_BYTES = 1024**3  # address space only; the OS pages in what is read


def _json_loads(text: str | bytes):
    """JSON columns are parsed with orjson (several times faster on wide trial rows); values it refuses, such as the
    ``NaN`` that the standard library writes, still parse the standard way."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for ``url`` keeping ``pool_size`` connections (bursts up to 4x that); SQLite gets WAL, foreign keys
    and a busy timeout so API and worker can share it."""
    pool = {"pool_size": pool_size, "max_overflow": 3 * pool_size}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               json_deserializer=_json_loads, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL is still safe against process crashes (only a power loss may drop the last
            # commits) and saves an fsync per commit: per-epoch writes of short trials add up.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Pages read through a memory map: every commit by another connection empties this connection's page
            # cache, and re-reading it with one system call per page dominated small queries under write load.
            cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, json_deserializer=_json_loads, **pool)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: services return ORM objects that routes turn into schemas after the commit.
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block succeeds, roll back when it raises."""
    session = factory()
    try:
        yield session
    except BaseException:
        end_unit_of_work(session, commit=False)
        raise
    end_unit_of_work(session, commit=True)


def end_unit_of_work(session: Session, *, commit: bool) -> None:
    """Commit (or roll back) and close; a failed commit is rolled back before the error propagates."""
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def storable_text(text: str, *, max_chars: int | None = None) -> str:
    r"""``text`` as every backend can store it and a person can read it: control characters (NUL among them, which
    PostgreSQL text refuses) become visible escapes, and the result is cut to ``max_chars``.

    >>> storable_text("cat/evil\x00.png")
    'cat/evil\\x00.png'
    """
    escaped = _CONTROL_CHARACTERS.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
    return escaped if max_chars is None or len(escaped) <= max_chars else escaped[:max_chars - 3] + "..."


def run_after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's current transaction is committed; drop it on rollback."""
    session.info.setdefault("after_commit", []).append(callback)


def run_after_rollback(session: Session, callback: Callable[[], None]) -> None:
    """Undo a side effect made ahead of its rows (an object stored before its row is committed) if the session's
    current transaction rolls back instead; dropped on commit."""
    session.info.setdefault("after_rollback", []).append(callback)


def _run_callbacks(session: Session, kind: str) -> None:
    for callback in session.info.pop(kind, []):
        try:
            callback()
        except Exception:  # a failed side effect is retried by its owner (the reaper) or leaves a harmless orphan
            log.exception("%s callback %r failed", kind, callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit_callbacks(session: Session) -> None:
    session.info.pop("after_rollback", None)
    _run_callbacks(session, "after_commit")


@event.listens_for(Session, "after_rollback")
def _run_after_rollback_callbacks(session: Session) -> None:
    session.info.pop("after_commit", None)
    _run_callbacks(session, "after_rollback")
