"""Trials as JSON documents, rendered once: what trial lists and leaderboards are assembled from.

A trial that has finished (succeeded, pruned, stopped, failed or canceled) no longer changes, so its document — the
``TrialRead`` JSON with its curve — is rendered once per process and reused, keyed by ``(id, status, finished_at)``:
a trial that runs again (a reaped attempt, a resumed search) changes its status and its finish time, so a stale
document is never served. Pages of a large experiment then cost one narrow query for the page's keys plus the
documents of trials still running.

The cache is bounded in bytes (least recently used documents go first) and private to each API process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from api.repositories import experiments as repository
from api.schemas.experiments import TrialRead
from api.statuses import FINISHED_TRIAL_STATUSES

CACHE_BYTES = 64 * 1024 * 1024  # per API process; about 20,000 documents of the default search space

_TRIAL = TypeAdapter(TrialRead)
_FIELDS = tuple(TrialRead.model_fields)


class TrialVersion(NamedTuple):
    """What identifies one state of a trial's document (read from the narrow page query)."""

    id: str
    status: str
    finished_at: datetime | None


class DocumentCache:
    """A thread-safe LRU of rendered documents bounded by their total size."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes, self.size = max_bytes, 0
        self._documents: OrderedDict[TrialVersion, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version: TrialVersion) -> bytes | None:
        with self._lock:
            document = self._documents.get(version)
            if document is not None:
                self._documents.move_to_end(version)
            return document

    def put(self, version: TrialVersion, document: bytes) -> None:
        if len(document) > self.max_bytes:
            return
        with self._lock:
            previous = self._documents.pop(version, None)
            self.size += len(document) - (len(previous) if previous is not None else 0)
            self._documents[version] = document
            while self.size > self.max_bytes:
                _, evicted = self._documents.popitem(last=False)
                self.size -= len(evicted)


_cache = DocumentCache()


def render(trial: dict) -> bytes:
    """One trial (a dict of ``TrialRead``'s fields) as the JSON of ``TrialRead``, validated on the way."""
    return _TRIAL.dump_json(_TRIAL.validate_python(trial))


def documents(session: Session, versions: Sequence[TrialVersion]) -> list[bytes]:
    """The documents of ``versions`` in their order: cached ones reused, the others loaded in one query."""
    found: dict[str, bytes] = {}
    for version in versions:
        if version.status in FINISHED_TRIAL_STATUSES and (document := _cache.get(version)) is not None:
            found[version.id] = document
    missing = [version.id for version in versions if version.id not in found]
    if missing:
        for trial in repository.trial_rows(session, missing, _FIELDS):
            found[trial["id"]] = document = render(trial)
            if trial["status"] in FINISHED_TRIAL_STATUSES:
                _cache.put(TrialVersion(trial["id"], trial["status"], trial["finished_at"]), document)
    return [found[version.id] for version in versions if version.id in found]


def json_array(items: Sequence[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


def with_rank(document: bytes, rank: int, *, pareto_layer: int | None = None) -> bytes:
    """A trial document with ``rank`` and ``pareto_layer`` (null but in a Pareto search) added: a ``RankedTrial``."""
    layer = b"null" if pareto_layer is None else b"%d" % pareto_layer
    return b'{"rank":%d,"pareto_layer":%s,%s' % (rank, layer, document[1:])


__all__ = ["DocumentCache", "TrialVersion", "documents", "json_array", "render", "with_rank"]
