"""The search loop as worker commands: plan trials, run one trial under a lease, reap dead attempts.

Everything here is a function of the database. ``schedule`` rebuilds the strategy's history from the trials table
under the experiment's row lock, so any worker can continue any experiment after any crash, and two workers never
hand out the same trial number. ``run_trial`` executes one *attempt* of a trial: it takes a lease (a fresh token
stored on the trial), keeps a heartbeat while it trains, and every write it makes carries the token — once the reaper
has handed the trial to a new attempt, the old one can no longer write anything.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from datetime import timedelta
from functools import lru_cache
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.orm import Session

from api.db import UnitOfWork, utcnow
from api.models import Experiment, Trial, TrialAttempt, TrialEpoch
from api.queue import enqueue_after_commit
from api.repositories import datasets as dataset_repository
from api.repositories import experiments as repository
from api.services import limits as limits_service
from api.services.leases import LOST, Heartbeat, LeaseLost
from api.settings import Settings
from api.storage import ObjectStore

log = logging.getLogger(__name__)

RUN_TRIAL_TASK = "nas.trials.run"
SCHEDULE_TASK = "nas.experiments.schedule"
# Errors that condemn the candidate (bad architecture, diverged training, out of memory), not the machine: the
# trial is marked failed. Anything else (database or storage unreachable) escapes, and the reaper retries the trial.
DOMAIN_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, ValueError, ArithmeticError, MemoryError,
                                                   SoftTimeLimitExceeded)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def trial_seed(experiment_seed: int, number: int) -> int:
    """Each trial's own seed: reproducible from the experiment's seed and the trial number."""
    return (experiment_seed * 1_000_003 + number * 7_919) % (2**31 - 1)


def search_space_for(experiment: Experiment):
    return _search_space(json.dumps(experiment.search_space or {}, sort_keys=True))


@lru_cache(maxsize=64)
def _search_space(overrides_json: str):
    # Spaces are immutable; parsing the overrides once per process keeps scheduling cheap for short trials.
    from nas_core.space import default_search_space

    return default_search_space().with_overrides(json.loads(overrides_json))


def make_strategy_from(name: str, settings: dict[str, Any]):
    """The engine's strategy ``name`` with ``settings``; ValueError names what is wrong."""
    from nas_core.strategies import make_strategy

    return make_strategy(name, **settings)


def strategy_for(experiment: Experiment):
    return make_strategy_from(experiment.strategy, experiment.strategy_settings or {})


def history_records(session: Session, experiment_id: str, *, exclude: str | None = None) -> list:
    """The experiment's trials as the engine sees them (``TrialRecord``), oldest first."""
    from nas_core.params import TrialRecord

    curves = repository.epochs_by_trial(session, experiment_id)
    records = []
    for trial in repository.all_trials(session, experiment_id):
        if trial.id == exclude:
            continue
        curve = curves.get(trial.id, {})
        value = trial.val_accuracy
        if trial.status == "pruned" and value is None and curve:
            value = curve[max(curve)]
        records.append(TrialRecord(number=trial.number, decisions=trial.decisions, status=trial.status,
                                   value=value, feasible=trial.feasible, intermediate=curve))
    return records


# ---------------------------------------------------------------------------------------------------------------
# Scheduling


def elapsed_seconds(experiment: Experiment) -> float:
    running = (utcnow() - experiment.running_since).total_seconds() if experiment.running_since else 0.0
    return experiment.elapsed_s + running


def time_is_up(experiment: Experiment) -> bool:
    max_minutes = (experiment.budget or {}).get("max_minutes")
    return bool(max_minutes) and elapsed_seconds(experiment) >= max_minutes * 60


def stop_clock(experiment: Experiment) -> None:
    experiment.elapsed_s = elapsed_seconds(experiment)
    experiment.running_since = None


