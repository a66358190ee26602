"""Experiments as the API sees them: create, read, cancel, resume (or extend), trials, stopping one trial, and the
leaderboard.

The search itself runs in workers (``api.services.search``); this module only writes intents and enqueues the
scheduler after commit.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from api.db import utcnow
from api.errors import Conflict, NotFound, ValidationFailed
from api.orm import Dataset, Experiment, Project, Trial
from api.queue import SCHEDULE, enqueue_after_commit
from api.repositories import experiments as repository
from api.schemas.common import MAX_BUDGET_MINUTES, MAX_EPOCHS_PER_TRIAL
from api.schemas.experiments import ExperimentCreate, ExperimentResume, Objective
from api.services import datasets as datasets_service
from api.services import quotas
from api.services import trial_documents
from api.services.revision_cache import RevisionCache
from api.services.search import warm_start
from api.services.search.scheduler import elapsed_seconds, make_strategy_from, stop_clock, time_is_up, trials_used
from api.services.search.trials import STOP_REQUESTED
from api.services.trial_documents import TrialVersion
from api.settings import Settings
from api.statuses import FINISHED_EXPERIMENT_STATUSES, DatasetStatus, ExperimentStatus, TrialStatus
from nas_core.environment import package_versions


def _dataset_in_use(session: Session, dataset: Dataset) -> str | None:
    experiment = repository.active_using_dataset(session, dataset.id)
    return f"experiment {experiment.id} is {experiment.status} on this dataset" if experiment else None


datasets_service.DATASET_IN_USE_CHECKS.append(_dataset_in_use)


_MINUTES = ("max_minutes", "model_minutes")


def checked_budget(*, settings: Settings, budget: Mapping[str, Any], field: str) -> dict[str, Any]:
    """The one check of a budget, on every route that sets one (create, resume); returns the budget to store.

    At most ``NAS_MAX_TRIALS`` trials, at most MAX_EPOCHS_PER_TRIAL epochs, and finite minutes up to
    MAX_BUDGET_MINUTES; otherwise a 422 naming each field under ``field`` (``body.budget`` on create).

    >>> checked_budget(settings=Settings(), budget={"max_trials": 20_000, "epochs_per_trial": 1}, field="body")
    Traceback (most recent call last):
    api.errors.ValidationFailed: the request is not valid
    """
    errors = []
    for name, most in (("max_trials", settings.max_trials), ("epochs_per_trial", MAX_EPOCHS_PER_TRIAL)):
        value = budget.get(name)
        if type(value) is not int or not 1 <= value <= most:
            errors.append({"field": f"{field}.{name}", "error": f"must be an integer from 1 to {most}"})
    for name in _MINUTES:
        value = budget.get(name)
        if value is not None and (type(value) not in (int, float) or not 0 < value <= MAX_BUDGET_MINUTES):
            errors.append({"field": f"{field}.{name}",
                           "error": f"must be a number of minutes above 0 and at most {MAX_BUDGET_MINUTES}"})
    if errors:
        raise ValidationFailed(errors)
    return dict(budget)


def _checked_pruner(pruner: dict[str, Any]) -> None:
    """Names, types and ranges of the pruner's settings, for every kind ("none" takes no settings but its own)."""
    from nas_core.pruning import make_pruner

    try:
        make_pruner(**pruner)
    except (TypeError, ValueError) as error:
        raise ValidationFailed.field("body.pruner", str(error)) from None


def checked_objective(objective: Objective) -> dict[str, Any]:
    """The objective to store: ``minimize`` only in mode ``pareto`` (where it defaults to ``["latency_ms"]``), each
    name once, and ``latency_target_ms`` only in mode ``accuracy``; a 422 naming the field otherwise (unknown names
    are refused by the schema)."""
    stored = objective.model_dump(exclude_none=True)
    if objective.mode == "pareto" and objective.latency_target_ms is not None:
        raise ValidationFailed.field("body.objective.latency_target_ms", "only with mode \"accuracy\": mode "
                                     "\"pareto\" minimises latency itself")
    if objective.mode != "pareto":
        if objective.minimize is not None:
            raise ValidationFailed.field("body.objective.minimize", "only with mode \"pareto\": mode \"accuracy\" "
                                         "maximises the metric alone")
        return stored
    minimize = objective.minimize or ["latency_ms"]
    if len(set(minimize)) != len(minimize):
        raise ValidationFailed.field("body.objective.minimize", "names each figure at most once")
    return {**stored, "minimize": list(minimize)}


