"""The reaper: one thread in every worker process that finds the work a crash or a lost message left behind.

It sweeps three kinds, each on its own interval and once right at start:

- datasets left ``processing`` (every ``reaper_interval_s``): ingestion enqueued again;
- dead trial attempts, pending trials and idle experiments whose messages were lost (every
  ``trial_reaper_interval_s``): new attempts, messages sent again, experiments rescheduled;
- models whose job stopped heartbeating or whose message was lost (every ``trial_reaper_interval_s``).

Every sweep is idempotent and safe to run from many workers at once (conditional UPDATEs and row locks decide which
sweep acts on a row), so there is no leader and no separate scheduler process. A thread rather than a periodic task:
it runs in the worker's main process while the pool trains, where a reap message would wait in a queue behind hours
of trials, and whichever queues a worker consumes (ingest, trials, models) it recovers all three kinds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from api.services import datasets
from api.services.models import reaper as models_reaper
from api.services.search import reaper as search_reaper
from api.settings import Settings

log = logging.getLogger(__name__)

UnitOfWork = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True, slots=True)
class Sweep:
    """One kind of stale work: how often to look for it and the service command that handles it."""

    name: str
    interval_s: Callable[[Settings], float]
    reap: Callable[..., Any]  # reap(*, session, settings) -> what it acted on


SWEEPS = (
    Sweep("datasets", lambda settings: settings.reaper_interval_s, datasets.reap_stale_datasets),
    Sweep("trials", lambda settings: settings.trial_reaper_interval_s, search_reaper.reap),
    Sweep("models", lambda settings: settings.trial_reaper_interval_s, models_reaper.reap_stale_models),
)
SWEEPS_BY_NAME = {sweep.name: sweep for sweep in SWEEPS}


def sweep(name: str, *, unit_of_work: UnitOfWork, settings: Settings) -> Any:
    """Run one sweep (``"datasets"``, ``"trials"`` or ``"models"``) in a transaction of its own; returns what it
    acted on. Its messages are sent once the transaction commits."""
    with unit_of_work() as session:
        return SWEEPS_BY_NAME[name].reap(session=session, settings=settings)


def sweep_all(*, unit_of_work: UnitOfWork, settings: Settings) -> dict[str, Any]:
    """Run every sweep once, each in its own transaction: ``{"datasets": [...], "trials": {...}, "models": [...]}``.

    >>> sweep_all(unit_of_work=runtime.unit_of_work, settings=runtime.settings)  # doctest: +SKIP
    {'datasets': [], 'trials': {'trials': [], 'experiments': []}, 'models': []}
    """
    return {name: sweep(name, unit_of_work=unit_of_work, settings=settings) for name in SWEEPS_BY_NAME}


class Reaper(threading.Thread):
    """Runs each sweep right away, then again each time its interval passes, until :meth:`stop`; a failed sweep
    (database unreachable) is logged and tried again at its next turn, without holding back the others."""

    def __init__(self, *, unit_of_work: UnitOfWork, settings: Settings) -> None:
        super().__init__(name="nas-reaper", daemon=True)
        self.unit_of_work, self.settings = unit_of_work, settings
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        due = dict.fromkeys(SWEEPS_BY_NAME, time.monotonic())  # all at once at start
        while not self._stopped.is_set():
            for current in SWEEPS:
                if due[current.name] > time.monotonic():
                    continue
                try:
                    sweep(current.name, unit_of_work=self.unit_of_work, settings=self.settings)
                except Exception:
                    log.warning("reaper: %s sweep failed", current.name, exc_info=True)
                due[current.name] = time.monotonic() + current.interval_s(self.settings)
            self._stopped.wait(max(0.0, min(due.values()) - time.monotonic()))


_reaper: Reaper | None = None


def start(*, unit_of_work: UnitOfWork, settings: Settings) -> Reaper:
    """Start this process's reaper (once; a second call returns the running one)."""
    global _reaper
    if _reaper is None or not _reaper.is_alive():
        _reaper = Reaper(unit_of_work=unit_of_work, settings=settings)
        _reaper.start()
        log.info("reaper started: datasets every %ss, trials and models every %ss", settings.reaper_interval_s,
                 settings.trial_reaper_interval_s)
    return _reaper


def stop() -> None:
    """Ask this process's reaper to stop (it is a daemon thread: a sweep in progress does not delay the exit)."""
    if _reaper is not None:
        _reaper.stop()
