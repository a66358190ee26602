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
from api.errors import APIError
from api.orm import Experiment, Trial, TrialAttempt, TrialEpoch
from api.queue import RUN_TRIAL, enqueue_after_commit
from api.repositories import datasets as dataset_repository
from api.repositories import experiments as repository
from api.services import limits as limits_service
from api.services import models as models_service
from api.services.devices import resolve_device
from api.services.leases import LOST, Heartbeat, LeaseLost
from api.statuses import BUDGET_TRIAL_STATUSES
from api.services.object_keys import trial_checkpoint_key, trial_weights_key
from api.settings import Settings
from api.storage import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)

# Screened-out candidates join the strategy's history after every trial (their numbers start here).
SCREENED_NUMBERS = 1_000_000_000
# Screening bounds per scheduling pass: candidates drawn, seconds spent (it runs under the experiment's lock), and
# screened points kept on the experiment for the strategies (the newest).
SCREEN_MAX_DRAWS = 200
SCREEN_MAX_SECONDS = 10.0
SCREENED_POINTS_KEPT = 200
# Proposals asked of the strategy at once while screening: one ask rebuilds its model of the history, so a batch
# (the constant liar keeps it diverse) makes each draw several times cheaper.
SCREEN_BATCH = 8
# A time budget is shared so that at least this many candidates get trained (fewer if max_trials is smaller).
TARGET_TRAINED = 20
# With ASHA about two thirds of the trials stop at the first rung (a sixth of their epochs), so a trial costs about
# half its full length on average: the share of a full-length trial is this much larger.
PRUNED_SHARE_ALLOWANCE = 2.0
# After this many draws in a row screened out for time alone, the time share doubles (up to all the time left):
# a search whose every candidate is slow trains the cheapest ones rather than none.
TIME_RELAX_AFTER = 40
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


def trial_value(trial: Trial, metric: str) -> float | None:
    if metric == "balanced_accuracy" and trial.val_balanced_accuracy is not None:
        return trial.val_balanced_accuracy
    return trial.val_accuracy


def history_records(session: Session, experiment: Experiment, *, exclude: str | None = None,
                    trials: list[Trial] | None = None) -> list:
    """The experiment's trials as the engine sees them (``TrialRecord``), oldest first, then its screened-out
    candidates (infeasible, so strategies learn where not to propose again).

    A trial's value is the objective's metric; its curve holds rung scores (:func:`nas_core.pruning.rung_score`),
    the figure pruning compares at equal epochs. A trial a user stopped is, to the engine, a pruned one (a partial
    curve that did not finish), or a canceled one when it stopped before its first epoch (no signal, but its
    decisions count as seen, so it is not proposed again).
    """
    from nas_core.params import TrialRecord
    from nas_core.pruning import rung_score

    metric = experiment.metric
    curves = repository.epochs_by_trial(session, experiment.id)
    records = []
    for trial in trials if trials is not None else repository.all_trials(session, experiment.id):
        if trial.id == exclude:
            continue
        curve = {epoch: rung_score(val_accuracy=accuracy, val_balanced_accuracy=balanced, val_loss=loss)
                 for epoch, (accuracy, balanced, loss) in curves.get(trial.id, {}).items()}
        value = trial_value(trial, metric)
        status = trial.status
        if status == "stopped":
            status = "pruned" if curve else "canceled"
        if status == "pruned" and value is None and curve:
            value = curve[max(curve)]
        records.append(TrialRecord(number=trial.number, decisions=trial.decisions, status=status,
                                   value=value, feasible=trial.feasible, intermediate=curve))
    for index, point in enumerate(experiment.screened_points or []):
        records.append(_screened_record(index, point["decisions"], point.get("violation", 1.0)))
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
    used = trials_used(counts)
    room = 0 if out_of_time else min(experiment.concurrency - active, experiment.budget["max_trials"] - used)
    if room > 0:
        room = min(room, limits_service.trial_slots_left(session=session, settings=settings,
                                                         project_id=experiment.project_id))
        if room <= 0:
            return []  # the project's trial slots are taken: wait (the reaper reschedules idle experiments)
    if room <= 0:
        if active == 0:
            if not counts["succeeded"] and counts["pruned"] and _promote_stopped_trial(session, experiment):
                counts["succeeded"], counts["pruned"] = 1, counts["pruned"] - 1
            _finish(session, settings, experiment, _final_status(counts), counts=counts, out_of_time=out_of_time)
        return []
    try:
        with session.begin_nested():  # a failing proposal adds nothing; the experiment row stays writable
            created, why_none = _create_trials(session, settings, experiment, room, counts=counts)
    except (ValueError, TypeError, KeyError, ArithmeticError, RuntimeError) as error:
        # A proposal that fails now fails on every retry: end the search rather than leave it running forever.
        log.exception("experiment %s: proposing trials failed", experiment.id)
        created, why_none = [], f"proposing new trials failed: {type(error).__name__}: {error}"[:1000]
    if not created and active == 0 and not counts["succeeded"] and counts["pruned"] \
            and _promote_stopped_trial(session, experiment):
        counts["succeeded"], counts["pruned"] = 1, counts["pruned"] - 1
    if not created and active == 0:
        # Nothing runs and nothing new can: the space is exhausted, or no candidate passes screening.
        status = _final_status(counts)
        time_spent = status == "succeeded" and why_none.startswith(TIME_INFEASIBLE)
        _finish(session, settings, experiment, status, counts=counts, out_of_time=time_spent,
                detail=why_none if status == "failed" or not counts["succeeded"] else f"search ended: {why_none}")
    return created


