"""Scheduling a search: plan trials under the budget and deadline, screen candidates, finish the experiment.

Everything here is a function of the database. ``schedule`` rebuilds the strategy's history from the trials table
under the experiment's row lock, so any worker can continue any experiment after any crash, and two workers never
hand out the same trial number. A search that succeeds hands its leader to the final model
(:mod:`api.services.models.requests`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy.orm import Session

from api.db import UnitOfWork, utcnow
from api.errors import APIError
from api.orm import Experiment, Trial
from api.queue import RUN_TRIAL, enqueue_after_commit
from api.repositories import datasets as dataset_repository
from api.repositories import experiments as repository
from api.schemas.common import MAX_EPOCHS_PER_TRIAL
from api.services import quotas
from api.services.models import requests as models_service
from api.services.devices import resolve_device
from api.services.search.history import history_records, screened_record, trial_value
from api.services.search.warm_start import seeded_records
from api.services.search_spaces import reference_ranks, search_space_for
from api.settings import Settings
from api.statuses import BUDGET_TRIAL_STATUSES, DatasetStatus, ExperimentStatus, TrialStatus

log = logging.getLogger(__name__)

# nas_core is imported inside the functions that use it: its screening and cost modules load torch and its strategies
# optuna, which the API process (it imports this package for the clock and the strategy check) never needs.

# Screening bounds per scheduling pass: candidates drawn, seconds spent (it runs under the experiment's lock), and
# screened points kept on the experiment for the strategies (the newest).
SCREEN_MAX_DRAWS = 200
SCREEN_MAX_SECONDS = 10.0
SCREENED_POINTS_KEPT = 200
# A time-bound search's pass screens for at most this share of the search's time left (within SCREEN_MAX_SECONDS):
# the worker that finished a trial schedules the next before it trains again, so near the deadline every second of
# screening is a second nothing trains and the final model waits. On bench.budget's photos-small, the last pass (10 s
# left) drew 193 candidates, each too slow for the seconds left, for 9.5 s and added none.
SCREEN_TIME_SHARE = 0.05
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


def trial_seed(experiment_seed: int, number: int) -> int:
    """Each trial's own seed: reproducible from the experiment's seed and the trial number."""
    return (experiment_seed * 1_000_003 + number * 7_919) % (2**31 - 1)


def make_strategy_from(name: str, settings: dict[str, Any]):
    """The engine's strategy ``name`` with ``settings``; ValueError names what is wrong."""
    from nas_core.strategies import make_strategy

    return make_strategy(name, **settings)


