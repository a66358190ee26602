"""The final model's job: retrain a search's winner on train+val, test it on the held-out split, export verified
artifacts, upload them.

The job (:func:`run_model_job`) is crash-safe like trials. It claims the model under a fresh lease token (attempts
+1), keeps a heartbeat while it works, and writes its result only through lease-checked UPDATEs, so an attempt the
reaper has given up on can never overwrite a newer one. Every attempt uploads under its own
``{project_id}/models/{model_id}/attempt-N/`` folder; the row turns ``ready`` — with the object list — in one
lease-checked transaction after every upload was confirmed. A model is therefore never ``ready`` with a missing
or unverified artifact, and a lost attempt's files are removed rather than mixed with the winner's. An outage of
the object store or the database (:func:`is_transient`) is not the model's failure: the attempt's files are dropped,
the model goes back to ``queued`` and runs again after an exponential backoff, until ``model_max_attempts``.
"""

from __future__ import annotations

import errno
import logging
import tempfile
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from api.db import UnitOfWork, new_id, run_after_commit, utcnow
from api.repositories import datasets as datasets_repository
from api.repositories import experiments as experiments_repository
from api.repositories import models as repository
from api.services.devices import resolve_device
from api.services.leases import LOST, Heartbeat, LeaseLost
from api.services.models.artifacts import ARTIFACT_FILES, ARTIFACT_LAYOUTS, sha256, write_cards, write_json
from api.services.models.requests import learning_evidence, max_fitted_epochs
from api.services.object_keys import trial_weights_key
from api.services.search_spaces import search_space_for
from api.settings import Settings
from api.statuses import DatasetStatus, ModelStatus, TrialStatus
from api.storage import ObjectNotFound, ObjectStore
from nas_core.environment import package_versions
from nas_core.errors import TrialCanceled

log = logging.getLogger(__name__)

# Trials that finished training, in full or cut short by the pruner or a stop: what the search learned from.
TRAINED_TRIAL_STATUSES = (TrialStatus.SUCCEEDED.value, TrialStatus.PRUNED.value, TrialStatus.STOPPED.value)


@dataclass(frozen=True, slots=True)
class _Claim:
    model_id: str
    lease_token: str
    attempt: int
    prefix: str
    epochs: int
    seed: int
    experiment_id: str
    trial_id: str
    candidate: dict[str, Any]
    dataset: Any  # the Dataset row, detached (expire_on_commit=False)
    project_id: str = ""
    max_latency_ms: float | None = None  # the experiment's latency constraint binds the exported graph too
    train_seconds: float | None = None  # the epochs' time budget (RetrainingPlan.train_seconds) ...
    max_epochs: int | None = None  # ... and the most epochs it may buy
    search: dict[str, Any] | None = None  # the search that produced the trial, for the card (_search_summary)
    allow_flip: bool = True  # the experiment's space allows random horizontal flips (the final model may add them)
    allow_policy: bool = True  # ... and TrivialAugment (a long final schedule may add it)
    # no trial of the search learned: validate on the held-out split and keep the best weights (nas_core.final)
    hold_out_validation: bool = False
    metric: str = "accuracy"
    max_side: int | None = None  # the largest input side a long time budget may raise the winner's to (_side_limit)


def _model_beat(*, unit_of_work: UnitOfWork, model_id: str, lease_token: str):
    """One heartbeat of a model job: refresh ``heartbeat_at`` under the lease."""

    def beat() -> str | None:
        with unit_of_work() as session:
            held = repository.update_with_lease(session, model_id, lease_token, heartbeat_at=utcnow())
        return None if held else LOST

    return beat