def schedule(*, session: Session, settings: Settings, experiment_id: str) -> list[str]:
    """Plan as many trials as concurrency and budget allow, or finish the experiment; returns new trial ids.

    Runs inside the caller's transaction with the experiment locked; trial tasks are enqueued after commit.
    """
    experiment = repository.lock(session, experiment_id)
    if experiment is None:
        return []
    if experiment.status == "queued":
        experiment.status, experiment.running_since = "running", utcnow()
    if experiment.status not in ("running", "canceling"):
        return []
    counts = repository.trial_counts(session, experiment_id)
    active = counts["pending"] + counts["running"]
    if experiment.status == "canceling":
        if active == 0:
            _finish(session, settings, experiment, "canceled")
        return []
    out_of_time = time_is_up(experiment)
    if out_of_time and counts["pending"]:
        repository.cancel_pending_trials(session, experiment_id, reason="time budget spent")
        active -= counts["pending"]
    used = sum(counts[status] for status in ("pending", "running", "succeeded", "pruned", "failed"))
    room = 0 if out_of_time else min(experiment.concurrency - active, experiment.budget["max_trials"] - used)
    if room > 0:
        room = min(room, limits_service.trial_slots_left(session=session, settings=settings,
                                                         project_id=experiment.project_id))
        if room <= 0:
            return []  # the project's trial slots are taken: wait (the reaper reschedules idle experiments)
    if room <= 0:
        if active == 0:
            _finish(session, settings, experiment, _final_status(counts), counts=counts, out_of_time=out_of_time)
        return []
    return _create_trials(session, experiment, room)


def _create_trials(session: Session, experiment: Experiment, count: int) -> list[str]:
    space = search_space_for(experiment)
    history = history_records(session, experiment.id)
    proposals = strategy_for(experiment).ask(space.param_space, history, count, seed=experiment.seed,
                                             budget=experiment.budget["max_trials"])
    created = []
    for decisions in proposals:
        candidate = space.decode(decisions)
        experiment.trials_created += 1
        trial = Trial(experiment_id=experiment.id, number=experiment.trials_created, status="pending",
                      decisions=dict(decisions), arch=candidate.to_dict(), arch_hash=candidate.arch.hash(),
                      seed=trial_seed(experiment.seed, experiment.trials_created))
        repository.add(session, trial)
        enqueue_after_commit(session, RUN_TRIAL_TASK, args=[trial.id], queue="trials")
        created.append(trial.id)
    return created


def _final_status(counts) -> str:
    return "succeeded" if counts["succeeded"] else "failed"


def _finish(session: Session, settings: Settings, experiment: Experiment, status: str, *, counts=None,
            out_of_time: bool = False) -> None:
    stop_clock(experiment)
    experiment.status, experiment.finished_at = status, utcnow()
    if status == "failed":
        summary = ", ".join(f"{counts[s]} {s}" for s in ("failed", "pruned", "canceled") if counts and counts[s])
        experiment.detail = f"no trial succeeded ({summary or 'no trials ran'})"
        if out_of_time and not (counts and (counts["failed"] or counts["pruned"])):
            experiment.detail = "the time budget was spent before any trial finished"
    elif status == "succeeded":
        experiment.detail = "time budget spent" if out_of_time else None
        if experiment.auto_model and settings.auto_model:
            from api.errors import APIError
            from api.services import models as models_service

            try:
                with session.begin_nested():  # a refused model must not undo the experiment's finish
                    # The same gate as a requested model: none is built while the storage quota is full.
                    limits_service.check_storage_quota(session=session, settings=settings,
                                                       project_id=experiment.project_id, adding_bytes=1)
                    models_service.create_model(session=session, settings=settings,
                                                project_id=experiment.project_id, experiment=experiment)
            except APIError as error:
                log.warning("experiment %s: no final model: %s", experiment.id, error.detail)
                experiment.detail = experiment.detail or f"no final model: {error.detail}"
    log.info("experiment %s %s", experiment.id, status)


# ---------------------------------------------------------------------------------------------------------------
# Running one trial


def stop_reason(experiment: Experiment | None) -> str | None:
    """Why a running trial of ``experiment`` should stop now, if it should."""
    if experiment is None or experiment.status == "canceling":
        return "experiment canceled"
    if time_is_up(experiment):
        return "time budget spent"
    return None


