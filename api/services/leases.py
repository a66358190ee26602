"""Leases kept alive from a side thread: the one heartbeat both trials and final-model jobs use.

A long job (training) blocks its task's thread, so its lease is refreshed beside it. ``beat`` does one refresh and
answers how things stand; the job polls :meth:`Heartbeat.should_stop` (an Event read, no database round trip on the
hot path) and calls :meth:`Heartbeat.check` before each write of its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

LOST = "lease lost"


class LeaseLost(Exception):
    """Another attempt owns the resource now (this one was presumed dead); stop without writing."""


class Heartbeat:
    """Calls ``beat()`` every ``interval_s`` seconds until the block ends.

    ``beat`` returns None while all is well, :data:`LOST` when its lease-checked write was refused, or any other
    string as the reason the job should stop (e.g. its experiment is being canceled).
    """

    def __init__(self, *, name: str, interval_s: float, beat: Callable[[], str | None]) -> None:
        self._beat, self._interval = beat, interval_s
        self.lost = False
        self.stop_reason: str | None = None
        self._stop_requested, self._done = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=self._interval + 30)

    def should_stop(self) -> bool:
        return self._stop_requested.is_set()

    def check(self) -> None:
        if self.lost:
            raise LeaseLost()

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            try:
                outcome = self._beat()
            except Exception:  # a missed beat is survivable: the stale period allows for several
                log.warning("%s: heartbeat failed", self._thread.name, exc_info=True)
                continue
            if outcome == LOST:
                self.lost = True
                self._stop_requested.set()
                return
            if outcome:
                self.stop_reason = outcome
                self._stop_requested.set()
