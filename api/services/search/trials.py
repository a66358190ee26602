"""Running one trial: one *attempt* under a lease, with heartbeats, checkpoints and stop requests.

``run_trial`` takes a lease (a fresh token stored on the trial), keeps a heartbeat while it trains, and every write it
makes carries the token — once the reaper has handed the trial to a new attempt, the old one can no longer write
anything. When the attempt ends, the scheduler plans the next trials.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.orm import Session

from api.db import UnitOfWork, utcnow
from api.orm import Experiment, Trial, TrialAttempt, TrialEpoch
from api.repositories import datasets as dataset_repository
from api.repositories import experiments as repository
from api.schemas.experiments import MAX_OTHER_LATENCY_DEVICES
from api.services.devices import resolve_device
from api.services.leases import LOST, Heartbeat, LeaseLost
from api.services.models.requests import learning_evidence, noise_rule_images
from api.services.object_keys import trial_checkpoint_key, trial_weights_key
from api.services.search.history import experiment_value, history_records, latency_factor, trial_value
from api.services.search_spaces import reference_rank, reference_ranks
from api.services.search.scheduler import data_shape, elapsed_seconds, schedule, throughput, time_is_up
from api.settings import Settings
from api.statuses import AttemptStatus, DatasetStatus, ExperimentStatus, TrialStatus
from api.storage import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)

# torch and nas_core are imported inside the functions that use them: only workers that train load them, not the API
# process (it imports this package for the stop reasons).

# Errors that condemn the candidate (bad architecture, diverged training, out of memory), not the machine: the
# trial is marked failed. Anything else (database or storage unreachable) escapes, and the reaper retries the trial.
DOMAIN_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, ValueError, ArithmeticError, MemoryError,
                                                   SoftTimeLimitExceeded)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# A trial stops at its first epoch boundary past the deadline; one whose epoch runs on this far past it (a fraction
# of max_minutes, at least DEADLINE_GRACE_MIN_S) stops mid-epoch instead.
DEADLINE_GRACE_FRACTION = 0.05
DEADLINE_GRACE_MIN_S = 30.0
# The error of a trial the deadline stopped at an epoch boundary, before the epoch's number.
DEADLINE_STOP = "time budget spent: stopped after epoch"


# Why a trial ends ``stopped``: a user asked for it (POST .../trials/{number}/stop).
STOP_REQUESTED = "stopped on request"


def stop_reason(experiment: Experiment | None) -> str | None:
    """Why a running trial of ``experiment`` should stop at once (mid-epoch), if it should: a cancel, or a deadline
    overrun by more than the grace."""
    if experiment is None or experiment.status == ExperimentStatus.CANCELING:
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
    if trial is None or experiment is None or trial.status not in (TrialStatus.PENDING, TrialStatus.RUNNING):
        return None
    now = utcnow()
    if trial.status == TrialStatus.RUNNING:
        stale_before = now - timedelta(seconds=settings.trial_stale_after_s)
        if trial.heartbeat_at is not None and trial.heartbeat_at >= stale_before:
            return None  # a live attempt holds it: this is a duplicate delivery
        abandon_attempt(session, trial, "worker stopped sending heartbeats")
    if trial.stop_requested_at is not None:
        # Asked to stop while its worker was lost (or before the request saw it start): no new attempt.
        trial.status, trial.finished_at, trial.lease_token = TrialStatus.STOPPED, now, None
        trial.error = STOP_REQUESTED
        schedule(session=session, settings=settings, experiment_id=experiment.id)
        return None
    if experiment.status != ExperimentStatus.RUNNING:
        trial.status, trial.finished_at = TrialStatus.CANCELED, now
        trial.error = f"experiment is {experiment.status}"
        schedule(session=session, settings=settings, experiment_id=experiment.id)
        return None
    if trial.attempts >= settings.trial_max_attempts:
        trial.status, trial.finished_at = TrialStatus.FAILED, now
        trial.error = f"the worker running this trial was lost {trial.attempts} times"
        schedule(session=session, settings=settings, experiment_id=experiment.id)
        return None
    lease_token = uuid.uuid4().hex
    trial.attempts += 1
    repository.add(session, TrialAttempt(trial_id=trial.id, number=trial.attempts, lease_token=lease_token,
                                         worker=worker_name(), status=AttemptStatus.RUNNING, started_at=now,
                                         heartbeat_at=now))
    trial.status, trial.lease_token, trial.heartbeat_at = TrialStatus.RUNNING, lease_token, now
    trial.started_at = trial.started_at or now
    trial.error = None
    return lease_token, experiment.id


def abandon_attempt(session: Session, trial: Trial, reason: str) -> None:
    if trial.lease_token:
        repository.update_attempt(session, trial.lease_token, status=AttemptStatus.LOST, error=reason,
                                  ended_at=utcnow())
    trial.lease_token, trial.status = None, TrialStatus.PENDING


def _execute(*, unit_of_work: UnitOfWork, store: ObjectStore, settings: Settings, trial_id: str, lease_token: str,
             heartbeat: Heartbeat) -> dict[str, Any]:
    """Build, check constraints, train; returns the trial's final columns (status included)."""
    import torch

    from nas_core.builder import build_model
    from nas_core.errors import ConstraintViolation, NASError, TrialCanceled, TrialPruned
    from nas_core.environment import latency_device
    from nas_core.metrics import count_flops, count_params, measure_onnx_latency, check_constraints, ModelCost
    from nas_core.mirror import mirror_scores
    from nas_core.pruning import rung_score
    from nas_core.spec import Candidate
    from nas_core.resolution import resize_images
    from nas_core.precision import use_bf16
    from nas_core.trainer import TrainData, plan_epochs, train

    from api.services import dataset_cache  # loads torch: only in the workers that train

    with unit_of_work() as session:
        trial = repository.get_trial(session, trial_id)
        experiment = repository.get(session, trial.experiment_id)
        dataset = dataset_repository.get(session, experiment.dataset_id) if experiment.dataset_id else None
        if dataset is None or dataset.status != DatasetStatus.READY:
            return {"status": TrialStatus.FAILED, "error": "the experiment's dataset is gone", "feasible": True}
        constraints, pruner_settings = dict(experiment.constraints or {}), dict(experiment.pruner or {})
        candidate, seed, number = Candidate.from_dict(trial.arch), trial.seed, trial.number
        epochs = experiment.epochs_of(trial)
        reference = reference_rank(experiment, (trial.decisions or {}) if trial.reference_design else None)
        experiment_id, project_id, metric = experiment.id, experiment.project_id, experiment.metric
        minimize, latency_target_ms = experiment.minimize, experiment.latency_target_ms
        latency_batch = experiment.latency_batch
        shorter = repository.shorter_run(session, experiment, trial)
        shorter = (shorter.number, shorter.id) if shorter is not None else None
        stored_bf16 = trial.bf16
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
        # Deployment latency: the network's ONNX graph under onnxruntime, with more runs than screening takes.
        latency = measure_onnx_latency(model, input_shape, threads=settings.latency_threads)
        cost["latency_ms"], cost["latency_p90_ms"] = latency.p50_ms, latency.p90_ms
        if latency_batch:  # recorded only: everything that ranks or constrains uses latency_ms (batch 1)
            cost["latency_batch_ms"] = measure_onnx_latency(
                model, (latency_batch, data.channels, *size), threads=settings.latency_threads, repeats=10,
                warmup=2).p50_ms
        check_constraints(ModelCost(cost["params"], cost["flops"], cost["latency_ms"]),
                          max_latency_ms=constraints.get("max_latency_ms"), max_mflops=constraints.get("max_mflops"))
    except ConstraintViolation as violation:
        return {"status": TrialStatus.FAILED, "feasible": False,
                "error": f"constraint violated: {violation.message}", **cost}
    except (NASError, *DOMAIN_ERRORS) as error:
        return {"status": TrialStatus.FAILED, "error": f"could not build the model: {error}", "feasible": True, **cost}

    make_trial_pruner(pruner_settings, epochs=epochs)  # settings checked before training
    # The precision is decided once per trial (a timed probe on a CPU) and stored with the cost before training, so an
    # attempt redone after a crash trains exactly as the lost one did.
    cost["bf16"] = stored_bf16 if stored_bf16 is not None else use_bf16(
        model, (data.channels, *size), plan_epochs(len(data.train_y), candidate.train, epochs).batch_size, device)
    chance = 1.0 / max(1, len(data.classes))
    checkpoint_key = trial_checkpoint_key(project_id, experiment_id, trial_id)
    resume = _load_checkpoint(store, checkpoint_key)
    resumed_from = int(resume["epoch"]) if resume is not None else None
    if resume is None:  # a resumed attempt restores its own weights; the first one recorded where they began
        cost["started_from_trial"] = _start_from_shorter_run(store, model, shorter, project_id=project_id,
                                                             experiment_id=experiment_id)
    with unit_of_work() as session:
        # The curve keeps the epochs the checkpoint covers; later ones (a dead attempt's) go, so none repeats.
        # The measured cost is stored before training: a Pareto search's pruner compares running trials on it.
        if not repository.update_leased_trial(session, trial_id, lease_token, heartbeat_at=utcnow(), **cost):
            raise LeaseLost(trial_id)
        _record_latency_device(session, experiment_id, latency_device(settings.latency_threads))
        repository.clear_epochs(session, trial_id, after=resumed_from or 0)
        repository.update_attempt(session, lease_token, resumed_from_epoch=resumed_from)
    if resume is not None:
        log.info("trial %s resumes after epoch %d", trial_id, resumed_from)

    def on_epoch(report) -> None:
        epoch_reports.append(report)
        score = latency_factor(cost["latency_ms"], latency_target_ms) * rung_score(
            val_accuracy=report.val_accuracy, val_balanced_accuracy=report.val_balanced_accuracy,
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
            last_epoch = report.epoch >= epochs
            if not heartbeat.stop_reason and not deadline and not last_epoch:
                # Curves compare at equal epochs of equal schedules: only trials of this one's length count.
                history = history_records(session, experiment, exclude=trial_id, epochs=epochs)
                pruner = make_trial_pruner(pruner_settings, epochs=epochs, history=history,
                                           chance=chance)
                prune = pruner is not None and pruner.should_prune(history, number=number, epoch=report.epoch,
                                                                   value=score, costs=cost, minimize=minimize)
        # Raised only after the commit above, so a prune or cancel never rolls the epoch's metrics back.
        if heartbeat.stop_reason:
            raise TrialCanceled(heartbeat.stop_reason)
        if deadline and not last_epoch:
            raise TrialPruned(f"{DEADLINE_STOP} {report.epoch}")
        if prune:
            behind = f"dominated by earlier trials at this epoch (score and {', '.join(minimize)})" if minimize \
                else "below earlier trials at this epoch"
            raise TrialPruned(f"pruned after epoch {report.epoch}: validation score {score:.4f} (balanced accuracy "
                              f"less a loss tie-break) is {behind}")

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
        result = train(model, train_data, epochs=epochs, train=candidate.train, mean=data.mean,
                       std=data.std, seed=seed, device=device, num_classes=len(data.classes), on_epoch=on_epoch,
                       should_stop=should_stop, resume=resume, bf16=cost["bf16"],
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
        return {"status": TrialStatus.FAILED, "error": f"training failed: {error}"[:4000], "feasible": True, **cost}
    # Two more passes over the validation images, mirrored and upside down: is the data set mirror-symmetric, are its
    # images orientation-free?
    mirror = mirror_scores(model, val_x, data.val_y, mean=data.mean, std=data.std, device=device)
    final = finished("succeeded", None, val_accuracy=result.val_accuracy, val_loss=result.epochs[-1].val_loss,
                     val_mirrored_balanced_accuracy=mirror.mirrored_balanced_accuracy if mirror else None,
                     val_upside_down_balanced_accuracy=mirror.upside_down_balanced_accuracy if mirror else None)
    value = final["val_balanced_accuracy"] if metric == "balanced_accuracy" else final["val_accuracy"]
    value *= latency_factor(cost["latency_ms"], latency_target_ms)
    _keep_weights_if_leading(unit_of_work=unit_of_work, store=store, project_id=project_id,
                             experiment_id=experiment_id, trial_id=trial_id, metric=metric, value=value, model=model,
                             val_loss=final["val_loss"], balanced_accuracy=final["val_balanced_accuracy"],
                             reference=reference, val_accuracy=final["val_accuracy"])
    return final


def _record_latency_device(session: Session, experiment_id: str, device: dict[str, Any]) -> None:
    """Name, on the experiment's reproducibility record, the CPU and runtime its trials' latencies were measured on:
    the first trial that measures writes ``latency_device``; a later one measured on another CPU model, thread count
    or runtime adds its device to ``latency_devices_other`` (distinct ones, at most
    :data:`MAX_OTHER_LATENCY_DEVICES`), which tells that the experiment's latencies are not comparable."""
    from nas_core.environment import same_latency_device

    def recorded(experiment: Experiment | None) -> bool:
        if experiment is None:
            return True
        record = experiment.reproducibility or {}
        if "latency_device" not in record:
            return False
        known = [record["latency_device"], *record.get("latency_devices_other", [])]
        return (any(same_latency_device(device, other) for other in known)
                or len(known) > MAX_OTHER_LATENCY_DEVICES)

    if recorded(repository.get(session, experiment_id)):
        return  # the common case: nothing to write, so no lock
    experiment = repository.lock(session, experiment_id)  # two first trials on different CPUs: both are kept
    if recorded(experiment):
        return
    record = dict(experiment.reproducibility or {})
    if "latency_device" not in record:
        record["latency_device"] = device
    else:
        record["latency_devices_other"] = [*record.get("latency_devices_other", []), device]
    experiment.reproducibility = record


def _start_from_shorter_run(store: ObjectStore, model, shorter: tuple[int, str] | None, *, project_id: str,
                            experiment_id: str) -> int | None:
    """Load the kept weights of ``shorter`` (number, id: the same candidate's run at half the length) into
    ``model`` and return its number; None, leaving the seed's weights, when there is no such run or its weights
    were not kept (the search keeps its leader's, the final model's pick's and, while their length has not
    learned, those of the trials it would promote: :func:`nas_core.fidelity.promotable`).

    Successive halving promotes its best to the next rung and trains them on there: the promoted trial's epochs
    add to those of its shorter run (a warm restart of the schedule), rather than spending them again from scratch.
    """
    if shorter is None:
        return None
    number, trial_id = shorter
    state = _load_checkpoint(store, trial_weights_key(project_id, experiment_id, trial_id))
    if state is None:
        return None
    try:
        model.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError):
        log.warning("the kept weights of trial %d do not fit its promoted run; it starts afresh", number,
                    exc_info=True)
        return None
    return number


def _load_checkpoint(store: ObjectStore, key: str) -> dict | None:
    """The torch file at ``key`` (a trial's last checkpoint, kept weights), or None when there is none (or it cannot
    be read: start afresh)."""
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
                             trial_id: str, metric: str, value: float, model, val_loss: float | None = None,
                             balanced_accuracy: float | None = None, reference: int | None = None,
                             val_accuracy: float | None = None) -> None:
    """Store ``model``'s weights when this trial scores at least the search's best so far, is the trial a final
    model would retrain instead (:func:`~api.services.models.requests.default_trial`: the lowest validation loss
    within the noise of the leader's metric, among the reference designs by their order of preference (``reference``:
    this trial's rank, None for other networks) while no trial has learned), or is one a
    time-bound search would promote to a longer length (:func:`_promotable`), and drop the weights of the trials it
    displaces: only those kept (a few MB each), for the final model and promoted trials to start from.

    ``value`` is the metric the search maximises (times the latency factor of a soft target); ``val_accuracy``
    and ``balanced_accuracy`` the trial's own figures, which promotions rank by.

    Best effort: a store error only costs the final model (or a promoted trial) its head start.
    """
    from nas_core.fidelity import unlearned_references
    from nas_core.ranking import pick_within_noise

    with unit_of_work() as session:
        leader = repository.best_trials(session, [experiment_id], metrics={experiment_id: metric}).get(experiment_id)
        experiment = repository.get(session, experiment_id)
        leader_id, leader_value = (leader.id, experiment_value(leader, experiment)) if leader is not None \
            else (None, None)
        picks = (None, None)
        val_images = noise_rule_images(session, experiment)
        rows, chance = learning_evidence(session, experiment)
        if val_images is not None:
            ranked = [row for row in repository.ranked_losses(session, experiment_id, metric=metric)
                      if row[0] != trial_id]
            place = sum(1 for _, score, _loss in ranked if score is not None and score >= value)
            picks = (pick_within_noise(ranked, val_images=val_images,
                                       among=unlearned_references(rows, chance=chance)),
                     pick_within_noise([*ranked[:place], (trial_id, value, val_loss), *ranked[place:]],
                                       val_images=val_images, among=unlearned_references(
                                           [*rows, (trial_id, balanced_accuracy, reference)], chance=chance)))
        own = balanced_accuracy if metric == "balanced_accuracy" and balanced_accuracy is not None else val_accuracy
        promotable_before, promotable_after = _promotable(session, experiment, trial_id, chance=chance,
                                                          val_images=val_images, value=own,
                                                          val_loss=val_loss, balanced_accuracy=balanced_accuracy)
    previous_pick, pick = picks
    leads = leader_value is None or value >= leader_value
    # A tie keeps both: the leaderboard's tie-break (fewer params, then latency) may still prefer the leader.
    still_leading = {leader_id} if leader_value is not None and value <= leader_value else set()
    kept = {pick, *still_leading, *promotable_after} | ({trial_id} if leads else set())
    displaced = ({previous_pick, leader_id} | promotable_before) - kept - {None}
    try:
        if trial_id in kept:
            data = torch_bytes({name: tensor.detach().cpu() for name, tensor in model.state_dict().items()})
            store.put_bytes(trial_weights_key(project_id, experiment_id, trial_id), data)
        for old in displaced:
            store.delete_prefix(trial_weights_key(project_id, experiment_id, old).removesuffix("weights.pt"))
    except Exception:
        log.warning("trial %s: could not keep its weights", trial_id, exc_info=True)