def objective_read(experiment: Experiment) -> dict[str, Any]:
    """The objective as the API shows it: metric, constraints, mode, what a Pareto search minimises, and a soft
    latency target and a latency batch when there are."""
    objective = {"metric": experiment.metric, "constraints": experiment.constraints,
                 "mode": (experiment.objective or {}).get("mode", "accuracy")}
    if experiment.latency_target_ms is not None:
        objective["latency_target_ms"] = experiment.latency_target_ms
    if experiment.latency_batch is not None:
        objective["latency_batch"] = experiment.latency_batch
    return {**objective, "minimize": list(experiment.minimize)} if experiment.minimize else objective


def latency_device_read(experiment: Experiment) -> dict[str, Any] | None:
    """The device the experiment's latencies were measured on, from its reproducibility record, with ``mixed`` and
    ``other_devices`` when some trials were measured elsewhere; None until a trial has measured."""
    record = experiment.reproducibility or {}
    if not record.get("latency_device"):
        return None
    others = list(record.get("latency_devices_other") or [])
    return {**record["latency_device"], "mixed": bool(others), "other_devices": others}


def warm_start_read(experiment: Experiment) -> dict[str, Any] | None:
    """The warm start as the experiment shows it (sources and counts); None for a cold start."""
    return warm_start.read(experiment)


def create_experiment(*, session: Session, settings: Settings, project: Project, data: ExperimentCreate
                      ) -> Experiment:
    """Validate everything a worker will need, add the experiment ``queued`` and enqueue its scheduler; with a warm
    start, snapshot its sources' trials as the strategy's seeds (:mod:`api.services.search.warm_start`)."""
    from nas_core.errors import InvalidSearchSpace
    from nas_core.space import SEARCH_SPACE_VERSION, default_search_space

    budget = checked_budget(settings=settings, budget=data.budget.model_dump(), field="body.budget")
    objective = checked_objective(data.objective)
    dataset = datasets_service.get_dataset(session=session, project=project, dataset_id=data.dataset_id)
    if dataset.status != DatasetStatus.READY:
        raise Conflict("dataset-not-ready", f"dataset {dataset.id} is {dataset.status}, not ready")
    if data.concurrency > settings.max_concurrency:
        raise ValidationFailed.field("body.concurrency", f"at most {settings.max_concurrency} trials at once")
    try:
        space = default_search_space().with_overrides(data.search_space)
    except InvalidSearchSpace as error:
        raise ValidationFailed([{**e, "field": f"body.search_space.{e.get('field', '')}".rstrip(".")}
                                for e in error.errors] or [{"field": "body.search_space", "error": error.message}],
                               error.message, type="invalid-search-space") from None
    try:
        strategy = make_strategy_from(data.strategy, data.strategy_settings)
    except (TypeError, ValueError) as error:
        raise ValidationFailed.field("body.strategy_settings", str(error)) from None
    pruner = data.pruner.model_dump()
    _checked_pruner(pruner)
    quotas.check_experiment_quotas(session=session, settings=settings, project_id=project.id,
                                           concurrency=data.concurrency)
    seed = data.seed if data.seed is not None else secrets.randbelow(2**31)
    experiment = Experiment(
        project_id=project.id, dataset_id=dataset.id, name=data.name or f"{data.strategy} on {dataset.name}",
        status=ExperimentStatus.QUEUED, strategy=data.strategy, strategy_settings=dict(data.strategy_settings),
        budget=budget, concurrency=data.concurrency,
        constraints=data.objective.constraints.model_dump(exclude_none=True), search_space=dict(data.search_space),
        objective=objective,
        pruner=pruner, seed=seed, auto_model=data.auto_model,
        reproducibility={"dataset_sha256": dataset.sha256, "dataset_name": dataset.name,
                         "search_space_version": SEARCH_SPACE_VERSION, "search_space": space.to_dict(),
                         "strategy": {"name": data.strategy, "settings": strategy.settings_dict()},
                         "pruner": pruner, "seed": seed, "packages": package_versions()})
    if data.warm_start is not None:
        # valued under the new experiment's objective and constraints, so built once they are set on it
        experiment.warm_start = warm_start.snapshot(session=session, project=project, dataset=dataset, space=space,
                                                    experiment=experiment, data=data.warm_start)
        experiment.reproducibility = {**experiment.reproducibility,
                                      "warm_start": warm_start.reproducibility(experiment.warm_start)}
    repository.add(session, experiment)
    enqueue_after_commit(session, SCHEDULE, args=[experiment.id])
    return experiment


