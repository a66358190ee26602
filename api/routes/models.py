"""Final models: ``POST /v1/experiments/{id}/models`` (202, built by a worker), list, get, artifact downloads,
predictions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import (CurrentProject, GuardedRoute, IdempotentRoute, SessionDep, SettingsDep, StoreDep,
                      streams_own_body)
from api.image_uploads import receive_images
from api.schemas.common import Limit, Offset, error_responses, links
from api.schemas.models import ImagePrediction, ModelCreate, ModelList, ModelRead, PredictedClass, PredictionRead
from api.services.models import requests as service
from api.services import predict as predict_service
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


TopK = Annotated[int, Query(ge=1, le=1000, description="Classes listed per image, most probable first (capped at "
                                                        "the model's class count).")]
_PREDICT_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["images"],
    "properties": {"images": {"type": "array", "items": {"type": "string", "format": "binary"},
                              "description": "One part per image (PNG, JPEG, GIF, BMP, TIFF or WebP; any size and "
                                             "mode). At most NAS_PREDICT_MAX_IMAGES parts and "
                                             "NAS_PREDICT_MAX_BYTES of body."}}}}}}}
_PREDICT_413 = {413: {**error_responses(413)[413], "description": "More than NAS_PREDICT_MAX_IMAGES images "
                                                                  "(too-many-images) or NAS_PREDICT_MAX_BYTES of body "
                                                                  "(payload-too-large)."}}


async def predict(model_id: str, request: Request, session: SessionDep, project: CurrentProject,
                  settings: SettingsDep, store: StoreDep, top_k: TopK = 5) -> PredictionRead:
    model = await run_in_threadpool(predict_service.servable_model, session=session, project=project,
                                    model_id=model_id)
    images = await receive_images(request, field_name="images", max_images=settings.predict_max_images,
                                  max_bytes=settings.predict_max_bytes, max_images_setting="NAS_PREDICT_MAX_IMAGES")
    # Decoding and onnxruntime block: keep the event loop free for other requests meanwhile.
    prediction = await run_in_threadpool(predict_service.predict, store=store, settings=settings, model=model,
                                         images=images, top_k=top_k)
    return PredictionRead(latency_ms=prediction.latency_ms, data=[
        ImagePrediction(filename=image.filename, top=[PredictedClass(class_=name, probability=probability)
                                                      for name, probability in top])
        for image, top in zip(images, prediction.top, strict=True)])


# A prediction creates nothing, so a retry is already safe: no Idempotency-Key (the plain guarded route class).
router.add_api_route(
    "/models/{model_id}/predict", streams_own_body(predict), methods=["POST"], route_class_override=GuardedRoute,
    response_model=PredictionRead, operation_id="predict", openapi_extra=_PREDICT_BODY,
    summary="Classify images with a ready model: the top classes of each, from its ONNX file",
    responses={**error_responses(400, 401, 404, 409, 415, 422), **_PREDICT_413})