def _promotable(session: Session, experiment: Experiment, trial_id: str, *, chance: float | None,
                val_images: int | None, value: float | None, val_loss: float | None,
                balanced_accuracy: float | None) -> tuple[set[str], set[str]]:
    """The trials :func:`nas_core.fidelity.promotable` keeps the weights of, before and after ``trial_id`` succeeds
    with these figures (``val_images``: the noise rule's, :func:`noise_rule_images`): none unless the search may
    lengthen its trials (``max_minutes`` with adaptive epochs)."""
    from nas_core.fidelity import promotable

    budget = experiment.budget or {}
    if chance is None or value is None or not budget.get("max_minutes") or not budget.get("adaptive_epochs", True):
        return set(), set()
    trials = repository.all_trials(session, experiment.id)
    runs = [(trial.id, trial_value(trial, experiment.metric), trial.val_loss, trial.number,
             experiment.epochs_of(trial), trial_value(trial, "balanced_accuracy"))
            for trial in trials if trial.status == TrialStatus.SUCCEEDED and trial.id != trial_id
            and trial_value(trial, experiment.metric) is not None]
    this = next((trial for trial in trials if trial.id == trial_id), None)
    if this is None:
        return set(), set()
    finished = (trial_id, value, val_loss, this.number, experiment.epochs_of(this),
                balanced_accuracy if balanced_accuracy is not None else value)
    ranks = reference_ranks(experiment, trials)
    return (promotable(runs, chance=chance, ranks=ranks, val_images=val_images),
            promotable([*runs, finished], chance=chance, ranks=ranks, val_images=val_images))


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