def get_experiment(*, session: Session, project: Project, experiment_id: str) -> Experiment:
    experiment = repository.get_for_project(session, project_id=project.id, experiment_id=experiment_id)
    if experiment is None:
        raise NotFound("experiment")
    return experiment


def list_experiments(*, session: Session, project: Project, limit: int, offset: int,
                     status: str | None = None) -> tuple[list[Experiment], int]:
    return repository.list_for_project(session, project_id=project.id, limit=limit, offset=offset, status=status)


def summaries(*, session: Session, experiments: list[Experiment]) -> dict[str, dict[str, Any]]:
    """Progress counters and best trial of each experiment: two queries for the experiments whose revision moved
    since they were last read (see :mod:`api.services.revision_cache`), none for the others."""
    found = {e.id: _memo.get(("summary", e.id), e.updated_at) for e in experiments}
    stale = [e for e in experiments if found[e.id] is None]
    if stale:
        ids = [e.id for e in stale]
        counts = repository.trial_counts_for(session, ids)
        best = repository.best_trials(session, ids, metrics={e.id: e.metric for e in stale})
        for experiment in stale:
            found[experiment.id] = _counts_and_best(counts[experiment.id], best.get(experiment.id))
            _memo.put(("summary", experiment.id), experiment.updated_at, found[experiment.id])
    return {e.id: {"progress": {**found[e.id][0], "max_trials": e.budget["max_trials"]}, "best": found[e.id][1],
                   "elapsed_s": elapsed_seconds(e)} for e in experiments}


def _counts_and_best(c: Counter[str], leader: Trial | None) -> tuple[dict[str, int], dict[str, Any] | None]:
    progress = {"completed": c["succeeded"] + c["pruned"] + c["stopped"] + c["failed"], "succeeded": c["succeeded"],
                "running": c["running"], "pending": c["pending"], "failed": c["failed"], "pruned": c["pruned"],
                "stopped": c["stopped"], "canceled": c["canceled"]}
    best = None if leader is None else {"trial_id": leader.id, "number": leader.number,
                                        "val_accuracy": leader.val_accuracy, "params": leader.params}
    return progress, best


def cancel_experiment(*, session: Session, project: Project, experiment_id: str) -> Experiment:
    """Ask running trials to stop (they notice within a heartbeat); idempotent; 409 once finished otherwise."""
    experiment = get_experiment(session=session, project=project, experiment_id=experiment_id)
    experiment = repository.lock(session, experiment.id)
    if experiment.status in (ExperimentStatus.CANCELING, ExperimentStatus.CANCELED):
        return experiment
    if experiment.status in (ExperimentStatus.SUCCEEDED, ExperimentStatus.FAILED):
        raise Conflict("experiment-finished", f"experiment {experiment.id} already {experiment.status}")
    repository.cancel_pending_trials(session, experiment.id, reason="experiment canceled")
    if repository.trial_counts(session, experiment.id)["running"]:
        experiment.status = ExperimentStatus.CANCELING
    else:
        stop_clock(experiment)
        experiment.status, experiment.finished_at = ExperimentStatus.CANCELED, utcnow()
    return experiment