def run_model_job(*, unit_of_work: UnitOfWork, store: ObjectStore, settings: Settings, model_id: str) -> str:
    """Build one model end to end; returns ``ready``, ``failed``, ``lost`` or ``skipped``. Safe to run twice.

    Raises :class:`ModelJobDeferred` when an outage (:func:`is_transient`) interrupted the attempt before its last
    one: the model is ``queued`` again and the caller runs it after ``retry_in_s``.
    """
    claim = _claim(unit_of_work=unit_of_work, settings=settings, model_id=model_id)
    if isinstance(claim, str):
        return claim
    attempt_prefix = f"{claim.prefix}attempt-{claim.attempt}/"
    for earlier in range(1, claim.attempt):  # files an interrupted attempt could not delete (the store was down)
        _drop(store, f"{claim.prefix}attempt-{earlier}/")
    with Heartbeat(name=f"model-heartbeat-{model_id[:8]}", interval_s=settings.model_heartbeat_s,
                   beat=_model_beat(unit_of_work=unit_of_work, model_id=model_id,
                                    lease_token=claim.lease_token)) as heartbeat:
        try:
            result = _build(claim=claim, store=store, settings=settings, heartbeat=heartbeat,
                            attempt_prefix=attempt_prefix)
            heartbeat.check()
        except (LeaseLost, TrialCanceled):  # the trainer stops with TrialCanceled once the lease is gone
            log.warning("model %s: lease lost during attempt %d; leaving it to the newer attempt", model_id,
                        claim.attempt)
            _drop(store, attempt_prefix)
            return "lost"
        except Exception as error:  # a failed build is a model state, not a task crash
            if is_transient(error):  # the infrastructure failed, not the model: run it again later
                return _after_outage(unit_of_work=unit_of_work, store=store, settings=settings, claim=claim,
                                     attempt_prefix=attempt_prefix, error=error)
            log.exception("model %s: attempt %d failed", model_id, claim.attempt)
            detail = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
            with unit_of_work() as session:
                failed = repository.update_with_lease(session, model_id, claim.lease_token, status=ModelStatus.FAILED,
                                                      detail=detail[:4000], lease_token=None, finished_at=utcnow())
                run_after_commit(session, lambda: _drop(store, attempt_prefix))
            return "failed" if failed else "lost"
    with unit_of_work() as session:
        if repository.update_with_lease(session, model_id, claim.lease_token, status=ModelStatus.READY,
                                        lease_token=None, finished_at=utcnow(), detail=None, **result):
            return "ready"
        run_after_commit(session, lambda: _drop(store, attempt_prefix))
    return "lost"


class ModelJobDeferred(Exception):
    """An outage interrupted an attempt; the model is ``queued`` again and should run after ``retry_in_s``."""

    def __init__(self, model_id: str, attempt: int, retry_in_s: float, reason: str) -> None:
        super().__init__(model_id, attempt, retry_in_s, reason)  # positional args: the exception stays picklable
        self.model_id, self.attempt, self.retry_in_s, self.reason = model_id, attempt, retry_in_s, reason

    def __str__(self) -> str:
        return (f"model {self.model_id}: attempt {self.attempt} interrupted by {self.reason}; "
                f"retry in {self.retry_in_s:g}s")


class ArtifactNotStored(RuntimeError):
    """The store acknowledged an upload but does not hold all of it (an infrastructure fault, retried)."""


_NETWORK_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT,
                             errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN})


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or the error that caused it) is an infrastructure outage worth retrying.

    Transient: the object store unreachable or answering 5xx (minio ``S3Error``/``ServerError``, urllib3
    connection errors and ``MaxRetryError``), network ``OSError``s, the database unavailable (``OperationalError``),
    an upload the store did not keep. Anything else — a bad architecture, a failed export check, a missing
    dataset object — is the model's own failure and retrying would fail the same way.

    >>> is_transient(ConnectionRefusedError(111, "Connection refused"))
    True
    >>> is_transient(ValueError("width must be positive"))
    False
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_outage(current):
            return True
        # Follow what caused it; an implicit context counts unless it was explicitly suppressed (`from None`).
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return False


def _is_outage(error: BaseException) -> bool:
    from minio.error import S3Error, ServerError
    from sqlalchemy.exc import DisconnectionError, OperationalError
    from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError
    from urllib3.exceptions import TimeoutError as HTTPTimeout

    if isinstance(error, S3Error):  # 4xx codes (NoSuchKey, AccessDenied) are answers, not outages
        return getattr(error.response, "status", 0) >= 500
    if isinstance(error, ServerError):
        return error.status_code >= 500
    if isinstance(error, (MaxRetryError, NewConnectionError, ProtocolError, HTTPTimeout, OperationalError,
                          DisconnectionError, ArtifactNotStored, ConnectionError, TimeoutError)):
        return True
    return isinstance(error, OSError) and error.errno in _NETWORK_ERRNOS