def _trial_beat(*, unit_of_work: UnitOfWork, trial_id: str, experiment_id: str, lease_token: str):
    """One heartbeat of a trial attempt: refresh the lease and notice cancel or the end of the time budget."""

    def beat() -> str | None:
        now = utcnow()
        with unit_of_work() as session:
            if not repository.update_leased_trial(session, trial_id, lease_token, heartbeat_at=now):
                return LOST
            repository.update_attempt(session, lease_token, heartbeat_at=now)
            return stop_reason(repository.get(session, experiment_id))

    return beat


def run_trial(*, unit_of_work: UnitOfWork, store: ObjectStore, settings: Settings, trial_id: str) -> str:
    """Run one attempt of a trial; returns the status it ended in, or ``"skipped"`` (nothing to do, e.g. a
    re-delivered message of a trial that is running elsewhere or finished), or ``"lost"`` (lease taken over)."""
    with unit_of_work() as session:
        claim = _claim(session, settings, trial_id)
    if claim is None:
        return "skipped"
    lease_token, experiment_id = claim
    started = time.perf_counter()
    beat = _trial_beat(unit_of_work=unit_of_work, trial_id=trial_id, experiment_id=experiment_id,
                       lease_token=lease_token)
    with Heartbeat(name=f"trial-heartbeat-{trial_id[:8]}", interval_s=settings.trial_heartbeat_s,
                   beat=beat) as heartbeat:
        try:
            final = _execute(unit_of_work=unit_of_work, store=store, settings=settings, trial_id=trial_id,
                             lease_token=lease_token, heartbeat=heartbeat)
        except LeaseLost:
            log.warning("trial %s: lease lost, attempt abandoned", trial_id)
            return "lost"
    final["duration_s"] = time.perf_counter() - started
    return _complete(unit_of_work=unit_of_work, settings=settings, trial_id=trial_id, experiment_id=experiment_id,
                     lease_token=lease_token, final=final)


def _claim(session: Session, settings: Settings, trial_id: str) -> tuple[str, str] | None:
    trial = repository.get_trial(session, trial_id)
    if trial is None:
        return None
    # Lock order everywhere: experiment, then trial — the scheduler takes the experiment lock too.
    experiment = repository.lock(session, trial.experiment_id)
    trial = repository.get_trial(session, trial_id, for_update=True)
    if trial is None or experiment is None or trial.status not in ("pending", "running"):
        return None
    now = utcnow()
    if trial.status == "running":
        stale_before = now - timedelta(seconds=settings.trial_stale_after_s)
        if trial.heartbeat_at is not None and trial.heartbeat_at >= stale_before:
            return None  # a live attempt holds it: this is a duplicate delivery
        _abandon_attempt(session, trial, "worker stopped sending heartbeats")
    if experiment.status != "running":
        trial.status, trial.finished_at = "canceled", now
        trial.error = f"experiment is {experiment.status}"
        schedule(session=session, settings=settings, experiment_id=experiment.id)
        return None
    if trial.attempts >= settings.trial_max_attempts:
        trial.status, trial.finished_at = "failed", now
        trial.error = f"the worker running this trial was lost {trial.attempts} times"
        schedule(session=session, settings=settings, experiment_id=experiment.id)
        return None
    lease_token = uuid.uuid4().hex
    trial.attempts += 1
    repository.add(session, TrialAttempt(trial_id=trial.id, number=trial.attempts, lease_token=lease_token,
                                         worker=worker_name(), status="running", started_at=now, heartbeat_at=now))
    repository.clear_epochs(session, trial.id)  # the new attempt's curve starts afresh
    trial.status, trial.lease_token, trial.heartbeat_at = "running", lease_token, now
    trial.started_at = trial.started_at or now
    trial.error = None
    return lease_token, experiment.id


def _abandon_attempt(session: Session, trial: Trial, reason: str) -> None:
    if trial.lease_token:
        repository.update_attempt(session, trial.lease_token, status="lost", error=reason, ended_at=utcnow())
    trial.lease_token, trial.status = None, "pending"


