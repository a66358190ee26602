"""Per-process memo of values derived from an experiment's trials, valid for one revision of the experiment.

Every change to an experiment's trials that readers can see — a trial created, claimed, finished, reaped or
canceled — happens with the experiment locked, and locking bumps ``experiments.updated_at``
(:func:`api.repositories.experiments.lock`). That timestamp is therefore the experiment's revision: a value computed
in a transaction that read revision R is valid for as long as the experiment row still says R. Polled pages of a
large experiment (progress counters, leaderboard, trial pages) then cost one primary-key read instead of scans over
every trial. What changes without the lock — a running trial's epochs and current accuracy — is never memoised.

A value may come from a state newer than the revision it is filed under (PostgreSQL's read committed sees commits
between statements); never older, since it is computed after the revision was read. So it is never stale.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
MAX_ENTRIES = 4096  # values are small (counters, id lists); the trial documents they refer to are cached apart


class RevisionCache:
    """An LRU of ``key -> (revision, value)``: a lookup with another revision recomputes and replaces the value."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._values: OrderedDict[Hashable, tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, revision: Any) -> Any | None:
        """The value filed under ``key`` for ``revision``; None when there is none (or it is another revision's)."""
        with self._lock:
            cached = self._values.get(key)
            if cached is None or cached[0] != revision:
                return None
            self._values.move_to_end(key)
            return cached[1]

    def put(self, key: Hashable, revision: Any, value: Any) -> None:
        with self._lock:
            self._values[key] = (revision, value)
            self._values.move_to_end(key)
            while len(self._values) > self.max_entries:
                self._values.popitem(last=False)

    def get_or_compute(self, key: Hashable, revision: Any, compute: Callable[[], T]) -> T:
        value = self.get(key, revision)
        if value is None:
            value = compute()
            self.put(key, revision, value)
        return value


__all__ = ["RevisionCache"]