def retry_delay_s(*, settings: Settings, attempt: int) -> float:
    """Exponential backoff after attempt ``attempt`` (1-based): ``model_retry_backoff_s`` × 2^(attempt-1)."""
    # Capped below the queued-staleness period, or the reaper would re-enqueue the model before its retry is due.
    return min(settings.model_retry_backoff_s * 2 ** (attempt - 1), settings.model_queued_stale_after_s)


def _describe_outage(error: BaseException) -> str:
    from sqlalchemy.exc import DBAPIError

    service = "the database" if isinstance(error, DBAPIError) else "the object store"
    return f"{service} unavailable ({type(error).__name__}: {str(error)[:300]})"


def _after_outage(*, unit_of_work: UnitOfWork, store: ObjectStore, settings: Settings, claim: _Claim,
                  attempt_prefix: str, error: BaseException) -> str:
    """Undo an attempt an outage interrupted: drop its files, requeue it (or fail it after the last attempt)."""
    reason = _describe_outage(error)
    log.warning("model %s: attempt %d interrupted: %s", claim.model_id, claim.attempt, reason)
    _drop(store, attempt_prefix)  # best effort while the store is down; the next attempt removes what is left
    retry_in_s = retry_delay_s(settings=settings, attempt=claim.attempt)
    last = claim.attempt >= settings.model_max_attempts
    try:
        with unit_of_work() as session:
            if last:
                detail = f"{reason}; gave up after {claim.attempt} attempts"
                moved = repository.update_with_lease(session, claim.model_id, claim.lease_token,
                                                     status=ModelStatus.FAILED, detail=detail[:4000],
                                                     lease_token=None, finished_at=utcnow())
            else:  # clearing the lease hands the row to whichever delivery claims it next
                detail = f"attempt {claim.attempt} interrupted: {reason}; retrying in {retry_in_s:g}s"
                moved = repository.update_with_lease(session, claim.model_id, claim.lease_token,
                                                     status=ModelStatus.QUEUED, detail=detail[:4000], lease_token=None)
    except Exception as write_error:
        if not is_transient(write_error):
            raise
        # The database is down too: the row stays `running` under our lease; once its heartbeat is stale the
        # claim (or the reaper) takes it, so the retry is scheduled past the stale period.
        log.warning("model %s: could not requeue after an outage", claim.model_id, exc_info=True)
        raise ModelJobDeferred(claim.model_id, claim.attempt, settings.model_stale_after_s + retry_in_s,
                               reason) from error
    if not moved:
        return "lost"
    if last:
        return "failed"
    raise ModelJobDeferred(claim.model_id, claim.attempt, retry_in_s, reason) from error


def _claim(*, unit_of_work: UnitOfWork, settings: Settings, model_id: str) -> _Claim | str:
    """Take the model under a new lease, or say why not (``skipped``: done, gone or alive elsewhere)."""
    with unit_of_work() as session:
        model = repository.get(session, model_id, for_update=True)
        if model is None or model.status in (ModelStatus.READY, ModelStatus.FAILED):
            return "skipped"
        stale_before = utcnow() - timedelta(seconds=settings.model_stale_after_s)
        if model.status == ModelStatus.RUNNING and model.heartbeat_at is not None \
                and model.heartbeat_at >= stale_before:
            return "skipped"  # a live attempt holds it (a re-delivered message)
        if model.attempts >= settings.model_max_attempts:
            repository.update_status(session, model_id, expected_status=model.status, status=ModelStatus.FAILED,
                                     lease_token=None, finished_at=utcnow(),
                                     detail=f"the model job did not finish in {model.attempts} attempts")
            return "failed"
        experiment = experiments_repository.get(session, model.experiment_id)
        trial = experiments_repository.get_trial(session, model.trial_id)
        dataset = datasets_repository.get(session, experiment.dataset_id) if experiment and experiment.dataset_id \
            else None
        if trial is None or dataset is None or dataset.status != DatasetStatus.READY:
            repository.update_status(session, model_id, expected_status=model.status, status=ModelStatus.FAILED,
                                     lease_token=None, finished_at=utcnow(),
                                     detail="the trial or the dataset of this model no longer exists")
            return "failed"
        lease_token, attempt = new_id(), model.attempts + 1  # read before the UPDATE refreshes `model`
        if not repository.claim(session, model_id, seen_attempts=model.attempts, lease_token=lease_token,
                                stale_before=stale_before):
            return "skipped"  # another worker claimed it between our read and our write
        # Committed before the heavy work, so a crash still counts as an attempt.
        return _Claim(model_id=model_id, lease_token=lease_token, attempt=attempt,
                      prefix=model.storage_prefix, epochs=model.epochs, seed=model.seed,
                      experiment_id=model.experiment_id, trial_id=model.trial_id, candidate=dict(trial.arch),
                      dataset=dataset, project_id=model.project_id,
                      max_latency_ms=(experiment.constraints or {}).get("max_latency_ms"),
                      train_seconds=model.train_seconds,
                      max_epochs=max_fitted_epochs(experiment=experiment, settings=settings, trial=trial),
                      search=_search_summary(session, experiment), allow_flip=_space_allows_flips(experiment),
                      allow_policy=_space_allows_policy(experiment),
                      hold_out_validation=_nothing_learned(session, experiment), metric=experiment.metric,
                      max_side=_side_limit(experiment, dataset))


