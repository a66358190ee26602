"""``/v1/experiments``: create a search, follow it, cancel, resume or extend it, read its trials and leaderboard,
stop one trial."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Path, Response

from api.deps import CurrentProject, IdempotentRoute, SessionDep, SettingsDep
from api.orm import Experiment
from api.schemas.common import MAX_SQL_INT, Limit, Offset, error_responses, links
from api.schemas.experiments import (ExperimentCreate, ExperimentList, ExperimentRead, ExperimentResume,
                                     ExperimentStatus, Leaderboard, TrialList, TrialRead, TrialStatus)
from api.services import experiments as service
from api.services.trial_documents import json_array

router = APIRouter(prefix="/v1/experiments", tags=["experiments"], route_class=IdempotentRoute,
                   responses=error_responses(429))


def _experiment_links(status: int) -> dict:
    return links(status, "experiment", {
        "GetExperiment": ("get_experiment", {"experiment_id": "id"}),
        "CancelExperiment": ("cancel_experiment", {"experiment_id": "id"}),
        "ResumeExperiment": ("resume_experiment", {"experiment_id": "id"}),
        "ListTrials": ("list_trials", {"experiment_id": "id"}),
        "GetLeaderboard": ("get_leaderboard", {"experiment_id": "id"}),
        "CreateModel": ("create_model", {"experiment_id": "id"}),
    })


def _read(session, experiments: list[Experiment]) -> list[ExperimentRead]:
    summaries = service.summaries(session=session, experiments=experiments)
    return [ExperimentRead(**{**_columns(e), **summaries[e.id]}) for e in experiments]


def _columns(e: Experiment) -> dict:
    return {"id": e.id, "name": e.name, "status": e.status, "dataset_id": e.dataset_id, "strategy": e.strategy,
            "strategy_settings": e.strategy_settings, "budget": e.budget, "concurrency": e.concurrency,
            "objective": service.objective_read(e),
            "screened": e.screened or {}, "search_space": e.search_space, "pruner": e.pruner,
            "seed": e.seed, "auto_model": e.auto_model, "detail": e.detail, "reproducibility": e.reproducibility,
            "latency_device": service.latency_device_read(e), "warm_start": service.warm_start_read(e),
            "created_at": e.created_at, "updated_at": e.updated_at, "finished_at": e.finished_at}


@router.post("", status_code=201, response_model=ExperimentRead, summary="Start a search on a ready dataset",
             operation_id="create_experiment",
             responses={**error_responses(401, 404, 409, 413, 422), **_experiment_links(201)})
def create_experiment(data: ExperimentCreate, session: SessionDep, project: CurrentProject,
                      settings: SettingsDep) -> ExperimentRead:
    experiment = service.create_experiment(session=session, settings=settings, project=project, data=data)
    return _read(session, [experiment])[0]


@router.get("", response_model=ExperimentList, summary="List the project's experiments, newest first",
            operation_id="list_experiments", responses=error_responses(401, 422))
def list_experiments(session: SessionDep, project: CurrentProject, limit: Limit = 50, offset: Offset = 0,
                     status: ExperimentStatus | None = None) -> ExperimentList:
    rows, total = service.list_experiments(session=session, project=project, limit=limit, offset=offset,
                                           status=status)
    return ExperimentList(data=_read(session, rows), total=total)


@router.get("/{experiment_id}", response_model=ExperimentRead, summary="One experiment with progress and best",
            operation_id="get_experiment", responses=error_responses(401, 404, 422))
def get_experiment(experiment_id: str, session: SessionDep, project: CurrentProject) -> ExperimentRead:
    return _read(session, [service.get_experiment(session=session, project=project,
                                                  experiment_id=experiment_id)])[0]


@router.post("/{experiment_id}/cancel", status_code=202, response_model=ExperimentRead,
             summary="Stop the search; running trials stop at their next batch",
             operation_id="cancel_experiment", responses=error_responses(401, 404, 409, 422))
def cancel_experiment(experiment_id: str, session: SessionDep, project: CurrentProject) -> ExperimentRead:
    experiment = service.cancel_experiment(session=session, project=project, experiment_id=experiment_id)
    return _read(session, [experiment])[0]


@router.post("/{experiment_id}/resume", status_code=202, response_model=ExperimentRead,
             summary="Continue a canceled or failed search with the budget left, or extend a succeeded one with a "
                     "larger budget",
             description="Budgets are totals: the trials already run and the minutes already spent count against "
                         "the new max_trials and max_minutes. The strategy continues from the full trial history and "
                         "trial numbers continue. A succeeded search resumes only with a larger max_trials or "
                         "max_minutes (409 budget-not-raised otherwise); when it ends again, a new final model is "
                         "built if auto_model is on.",
             operation_id="resume_experiment", responses=error_responses(401, 404, 409, 413, 422))
def resume_experiment(experiment_id: str, session: SessionDep, project: CurrentProject, settings: SettingsDep,
                      data: Annotated[ExperimentResume | None, Body()] = None) -> ExperimentRead:
    experiment = service.resume_experiment(session=session, settings=settings, project=project,
                                           experiment_id=experiment_id, data=data or ExperimentResume())
    return _read(session, [experiment])[0]


@router.get("/{experiment_id}/trials", response_model=TrialList, summary="Trials with per-epoch curves",
            operation_id="list_trials", responses=error_responses(401, 404, 422))
def list_trials(experiment_id: str, session: SessionDep, project: CurrentProject, limit: Limit = 100,
                offset: Offset = 0, status: TrialStatus | None = None) -> Response:
    documents, total = service.list_trials(session=session, project=project, experiment_id=experiment_id,
                                           limit=limit, offset=offset, status=status)
    # Assembled from per-trial documents rendered once as TrialRead (see api.services.trial_documents).
    return _json(b'{"data":%s,"total":%d}' % (json_array(documents), total))


@router.get("/{experiment_id}/trials/{trial_id}", response_model=TrialRead, summary="One trial",
            operation_id="get_trial", responses=error_responses(401, 404, 422))
def get_trial(experiment_id: str, trial_id: str, session: SessionDep, project: CurrentProject) -> TrialRead:
    return TrialRead.model_validate(service.get_trial(session=session, project=project, experiment_id=experiment_id,
                                                      trial_id=trial_id))


@router.post("/{experiment_id}/trials/{number}/stop", status_code=202, response_model=TrialRead,
             summary="Stop one trial; the search goes on",
             description="A running trial stops at its next batch and ends stopped with the epochs it trained; a "
                         "pending one ends stopped without starting. Either way the scheduler fills its slot. A "
                         "stopped trial counts against max_trials like a pruned one and is not ranked. 409 when the "
                         "trial or the experiment has already ended.",
             operation_id="stop_trial", responses=error_responses(401, 404, 409, 422))
def stop_trial(experiment_id: str, number: Annotated[int, Path(ge=1, le=MAX_SQL_INT)], session: SessionDep,
              project: CurrentProject) -> TrialRead:
    return TrialRead.model_validate(service.stop_trial(session=session, project=project, experiment_id=experiment_id,
                                                       number=number))


@router.get("/{experiment_id}/leaderboard", response_model=Leaderboard,
            summary="Trials meeting the constraints ranked by the experiment's metric (validation accuracy, or "
                    "balanced accuracy), and the Pareto front",
            description="In a Pareto search (objective mode pareto) the rows are ordered by Pareto layer "
                        "(non-dominated sorting over the metric and the minimised figures), then by the metric, and "
                        "each row carries its pareto_layer.",
            operation_id="get_leaderboard", responses=error_responses(401, 404, 422))
def leaderboard(experiment_id: str, session: SessionDep, project: CurrentProject, limit: Limit = 100,
                offset: Offset = 0) -> Response:
    documents, pareto, total = service.leaderboard(session=session, project=project, experiment_id=experiment_id,
                                                   limit=limit, offset=offset)
    return _json(b'{"data":%s,"pareto":%s,"total":%d}' % (json_array(documents), orjson.dumps(pareto), total))


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")
