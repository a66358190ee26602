"""Per-project quotas: active experiments, trial slots and stored bytes.

Quotas are checked inside the request's transaction with the project row locked (see
:func:`api.repositories.limits.lock_project`), so two concurrent requests can never both take the last slot.
Settings of 0 mean unlimited.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.errors import QuotaExceeded, StorageQuotaExceeded
from api.repositories import limits as repository
from api.settings import Settings

UNLIMITED = 2**31 - 1


def check_experiment_quotas(*, session: Session, settings: Settings, project_id: str, concurrency: int,
                            exclude_experiment_id: str | None = None) -> None:
    """Refuse (429 ``quota-exceeded``) an experiment that would start beyond the project's active-experiment or
    trial-slot quota. ``exclude_experiment_id``: the experiment being resumed. Locks the project row."""
    max_experiments, max_trials = settings.project_max_active_experiments, settings.project_max_active_trials
    if not max_experiments and not max_trials:
        return
    repository.lock_project(session, project_id)
    active = repository.active_experiments(session, project_id, exclude=exclude_experiment_id)
    if max_experiments and len(active) >= max_experiments:
        raise QuotaExceeded(f"the project already has {len(active)} active experiments; the quota "
                              f"project_max_active_experiments is {max_experiments}")
    # Reserved, not merely running: a queued experiment will use its concurrency as soon as it is scheduled.
    reserved = sum(experiment.concurrency for experiment in active)
    if max_trials and reserved + concurrency > max_trials:
        raise QuotaExceeded(f"concurrency {concurrency} does not fit: active experiments reserve {reserved} of "
                              f"the {max_trials} trial slots of the quota project_max_active_trials")


def trial_slots_left(*, session: Session, settings: Settings, project_id: str) -> int:
    """How many more trials the project may have pending or running now (the scheduler's cap)."""
    if not settings.project_max_active_trials:
        return UNLIMITED
    return settings.project_max_active_trials - repository.active_trial_count(session, project_id)


def check_storage_quota(*, session: Session, settings: Settings, project_id: str, adding_bytes: int) -> None:
    """Refuse (413 ``storage-quota-exceeded``) storing ``adding_bytes`` more for the project. Locks the project."""
    quota = settings.project_max_storage_bytes
    if not quota:
        return
    repository.lock_project(session, project_id)
    used = repository.stored_bytes(session, project_id)
    if used + adding_bytes > quota:
        raise StorageQuotaExceeded(f"storing {adding_bytes} more bytes would exceed the quota "
                                   f"project_max_storage_bytes of {quota} bytes ({used} bytes used); delete datasets "
                                   "to free space")