def _execute(*, unit_of_work: UnitOfWork, store: ObjectStore, settings: Settings, trial_id: str, lease_token: str,
             heartbeat: Heartbeat) -> dict[str, Any]:
    """Build, check constraints, train; returns the trial's final columns (status included)."""
    from nas_core.builder import build_model
    from nas_core.errors import ConstraintViolation, NASError, TrialCanceled, TrialPruned
    from nas_core.metrics import count_flops, count_params, measure_latency_ms, check_constraints, ModelCost
    from nas_core.spec import Candidate
    from nas_core.trainer import TrainData, train

    from api.services import dataset_cache

    with unit_of_work() as session:
        trial = repository.get_trial(session, trial_id)
        experiment = repository.get(session, trial.experiment_id)
        dataset = dataset_repository.get(session, experiment.dataset_id) if experiment.dataset_id else None
        if dataset is None or dataset.status != "ready":
            return {"status": "failed", "error": "the experiment's dataset is gone", "feasible": True}
        budget, constraints, pruner_settings = dict(experiment.budget), dict(experiment.constraints or {}), \
            dict(experiment.pruner or {})
        candidate, seed, number = Candidate.from_dict(trial.arch), trial.seed, trial.number
        experiment_id = experiment.id
    device = resolve_device(settings)
    data = dataset_cache.load(store=store, dataset=dataset, device=device)
    epoch_reports: list[Any] = []
    cost: dict[str, Any] = {}
    try:
        model = build_model(candidate.arch, data.channels, len(data.classes), input_size=(data.height, data.width))
        input_shape = (1, *data.input_shape)
        # Cheapest first: a too-large candidate is rejected before FLOPs, latency or training cost anything.
        cost["params"] = count_params(model)
        check_constraints(ModelCost(cost["params"], 0), max_params=constraints.get("max_params"))
        cost["flops"] = count_flops(model, input_shape)
        cost["latency_ms"] = measure_latency_ms(model, input_shape, repeats=10, warmup=2)
        check_constraints(ModelCost(**cost), max_latency_ms=constraints.get("max_latency_ms"))
    except ConstraintViolation as violation:
        return {"status": "failed", "feasible": False, "error": f"constraint violated: {violation.message}", **cost}
    except (NASError, *DOMAIN_ERRORS) as error:
        return {"status": "failed", "error": f"could not build the model: {error}", "feasible": True, **cost}

    pruner = make_trial_pruner(pruner_settings)

    def on_epoch(report) -> None:
        epoch_reports.append(report)
        with unit_of_work() as session:
            if not repository.update_leased_trial(session, trial_id, lease_token, heartbeat_at=utcnow(),
                                                  val_accuracy=report.val_accuracy, val_loss=report.val_loss):
                raise LeaseLost(trial_id)
            repository.upsert_epoch(session, TrialEpoch(trial_id=trial_id, epoch=report.epoch,
                                                        val_accuracy=report.val_accuracy, val_loss=report.val_loss,
                                                        train_loss=report.train_loss, seconds=report.seconds))
            heartbeat.stop_reason = heartbeat.stop_reason or stop_reason(repository.get(session, experiment_id))
            prune = False
            if not heartbeat.stop_reason and pruner is not None and report.epoch < budget["epochs_per_trial"]:
                history = history_records(session, experiment_id, exclude=trial_id)
                prune = pruner.should_prune(history, number=number, epoch=report.epoch, value=report.val_accuracy)
        # Raised only after the commit above, so a prune or cancel never rolls the epoch's metrics back.
        if heartbeat.stop_reason:
            raise TrialCanceled(heartbeat.stop_reason)
        if prune:
            raise TrialPruned(f"pruned after epoch {report.epoch}: validation accuracy "
                              f"{report.val_accuracy:.4f} is below earlier trials at this epoch")

    def should_stop() -> bool:
        heartbeat.check()
        return heartbeat.should_stop()

    train_data = TrainData(train_x=data.train_x, train_y=data.train_y, val_x=data.val_x, val_y=data.val_y)
    try:
        result = train(model, train_data, epochs=budget["epochs_per_trial"], train=candidate.train, mean=data.mean,
                       std=data.std, seed=seed, device=device, on_epoch=on_epoch, should_stop=should_stop)
    except TrialPruned as pruned:
        return {"status": "pruned", "error": pruned.message, "feasible": True, **cost,
                "val_accuracy": epoch_reports[-1].val_accuracy if epoch_reports else None}
    except TrialCanceled:
        heartbeat.check()
        return {"status": "canceled", "error": heartbeat.stop_reason or "canceled", "feasible": True, **cost,
                "val_accuracy": epoch_reports[-1].val_accuracy if epoch_reports else None}
    except (NASError, *DOMAIN_ERRORS) as error:
        log.warning("trial %s failed: %s", trial_id, error)
        return {"status": "failed", "error": f"training failed: {error}"[:4000], "feasible": True, **cost}
    return {"status": "succeeded", "error": None, "feasible": True, **cost, "val_accuracy": result.val_accuracy,
            "val_loss": result.epochs[-1].val_loss}


