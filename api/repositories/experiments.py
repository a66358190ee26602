"""Every query on experiments, trials, their attempts and per-epoch metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, lazyload

from api.db import utcnow
from api.orm import Experiment, Trial, TrialAttempt, TrialEpoch
from api.statuses import ACTIVE_EXPERIMENT_STATUSES, AttemptStatus, TrialStatus, check_update, sources


def add(session: Session, row: Experiment | Trial | TrialAttempt | TrialEpoch) -> None:
    session.add(row)
    session.flush()


def get_for_project(session: Session, *, project_id: str, experiment_id: str) -> Experiment | None:
    return session.scalar(select(Experiment).where(Experiment.id == experiment_id,
                                                   Experiment.project_id == project_id))


def get(session: Session, experiment_id: str) -> Experiment | None:
    return session.get(Experiment, experiment_id)


def lock(session: Session, experiment_id: str) -> Experiment | None:
    """The experiment, locked for this transaction, with ``updated_at`` bumped.

    Every change to trials that readers see goes through here, which makes ``updated_at`` the experiment's
    revision: readers memoise what they derive from the trials by it (:mod:`api.services.revision_cache`).
    The UPDATE comes first on purpose: on PostgreSQL it takes the row lock, and on SQLite it takes the database's
    write lock *before* anything is read, so two schedulers never plan from the same snapshot.
    """
    session.execute(update(Experiment).where(Experiment.id == experiment_id).values(updated_at=utcnow()))
    return session.scalar(select(Experiment).where(Experiment.id == experiment_id)
                          .with_for_update().execution_options(populate_existing=True))


def list_for_project(session: Session, *, project_id: str, limit: int, offset: int,
                     status: str | None = None) -> tuple[list[Experiment], int]:
    where = [Experiment.project_id == project_id]
    if status:
        where.append(Experiment.status == status)
    total = session.scalar(select(func.count()).select_from(Experiment).where(*where)) or 0
    rows = session.scalars(select(Experiment).where(*where).order_by(Experiment.created_at.desc(), Experiment.id)
                           .limit(limit).offset(offset)).all()
    return list(rows), total


def active_using_dataset(session: Session, dataset_id: str) -> Experiment | None:
    return session.scalar(select(Experiment).where(Experiment.dataset_id == dataset_id,
                                                   Experiment.status.in_(ACTIVE_EXPERIMENT_STATUSES)).limit(1))


def trial_counts(session: Session, experiment_id: str) -> Counter[str]:
    rows = session.execute(select(Trial.status, func.count()).where(Trial.experiment_id == experiment_id)
                           .group_by(Trial.status))
    return Counter({status: count for status, count in rows})


def trial_counts_for(session: Session, experiment_ids: list[str]) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {experiment_id: Counter() for experiment_id in experiment_ids}
    if experiment_ids:
        rows = session.execute(select(Trial.experiment_id, Trial.status, func.count())
                               .where(Trial.experiment_id.in_(experiment_ids))
                               .group_by(Trial.experiment_id, Trial.status))
        for experiment_id, status, count in rows:
            counts[experiment_id][status] = count
    return counts


def best_trials(session: Session, experiment_ids: list[str], *,
                metrics: Mapping[str, str] | None = None) -> dict[str, Trial]:
    """The leader of each experiment: best feasible succeeded trial (ties: fewer params, lower number).

    Best by validation accuracy, or by balanced accuracy (then accuracy) for an experiment whose ``metrics`` entry
    is ``balanced_accuracy`` (what its search maximised). In a Pareto search ties go to the minimised figures first
    (:func:`rank_order`), so the leader is the best metric of the first Pareto layer. One LIMIT 1 query per
    experiment walks ``ix_trials_ranking`` (accuracy), whatever the number of trials.
    """
    best = {}
    for experiment_id in experiment_ids:
        experiment = session.get(Experiment, experiment_id)  # from the session's identity map when loaded
        metric = (metrics or {}).get(experiment_id, "accuracy")
        if experiment is not None and experiment.latency_target_ms is not None:
            leader_id = _best_by_reward(session, experiment, metric=metric)
            if leader_id is not None:
                best[experiment_id] = session.get(Trial, leader_id)
            continue
        order = rank_order(metric, minimize=experiment.minimize if experiment is not None else ())
        leader = session.scalar(select(Trial).options(lazyload(Trial.epochs))
                                .where(Trial.experiment_id == experiment_id, *_RANKED).order_by(*order).limit(1))
        if leader is not None:
            best[experiment_id] = leader
    return best


def all_trials(session: Session, experiment_id: str, *, with_epochs: bool = False) -> list[Trial]:
    query = select(Trial).where(Trial.experiment_id == experiment_id).order_by(Trial.number)
    if not with_epochs:
        query = query.options(lazyload(Trial.epochs))
    return list(session.scalars(query))


def epochs_by_trial(session: Session, experiment_id: str) -> dict[str, dict[int, tuple[float, float | None, float]]]:
    """(val_accuracy, val_balanced_accuracy, val_loss) per epoch of every trial of the experiment."""
    rows = session.execute(select(TrialEpoch.trial_id, TrialEpoch.epoch, TrialEpoch.val_accuracy,
                                  TrialEpoch.val_balanced_accuracy, TrialEpoch.val_loss)
                           .join(Trial, Trial.id == TrialEpoch.trial_id)
                           .where(Trial.experiment_id == experiment_id))
    curves: dict[str, dict[int, tuple[float, float | None, float]]] = {}
    for trial_id, epoch, accuracy, balanced, loss in rows:
        curves.setdefault(trial_id, {})[epoch] = (accuracy, balanced, loss)
    return curves


def epoch_seconds_by_trial(session: Session, experiment_id: str) -> dict[str, list[float]]:
    """Measured seconds of every recorded epoch, per trial (running trials included)."""
    rows = session.execute(select(TrialEpoch.trial_id, TrialEpoch.seconds)
                           .join(Trial, Trial.id == TrialEpoch.trial_id)
                           .where(Trial.experiment_id == experiment_id))
    seconds: dict[str, list[float]] = {}
    for trial_id, value in rows:
        seconds.setdefault(trial_id, []).append(value)
    return seconds


_RANKED = (Trial.status == TrialStatus.SUCCEEDED, Trial.feasible.is_(True))
# Ties in accuracy and size go to the faster trial, so the leader is always on the Pareto front.
_RANK_ORDER = (Trial.val_accuracy.desc(), Trial.params, Trial.latency_ms, Trial.number)
_COST_COLUMNS = {"latency_ms": Trial.latency_ms, "params": Trial.params}


def rank_order(metric: str = "accuracy", *, minimize: Sequence[str] = ()) -> tuple:
    """ORDER BY of the leaderboard: validation accuracy, or for an experiment that maximises ``balanced_accuracy``
    that first (then accuracy); ties go to fewer params, then lower latency, then the earlier trial.

    A Pareto search (``minimize``: ``latency_ms`` and/or ``params``) breaks ties of its metric by the minimised
    figures first, in that order: the first trial is then on the Pareto front (nothing has a better metric, and of
    equal metrics nothing is no worse on every minimised figure yet before it)."""
    balanced = metric == "balanced_accuracy"
    score = (Trial.val_balanced_accuracy.desc().nulls_last(),) if balanced else _RANK_ORDER[:1]
    costs = tuple(_COST_COLUMNS[name].asc().nulls_last() for name in ("latency_ms", "params") if name in minimize)
    return (*score, *costs, *(_RANK_ORDER if balanced else _RANK_ORDER[1:]))


def ranking_points(session: Session, experiment_id: str, *, metric: str = "accuracy"
                   ) -> list[tuple[str, float, int, float]]:
    """(id, score, params, latency) of every ranked trial (the score: the experiment's ``metric``): columns only,
    for the Pareto front."""
    score = Trial.val_balanced_accuracy if metric == "balanced_accuracy" else Trial.val_accuracy
    rows = session.execute(select(Trial.id, score, Trial.params, Trial.latency_ms)
                           .where(Trial.experiment_id == experiment_id, *_RANKED).order_by(*rank_order(metric)))
    return [(trial_id, value or 0.0, params or 0, latency or 0.0) for trial_id, value, params, latency in rows]


def learning_rows(session: Session, experiment_id: str) -> list[tuple[str, float | None, dict | None]]:
    """(id, balanced accuracy (accuracy where none was recorded), decisions of a reference design, None for other
    networks) of every ranked trial."""
    balanced = func.coalesce(Trial.val_balanced_accuracy, Trial.val_accuracy)
    return [(trial_id, score, (decisions or {}) if reference else None)
            for trial_id, score, reference, decisions in session.execute(
                select(Trial.id, balanced, Trial.reference_design, Trial.decisions)
                .where(Trial.experiment_id == experiment_id, *_RANKED))]


def ranked_losses(session: Session, experiment_id: str, *, metric: str = "accuracy"
                  ) -> list[tuple[str, float | None, float | None]]:
    """(id, score, val_loss) of every ranked trial in :func:`rank_order` (the score: the experiment's ``metric``):
    what :func:`nas_core.ranking.pick_within_noise` chooses a final model's trial from."""
    score = Trial.val_balanced_accuracy if metric == "balanced_accuracy" else Trial.val_accuracy
    return [tuple(row) for row in session.execute(
        select(Trial.id, score, Trial.val_loss).where(Trial.experiment_id == experiment_id, *_RANKED)
        .order_by(*rank_order(metric)))]


def reward_order(rows: Sequence[tuple], target_ms: float) -> list[int]:
    """Indexes of :func:`pareto_rows` rows by MnasNet's soft-latency reward, best first (ties keep their order)."""
    from nas_core.ranking import soft_latency_reward

    rewards = [soft_latency_reward(score, latency, target_ms) if score is not None else float("-inf")
               for *_, score, _params, latency in rows]
    return sorted(range(len(rows)), key=lambda index: -rewards[index])


def _best_by_reward(session: Session, experiment: Experiment, *, metric: str) -> str | None:
    rows = pareto_rows(session, experiment.id, metric=metric, minimize=())
    order = reward_order(rows, experiment.latency_target_ms)
    return rows[order[0]][0] if order else None


def pareto_rows(session: Session, experiment_id: str, *, metric: str, minimize: Sequence[str]) -> list[tuple]:
    """(id, status, finished_at, score, params, latency_ms) of every ranked trial in :func:`rank_order`, the score
    being the experiment's ``metric``: what the leaderboard of a Pareto search sorts into layers (and that of a search
    with a soft latency target by reward)."""
    score = Trial.val_balanced_accuracy if metric == "balanced_accuracy" else Trial.val_accuracy
    return [tuple(row) for row in session.execute(
        select(Trial.id, Trial.status, Trial.finished_at, score, Trial.params, Trial.latency_ms)
        .where(Trial.experiment_id == experiment_id, *_RANKED).order_by(*rank_order(metric, minimize=minimize)))]


def ranked_versions(session: Session, experiment_id: str, *, limit: int, offset: int,
                    metric: str = "accuracy") -> list[tuple]:
    """(id, status, finished_at) of a page of succeeded feasible trials, best first by the experiment's ``metric``
    (:func:`rank_order`); by accuracy, read from ``ix_trials_ranking`` alone."""
    return [tuple(row) for row in session.execute(
        select(Trial.id, Trial.status, Trial.finished_at).where(Trial.experiment_id == experiment_id, *_RANKED)
        .order_by(*rank_order(metric)).limit(limit).offset(offset))]


def trial_versions(session: Session, *, experiment_id: str, limit: int, offset: int,
                   status: str | None = None) -> tuple[list[tuple], int]:
    """(id, status, finished_at) of a page of trials in number order, and how many trials match."""
    where = [Trial.experiment_id == experiment_id]
    if status:
        where.append(Trial.status == status)
    total = session.scalar(select(func.count()).select_from(Trial).where(*where)) or 0
    rows = session.execute(select(Trial.id, Trial.status, Trial.finished_at).where(*where)
                           .order_by(Trial.number).limit(limit).offset(offset))
    return [tuple(row) for row in rows], total


_EPOCH_FIELDS = ("epoch", "val_accuracy", "val_balanced_accuracy", "val_loss", "train_loss", "seconds")


def trial_rows(session: Session, trial_ids: list[str], fields: Sequence[str]) -> list[dict[str, Any]]:
    """These trials as plain dicts of ``fields`` (columns of ``trials``, ``id`` among them, and ``epochs``: their
    curve as dicts), in no particular order. Two queries, no ORM objects: what trial pages render from."""
    columns = [Trial.__table__.c[name] for name in fields if name != "epochs"]
    rows = [dict(row) for row in session.execute(select(*columns).where(Trial.id.in_(trial_ids))).mappings()]
    if "epochs" in fields:
        curves: dict[str, list[dict[str, Any]]] = {trial_id: [] for trial_id in trial_ids}
        for trial_id, *values in session.execute(
                select(TrialEpoch.trial_id, *(getattr(TrialEpoch, name) for name in _EPOCH_FIELDS))
                .where(TrialEpoch.trial_id.in_(trial_ids)).order_by(TrialEpoch.trial_id, TrialEpoch.epoch)):
            curves[trial_id].append(dict(zip(_EPOCH_FIELDS, values)))
        for row in rows:
            row["epochs"] = curves[row["id"]]
    return rows


def get_trial(session: Session, trial_id: str, *, for_update: bool = False) -> Trial | None:
    query = select(Trial).where(Trial.id == trial_id).options(lazyload(Trial.epochs))
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def shorter_run(session: Session, experiment: Experiment, trial: Trial) -> Trial | None:
    """The succeeded trial of ``trial``'s experiment that trained the same candidate (network and recipe) for half
    as many epochs: the run a promoted trial (a lengthened search's) trains on from."""
    same = session.scalars(select(Trial).where(
        Trial.experiment_id == experiment.id, Trial.arch_hash == trial.arch_hash, Trial.id != trial.id,
        Trial.status == TrialStatus.SUCCEEDED.value).options(lazyload(Trial.epochs)).order_by(Trial.number))
    return next((other for other in same if other.arch == trial.arch
                 and 2 * experiment.epochs_of(other) == experiment.epochs_of(trial)), None)


def get_trial_for_experiment(session: Session, *, experiment_id: str, trial_id: str) -> Trial | None:
    return session.scalar(select(Trial).where(Trial.id == trial_id, Trial.experiment_id == experiment_id))


def get_trial_by_number(session: Session, *, experiment_id: str, number: int, for_update: bool = False
                        ) -> Trial | None:
    query = select(Trial).where(Trial.experiment_id == experiment_id, Trial.number == number) \
        .options(lazyload(Trial.epochs))
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def trial_stop_requested(session: Session, trial_id: str) -> bool:
    """Whether a user asked the trial to stop (one narrow read, on every heartbeat of a running trial)."""
    return session.scalar(select(Trial.stop_requested_at).where(Trial.id == trial_id)) is not None


def cancel_pending_trials(session: Session, experiment_id: str, *, reason: str) -> int:
    values = {"status": TrialStatus.CANCELED.value, "error": reason, "finished_at": utcnow()}
    check_update(TrialStatus, [TrialStatus.PENDING], values)
    result = session.execute(update(Trial).where(Trial.experiment_id == experiment_id,
                                                 Trial.status == TrialStatus.PENDING).values(**values))
    return result.rowcount


def update_leased_trial(session: Session, trial_id: str, lease_token: str, **values: Any) -> bool:
    """Write ``values`` only while ``lease_token`` holds the trial's lease; False means the lease was lost."""
    check_update(TrialStatus, [TrialStatus.RUNNING], values)
    result = session.execute(update(Trial).where(Trial.id == trial_id, Trial.lease_token == lease_token,
                                                 Trial.status == TrialStatus.RUNNING).values(**values))
    return result.rowcount == 1


def update_attempt(session: Session, lease_token: str, **values: Any) -> None:
    """Write ``values`` to the attempt holding ``lease_token``; a new status only over one that may precede it."""
    where = [TrialAttempt.lease_token == lease_token]
    if "status" in values:
        where.append(TrialAttempt.status.in_(sources(AttemptStatus, values["status"])))
    session.execute(update(TrialAttempt).where(*where).values(**values))


def clear_epochs(session: Session, trial_id: str, *, after: int = 0) -> None:
    """Delete the trial's recorded epochs after epoch ``after`` (all of them by default)."""
    session.execute(delete(TrialEpoch).where(TrialEpoch.trial_id == trial_id, TrialEpoch.epoch > after))


def upsert_epoch(session: Session, epoch: TrialEpoch) -> None:
    session.merge(epoch)
    session.flush()


def stale_running_trial_ids(session: Session, *, older_than: datetime) -> list[str]:
    return list(session.scalars(select(Trial.id).where(Trial.status == TrialStatus.RUNNING,
                                                       Trial.heartbeat_at < older_than)))


def experiments_needing_schedule(session: Session, *, older_than: datetime) -> list[str]:
    """Active experiments untouched for a while: a lost message or a crash between commit and enqueue."""
    return list(session.scalars(select(Experiment.id).where(Experiment.status.in_(ACTIVE_EXPERIMENT_STATUSES),
                                                            Experiment.updated_at < older_than)))


def stale_pending_trial_ids(session: Session, *, older_than: datetime) -> list[str]:
    not_nudged_since = Trial.heartbeat_at.is_(None) | (Trial.heartbeat_at < older_than)
    return list(session.scalars(select(Trial.id).where(Trial.status == TrialStatus.PENDING,
                                                       Trial.created_at < older_than, not_nudged_since)))


def attempts_for_trial(session: Session, trial_id: str) -> list[TrialAttempt]:
    return list(session.scalars(select(TrialAttempt).where(TrialAttempt.trial_id == trial_id)
                                .order_by(TrialAttempt.number)))


def nudge_pending_trial(session: Session, trial_id: str, *, older_than: datetime) -> bool:
    """Stamp ``heartbeat_at`` of a trial still ``pending`` and not nudged since ``older_than`` (its message is sent
    again); False when a claim or another sweep got there first, so concurrent reapers send it once."""
    not_nudged_since = Trial.heartbeat_at.is_(None) | (Trial.heartbeat_at < older_than)
    result = session.execute(update(Trial)
                             .where(Trial.id == trial_id, Trial.status == TrialStatus.PENDING, not_nudged_since)
                             .values(heartbeat_at=utcnow()))
    return result.rowcount == 1
