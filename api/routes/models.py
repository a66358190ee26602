"""Final models: ``POST /v1/experiments/{id}/models`` (202, built by a worker), list, get, artifact downloads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import RedirectResponse, StreamingResponse

from api.deps import CurrentProject, IdempotentRoute, SessionDep, SettingsDep, StoreDep
from api.schemas.common import Limit, Offset, error_responses, links
from api.schemas.models import ModelCreate, ModelList, ModelRead
from api.services import models as service
from api.storage import iter_chunks

router = APIRouter(prefix="/v1", tags=["models"], route_class=IdempotentRoute,
                   responses=error_responses(429))

# Browsers cannot follow a cross-origin redirect with an Authorization header: they ask the API to stream instead.
Redirect = Annotated[bool, Query(description="On S3 storage, answer 307 to a presigned URL (default) instead of "
                                             "streaming the file through the API.")]


@router.post("/experiments/{experiment_id}/models", status_code=202, response_model=ModelRead,
             operation_id="create_model",
             summary="Retrain a trial (default: the best) on train+val, test it and export it",
             responses={**error_responses(401, 404, 409, 413, 422), **links(202, "model", {
                 "GetModel": ("get_model", {"model_id": "id"}),
                 "DownloadArtifact": ("download_artifact", {"model_id": "id"})})})
def create_model(experiment_id: str, session: SessionDep, project: CurrentProject, settings: SettingsDep,
                 body: ModelCreate | None = None) -> ModelRead:
    body = body or ModelCreate()
    model = service.create_model_for_project(session=session, settings=settings, project=project,
                                             experiment_id=experiment_id, trial_id=body.trial_id, epochs=body.epochs)
    return ModelRead.model_validate(model)


@router.get("/experiments/{experiment_id}/models", response_model=ModelList, operation_id="list_experiment_models",
            summary="The experiment's final models, newest first", responses=error_responses(401, 404, 422))
def list_experiment_models(experiment_id: str, session: SessionDep, project: CurrentProject,
                           limit: Limit = 50, offset: Offset = 0) -> ModelList:
    rows, total = service.list_models(session=session, project=project, experiment_id=experiment_id, limit=limit,
                                      offset=offset)
    return ModelList(data=[ModelRead.model_validate(row) for row in rows], total=total)


@router.get("/models", response_model=ModelList, operation_id="list_models",
            summary="The project's final models, newest first", responses=error_responses(401, 422))
def list_models(session: SessionDep, project: CurrentProject, limit: Limit = 50,
                offset: Offset = 0) -> ModelList:
    rows, total = service.list_models(session=session, project=project, limit=limit, offset=offset)
    return ModelList(data=[ModelRead.model_validate(row) for row in rows], total=total)


@router.get("/models/{model_id}", response_model=ModelRead, operation_id="get_model",
            summary="One model with test metrics and its artifacts", responses=error_responses(401, 404, 422))
def get_model(model_id: str, session: SessionDep, project: CurrentProject) -> ModelRead:
    return ModelRead.model_validate(service.get_model(session=session, project=project, model_id=model_id))


@router.get("/models/{model_id}/artifacts/{format}", response_class=StreamingResponse, operation_id="download_artifact",
            summary="Download an artifact (onnx, pt2, preprocessing, card) of a ready model",
            responses={200: {"description": "The file.", "content": {"application/octet-stream": {
                           "schema": {"type": "string", "format": "binary"}}}},
                       307: {"description": "S3 storage with redirect=true: a presigned URL to fetch the file from, "
                                              "in Location."},
                       **error_responses(401, 404, 409, 422)})
def download_artifact(model_id: str, format: str, session: SessionDep, project: CurrentProject,
                      store: StoreDep, settings: SettingsDep, redirect: Redirect = True):
    download = service.artifact_download(session=session, store=store, settings=settings, project=project,
                                         model_id=model_id, format=format, redirect=redirect)
    if download.url is not None:  # S3: the client fetches the bytes straight from the store
        return RedirectResponse(download.url, status_code=307)
    return StreamingResponse(iter_chunks(store.open(download.key)), media_type=download.media_type,
                             headers={"Content-Disposition": f'attachment; filename="{download.filename}"',
                                      "Content-Length": str(download.size)})