def make_trial_pruner(pruner_settings: dict[str, Any]):
    from nas_core.pruning import make_pruner

    kind = pruner_settings.get("kind", "asha")
    if kind == "none":
        return None
    return make_pruner(kind, **{k: v for k, v in pruner_settings.items() if k != "kind"})


def _complete(*, unit_of_work: UnitOfWork, settings: Settings, trial_id: str, experiment_id: str,
              lease_token: str, final: dict[str, Any]) -> str:
    status = final["status"]
    with unit_of_work() as session:
        # The experiment lock first (lock order), then the lease-checked write.
        repository.lock(session, experiment_id)
        now = utcnow()
        if not repository.update_leased_trial(session, trial_id, lease_token, **final, finished_at=now,
                                              heartbeat_at=now):
            log.warning("trial %s: lease lost before completion; result discarded", trial_id)
            return "lost"
        repository.update_attempt(session, lease_token, status=status, ended_at=now, heartbeat_at=now,
                                  error=final.get("error"))
        schedule(session=session, settings=settings, experiment_id=experiment_id)
    return status


def resolve_device(settings: Settings):
    import torch

    wanted = settings.worker_device
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(wanted)


# ---------------------------------------------------------------------------------------------------------------
# Reaping


def reap(*, session: Session, settings: Settings) -> dict[str, list[str]]:
    """Hand dead attempts' trials to new attempts and nudge experiments whose messages were lost.

    A trial ``running`` without a heartbeat for ``trial_stale_after_s`` lost its worker: it goes back to ``pending``
    (same id and number) and is enqueued again, or fails once it used up ``trial_max_attempts``. Pending trials and
    active experiments idle for that long are re-enqueued / rescheduled (a crash between commit and enqueue, or a
    broker that lost the message). Every step is idempotent, so several workers may reap at once.
    """
    older_than = utcnow() - timedelta(seconds=settings.trial_stale_after_s)
    requeued, touched = [], set()
    for trial_id in repository.stale_running_trial_ids(session, older_than=older_than):
        trial = repository.get_trial(session, trial_id)
        repository.lock(session, trial.experiment_id)
        trial = repository.get_trial(session, trial_id, for_update=True)
        if trial.status != "running" or (trial.heartbeat_at and trial.heartbeat_at >= older_than):
            continue
        _abandon_attempt(session, trial, "worker stopped sending heartbeats")
        trial.heartbeat_at = utcnow()  # the re-enqueued message gets a full period before it is nudged again
        touched.add(trial.experiment_id)
        if trial.attempts >= settings.trial_max_attempts:
            trial.status, trial.finished_at = "failed", utcnow()
            trial.error = f"the worker running this trial was lost {trial.attempts} times"
        else:
            enqueue_after_commit(session, RUN_TRIAL_TASK, args=[trial.id], queue="trials")
            requeued.append(trial.id)
    for trial_id in repository.stale_pending_trial_ids(session, older_than=older_than):
        if trial_id in requeued:
            continue
        repository.update_trial_heartbeat(session, trial_id)
        enqueue_after_commit(session, RUN_TRIAL_TASK, args=[trial_id], queue="trials")
        requeued.append(trial_id)
    rescheduled = []
    for experiment_id in set(repository.experiments_needing_schedule(session, older_than=older_than)) | touched:
        schedule(session=session, settings=settings, experiment_id=experiment_id)
        rescheduled.append(experiment_id)
    if requeued:
        log.warning("re-enqueued %d trials: %s", len(requeued), requeued)
    return {"trials": requeued, "experiments": rescheduled}