def trials_used(counts) -> int:
    """Trials counted against ``max_trials`` (``counts``: trials by status): all but canceled ones."""
    return sum(counts[status] for status in BUDGET_TRIAL_STATUSES)


def data_shape(dataset) -> Any:
    """What screening needs to know of a ready dataset (from its row: no tensors are loaded)."""
    from nas_core.screening import DataShape

    image, splits = dataset.image or {}, dataset.splits or {}
    return DataShape(channels=int(image["channels"]), side=int(image["height"]), num_classes=len(dataset.classes),
                     train_images=int(splits.get("train", 0)), val_images=int(splits.get("val", 0)))


def screening_limits(experiment: Experiment, settings: Settings, *, counts):
    """The user's constraints plus the seconds a new trial may take.

    With ``max_minutes``: the time left, shared among the candidates still to train (at least
    :data:`TARGET_TRAINED` per search unless ``max_trials`` is smaller), times the concurrency, times
    :data:`PRUNED_SHARE_ALLOWANCE` under ASHA (most trials stop early). Without it: the
    trial's hard time limit (``NAS_TRIAL_TIME_LIMIT_S``), which a longer trial would hit anyway.
    """
    from nas_core.screening import Limits

    constraints = experiment.constraints or {}
    budget = experiment.budget
    max_trial_seconds = float(settings.trial_time_limit_s)
    if budget.get("max_minutes"):
        left_s = max(0.0, budget["max_minutes"] * 60.0 - elapsed_seconds(experiment))
        trained = counts["succeeded"] + counts["pruned"] + counts["stopped"] + counts["running"] + counts["pending"]
        trials_left = max(1, budget["max_trials"] - trained - counts["failed"])
        still_to_train = max(1, min(trials_left, max(TARGET_TRAINED - trained, 5)))
        allowance = PRUNED_SHARE_ALLOWANCE if (experiment.pruner or {}).get("kind", "asha") == "asha" else 1.0
        max_trial_seconds = min(max_trial_seconds, allowance * left_s * experiment.concurrency / still_to_train)
    return Limits(max_params=constraints.get("max_params"), max_mflops=constraints.get("max_mflops"),
                  max_latency_ms=constraints.get("max_latency_ms"), max_trial_seconds=max_trial_seconds)


def strategy_budget(budget: dict[str, Any]) -> int:
    """The number of trials a strategy plans for (evolution's start-up is a share of it): ``max_trials``, or with a
    time budget the :data:`TARGET_TRAINED` trials the time is shared for, when fewer. Planning a start-up for 100
    trials in a search that has time for 30 would spend all of them on start-up draws and never mutate the best."""
    if budget.get("max_minutes"):
        return min(budget["max_trials"], TARGET_TRAINED)
    return budget["max_trials"]


