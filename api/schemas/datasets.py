"""Dataset schemas: what the HTTP API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from api import statuses

DatasetStatus = Literal[statuses.values(statuses.DatasetStatus)]


class ClassCount(BaseModel):
    name: str
    count: int


class ImageShape(BaseModel):
    channels: int
    height: int
    width: int


class SplitSizes(BaseModel):
    train: int
    val: int
    test: int


class DatasetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    status: DatasetStatus
    num_images: int | None
    classes: list[ClassCount] | None
    image: ImageShape | None
    splits: SplitSizes | None
    sha256: str
    size_bytes: int
    errors: list[dict[str, Any]]
    detail: str | None
    created_at: datetime
    updated_at: datetime


class DatasetList(BaseModel):
    data: list[DatasetRead]
    total: int


# How many thumbnails per class ``GET /v1/datasets/{id}/samples`` returns.
PerClass = Annotated[int, Query(ge=1, le=16, description="Train-split images per class.")]


class DatasetSampleRead(BaseModel):
    """One thumbnail of a ready dataset, at the stored resolution (grayscale datasets stay one-channel PNGs)."""

    model_config = ConfigDict(populate_by_name=True)

    class_: str = Field(alias="class", description="The image's class name.")
    index: int = Field(description="The image's position in the dataset's train split.")
    png: str = Field(description="The image as a base64-encoded PNG.")


class DatasetSampleList(BaseModel):
    data: list[DatasetSampleRead]
    total: int