def resume_experiment(*, session: Session, settings: Settings, project: Project, experiment_id: str,
                      data: ExperimentResume) -> Experiment:
    """Continue a canceled or failed experiment with the budget left (optionally raised), or extend a succeeded one
    whose budget ``data`` raises. Budgets are totals: trials already run and minutes already spent count against
    them. The strategy goes on from the full trial history and trial numbers continue; when the search ends again,
    a new final model is built if ``auto_model`` is on."""
    experiment = get_experiment(session=session, project=project, experiment_id=experiment_id)
    experiment = repository.lock(session, experiment.id)
    if experiment.status not in (ExperimentStatus.CANCELED, ExperimentStatus.FAILED, ExperimentStatus.SUCCEEDED):
        raise Conflict("experiment-not-resumable", f"experiment {experiment.id} is {experiment.status}; only "
                       "canceled, failed or succeeded ones resume")
    raised = data.model_dump(include={"max_trials", "max_minutes"}, exclude_none=True)
    if experiment.status == ExperimentStatus.SUCCEEDED and not _raises(experiment.budget, raised):
        raise Conflict("budget-not-raised", f"experiment {experiment.id} already succeeded within its budget "
                       f"({_budget_text(experiment.budget)}); to extend the search, resume it with a larger "
                       "max_trials or max_minutes")
    if experiment.dataset_id is None:
        raise Conflict("dataset-deleted", "the experiment's dataset was deleted; the search cannot continue")
    budget = checked_budget(settings=settings, budget={**experiment.budget, **raised}, field="body")
    experiment.budget = budget
    used = trials_used(repository.trial_counts(session, experiment.id))
    if used >= budget["max_trials"]:
        raise Conflict("budget-spent", f"all {budget['max_trials']} trials are spent; resume with a higher max_trials")
    if time_is_up(experiment):
        raise Conflict("budget-spent", f"the time budget is spent ({elapsed_seconds(experiment) / 60:.1f} of "
                       f"{budget['max_minutes']:g} minutes); resume with a higher max_minutes")
    quotas.check_experiment_quotas(session=session, settings=settings, project_id=project.id,
                                           concurrency=experiment.concurrency, exclude_experiment_id=experiment.id)
    experiment.status, experiment.running_since = ExperimentStatus.RUNNING, utcnow()
    experiment.finished_at, experiment.detail = None, None
    enqueue_after_commit(session, SCHEDULE, args=[experiment.id])
    return experiment


def _raises(budget: Mapping[str, Any], raised: Mapping[str, Any]) -> bool:
    """Whether ``raised`` gives a search more room than ``budget``: more trials, or more minutes than a time budget
    it had (a time budget on a search without one only limits it)."""
    if raised.get("max_trials", 0) > budget["max_trials"]:
        return True
    return bool(budget.get("max_minutes")) and raised.get("max_minutes", 0) > budget["max_minutes"]


def _budget_text(budget: Mapping[str, Any]) -> str:
    text = f"max_trials {budget['max_trials']}"
    return text + (f", max_minutes {budget['max_minutes']:g}" if budget.get("max_minutes") else "")


def stop_trial(*, session: Session, project: Project, experiment_id: str, number: int) -> Trial:
    """Ask trial ``number`` to stop; the search goes on. A pending trial ends ``stopped`` at once and never starts
    (the scheduler fills its slot); a running one stops at its next batch, when its heartbeat reads the request,
    and ends ``stopped`` with its curve. The request is stored on the trial, so it outlives a worker restart.
    Asking again while it stops is harmless; 409 once the trial (or the experiment) has ended."""
    experiment = get_experiment(session=session, project=project, experiment_id=experiment_id)
    experiment = repository.lock(session, experiment.id)
    trial = repository.get_trial_by_number(session, experiment_id=experiment.id, number=number, for_update=True)
    if trial is None:
        raise NotFound("trial")
    if experiment.status not in (ExperimentStatus.QUEUED, ExperimentStatus.RUNNING):
        finished = experiment.status in FINISHED_EXPERIMENT_STATUSES
        raise Conflict("experiment-finished" if finished else "experiment-canceling",
                       f"experiment {experiment.id} is {experiment.status}; its trials are no longer running")
    if trial.status not in (TrialStatus.PENDING, TrialStatus.RUNNING):
        raise Conflict("trial-finished", f"trial {trial.number} already ended {trial.status}")
    now = utcnow()
    trial.stop_requested_at = trial.stop_requested_at or now
    if trial.status == TrialStatus.PENDING:
        trial.status, trial.finished_at, trial.error = TrialStatus.STOPPED, now, STOP_REQUESTED
        enqueue_after_commit(session, SCHEDULE, args=[experiment.id])
    return trial