def epoch_time_correction(trials: list[Trial], epoch_seconds: dict[str, list[float]]) -> float:
    """How this search's measured epoch times compare with the predictions: the median over its trials (running
    ones too, from their first epoch on) of median measured / predicted, within [0.25, 8]."""
    ratios = []
    for trial in trials:
        measured = sorted(epoch_seconds.get(trial.id, ()))
        if measured and trial.predicted_epoch_s:
            ratios.append(measured[len(measured) // 2] / trial.predicted_epoch_s)
    if not ratios:
        return 1.0
    ratios.sort()
    return min(8.0, max(0.25, ratios[len(ratios) // 2]))


def throughput(settings: Settings, shape) -> Any:
    """This worker's calibrated training speed at the dataset's input shape (measured once per process)."""
    from nas_core.cost import throughput_for

    return throughput_for(resolve_device(settings), (shape.channels, shape.side, shape.side))


def warm_throughput(*, unit_of_work: UnitOfWork, settings: Settings, experiment_id: str) -> None:
    """Calibrate this worker's device for the experiment's dataset before the scheduler takes the experiment's lock
    (the probe takes seconds; nobody should wait on the lock meanwhile)."""
    with unit_of_work() as session:
        experiment = repository.get(session, experiment_id)
        dataset = dataset_repository.get(session, experiment.dataset_id) if experiment and experiment.dataset_id \
            else None
        shape = data_shape(dataset) if dataset is not None and dataset.status == "ready" else None
    if shape is not None:
        throughput(settings, shape)


def _create_trials(session: Session, settings: Settings, experiment: Experiment, count: int, *, counts
                   ) -> tuple[list[str], str]:
    """Propose, screen and add up to ``count`` trials; with none added, also why (for the experiment's detail).

    The space's reference candidates come first (those not tried yet), then the strategy's proposals, asked for in
    batches of :data:`SCREEN_BATCH`. Screened-out candidates are counted on the experiment and join the strategy's
    history as infeasible points, so the next proposal learns from them; they never consume ``max_trials``.
    Bounded by :data:`SCREEN_MAX_DRAWS` draws and :data:`SCREEN_MAX_SECONDS` per pass. When every draw was too
    slow for its time share, the cheapest one still runs if it fits the time left: a search with time left trains
    something rather than nothing.
    """
    from nas_core.screening import describe_infeasible, screen
    from nas_core.strategies.base import safe_key

    space = search_space_for(experiment)
    dataset = dataset_repository.get(session, experiment.dataset_id) if experiment.dataset_id else None
    if dataset is None or dataset.status != "ready":
        return [], "the experiment's dataset is gone"
    shape = data_shape(dataset)
    trials = repository.all_trials(session, experiment.id)
    history = history_records(session, experiment, trials=trials)
    seen = {safe_key(space.param_space, record.decisions) for record in history}
    # Different decisions can make the same network and recipe (input scales that all round to a small stored side):
    # such a proposal would repeat a trial, so it is skipped like an infeasible point, without counting as screened.
    tried = {_candidate_hash(trial.arch) for trial in trials}
    # Once a network trained without flips keeps its accuracy on mirrored (upside-down) images, the references not
    # tried yet train with (vertical) flips; a reference tried in any form is not tried again.
    plain_references = space.reference_points()
    references = space.reference_points(mirror_symmetric=_invariant(trials, shape.num_classes, "hflip"),
                                        orientation_free=_invariant(trials, shape.num_classes, "vflip"))
    references = [point for plain, point in zip(plain_references, references)
                  if not {space.param_space.key(plain), space.param_space.key(point)} & seen]
    limits = screening_limits(experiment, settings, counts=counts)
    device_speed = throughput(settings, shape)
    correction = epoch_time_correction(trials, repository.epoch_seconds_by_trial(session, experiment.id))
    epochs = experiment.budget["epochs_per_trial"]
    strategy = strategy_for(experiment)
    screened = dict(experiment.screened or {})
    by_reason: dict[str, int] = dict(screened.get("by_reason", {}))
    smallest: dict[str, float] = dict(screened.get("smallest", {}))
    points = list(experiment.screened_points or [])
    this_pass: dict[str, int] = {}
    pass_smallest: dict[str, float] = {}
    cheapest = None  # (predicted trial seconds, decisions, candidate, verdict) of the draws too slow for their share
    created: list[str] = []

    def add_trial(decisions, candidate, verdict) -> None:
        tried.add(candidate.hash())
        experiment.trials_created += 1
        trial = Trial(experiment_id=experiment.id, number=experiment.trials_created, status="pending",
                      decisions=dict(decisions), arch=candidate.to_dict(), arch_hash=candidate.arch.hash(),
                      seed=trial_seed(experiment.seed, experiment.trials_created),
                      params=verdict.params, flops=verdict.flops, predicted_epoch_s=verdict.predicted_epoch_s)
        repository.add(session, trial)
        enqueue_after_commit(session, RUN_TRIAL, args=[trial.id])
        created.append(trial.id)
        history.append(_running_record(experiment.trials_created, decisions))

    draws = time_only_streak = 0
    exhausted = False
    deadline = time.monotonic() + SCREEN_MAX_SECONDS
    while len(created) < count and draws < SCREEN_MAX_DRAWS and time.monotonic() < deadline:
        from_references = bool(references)
        if references:
            proposals, references = references[:count - len(created)], references[count - len(created):]
        else:
            proposals = strategy.ask(space.param_space, history, max(count - len(created), SCREEN_BATCH),
                                     seed=experiment.seed, budget=strategy_budget(experiment.budget))
        if not proposals:
            exhausted = True
            break
        for decisions in proposals:
            if len(created) >= count:
                break  # the rest of a batch is dropped unseen: the next pass asks again
            draws += 1
            candidate = space.decode(decisions, input_side=shape.side)
            if candidate.hash() in tried:
                history.append(_screened_record(len(points) + draws, decisions, 1.0))
                continue
            verdict = screen(candidate, shape, _reference_limits(limits, experiment, settings) if from_references
                             else limits, epochs=epochs, throughput=device_speed, correction=correction)
            if verdict.passed:
                time_only_streak = 0
                add_trial(decisions, candidate, verdict)
                continue
            reason = verdict.reason
            by_reason[reason] = by_reason.get(reason, 0) + 1
            this_pass[reason] = this_pass.get(reason, 0) + 1
            smallest[reason] = min(smallest.get(reason, verdict.value), verdict.value)
            pass_smallest[reason] = min(pass_smallest.get(reason, verdict.value), verdict.value)
            violation = verdict.violation(limits)
            points.append({"decisions": dict(decisions), "reason": reason, "value": verdict.value,
                           "violation": violation})
            history.append(_screened_record(len(points) - 1, decisions, violation))
            if reason == "max_trial_seconds":
                time_only_streak += 1
                if cheapest is None or verdict.value < cheapest[0]:
                    cheapest = (verdict.value, decisions, candidate, verdict)
            else:
                time_only_streak = 0
            if time_only_streak >= TIME_RELAX_AFTER and limits.max_trial_seconds is not None:
                limits = _relaxed_time(limits, experiment, settings)
                time_only_streak = 0
    if not created and cheapest is not None and cheapest[0] <= _time_left_s(experiment, settings):
        _, decisions, candidate, verdict = cheapest
        add_trial(decisions, candidate, verdict)
        by_reason["max_trial_seconds"] -= 1  # it runs after all: not screened out
        this_pass["max_trial_seconds"] -= 1
        points = [point for point in points if point["decisions"] != decisions]
    if this_pass:
        experiment.screened = {"total": sum(by_reason.values()), "by_reason": by_reason, "smallest": smallest}
        experiment.screened_points = points[-SCREENED_POINTS_KEPT:]
    if created:
        return created, ""
    if exhausted or not this_pass:
        return [], "the search space is exhausted: no unseen candidate is left"
    binding = dict(sorted(((r, pass_smallest[r]) for r in this_pass if this_pass[r]),
                          key=lambda item: -this_pass[item[0]]))
    return [], describe_infeasible(binding, limits, draws)


def _invariant(trials: list[Trial], num_classes: int, flip: str) -> bool:
    """Whether the finished trials trained without ``flip`` (``hflip``: left to right; ``vflip``: top to bottom)
    show the data set's classes to survive that flip."""
    from nas_core.mirror import looks_mirror_symmetric

    column = "val_mirrored_balanced_accuracy" if flip == "hflip" else "val_upside_down_balanced_accuracy"
    evidence = [(trial.val_balanced_accuracy, getattr(trial, column)) for trial in trials
                if trial.status == "succeeded" and trial.val_balanced_accuracy is not None
                and getattr(trial, column) is not None and not (trial.arch.get("train") or {}).get(flip)]
    return bool(looks_mirror_symmetric(evidence, chance=1.0 / max(1, num_classes)))


TIME_INFEASIBLE = "no candidate fits the time budget"  # how describe_infeasible starts a time-bound failure


def _candidate_hash(arch: dict[str, Any]) -> str | None:
    from nas_core.errors import InvalidSearchSpace
    from nas_core.spec import Candidate

    try:
        return Candidate.from_dict(arch).hash()
    except InvalidSearchSpace:
        return None  # stored before a change of the spec: it cannot equal a new candidate


# A reference candidate may take up to this share of the time left, whatever the fair share of a proposal: the
# networks known to work matter most when the budget is short, which is when the fair share is smallest.
REFERENCE_TIME_SHARE = 0.3


def _reference_limits(limits, experiment: Experiment, settings: Settings):
    import dataclasses

    if limits.max_trial_seconds is None:
        return limits
    share = REFERENCE_TIME_SHARE * _time_left_s(experiment, settings)
    return dataclasses.replace(limits, max_trial_seconds=max(limits.max_trial_seconds, share))


def _time_left_s(experiment: Experiment, settings: Settings) -> float:
    """Seconds a new trial may take in all: the time budget left times the concurrency, or the trial limit."""
    max_minutes = experiment.budget.get("max_minutes")
    if not max_minutes:
        return float(settings.trial_time_limit_s)
    return max(0.0, max_minutes * 60.0 - elapsed_seconds(experiment)) * experiment.concurrency


def _relaxed_time(limits, experiment: Experiment, settings: Settings):
    """Twice the time share, at most the whole time left (times the concurrency)."""
    import dataclasses

    cap = max(1.0, _time_left_s(experiment, settings))
    return dataclasses.replace(limits, max_trial_seconds=min(cap, limits.max_trial_seconds * 2))


def _running_record(number: int, decisions: dict[str, Any]):
    from nas_core.params import TrialRecord

    return TrialRecord(number=number, decisions=dict(decisions), status="running")


def _screened_record(index: int, decisions: dict[str, Any], violation: float):
    from nas_core.params import TrialRecord

    return TrialRecord(number=SCREENED_NUMBERS + index, decisions=dict(decisions), status="screened", feasible=False,
                       violation=violation)


DEADLINE_STOP = "time budget spent: stopped after epoch"


def _promote_stopped_trial(session: Session, experiment: Experiment) -> bool:
    """A search ending without any finished trial still has an answer when trials were stopped early (by the
    deadline or by pruning): the one that trained longest, then scored best, becomes ``succeeded`` (its error says
    where it stopped), so the search ends with a leader and a final model rather than ``failed``."""
    metric = experiment.metric
    curves = repository.epoch_seconds_by_trial(session, experiment.id)
    stopped = [trial for trial in repository.all_trials(session, experiment.id)
               if trial.status == "pruned" and trial.feasible and trial_value(trial, metric) is not None]
    if not stopped:
        return False
    best = max(stopped, key=lambda trial: (len(curves.get(trial.id, ())), trial_value(trial, metric), -trial.number))
    best.status = "succeeded"
    best.error = f"{best.error} (kept: no trial finished, and this one trained longest and best)"
    return True


def _final_status(counts) -> str:
    return "succeeded" if counts["succeeded"] else "failed"


def _finish(session: Session, settings: Settings, experiment: Experiment, status: str, *, counts=None,
            out_of_time: bool = False, detail: str | None = None) -> None:
    stop_clock(experiment)
    experiment.status, experiment.finished_at = status, utcnow()
    if status == "failed":
        summary = ", ".join(f"{counts[s]} {s}" for s in ("failed", "pruned", "stopped", "canceled")
                            if counts and counts[s])
        experiment.detail = detail or f"no trial succeeded ({summary or 'no trials ran'})"
        if not detail and out_of_time and not (counts and (counts["failed"] or counts["pruned"])):
            experiment.detail = "the time budget was spent before any trial finished"
    elif status == "succeeded":
        experiment.detail = "time budget spent" if out_of_time else detail
        if experiment.auto_model and settings.auto_model:
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


# A trial stops at its first epoch boundary past the deadline; one whose epoch runs on this far past it (a fraction
# of max_minutes, at least DEADLINE_GRACE_MIN_S) stops mid-epoch instead.
DEADLINE_GRACE_FRACTION = 0.05
DEADLINE_GRACE_MIN_S = 30.0


# Why a trial ends ``stopped``: a user asked for it (POST .../trials/{number}/stop).
STOP_REQUESTED = "stopped on request"


def stop_reason(experiment: Experiment | None) -> str | None:
    """Why a running trial of ``experiment`` should stop at once (mid-epoch), if it should: a cancel, or a deadline
    overrun by more than the grace."""
    if experiment is None or experiment.status == "canceling":
        return "experiment canceled"
    max_minutes = (experiment.budget or {}).get("max_minutes")
    if max_minutes:
        grace = max(DEADLINE_GRACE_MIN_S, DEADLINE_GRACE_FRACTION * max_minutes * 60)
        if elapsed_seconds(experiment) >= max_minutes * 60 + grace:
            return "time budget spent"
    return None


def trial_stop_reason(session: Session, trial_id: str, experiment_id: str) -> str | None:
    """Why a running trial should stop at once, if it should: a stop asked of the trial itself comes first, then
    its experiment's (:func:`stop_reason`)."""
    if repository.trial_stop_requested(session, trial_id):
        return STOP_REQUESTED
    return stop_reason(repository.get(session, experiment_id))


def _trial_beat(*, unit_of_work: UnitOfWork, trial_id: str, experiment_id: str, lease_token: str):
    """One heartbeat of a trial attempt: refresh the lease and notice a stop request, a cancel or a deadline long
    past."""

    def beat() -> str | None:
        now = utcnow()
        with unit_of_work() as session:
            if not repository.update_leased_trial(session, trial_id, lease_token, heartbeat_at=now):
                return LOST
            repository.update_attempt(session, lease_token, heartbeat_at=now)
            return trial_stop_reason(session, trial_id, experiment_id)

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
    status = _complete(unit_of_work=unit_of_work, settings=settings, trial_id=trial_id, experiment_id=experiment_id,
                       lease_token=lease_token, final=final)
    if status != "lost":
        _drop_checkpoint(unit_of_work=unit_of_work, store=store, trial_id=trial_id)
    return status


def _drop_checkpoint(*, unit_of_work: UnitOfWork, store: ObjectStore, trial_id: str) -> None:
    """The ended trial's checkpoint is of no further use (best effort: an orphan is harmless)."""
    with unit_of_work() as session:
        trial = repository.get_trial(session, trial_id)
        experiment = repository.get(session, trial.experiment_id) if trial is not None else None
    if experiment is None:
        return
    key = trial_checkpoint_key(experiment.project_id, experiment.id, trial_id)
    try:
        store.delete_prefix(key.removesuffix("state.pt"))
    except Exception:
        log.warning("trial %s: could not delete its checkpoint", trial_id, exc_info=True)


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
    if trial.stop_requested_at is not None:
        # Asked to stop while its worker was lost (or before the request saw it start): no new attempt.
        trial.status, trial.finished_at, trial.lease_token = "stopped", now, None
        trial.error = STOP_REQUESTED
        schedule(session=session, settings=settings, experiment_id=experiment.id)
        return None
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
    import torch

    from nas_core.builder import build_model
    from nas_core.errors import ConstraintViolation, NASError, TrialCanceled, TrialPruned
    from nas_core.metrics import count_flops, count_params, measure_latency_ms, check_constraints, ModelCost
    from nas_core.mirror import mirror_scores
    from nas_core.pruning import rung_score
    from nas_core.spec import Candidate
    from nas_core.resolution import resize_images
    from nas_core.trainer import TrainData, train

    from api.services import dataset_cache  # loads torch: only in the workers that train

    with unit_of_work() as session:
        trial = repository.get_trial(session, trial_id)
        experiment = repository.get(session, trial.experiment_id)
        dataset = dataset_repository.get(session, experiment.dataset_id) if experiment.dataset_id else None
        if dataset is None or dataset.status != "ready":
            return {"status": "failed", "error": "the experiment's dataset is gone", "feasible": True}
        budget, constraints, pruner_settings = dict(experiment.budget), dict(experiment.constraints or {}), \
            dict(experiment.pruner or {})
        candidate, seed, number = Candidate.from_dict(trial.arch), trial.seed, trial.number
        experiment_id, project_id, metric = experiment.id, experiment.project_id, experiment.metric
    device = resolve_device(settings)
    data = dataset_cache.load(store=store, dataset=dataset, device=device)
    throughput(settings, data_shape(dataset))  # calibrated here, outside any lock, for the scheduler that follows
    size = candidate.arch.input_size((data.height, data.width))
    epoch_reports: list[Any] = []
    cost: dict[str, Any] = {}
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the initial weights are part of what the trial's seed reproduces
            model = build_model(candidate.arch, data.channels, len(data.classes), input_size=size)
        input_shape = (1, data.channels, *size)
        # Screening checked these before the trial was created; checked again on the built network, cheapest first.
        cost["params"] = count_params(model)
        check_constraints(ModelCost(cost["params"], 0), max_params=constraints.get("max_params"))
        cost["flops"] = count_flops(model, input_shape)
        cost["latency_ms"] = measure_latency_ms(model, input_shape, repeats=10, warmup=2)
        check_constraints(ModelCost(**cost), max_latency_ms=constraints.get("max_latency_ms"),
                          max_mflops=constraints.get("max_mflops"))
    except ConstraintViolation as violation:
        return {"status": "failed", "feasible": False, "error": f"constraint violated: {violation.message}", **cost}
    except (NASError, *DOMAIN_ERRORS) as error:
        return {"status": "failed", "error": f"could not build the model: {error}", "feasible": True, **cost}

    make_trial_pruner(pruner_settings, epochs=budget["epochs_per_trial"])  # settings checked before training
    chance = 1.0 / max(1, len(data.classes))
    checkpoint_key = trial_checkpoint_key(project_id, experiment_id, trial_id)
    resume = _load_checkpoint(store, checkpoint_key)
    resumed_from = int(resume["epoch"]) if resume is not None else None
    with unit_of_work() as session:
        # The curve keeps the epochs the checkpoint covers; later ones (a dead attempt's) go, so none repeats.
        if not repository.update_leased_trial(session, trial_id, lease_token, heartbeat_at=utcnow()):
            raise LeaseLost(trial_id)
        repository.clear_epochs(session, trial_id, after=resumed_from or 0)
        repository.update_attempt(session, lease_token, resumed_from_epoch=resumed_from)
    if resume is not None:
        log.info("trial %s resumes after epoch %d", trial_id, resumed_from)

    def on_epoch(report) -> None:
        epoch_reports.append(report)
        score = rung_score(val_accuracy=report.val_accuracy, val_balanced_accuracy=report.val_balanced_accuracy,
                           val_loss=report.val_loss)
        with unit_of_work() as session:
            if not repository.update_leased_trial(session, trial_id, lease_token, heartbeat_at=utcnow(),
                                                  val_accuracy=report.val_accuracy, val_loss=report.val_loss,
                                                  val_balanced_accuracy=report.val_balanced_accuracy,
                                                  val_recall=_recall_json(report.val_recall)):
                raise LeaseLost(trial_id)
            repository.upsert_epoch(session, TrialEpoch(trial_id=trial_id, epoch=report.epoch,
                                                        val_accuracy=report.val_accuracy, val_loss=report.val_loss,
                                                        val_balanced_accuracy=report.val_balanced_accuracy,
                                                        train_loss=report.train_loss, seconds=report.seconds))
            experiment = repository.get(session, experiment_id)
            heartbeat.stop_reason = heartbeat.stop_reason or trial_stop_reason(session, trial_id, experiment_id)
            deadline = experiment is not None and time_is_up(experiment)
            prune = False
            last_epoch = report.epoch >= budget["epochs_per_trial"]
            if not heartbeat.stop_reason and not deadline and not last_epoch:
                history = history_records(session, experiment, exclude=trial_id)
                pruner = make_trial_pruner(pruner_settings, epochs=budget["epochs_per_trial"], history=history,
                                           chance=chance)
                prune = pruner is not None and pruner.should_prune(history, number=number, epoch=report.epoch,
                                                                   value=score)
        # Raised only after the commit above, so a prune or cancel never rolls the epoch's metrics back.
        if heartbeat.stop_reason:
            raise TrialCanceled(heartbeat.stop_reason)
        if deadline and not last_epoch:
            raise TrialPruned(f"{DEADLINE_STOP} {report.epoch}")
        if prune:
            raise TrialPruned(f"pruned after epoch {report.epoch}: validation score {score:.4f} (balanced accuracy "
                              f"less a loss tie-break) is below earlier trials at this epoch")

    def should_stop() -> bool:
        heartbeat.check()
        return heartbeat.should_stop()

    def finished(status: str, error: str | None, **values: Any) -> dict[str, Any]:
        last = epoch_reports[-1] if epoch_reports else None
        seconds = sorted(r.seconds for r in epoch_reports)
        return {"status": status, "error": error, "feasible": True, **cost,
                "val_accuracy": last.val_accuracy if last else None,
                "val_balanced_accuracy": last.val_balanced_accuracy if last else None,
                "measured_epoch_s": seconds[len(seconds) // 2] if seconds else None, **values}

    train_x, val_x = data.train_x, data.val_x
    if size != (data.height, data.width):  # the candidate's input side: resized once per trial, on the device
        train_x, val_x = resize_images(train_x, size), resize_images(val_x, size)
    train_data = TrainData(train_x=train_x, train_y=data.train_y, val_x=val_x, val_y=data.val_y)
    try:
        result = train(model, train_data, epochs=budget["epochs_per_trial"], train=candidate.train, mean=data.mean,
                       std=data.std, seed=seed, device=device, num_classes=len(data.classes), on_epoch=on_epoch,
                       should_stop=should_stop, resume=resume,
                       on_checkpoint=_Checkpointer(store=store, key=checkpoint_key, every_s=settings.trial_checkpoint_s,
                                                   heartbeat=heartbeat))
    except TrialPruned as pruned:
        return finished("pruned", pruned.message)
    except TrialCanceled:
        heartbeat.check()
        if heartbeat.stop_reason == STOP_REQUESTED:
            return finished("stopped", STOP_REQUESTED)
        return finished("canceled", heartbeat.stop_reason or "canceled")
    except (NASError, *DOMAIN_ERRORS) as error:
        log.warning("trial %s failed: %s", trial_id, error)
        return {"status": "failed", "error": f"training failed: {error}"[:4000], "feasible": True, **cost}
    # Two more passes over the validation images, mirrored and upside down: is the data set mirror-symmetric, are its
    # images orientation-free?
    mirror = mirror_scores(model, val_x, data.val_y, mean=data.mean, std=data.std, device=device)
    final = finished("succeeded", None, val_accuracy=result.val_accuracy, val_loss=result.epochs[-1].val_loss,
                     val_mirrored_balanced_accuracy=mirror.mirrored_balanced_accuracy if mirror else None,
                     val_upside_down_balanced_accuracy=mirror.upside_down_balanced_accuracy if mirror else None)
    value = final["val_balanced_accuracy"] if metric == "balanced_accuracy" else final["val_accuracy"]
    _keep_weights_if_leading(unit_of_work=unit_of_work, store=store, project_id=project_id,
                             experiment_id=experiment_id, trial_id=trial_id, metric=metric, value=value, model=model)
    return final


def _load_checkpoint(store: ObjectStore, key: str) -> dict | None:
    """The trial's last checkpoint, or None when there is none (or it cannot be read: start afresh)."""
    import io

    import torch


    try:
        data = store.read_bytes(key)
    except ObjectNotFound:
        return None
    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except Exception:  # a torn or foreign file is no reason to fail the trial
        log.warning("checkpoint %s is unreadable; the trial starts afresh", key, exc_info=True)
        return None


def torch_bytes(state: dict) -> bytes:
    """``torch.save`` of ``state`` into bytes, for the object store (weights, checkpoints)."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


class _Checkpointer:
    """Stores a snapshot at the first epoch end ``every_s`` after the last one, under the attempt's lease."""

    def __init__(self, *, store: ObjectStore, key: str, every_s: float, heartbeat: Heartbeat) -> None:
        self.store, self.key, self.every_s, self.heartbeat = store, key, every_s, heartbeat
        self.last = time.monotonic()

    def __call__(self, epoch: int, snapshot) -> None:
        if time.monotonic() - self.last < self.every_s:
            return
        data = torch_bytes(snapshot())
        self.heartbeat.check()  # a lost lease writes nothing, not even a checkpoint
        self.store.put_bytes(self.key, data)
        self.last = time.monotonic()


def _keep_weights_if_leading(*, unit_of_work: UnitOfWork, store: ObjectStore, project_id: str, experiment_id: str,
                             trial_id: str, metric: str, value: float, model) -> None:
    """Store ``model``'s weights when this trial scores at least the search's best so far, and drop the weights of
    the trial it overtakes: only the leader's weights are kept (a few MB), for the final model to start from.

    Best effort: a store error only costs the final model its head start.
    """
    with unit_of_work() as session:
        leader = repository.best_trials(session, [experiment_id], metrics={experiment_id: metric}).get(experiment_id)
        leader_id, leader_value = (leader.id, trial_value(leader, metric)) if leader is not None else (None, None)
    if leader_value is not None and value < leader_value:
        return
    data = torch_bytes({name: tensor.detach().cpu() for name, tensor in model.state_dict().items()})
    try:
        store.put_bytes(trial_weights_key(project_id, experiment_id, trial_id), data)
        # A tie keeps both: the leaderboard's tie-break (fewer params, then latency) may still prefer the leader.
        if leader_id is not None and leader_id != trial_id and value > leader_value:
            store.delete_prefix(trial_weights_key(project_id, experiment_id, leader_id).removesuffix("weights.pt"))
    except Exception:
        log.warning("trial %s: could not keep its weights", trial_id, exc_info=True)


def _recall_json(recall) -> list[float | None]:
    return [None if value != value else float(value) for value in recall]  # NaN (class absent) is null in JSON


def make_trial_pruner(pruner_settings: dict[str, Any], *, epochs: int | None = None, history=None,
                      chance: float | None = None):
    """The experiment's pruner, or None when nothing is to be pruned now.

    ASHA's first rung, unless the user set ``min_resource``: a sixth of the trial's epochs, or later where this
    search's finished curves separate from ``chance`` later (:func:`nas_core.pruning.adaptive_min_resource`); no
    pruning until one trial has finished. Given without ``history``, the sixth alone."""
    from nas_core.pruning import adaptive_min_resource, make_pruner

    kind = pruner_settings.get("kind", "asha")
    if kind == "none":
        return None
    options = {k: v for k, v in pruner_settings.items() if k != "kind"}
    if kind == "asha" and epochs is not None and "min_resource" not in options:
        if history is None or chance is None:
            options["min_resource"] = max(1, epochs // 6)
        else:
            first = adaptive_min_resource(history, epochs=epochs, chance=chance)
            if first is None:
                return None
            options["min_resource"] = first
    return make_pruner(kind, **options)


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


# ---------------------------------------------------------------------------------------------------------------
# Reaping


def reap(*, session: Session, settings: Settings) -> dict[str, list[str]]:
    """Hand dead attempts' trials to new attempts and nudge experiments whose messages were lost.

    A trial ``running`` without a heartbeat for ``trial_stale_after_s`` lost its worker: it goes back to ``pending``
    (same id and number) and is enqueued again, or fails once it used up ``trial_max_attempts``, or ends ``stopped``
    when a user asked it to stop. Pending trials and active experiments idle for that long are re-enqueued /
    rescheduled (a crash between commit and enqueue, or a broker that lost the message). Every step is idempotent,
    so several workers may reap at once.
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
        if trial.stop_requested_at is not None:
            trial.status, trial.finished_at, trial.error = "stopped", utcnow(), STOP_REQUESTED
        elif trial.attempts >= settings.trial_max_attempts:
            trial.status, trial.finished_at = "failed", utcnow()
            trial.error = f"the worker running this trial was lost {trial.attempts} times"
        else:
            enqueue_after_commit(session, RUN_TRIAL, args=[trial.id])
            requeued.append(trial.id)
    for trial_id in repository.stale_pending_trial_ids(session, older_than=older_than):
        if trial_id in requeued:
            continue
        repository.update_trial_heartbeat(session, trial_id)
        enqueue_after_commit(session, RUN_TRIAL, args=[trial_id])
        requeued.append(trial_id)
    rescheduled = []
    for experiment_id in set(repository.experiments_needing_schedule(session, older_than=older_than)) | touched:
        schedule(session=session, settings=settings, experiment_id=experiment_id)
        rescheduled.append(experiment_id)
    if requeued:
        log.warning("re-enqueued %d trials: %s", len(requeued), requeued)
    return {"trials": requeued, "experiments": rescheduled}