def _nothing_learned(session, experiment) -> bool:
    """No trial of the search has gone far from chance (:func:`nas_core.fidelity.hold_out_validation`): a long
    schedule on train+val could fit noise unchecked, so the final model keeps the validation split to choose by."""
    from nas_core.fidelity import hold_out_validation

    rows, chance = learning_evidence(session, experiment)
    return hold_out_validation((score for _, score, _ in rows), chance=chance)


def _side_limit(experiment, dataset) -> int | None:
    """The largest input side a final model may train at when its time budget buys far more epochs than its winner
    trained (:func:`nas_core.final.raised_side`): the largest the experiment's space allows on this dataset. None
    (the winner's side is kept) where a larger side could break what the user asked for: a latency or FLOPs
    constraint, a latency target or a Pareto objective (a larger side costs latency and FLOPs, not parameters)."""
    from nas_core.params import Categorical
    from nas_core.space import resolution_for

    constraints = experiment.constraints or {}
    side = (dataset.image or {}).get("height")
    if (experiment.minimize or experiment.latency_target_ms is not None or not side
            or constraints.get("max_latency_ms") is not None or constraints.get("max_mflops") is not None):
        return None
    scale = search_space_for(experiment).param_space.params["input_scale"]
    largest = max(scale.choices) if isinstance(scale, Categorical) else scale.high
    return resolution_for(float(largest), int(side))


def _space_allows_flips(experiment) -> bool:
    """Whether the experiment's search space, overrides applied, lets a network train with horizontal flips (a user
    who fixed ``train/hflip`` to false, for digits or text, keeps it false in the final model too)."""
    return search_space_for(experiment).param_space.params["train/hflip"].contains(True)


def _space_allows_policy(experiment) -> bool:
    """Whether the experiment's search space, overrides applied, lets a network train with the augmentation policy a
    long final schedule adds (:data:`nas_core.final.STRONG_AUGMENT_POLICY`; a user who fixed ``train/policy`` to
    ``none`` keeps it so in the final model too)."""
    from nas_core.final import STRONG_AUGMENT_POLICY

    return search_space_for(experiment).param_space.params["train/policy"].contains(STRONG_AUGMENT_POLICY)


def _search_summary(session, experiment) -> dict[str, Any]:
    """The search behind a model, for its card: experiment, strategy, trials that trained, budget."""
    counts = experiments_repository.trial_counts(session, experiment.id)
    trained = sum(counts[status] for status in TRAINED_TRIAL_STATUSES)
    return {"experiment_id": experiment.id, "strategy": experiment.strategy, "trials_trained": trained,
            "budget": dict(experiment.budget or {})}


def _drop(store: ObjectStore, prefix: str) -> None:
    try:
        store.delete_prefix(prefix)
    except Exception:  # orphans are harmless; a dangling row is not, and that is already settled
        log.exception("could not delete %s", prefix)


