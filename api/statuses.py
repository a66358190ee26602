"""The status vocabularies of datasets, experiments, trials, trial attempts and final models, and the only moves
between their values.

Each vocabulary is a ``StrEnum`` whose members equal the strings stored and served (``TrialStatus.RUNNING ==
"running"``), with one transition table: ``{status: the statuses it may become}``. :func:`check_transition`
refuses any other move. Every ORM write of a ``status`` attribute goes through it (``api.orm`` listens), and the
repositories' conditional UPDATEs check theirs with :func:`check_update`.

>>> check_transition(TrialStatus, "pending", "running")
>>> check_transition(TrialStatus, "succeeded", "running")
Traceback (most recent call last):
...
api.statuses.IllegalTransition: a trial cannot go from succeeded to running (succeeded is final)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """The base of every status vocabulary (no members of its own)."""


class DatasetStatus(Status):
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class ExperimentStatus(Status):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELING = "canceling"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class TrialStatus(Status):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PRUNED = "pruned"
    STOPPED = "stopped"
    FAILED = "failed"
    CANCELED = "canceled"


class AttemptStatus(Status):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PRUNED = "pruned"
    STOPPED = "stopped"
    FAILED = "failed"
    CANCELED = "canceled"
    LOST = "lost"


class ModelStatus(Status):
    QUEUED = "queued"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"


_D, _E, _T, _A, _M = DatasetStatus, ExperimentStatus, TrialStatus, AttemptStatus, ModelStatus

# One table per vocabulary; a status missing from a row's set can never follow it. Staying in a status is no move.
TRANSITIONS: Mapping[type[Status], Mapping[Status, frozenset[Status]]] = {
    DatasetStatus: {
        _D.PROCESSING: frozenset({_D.READY, _D.FAILED}),  # ingest ends, or gives up after its attempts
        _D.READY: frozenset(),
        _D.FAILED: frozenset(),
    },
    ExperimentStatus: {
        _E.QUEUED: frozenset({_E.RUNNING, _E.CANCELING, _E.CANCELED}),  # scheduled, or canceled first
        _E.RUNNING: frozenset({_E.CANCELING, _E.CANCELED, _E.SUCCEEDED, _E.FAILED}),
        _E.CANCELING: frozenset({_E.CANCELED}),  # once its last running trial has stopped
        # A resume continues a finished search with the budget left (a succeeded one only with a raised budget).
        _E.CANCELED: frozenset({_E.RUNNING}),
        _E.SUCCEEDED: frozenset({_E.RUNNING}),
        _E.FAILED: frozenset({_E.RUNNING}),
    },
    TrialStatus: {
        # Claimed by a worker; stopped on request; canceled with its experiment; failed after too many lost workers.
        _T.PENDING: frozenset({_T.RUNNING, _T.STOPPED, _T.CANCELED, _T.FAILED}),
        # Ends its attempt, or goes back to pending when its worker is lost (the same trial runs again).
        _T.RUNNING: frozenset({_T.PENDING, _T.SUCCEEDED, _T.PRUNED, _T.STOPPED, _T.FAILED, _T.CANCELED}),
        # A search without any finished trial keeps the best one stopped early as its answer.
        _T.PRUNED: frozenset({_T.SUCCEEDED}),
        _T.SUCCEEDED: frozenset(),
        _T.STOPPED: frozenset(),
        _T.FAILED: frozenset(),
        _T.CANCELED: frozenset(),
    },
    AttemptStatus: {
        _A.RUNNING: frozenset({_A.SUCCEEDED, _A.PRUNED, _A.STOPPED, _A.FAILED, _A.CANCELED, _A.LOST}),
        _A.SUCCEEDED: frozenset(),
        _A.PRUNED: frozenset(),
        _A.STOPPED: frozenset(),
        _A.FAILED: frozenset(),
        _A.CANCELED: frozenset(),
        _A.LOST: frozenset(),
    },
    ModelStatus: {
        _M.QUEUED: frozenset({_M.RUNNING, _M.FAILED}),  # claimed, or refused (attempts used, trial or data gone)
        # Built, failed, or queued again after an outage or a lost worker (a stale one is claimed anew).
        _M.RUNNING: frozenset({_M.QUEUED, _M.READY, _M.FAILED}),
        _M.READY: frozenset(),
        _M.FAILED: frozenset(),
    },
}

# The entity each vocabulary belongs to, as error messages name it.
ENTITIES: Mapping[type[Status], str] = {DatasetStatus: "dataset", ExperimentStatus: "experiment",
                                        TrialStatus: "trial", AttemptStatus: "trial attempt", ModelStatus: "model"}

ACTIVE_EXPERIMENT_STATUSES = (_E.QUEUED, _E.RUNNING, _E.CANCELING)
FINISHED_EXPERIMENT_STATUSES = (_E.SUCCEEDED, _E.FAILED, _E.CANCELED)
ACTIVE_TRIAL_STATUSES = (_T.PENDING, _T.RUNNING)
FINISHED_TRIAL_STATUSES = frozenset(TrialStatus) - frozenset(ACTIVE_TRIAL_STATUSES)
# The trial statuses that use up ``max_trials``: all but canceled (a canceled trial gives its place back).
BUDGET_TRIAL_STATUSES = tuple(status for status in TrialStatus if status != _T.CANCELED)


class IllegalTransition(Exception):
    """A status write that the vocabulary's transition table does not allow: a bug, never a user's error."""

    def __init__(self, entity: str, old: str, new: str, reason: str) -> None:
        super().__init__(f"a {entity} cannot go from {old} to {new} ({reason})")
        self.entity, self.old, self.new = entity, old, new


def values(vocabulary: type[Status]) -> tuple[str, ...]:
    """The plain strings of a vocabulary, in declaration order: ``values(ModelStatus)[0] == "queued"``."""
    return tuple(status.value for status in vocabulary)


def check_status(vocabulary: type[Status], value: Any) -> Status:
    """``value`` as a member of ``vocabulary``; ValueError names the entity when it is none of them."""
    try:
        return vocabulary(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a {ENTITIES[vocabulary]} status; one of {list(values(vocabulary))}") \
            from None


def can_become(vocabulary: type[Status], old: str, new: str) -> bool:
    """Whether a ``vocabulary`` status ``old`` may be followed by ``new`` (staying put always may)."""
    old, new = check_status(vocabulary, old), check_status(vocabulary, new)
    return old == new or new in TRANSITIONS[vocabulary][old]


def check_transition(vocabulary: type[Status], old: str, new: str) -> None:
    """Refuse a move the table of ``vocabulary`` does not list: IllegalTransition names the entity, old and new."""
    if not can_become(vocabulary, old, new):
        allowed = sorted(TRANSITIONS[vocabulary][vocabulary(old)])
        reason = f"{old} is final" if not allowed else f"from {old} only to {', '.join(allowed)}"
        raise IllegalTransition(ENTITIES[vocabulary], str(old), str(new), reason)


def sources(vocabulary: type[Status], new: str) -> tuple[Status, ...]:
    """The statuses that may become ``new`` (``new`` itself included), in declaration order."""
    return tuple(old for old in vocabulary if can_become(vocabulary, old, new))


def check_update(vocabulary: type[Status], expected: Iterable[str], changes: Mapping[str, Any]) -> None:
    """Check a conditional UPDATE before it runs: every status its WHERE clause accepts (``expected``) may become
    the ``status`` it writes (``changes``: its SET values), if it writes one."""
    if "status" in changes:
        for old in expected:
            check_transition(vocabulary, old, changes["status"])


__all__ = ["ACTIVE_EXPERIMENT_STATUSES", "ACTIVE_TRIAL_STATUSES", "BUDGET_TRIAL_STATUSES", "ENTITIES",
           "FINISHED_EXPERIMENT_STATUSES", "FINISHED_TRIAL_STATUSES",
           "TRANSITIONS", "AttemptStatus", "DatasetStatus", "ExperimentStatus", "IllegalTransition", "ModelStatus",
           "Status", "TrialStatus", "can_become", "check_status", "check_transition", "check_update", "sources",
           "values"]
