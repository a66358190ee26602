"""Dataset schemas: what the HTTP API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


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
    status: Literal["processing", "ready", "failed"]
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