def _build(*, claim: _Claim, store: ObjectStore, settings: Settings, heartbeat: Heartbeat,
           attempt_prefix: str) -> dict[str, Any]:
    """Retrain, test, export, verify (:func:`nas_core.final.build_final_model`), upload; the columns of the ready
    row."""
    from api.services import dataset_cache  # loads torch: only where a model is built
    from nas_core.export import preprocessing_dict
    from nas_core.final import build_final_model
    from nas_core.spec import Candidate

    device = resolve_device(settings)
    data = dataset_cache.load(store=store, dataset=claim.dataset, device=device)
    with tempfile.TemporaryDirectory(prefix="nas-model-") as tmp:
        folder = Path(tmp)
        candidate = Candidate.from_dict(claim.candidate)
        built = build_final_model(candidate, data, epochs=claim.epochs, seed=claim.seed,
                                  device=device, onnx_path=folder / ARTIFACT_FILES["onnx"].filename,
                                  pt2_path=folder / ARTIFACT_FILES["pt2"].filename,
                                  initial_state=_trial_weights(store, claim),
                                  latency_repeats=settings.model_latency_repeats,
                                  max_latency_ms=claim.max_latency_ms,
                                  should_stop=heartbeat.should_stop, checkpoint=heartbeat.check,
                                  int8_onnx_path=folder / ARTIFACT_FILES["onnx_int8"].filename,
                                  int8_max_accuracy_drop=settings.int8_max_accuracy_drop,
                                  train_seconds=claim.train_seconds, max_epochs=claim.max_epochs,
                                  allow_flip=claim.allow_flip, hold_out_validation=claim.hold_out_validation,
                                  metric=claim.metric, max_side=claim.max_side, allow_policy=claim.allow_policy)
        report = built.report
        metrics = {"per_class": report.per_class, "test_images": report.count,
                   "onnx_max_abs_diff": built.onnx_max_abs_diff, "pt2_max_abs_diff": built.pt2_max_abs_diff,
                   "device": str(device), "warm_started": built.warm_started,
                   "test_time_mirror": built.test_time_mirror, "flips_added": built.flips_added,
                   "validation_held_out": built.validation_held_out, "kept_epoch": built.kept_epoch,
                   "resolution_raised_from": built.raised_from, "augmentation_added": built.policy_added,
                   "bf16": built.bf16,
                   "mirror_validation": asdict(built.mirror) if built.mirror is not None else None,
                   "int8": built.int8.to_dict() if built.int8 is not None else None}
        tensorflow = (_tensorflow_formats(built=built, data=data, folder=folder, seed=claim.seed, settings=settings)
                      if settings.tf_export else None)
        heartbeat.check()
        metrics["tensorflow"] = tensorflow.to_dict() if tensorflow is not None else None
        present = [format for format, file in ARTIFACT_FILES.items() if (folder / file.filename).exists()]
        preprocessing = preprocessing_dict(classes=data.classes, channels=data.channels, height=built.height,
                                           width=built.width, mean=data.mean, std=data.std,
                                           layouts={format: ARTIFACT_LAYOUTS[format] for format in present
                                                    if format in ARTIFACT_LAYOUTS})
        write_json(folder / ARTIFACT_FILES["preprocessing"].filename, preprocessing)
        card = _card(claim=claim, candidate=(built.candidate or candidate).to_dict(), data=data, report=report,
                     epochs=built.epochs, params=built.params, flops=built.flops, latency_ms=built.latency_ms,
                     metrics=metrics)
        write_cards(card, folder=folder, built=built, metrics=metrics)
        # onnx_int8 and the TensorFlow formats may be missing: metrics["int8"] / metrics["tensorflow"] say why
        artifacts = [_upload(store, folder / file.filename, attempt_prefix + file.filename, format=format)
                     for format, file in ARTIFACT_FILES.items() if (folder / file.filename).exists()]
    return {"epochs": built.epochs, "test_accuracy": report.accuracy, "confusion_matrix": report.confusion_matrix,
            "metrics": metrics,
            "params": built.params, "flops": built.flops, "latency_ms": built.latency_ms, "artifacts": artifacts}