def strategy_for(experiment: Experiment):
    return make_strategy_from(experiment.strategy, experiment.strategy_settings or {})


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
    if experiment.status == ExperimentStatus.QUEUED:
        experiment.status, experiment.running_since = ExperimentStatus.RUNNING, utcnow()
    if experiment.status not in (ExperimentStatus.RUNNING, ExperimentStatus.CANCELING):
        return []
    counts = repository.trial_counts(session, experiment_id)
    active = counts["pending"] + counts["running"]
    if experiment.status == ExperimentStatus.CANCELING:
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
        room = min(room, quotas.trial_slots_left(session=session, settings=settings,
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
        time_spent = status == ExperimentStatus.SUCCEEDED and why_none.startswith(TIME_INFEASIBLE)
        _finish(session, settings, experiment, status, counts=counts, out_of_time=time_spent,
                detail=why_none if status == ExperimentStatus.FAILED or not counts["succeeded"]
                else f"search ended: {why_none}")
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


def screening_limits(experiment: Experiment, settings: Settings, *, counts, lengthened: int = 1):
    """The user's constraints plus the seconds a new trial may take.

    With ``max_minutes``: the time left, shared among the candidates still to train (at least
    :data:`TARGET_TRAINED` per search unless ``max_trials`` is smaller), times the concurrency, times
    :data:`PRUNED_SHARE_ALLOWANCE` under ASHA (most trials stop early). Without it: the
    trial's hard time limit (``NAS_TRIAL_TIME_LIMIT_S``), which a longer trial would hit anyway. Once the search has
    made its trials ``lengthened`` times longer (:mod:`nas_core.fidelity`), the time left is shared among that many
    times fewer (at least :data:`nas_core.fidelity.MIN_TRIALS_AT_LENGTH`).
    """
    from nas_core.screening import Limits

    constraints = experiment.constraints or {}
    budget = experiment.budget
    max_trial_seconds = float(settings.trial_time_limit_s)
    if budget.get("max_minutes"):
        left_s = _wall_seconds_left(experiment)
        trained = counts["succeeded"] + counts["pruned"] + counts["stopped"] + counts["running"] + counts["pending"]
        trials_left = max(1, budget["max_trials"] - trained - counts["failed"])
        still_to_train = max(1, min(trials_left, max(TARGET_TRAINED - trained, 5)))
        if lengthened > 1:
            from nas_core.fidelity import MIN_TRIALS_AT_LENGTH

            still_to_train = max(1, min(still_to_train, max(MIN_TRIALS_AT_LENGTH, round(still_to_train / lengthened))))
        allowance = PRUNED_SHARE_ALLOWANCE if (experiment.pruner or {}).get("kind", "asha") == "asha" else 1.0
        max_trial_seconds = min(max_trial_seconds, allowance * left_s * experiment.concurrency / still_to_train)
    return Limits(max_params=constraints.get("max_params"), max_mflops=constraints.get("max_mflops"),
                  max_latency_ms=constraints.get("max_latency_ms"), max_trial_seconds=max_trial_seconds,
                  latency_threads=settings.latency_threads)


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
        shape = data_shape(dataset) if dataset is not None and dataset.status == DatasetStatus.READY else None
    if shape is not None:
        throughput(settings, shape)


def _create_trials(session: Session, settings: Settings, experiment: Experiment, count: int, *, counts
                   ) -> tuple[list[str], str]:
    """Propose, screen and add up to ``count`` trials; with none added, also why (for the experiment's detail).

    The space's reference candidates come first (those not tried yet), then the strategy's proposals, asked for in
    batches of :data:`SCREEN_BATCH`. Screened-out candidates are counted on the experiment and join the strategy's
    history as infeasible points, so the next proposal learns from them; they never consume ``max_trials``.
    Bounded by :data:`SCREEN_MAX_DRAWS` draws and :func:`_screening_seconds` per pass. When every draw was too
    slow for its time share, the cheapest one still runs if it fits the time left: a search with time left trains
    something rather than nothing.
    """
    from nas_core.screening import describe_infeasible, screen
    from nas_core.strategies.base import safe_key

    space = search_space_for(experiment)
    dataset = dataset_repository.get(session, experiment.dataset_id) if experiment.dataset_id else None
    if dataset is None or dataset.status != DatasetStatus.READY:
        return [], "the experiment's dataset is gone"
    shape = data_shape(dataset)
    trials = repository.all_trials(session, experiment.id)
    # A warm start's seeds come first (numbered below zero): the strategy's evidence, never trials of this search.
    history = seeded_records(experiment) + history_records(session, experiment, trials=trials)
    seen = {safe_key(space.param_space, record.decisions) for record in history}
    # Different decisions can make the same network and recipe (input scales that all round to a small stored side):
    # such a proposal would repeat a trial, so it is skipped like an infeasible point, without counting as screened.
    # A candidate trains once per length: a search that lengthens its trials trains its best ones again, longer.
    tried = {(_candidate_hash(trial.arch), experiment.epochs_of(trial)) for trial in trials}
    plain_references = space.reference_points()
    epochs, stalled = trial_epochs(experiment, settings, trials, shape, has_references=bool(plain_references))
    if stalled:
        return [], models_service.UNLEARNED_STOP
    # Once a network trained without flips keeps its accuracy on mirrored (upside-down) images, the references not
    # tried yet train with (vertical) flips; a reference tried in any form is not tried again.
    references = space.reference_points(mirror_symmetric=_invariant(trials, shape.num_classes, "hflip"),
                                        orientation_free=_invariant(trials, shape.num_classes, "vflip"))
    reference_keys = {space.param_space.key(point) for point in plain_references + references}
    references = [point for plain, point in zip(plain_references, references)
                  if not {space.param_space.key(plain), space.param_space.key(point)} & seen]
    promotions = _promotions(experiment, trials, epochs, tried, val_images=models_service.noise_rule_images(
        session, experiment))
    promoted = {space.param_space.key(point) for point in promotions}
    at_length = sum(1 for trial in trials if experiment.epochs_of(trial) == epochs)
    references = promotions + references
    limits = screening_limits(experiment, settings, counts=counts,
                              lengthened=epochs // int(experiment.budget["epochs_per_trial"]))
    if not references and _outclassed(experiment, trials, limits, shape):
        return [], models_service.OUTCLASSED_STOP
    if not references and _settled(experiment, trials, epochs, shape):
        return [], models_service.SETTLED_STOP
    device_speed = throughput(settings, shape)
    correction = epoch_time_correction(trials, repository.epoch_seconds_by_trial(session, experiment.id))
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
        tried.add((candidate.hash(), epochs))
        experiment.trials_created += 1
        trial = Trial(experiment_id=experiment.id, number=experiment.trials_created, status=TrialStatus.PENDING,
                      planned_epochs=epochs, reference_design=space.param_space.key(decisions) in reference_keys,
                      decisions=dict(decisions), arch=candidate.to_dict(), arch_hash=candidate.arch.hash(),
                      seed=trial_seed(experiment.seed, experiment.trials_created),
                      params=verdict.params, flops=verdict.flops, predicted_epoch_s=verdict.predicted_epoch_s)
        repository.add(session, trial)
        enqueue_after_commit(session, RUN_TRIAL, args=[trial.id])
        created.append(trial.id)
        history.append(_running_record(experiment.trials_created, decisions))

    draws = time_only_streak = 0
    exhausted = False
    deadline = time.monotonic() + _screening_seconds(experiment)  # the first batch is drawn whatever the time
    while len(created) < count and draws < SCREEN_MAX_DRAWS and (draws == 0 or time.monotonic() < deadline):
        from_references = bool(references)
        if references:
            proposals, references = references[:count - len(created)], references[count - len(created):]
        else:
            proposals = strategy.ask(space.param_space, history, max(count - len(created), SCREEN_BATCH),
                                     seed=experiment.seed, budget=strategy_budget(experiment.budget),
                                     minimize=experiment.minimize)
        if not proposals:
            exhausted = True
            break
        for decisions in proposals:
            if len(created) >= count:
                break  # the rest of a batch is dropped unseen: the next pass asks again
            draws += 1
            candidate = space.decode(decisions, input_side=shape.side)
            if (candidate.hash(), epochs) in tried:
                history.append(screened_record(len(points) + draws, decisions, 1.0))
                continue
            if space.param_space.key(decisions) in promoted:
                candidate_limits = _promotion_limits(limits, experiment, settings, at_length=at_length + len(created))
            elif from_references:
                candidate_limits = _reference_limits(limits, experiment, settings)
            else:
                candidate_limits = limits
            verdict = screen(candidate, shape, candidate_limits, epochs=epochs, throughput=device_speed,
                             correction=correction)
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
            history.append(screened_record(len(points) - 1, decisions, violation))
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


def trial_epochs(experiment: Experiment, settings: Settings, trials: list[Trial], shape, *,
                 has_references: bool = True) -> tuple[int, bool]:
    """Epochs of the search's next trials, and whether the search has stalled.

    The epochs: ``epochs_per_trial``, or with ``max_minutes`` and ``adaptive_epochs`` twice the longest length so far
    while the trials of that length have not learned (:func:`nas_core.fidelity.next_trial_epochs`), when
    :data:`nas_core.fidelity.MIN_TRIALS_AT_LENGTH` trials of the new length fit the time left at the measured epoch
    time of the current ones (and one fits the trial time limit).

    Stalled: the trials of the longest length have not learned (:func:`nas_core.fidelity.not_learned_at_longest`) and
    cannot be made longer (the doublings are spent, or two longer trials no longer fit the time left). More trials
    of that length would be as unlikely to learn: the search ends, and its final model, a reference design trained
    on from its trial's weights, gets the time left (:func:`api.services.models.requests.plan_retraining`).

    Both rules wait until a reference design has finished, when the space has any (``has_references``). While the
    references have not run (too slow for the time share on a slow machine), near-chance trials say more about the
    small proposals that ran in their place than about the data: on MNIST, three networks of 2–4k parameters at a
    validation accuracy of 0.2 once lengthened, then ended, a search.
    """
    from nas_core.fidelity import MIN_TRIALS_AT_LENGTH, TrialLength, next_trial_epochs, not_learned_at_longest

    budget = experiment.budget
    base = int(budget["epochs_per_trial"])
    lengths = [TrialLength(epochs=experiment.epochs_of(trial),
                           finished=trial.status in (TrialStatus.SUCCEEDED, TrialStatus.PRUNED),
                           balanced_accuracy=trial_value(trial, "balanced_accuracy"),
                           succeeded=trial.status == TrialStatus.SUCCEEDED)
               for trial in trials]
    current = max([base, *(length.epochs for length in lengths)])
    if not budget.get("max_minutes") or not budget.get("adaptive_epochs", True):
        return current, False
    chance = 1.0 / max(1, shape.num_classes)
    references_ran = not has_references or any(trial.reference_design and length.finished
                                               for trial, length in zip(trials, lengths))
    if not references_ran or not not_learned_at_longest(base, lengths, chance=chance):
        return current, False
    longer = next_trial_epochs(base, lengths, chance=chance, max_epochs=MAX_EPOCHS_PER_TRIAL)
    measured = sorted(trial.measured_epoch_s or trial.predicted_epoch_s for trial in trials
                      if experiment.epochs_of(trial) == current
                      and (trial.measured_epoch_s or trial.predicted_epoch_s))
    if longer == current or not measured:
        return current, longer == current
    trial_s = measured[len(measured) // 2] * longer
    if trial_s * MIN_TRIALS_AT_LENGTH > _time_left_s(experiment, settings) or trial_s > settings.trial_time_limit_s:
        return current, True
    return longer, False


def _outclassed(experiment: Experiment, trials: list[Trial], limits, shape) -> bool:
    """Whether a time-bound search ends because the networks its time share admits are far cheaper than its leader
    and the last of them finished far below it (:func:`nas_core.fidelity.outclassed`): the search's unspent minutes
    then go to the final model (:func:`api.services.models.requests.unspent_minutes`)."""
    from nas_core.fidelity import outclassed

    if not experiment.budget.get("max_minutes") or limits.max_trial_seconds is None:
        return False
    runs = []
    for trial in trials:
        if trial.status not in (TrialStatus.SUCCEEDED, TrialStatus.PRUNED):
            continue
        epoch_s = trial.measured_epoch_s or trial.predicted_epoch_s
        runs.append((trial.number, trial_value(trial, "balanced_accuracy"),
                     epoch_s * experiment.epochs_of(trial) if epoch_s else None,
                     trial.status == TrialStatus.SUCCEEDED))
    return outclassed(runs, share_seconds=limits.max_trial_seconds, chance=1.0 / max(1, shape.num_classes))


def _settled(experiment: Experiment, trials: list[Trial], epochs: int, shape) -> bool:
    """Whether a time-bound search ends because no trial of its longest length (``epochs``) has gone beyond the noise
    of its leader in the last few, with half its minutes spent (:func:`nas_core.fidelity.settled`): its unspent
    minutes then go to the final model (:func:`api.services.models.requests.unspent_minutes`); not with
    ``budget.stop_when_settled`` false."""
    from nas_core.fidelity import settled

    max_minutes = experiment.budget.get("max_minutes")
    if not max_minutes or not experiment.budget.get("stop_when_settled", True):
        return False
    runs = [(trial.number, trial_value(trial, "balanced_accuracy"), trial.status == TrialStatus.SUCCEEDED)
            for trial in trials if trial.status in (TrialStatus.SUCCEEDED, TrialStatus.PRUNED)
            and experiment.epochs_of(trial) == epochs]
    return settled(runs, chance=1.0 / max(1, shape.num_classes), val_images=shape.val_images,
                   elapsed_share=elapsed_seconds(experiment) / (max_minutes * 60.0))


def _promotions(experiment: Experiment, trials: list[Trial], epochs: int, tried: set, *, val_images: int | None
                ) -> list[dict[str, Any]]:
    """The decisions that train first at a new length ``epochs``: of the trials that succeeded at half of it, the
    :func:`nas_core.fidelity.promotion_picks` (the leader by the experiment's metric, the reference designs within
    the noise of its ``val_images`` by their order of preference, the lowest validation loss), each unless it
    already trains at ``epochs``. ``val_images`` None (a Pareto search or a latency target, where the final model's
    noise rule does not apply either): no references first."""
    from nas_core.fidelity import promotion_picks

    shorter = {trial.id: trial for trial in trials if trial.status == TrialStatus.SUCCEEDED
               and experiment.epochs_of(trial) * 2 == epochs
               and trial_value(trial, experiment.metric) is not None}
    chosen = promotion_picks(((trial.id, trial_value(trial, experiment.metric), trial.val_loss, trial.number)
                              for trial in shorter.values()),
                             ranks=reference_ranks(experiment, shorter.values()), val_images=val_images)
    return [dict(shorter[trial_id].decisions) for trial_id in chosen
            if (_candidate_hash(shorter[trial_id].arch), epochs) not in tried]


def _invariant(trials: list[Trial], num_classes: int, flip: str) -> bool:
    """Whether the finished trials trained without ``flip`` (``hflip``: left to right; ``vflip``: top to bottom)
    show the data set's classes to survive that flip."""
    from nas_core.mirror import looks_mirror_symmetric

    column = "val_mirrored_balanced_accuracy" if flip == "hflip" else "val_upside_down_balanced_accuracy"
    evidence = [(trial.val_balanced_accuracy, getattr(trial, column)) for trial in trials
                if trial.status == TrialStatus.SUCCEEDED and trial.val_balanced_accuracy is not None
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
    return _at_least_share(limits, experiment, settings, REFERENCE_TIME_SHARE)


def _promotion_limits(limits, experiment: Experiment, settings: Settings, *, at_length: int):
    """A promoted trial (:func:`_promotions`) may take its share of the time left among the
    :data:`nas_core.fidelity.MIN_TRIALS_AT_LENGTH` trials the search lengthened its trials for
    (:func:`trial_epochs` checked that they fit), less the ``at_length`` trials of that length already made:
    screened by the fair share of a new proposal, the best networks of the shorter length would give their place to
    cheap newcomers that train just as long."""
    from nas_core.fidelity import MIN_TRIALS_AT_LENGTH

    return _at_least_share(limits, experiment, settings, 1.0 / max(1, MIN_TRIALS_AT_LENGTH - at_length))


def _at_least_share(limits, experiment: Experiment, settings: Settings, share: float):
    """``limits`` with a trial time of at least ``share`` of the time left, at most the trial time limit."""
    import dataclasses

    if limits.max_trial_seconds is None:
        return limits
    seconds = share * _time_left_s(experiment, settings)
    return dataclasses.replace(limits, max_trial_seconds=min(float(settings.trial_time_limit_s),
                                                             max(limits.max_trial_seconds, seconds)))


def _screening_seconds(experiment: Experiment) -> float:
    """How long one pass may screen: :data:`SCREEN_MAX_SECONDS`, or with ``max_minutes`` :data:`SCREEN_TIME_SHARE`
    of the search's time left when that is less."""
    if not experiment.budget.get("max_minutes"):
        return SCREEN_MAX_SECONDS
    return min(SCREEN_MAX_SECONDS, SCREEN_TIME_SHARE * _wall_seconds_left(experiment))


def _wall_seconds_left(experiment: Experiment) -> float:
    """Seconds of ``max_minutes`` the search has left on the clock (0 once spent); only for a time-bound search."""
    return max(0.0, experiment.budget["max_minutes"] * 60.0 - elapsed_seconds(experiment))


def _time_left_s(experiment: Experiment, settings: Settings) -> float:
    """Seconds a new trial may take in all: the time budget left times the concurrency, or the trial limit."""
    if not experiment.budget.get("max_minutes"):
        return float(settings.trial_time_limit_s)
    return _wall_seconds_left(experiment) * experiment.concurrency


def _relaxed_time(limits, experiment: Experiment, settings: Settings):
    """Twice the time share, at most the whole time left (times the concurrency)."""
    import dataclasses

    cap = max(1.0, _time_left_s(experiment, settings))
    return dataclasses.replace(limits, max_trial_seconds=min(cap, limits.max_trial_seconds * 2))


def _running_record(number: int, decisions: dict[str, Any]):
    from nas_core.params import TrialRecord

    return TrialRecord(number=number, decisions=dict(decisions), status=TrialStatus.RUNNING)



def _promote_stopped_trial(session: Session, experiment: Experiment) -> bool:
    """A search ending without any finished trial still has an answer when trials were stopped early (by the
    deadline or by pruning): the one that trained longest, then scored best, becomes ``succeeded`` (its error says
    where it stopped), so the search ends with a leader and a final model rather than ``failed``."""
    metric = experiment.metric
    curves = repository.epoch_seconds_by_trial(session, experiment.id)
    stopped = [trial for trial in repository.all_trials(session, experiment.id)
               if trial.status == TrialStatus.PRUNED and trial.feasible and trial_value(trial, metric) is not None]
    if not stopped:
        return False
    best = max(stopped, key=lambda trial: (len(curves.get(trial.id, ())), trial_value(trial, metric), -trial.number))
    best.status = TrialStatus.SUCCEEDED
    best.error = f"{best.error} (kept: no trial finished, and this one trained longest and best)"
    return True


def _final_status(counts) -> str:
    return "succeeded" if counts["succeeded"] else "failed"


def _finish(session: Session, settings: Settings, experiment: Experiment, status: str, *, counts=None,
            out_of_time: bool = False, detail: str | None = None) -> None:
    stop_clock(experiment)
    experiment.status, experiment.finished_at = status, utcnow()
    if status == ExperimentStatus.FAILED:
        summary = ", ".join(f"{counts[s]} {s}" for s in ("failed", "pruned", "stopped", "canceled")
                            if counts and counts[s])
        experiment.detail = detail or f"no trial succeeded ({summary or 'no trials ran'})"
        if not detail and out_of_time and not (counts and (counts["failed"] or counts["pruned"])):
            experiment.detail = "the time budget was spent before any trial finished"
    elif status == ExperimentStatus.SUCCEEDED:
        experiment.detail = "time budget spent" if out_of_time else detail
        if experiment.auto_model and settings.auto_model:
            try:
                with session.begin_nested():  # a refused model must not undo the experiment's finish
                    # The same gate as a requested model: none is built while the storage quota is full.
                    quotas.check_storage_quota(session=session, settings=settings,
                                                       project_id=experiment.project_id, adding_bytes=1)
                    models_service.create_model(session=session, settings=settings,
                                                project_id=experiment.project_id, experiment=experiment)
            except APIError as error:
                log.warning("experiment %s: no final model: %s", experiment.id, error.detail)
                experiment.detail = experiment.detail or f"no final model: {error.detail}"
    log.info("experiment %s %s", experiment.id, status)
