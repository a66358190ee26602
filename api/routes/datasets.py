"""``/v1/datasets``: upload (202, ingestion runs in a worker), list, get, delete."""

from __future__ import annotations

import base64
import contextlib
import os

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import (CurrentProject, IdempotentRoute, SessionDep, SettingsDep, StoreDep, check_idempotent_upload,
                      streams_own_body)
from api.errors import ValidationFailed
from api.schemas.common import Limit, Offset, error_responses, links
from api.schemas.datasets import DatasetList, DatasetRead, DatasetSampleList, DatasetSampleRead, PerClass
from api.services import datasets as service
from api.services.idempotency import upload_fingerprint
from api.uploads import receive_upload

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], route_class=IdempotentRoute,
                   responses=error_responses(429))

_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary"}, "name": {"type": "string"}}}}}}}


def _dataset_links(status: int) -> dict:
    return links(status, "dataset", {
        "GetDataset": ("get_dataset", {"dataset_id": "id"}),
        "ListDatasetSamples": ("list_dataset_samples", {"dataset_id": "id"}),
        "StartExperiment": ("create_experiment", {"body.dataset_id": "id"}),
        "DeleteDataset": ("delete_dataset", {"dataset_id": "id"}),
    })


@router.post("", status_code=202, response_model=DatasetRead, openapi_extra=_UPLOAD_BODY, operation_id="upload_dataset",
             summary="Upload a zip of class folders; ingestion runs in a worker",
             responses={**error_responses(400, 401, 413, 415, 422), **_dataset_links(202)})
@streams_own_body
async def upload_dataset(request: Request, session: SessionDep, project: CurrentProject, settings: SettingsDep,
                         store: StoreDep) -> DatasetRead:
    form = await receive_upload(request, max_bytes=settings.max_upload_bytes, tmp_dir=settings.upload_tmp_dir)
    if form.upload is None:
        raise ValidationFailed.field("body.file", "Field required")
    name = form.fields.get("name") or None
    if name is not None and (not 1 <= len(name.strip()) <= 200 or "\x00" in name):
        os.unlink(form.upload.path)
        raise ValidationFailed.field("body.name", "must be 1 to 200 characters, none of them NUL")
    try:
        await check_idempotent_upload(request, fingerprint=upload_fingerprint(file_sha256=form.upload.sha256,
                                                                              fields=form.fields))
        # Copying the upload into the store blocks; keep the event loop free for other requests meanwhile.
        dataset = await run_in_threadpool(service.create_dataset, session=session, store=store, settings=settings,
                                          project=project, upload=form.upload, name=name and name.strip())
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(form.upload.path)
    return DatasetRead.model_validate(dataset)


@router.get("", response_model=DatasetList, operation_id="list_datasets",
            summary="List the project's datasets, newest first", responses=error_responses(401, 422))
def list_datasets(session: SessionDep, project: CurrentProject, limit: Limit = 50,
                  offset: Offset = 0) -> DatasetList:
    rows, total = service.list_datasets(session=session, project=project, limit=limit, offset=offset)
    return DatasetList(data=[DatasetRead.model_validate(row) for row in rows], total=total)


@router.get("/{dataset_id}", response_model=DatasetRead, operation_id="get_dataset",
            summary="One dataset with its classes, image shape, splits and ingestion errors",
            responses={**error_responses(401, 404, 422), **_dataset_links(200)})
def get_dataset(dataset_id: str, session: SessionDep, project: CurrentProject) -> DatasetRead:
    return DatasetRead.model_validate(service.get_dataset(session=session, project=project, dataset_id=dataset_id))


@router.get("/{dataset_id}/samples", response_model=DatasetSampleList, operation_id="list_dataset_samples",
            summary="Thumbnails of a ready dataset: the first train-split images of each class, as base64 PNGs",
            responses=error_responses(401, 404, 409, 422))
def list_dataset_samples(dataset_id: str, session: SessionDep, project: CurrentProject, store: StoreDep,
                         per_class: PerClass = 4) -> DatasetSampleList:
    samples = service.list_dataset_samples(session=session, store=store, project=project, dataset_id=dataset_id,
                                           per_class=per_class)
    return DatasetSampleList(data=[DatasetSampleRead(class_=sample.class_name, index=sample.index,
                                                     png=base64.b64encode(sample.png).decode("ascii"))
                                   for sample in samples], total=len(samples))


@router.delete("/{dataset_id}", status_code=204, operation_id="delete_dataset",
               summary="Delete a dataset and its files (refused while an active experiment uses it)",
               responses=error_responses(401, 404, 409, 422))
def delete_dataset(dataset_id: str, session: SessionDep, project: CurrentProject, store: StoreDep) -> Response:
    service.delete_dataset(session=session, store=store, project=project, dataset_id=dataset_id)
    return Response(status_code=204)