def _tensorflow_formats(*, built, data, folder: Path, seed: int, settings: Settings):
    """SavedModel and TFLite from the verified ONNX file, each run on the whole test split (preprocessed exactly as
    for the ONNX check) against the ONNX file's logits, and the int8 TFLite file calibrated on the int8 ONNX file's
    images and measured on the same split; the :class:`~nas_core.tf_export.TensorFlowReport`."""
    from nas_core.quantize import calibration_images
    from nas_core.resolution import resize_images
    from nas_core.tf_export import export_tensorflow
    from nas_core.trainer import normalize

    inputs = normalize(resize_images(data.test_x.cpu(), (built.height, built.width)), data.mean, data.std)
    calibration = calibration_images(data, height=built.height, width=built.width, seed=seed)
    report = export_tensorflow(built.onnx_path, savedmodel_path=folder / ARTIFACT_FILES["savedmodel"].filename,
                               tflite_path=folder / ARTIFACT_FILES["tflite"].filename, inputs=inputs.numpy(),
                               tflite_int8_path=folder / ARTIFACT_FILES["tflite_int8"].filename,
                               calibration_inputs=calibration.numpy(), labels=data.test_y.cpu().numpy(),
                               max_accuracy_drop=settings.int8_max_accuracy_drop,
                               latency_repeats=settings.model_latency_repeats)
    for check in (report.savedmodel, report.tflite):
        if not check.ok:
            log.warning("%s not made: %s", check.format, check.reason)
    if not report.tflite_int8.ok or report.tflite_int8.flagged:
        log.warning("tflite_int8 %s: %s", "flagged" if report.tflite_int8.ok else "not made",
                    report.tflite_int8.reason)
    log.info("TensorFlow formats converted and checked in %.1f s", report.seconds)
    return report


def _trial_weights(store: ObjectStore, claim: _Claim) -> dict | None:
    """The winning trial's trained weights when the search kept them (its leader's): the retraining on train+val
    then continues from where the search left off. None (trained from scratch) when absent or unreadable."""
    import io

    import torch

    try:
        data = store.read_bytes(trial_weights_key(claim.project_id, claim.experiment_id, claim.trial_id))
    except ObjectNotFound:
        return None
    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except (RuntimeError, ValueError, KeyError) as error:  # damaged: start from scratch (an ill-fitting one: too)
        log.warning("model %s: trial weights not readable (%s); training from scratch", claim.model_id, error)
        return None


def _card(*, claim: _Claim, candidate: dict, data, report, epochs: int, params: int, flops: int,
          latency_ms: float, metrics: dict) -> dict[str, Any]:
    dataset = claim.dataset
    return {
        "model_id": claim.model_id, "experiment_id": claim.experiment_id, "trial_id": claim.trial_id,
        "search": claim.search,
        "architecture": candidate["arch"], "training": candidate["train"], "epochs": epochs,
        "seed": claim.seed, "trained_on": ["train"] if metrics["validation_held_out"] else ["train", "val"],
        "tested_on": "test",
        "dataset": {"id": dataset.id, "name": dataset.name, "sha256": dataset.sha256,
                    "manifest_sha256": data.manifest_sha256, "classes": data.classes,
                    "image": {"channels": data.channels, "height": data.height, "width": data.width},
                    "splits": dataset.splits},
        "metrics": {"test_accuracy": report.accuracy, "per_class": report.per_class,
                    "test_images": report.count, "params": params, "flops": flops,
                    "latency_ms": latency_ms, "latency": "onnxruntime CPU, batch 1, one thread, median",
                    "test_time_mirror": metrics["test_time_mirror"], "flips_added": metrics["flips_added"],
                    "augmentation_added": metrics["augmentation_added"], "bf16": metrics["bf16"],
                    "validation_held_out": metrics["validation_held_out"], "kept_epoch": metrics["kept_epoch"],
                    "mirror_validation": metrics["mirror_validation"],
                    "onnx_max_abs_diff": metrics["onnx_max_abs_diff"],
                    "pt2_max_abs_diff": metrics["pt2_max_abs_diff"], "int8": metrics["int8"],
                    "tensorflow": metrics["tensorflow"]},
        "confusion_matrix": report.confusion_matrix,
        "packages": package_versions(),
        "created_at": utcnow().isoformat(),
    }


def _upload(store: ObjectStore, path: Path, key: str, *, format: str) -> dict[str, Any]:
    """Upload one file and confirm the store holds all of it; returns its ``artifacts`` entry."""
    size = path.stat().st_size
    store.put_file(key, path)
    if store.size(key) != size:
        raise ArtifactNotStored(f"{key}: the store holds {store.size(key)} bytes, expected {size}")
    return {"format": format, "object": key, "size": size, "sha256": sha256(path)}