def list_trials(*, session: Session, project: Project, experiment_id: str, limit: int, offset: int,
                status: str | None = None) -> tuple[list[bytes], int]:
    """A page of trials in number order as ``TrialRead`` JSON documents, and how many trials match."""
    experiment = get_experiment(session=session, project=project, experiment_id=experiment_id)
    versions, total = _memo.get_or_compute(
        ("trials", experiment.id, limit, offset, status), experiment.updated_at,
        lambda: repository.trial_versions(session, experiment_id=experiment.id, limit=limit, offset=offset,
                                          status=status))
    return trial_documents.documents(session, [TrialVersion(*version) for version in versions]), total


def get_trial(*, session: Session, project: Project, experiment_id: str, trial_id: str) -> Trial:
    experiment = get_experiment(session=session, project=project, experiment_id=experiment_id)
    trial = repository.get_trial_for_experiment(session, experiment_id=experiment.id, trial_id=trial_id)
    if trial is None:
        raise NotFound("trial")
    return trial


def leaderboard(*, session: Session, project: Project, experiment_id: str, limit: int, offset: int
                ) -> tuple[list[bytes], list[str], int]:
    """Ranked feasible succeeded trials (a page of ``RankedTrial`` JSON documents), the Pareto front over all of
    them, and how many there are. Only a change of the experiment's revision recomputes the front and the page."""
    from nas_core.ranking import pareto_front

    experiment = get_experiment(session=session, project=project, experiment_id=experiment_id)
    if experiment.minimize or experiment.latency_target_ms is not None:
        return _computed_leaderboard(session, experiment, limit=limit, offset=offset)

    def front_and_total() -> tuple[list[str], int]:
        points = repository.ranking_points(session, experiment.id, metric=experiment.metric)
        return list(pareto_front(points)), len(points)

    front, total = _memo.get_or_compute(("front", experiment.id), experiment.updated_at, front_and_total)
    versions = _memo.get_or_compute(("ranked", experiment.id, limit, offset), experiment.updated_at,
                                    lambda: repository.ranked_versions(session, experiment.id, limit=limit,
                                                                       offset=offset, metric=experiment.metric))
    page = trial_documents.documents(session, [TrialVersion(*version) for version in versions])
    return [trial_documents.with_rank(document, offset + index + 1) for index, document in enumerate(page)], \
        front, total


def _computed_leaderboard(session: Session, experiment: Experiment, *, limit: int, offset: int
                          ) -> tuple[list[bytes], list[str], int]:
    """The leaderboard of a Pareto search, or of a search with a soft latency target, ordered in Python.

    Pareto: ranked trials by Pareto layer (non-dominated sorting over the metric, maximised, and the minimised
    figures; a missing figure is the worst), then by the metric (ties as
    :func:`api.repositories.experiments.rank_order`), each document with its ``pareto_layer``. Soft latency target:
    by MnasNet's reward. ``pareto`` stays the front over (metric, params, latency), as in accuracy mode."""
    import math

    from nas_core.ranking import pareto_front, pareto_layers

    minimize = experiment.minimize

    def costs(row: tuple) -> tuple[float, ...]:
        *_, score, params, latency = row
        figures = {"params": params, "latency_ms": latency}
        return (-score if score is not None else math.inf,
                *(math.inf if figures[name] is None else float(figures[name]) for name in minimize))

    def ordered() -> tuple[list[tuple[TrialVersion, int | None]], list[str]]:
        rows = repository.pareto_rows(session, experiment.id, metric=experiment.metric, minimize=minimize)
        if minimize:
            layers: list[int | None] = list(pareto_layers([costs(row) for row in rows]))
            order = sorted(range(len(rows)), key=lambda index: layers[index])  # stable: the metric's order within
        else:
            layers = [None] * len(rows)
            order = repository.reward_order(rows, experiment.latency_target_ms)
        front = pareto_front([(row[0], row[3] or 0.0, row[4] or 0, row[5] or 0.0) for row in rows])
        return [(TrialVersion(*rows[index][:3]), layers[index]) for index in order], list(front)

    ranked, front = _memo.get_or_compute(("computed", experiment.id), experiment.updated_at, ordered)
    page = ranked[offset:offset + limit]
    documents = trial_documents.documents(session, [version for version, _ in page])
    return [trial_documents.with_rank(document, offset + index + 1, pareto_layer=layer)
            for index, (document, (_, layer)) in enumerate(zip(documents, page))], front, len(ranked)


# Summaries, trial pages and leaderboards by experiment revision (this process only).
_memo = RevisionCache()
