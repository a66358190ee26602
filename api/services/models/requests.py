"""Requests for final models: queue one for a search's trial, list, get, resolve artifact downloads; and the
retraining plan (epochs, time budget, announced duration) fixed when a model is queued."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from api.db import new_id
from api.errors import Conflict, NotFound, ValidationFailed
from api.orm import Experiment, Model, Project, Trial
from api.queue import BUILD_MODEL, enqueue_after_commit
from api.repositories import datasets as datasets_repository
from api.repositories import experiments as experiments_repository
from api.repositories import models as repository
from api.services import quotas
from api.services.models.artifacts import ARTIFACT_FILES
from api.services.object_keys import model_prefix
from api.services.search_spaces import reference_rank
from api.settings import Settings
from api.statuses import ModelStatus, TrialStatus
from api.storage import ObjectStore


def default_epochs(*, experiment: Experiment, settings: Settings, trial: Trial | None = None) -> int:
    """The search trained each candidate briefly; the final model gets a multiple of that."""
    per_trial = experiment.epochs_of(trial)
    return min(settings.model_max_epochs, max(1, per_trial * settings.model_epochs_multiplier))


# Export, verification, int8 quantization and upload after the last epoch, on top of the epochs (seconds; measured
# ~5-20 s on a CPU).
MODEL_OVERHEAD_S = 20.0
# The TensorFlow SavedModel and TFLite conversion of the ONNX file and their checks on the test split, when
# NAS_TF_EXPORT is on (seconds; measured 10-27 s on one CPU core for networks of 0.1-1 M parameters and 1,000-2,000
# test images, about 5 s of it starting TensorFlow in the converter process), plus the int8 TFLite file of the same
# conversion: onnx2tf's integer quantization, its LiteRT run on the test split and timing (measured +6-9 s on one
# core for 0.3-0.6 M parameters, 256 calibration and 360 test images).
TF_EXPORT_OVERHEAD_S = 35.0

# With max_minutes and no model_minutes, the final model may take at most this share of the search's minutes. It
# continues from the winner's weights, so its minutes go to the one network that is handed back: at equal total time
# a search of a few minutes on scenes (bench.budget) gave its winner 2/5 of the machine at a share of 0.5.
DEFAULT_MODEL_SHARE = 1.0


# How a time-bound search that stalled ends (api.services.search.scheduler.trial_epochs): its trials could not be made
# long enough to learn, and the time it did not spend goes to its final model.
UNLEARNED_STOP = "no trial has learned at the longest length that fits the time left"
OUTCLASSED_STOP = ("the time left fits only networks far cheaper than the leader, and the last of them finished far "
                   "below it")
SETTLED_STOP = "no trial has gone beyond the noise of the leader in the last trials, with half the time spent"
# The ends of a time-bound search that leave minutes unspent for its final model.
EARLY_STOPS = (UNLEARNED_STOP, OUTCLASSED_STOP, SETTLED_STOP)


def model_overhead_s(settings: Settings) -> float:
    """Seconds of a final model's job after its epochs: export, checks, int8 and, when on and installed (API and
    workers share one image or virtualenv), the TensorFlow formats: a worker without the converter skips them, and
    its models should not give up training time for them."""
    from nas_core.tf_export import missing_packages  # find_spec only: loads no TensorFlow

    converts = settings.tf_export and not missing_packages()
    return MODEL_OVERHEAD_S + (TF_EXPORT_OVERHEAD_S if converts else 0.0)


# A time budget is filled with epochs up to this multiple of the epochs its trial trained. On a CPU the time binds
# first; on a fast device, at 8× a final model finished in a fraction of its minutes, and at equal wall time a
# network trained from scratch for the whole search and model time then gets several times its epochs. On
# bench.budget's mnist500 (one CPU core, 3 minutes) 160 final epochs scored as 52 did (0.978 and 0.979).
MAX_EPOCHS_PER_TRIAL_EPOCH = 32


def retrain_epoch_seconds(*, trial, dataset) -> float | None:
    """Seconds of one retraining epoch: the trial's measured epoch time, scaled from its train split to train+val
    (the final model trains on both and validates on nothing)."""
    measured = trial.measured_epoch_s or trial.predicted_epoch_s
    splits = (dataset.splits or {}) if dataset is not None else {}
    if not measured or not splits.get("train"):
        return None
    return measured * (splits["train"] + splits.get("val", 0)) / splits["train"]


@dataclass(frozen=True, slots=True)
class RetrainingPlan:
    """How long the final model trains, announced before it starts."""

    epochs: int
    estimated_seconds: float | None  # epochs, test, export and verification; None when nothing was measured
    # A time budget for the epochs (None: the epochs are fixed): the job times its training step on its device and
    # refits the epochs to it, at most max_fitted_epochs(...)
    train_seconds: float | None


def max_fitted_epochs(*, experiment: Experiment, settings: Settings, trial: Trial | None = None) -> int:
    """The most epochs a time budget may buy: :data:`MAX_EPOCHS_PER_TRIAL_EPOCH` × the epochs the search trained
    ``trial`` for (a lengthened search's trials trained longer), within ``model_max_epochs``."""
    per_trial = experiment.epochs_of(trial)
    return min(settings.model_max_epochs, MAX_EPOCHS_PER_TRIAL_EPOCH * per_trial)


def unspent_minutes(experiment: Experiment) -> float:
    """The minutes of ``max_minutes`` a search that ended early (:data:`EARLY_STOPS`: it stalled, its leader
    outclassed what the time left admits, or it settled) left unspent; 0 otherwise."""
    max_minutes = (experiment.budget or {}).get("max_minutes")
    if not max_minutes or not any(stop in (experiment.detail or "") for stop in EARLY_STOPS):
        return 0.0
    return max(0.0, max_minutes - (experiment.elapsed_s or 0.0) / 60.0)


def plan_retraining(*, experiment: Experiment, trial, dataset, settings: Settings,
                    epochs: int | None) -> RetrainingPlan:
    """Epochs of the final model, its announced duration and its time budget.

    Asked-for epochs are kept. Without a time budget the default is ``model_epochs_multiplier`` × the search's
    epochs. With one (``budget.model_minutes`` or, without it, :data:`DEFAULT_MODEL_SHARE` × ``budget.max_minutes``
    plus what a search that stalled left unspent, :func:`unspent_minutes`), the epochs fill it — a longer schedule
    from the winner's weights keeps improving it — up to
    :func:`max_fitted_epochs`: predicted here from the winner's measured epochs, refitted by the job from its own
    measured step time (``train_seconds``).
    """
    epoch_s = retrain_epoch_seconds(trial=trial, dataset=dataset)
    budget = experiment.budget or {}
    train_seconds = None
    if epochs is None:
        epochs = default_epochs(experiment=experiment, settings=settings, trial=trial)
        minutes = budget.get("model_minutes") or (
            DEFAULT_MODEL_SHARE * budget["max_minutes"] + unspent_minutes(experiment) if budget.get("max_minutes")
            else None)
        if minutes:
            train_seconds = max(0.0, minutes * 60 - model_overhead_s(settings))
            if epoch_s:
                most = max_fitted_epochs(experiment=experiment, settings=settings, trial=trial)
                epochs = max(1, min(most, int(train_seconds / epoch_s)))
                train_seconds = min(train_seconds, most * epoch_s)
    estimate = None
    if epoch_s:
        estimate = (train_seconds if train_seconds is not None else epochs * epoch_s) + model_overhead_s(settings)
    return RetrainingPlan(epochs=epochs, estimated_seconds=estimate, train_seconds=train_seconds)


def default_trial(session: Session, experiment: Experiment) -> Trial | None:
    """The trial a final model retrains when none is named: the leaderboard's best, except that a search ranked by
    its metric alone (no Pareto objectives, no latency target) compares the trials within the validation noise of
    the leader's metric by validation loss (:func:`nas_core.ranking.pick_within_noise`), and, when no trial has
    learned, only the trials of the space's reference designs (:func:`nas_core.fidelity.unlearned_references`), by
    their order of preference before validation loss."""
    from nas_core.ranking import pick_within_noise

    leader = experiments_repository.best_trials(session, [experiment.id],
                                                metrics={experiment.id: experiment.metric}).get(experiment.id)
    val_images = noise_rule_images(session, experiment)
    if leader is None or val_images is None:
        return leader
    from nas_core.fidelity import unlearned_references

    rows, chance = learning_evidence(session, experiment)
    picked = pick_within_noise(experiments_repository.ranked_losses(session, experiment.id, metric=experiment.metric),
                               val_images=val_images, among=unlearned_references(rows, chance=chance))
    return leader if picked in (None, leader.id) else session.get(Trial, picked)


def learning_evidence(session: Session, experiment: Experiment
                      ) -> tuple[list[tuple[str, float | None, int | None]], float | None]:
    """What :func:`nas_core.fidelity.unlearned_references` reads: the ranked trials as (id, balanced accuracy,
    reference rank: :func:`~api.services.search_spaces.reference_rank`) and chance, one over the dataset's classes
    (None without them)."""
    dataset = datasets_repository.get(session, experiment.dataset_id) if experiment.dataset_id else None
    chance = 1.0 / len(dataset.classes) if dataset is not None and dataset.classes else None
    return [(trial_id, score, reference_rank(experiment, decisions))
            for trial_id, score, decisions in experiments_repository.learning_rows(session, experiment.id)], chance


def noise_rule_images(session: Session, experiment: Experiment) -> int | None:
    """The validation images :func:`default_trial`'s noise rule counts on; None where the rule does not apply (a
    Pareto search or a latency target: the leader is the trial)."""
    if experiment.minimize or experiment.latency_target_ms is not None:
        return None
    dataset = datasets_repository.get(session, experiment.dataset_id) if experiment.dataset_id else None
    return int(((dataset.splits if dataset is not None else None) or {}).get("val") or 0)


def create_model(*, session: Session, settings: Settings, project_id: str, experiment: Experiment,
                 trial_id: str | None = None, epochs: int | None = None) -> Model:
    """Queue a final model for ``trial_id`` of ``experiment`` (default: :func:`default_trial`).

    Raises 404 for a trial of another experiment, 409 when the trial has not succeeded or the experiment has no
    succeeded trial (or its dataset is gone), 422 for more epochs than ``model_max_epochs``.
    """
    if experiment.project_id != project_id:
        raise NotFound("experiment")
    if trial_id is None:
        trial = default_trial(session, experiment)
        if trial is None:
            raise Conflict("no-succeeded-trial", "the experiment has no succeeded feasible trial yet")
    else:
        trial = experiments_repository.get_trial_for_experiment(session, experiment_id=experiment.id,
                                                                trial_id=trial_id)
        if trial is None:
            raise NotFound("trial")
        if trial.status != TrialStatus.SUCCEEDED:
            raise Conflict("trial-not-succeeded", f"trial {trial_id} is {trial.status}, not succeeded")
    if experiment.dataset_id is None:
        raise Conflict("dataset-deleted", "the experiment's dataset was deleted")
    if epochs is not None and not 1 <= epochs <= settings.model_max_epochs:
        raise ValidationFailed.field("body.epochs", f"must be in [1, {settings.model_max_epochs}]")
    dataset = datasets_repository.get(session, experiment.dataset_id)
    plan = plan_retraining(experiment=experiment, trial=trial, dataset=dataset, settings=settings, epochs=epochs)
    model_id = new_id()
    model = Model(id=model_id, project_id=project_id, experiment_id=experiment.id, trial_id=trial.id,
                  status=ModelStatus.QUEUED, epochs=plan.epochs, estimated_seconds=plan.estimated_seconds,
                  train_seconds=plan.train_seconds, seed=trial.seed, metrics={},
                  artifacts=[],
                  storage_prefix=model_prefix(project_id, model_id))
    repository.add(session, model)
    enqueue_after_commit(session, BUILD_MODEL, args=[model_id])
    return model


def create_model_for_project(*, session: Session, settings: Settings, project: Project, experiment_id: str,
                             trial_id: str | None, epochs: int | None) -> Model:
    """``POST /v1/experiments/{id}/models``: the experiment must belong to ``project`` (else 404); refused (413)
    while the project's stored bytes are at its storage quota."""
    experiment = _experiment(session, project=project, experiment_id=experiment_id)
    quotas.check_storage_quota(session=session, settings=settings, project_id=project.id, adding_bytes=1)
    return create_model(session=session, settings=settings, project_id=project.id, experiment=experiment,
                        trial_id=trial_id, epochs=epochs)


def list_models(*, session: Session, project: Project, limit: int, offset: int,
                experiment_id: str | None = None) -> tuple[list[Model], int]:
    if experiment_id is not None:
        _experiment(session, project=project, experiment_id=experiment_id)
    return repository.list_for_project(session, project_id=project.id, experiment_id=experiment_id, limit=limit,
                                       offset=offset)


def get_model(*, session: Session, project: Project, model_id: str) -> Model:
    """The project's model; another project's id is indistinguishable from a missing one (404)."""
    model = repository.get_for_project(session, project_id=project.id, model_id=model_id)
    if model is None:
        raise NotFound("model")
    return model


@dataclass(frozen=True, slots=True)
class ArtifactDownload:
    """Where a download comes from: ``url`` (a presigned redirect) or ``key`` to stream from the store."""

    key: str
    filename: str
    media_type: str
    size: int
    url: str | None


def artifact_download(*, session: Session, store: ObjectStore, settings: Settings, project: Project,
                      model_id: str, format: str, redirect: bool = True) -> ArtifactDownload:
    """Resolve an artifact of a ready model. The object key comes from the row, never from the request.

    With ``redirect=False`` no presigned URL is made, so the API streams the object even from S3 (a browser fetch
    carrying the Bearer header cannot follow a cross-origin redirect).
    """
    model = get_model(session=session, project=project, model_id=model_id)
    if format not in ARTIFACT_FILES:
        raise NotFound(f"artifact format {format!r}")
    if model.status != ModelStatus.READY:
        raise Conflict("model-not-ready", f"the model is {model.status}; artifacts exist once it is ready")
    artifact = next((item for item in model.artifacts if item["format"] == format), None)
    if artifact is None:
        raise NotFound(f"artifact {format!r}")
    file = ARTIFACT_FILES[format]
    url = store.presigned_get_url(artifact["object"], expires_s=settings.model_download_url_ttl_s) if redirect else None
    return ArtifactDownload(key=artifact["object"], filename=file.filename, media_type=file.media_type,
                            size=int(artifact["size"]), url=url)


def _experiment(session: Session, *, project: Project, experiment_id: str) -> Experiment:
    experiment = experiments_repository.get_for_project(session, project_id=project.id,
                                                        experiment_id=experiment_id)
    if experiment is None:
        raise NotFound("experiment")
    return experiment
