"""Request dependencies: ``SessionDep`` (one transaction per request), ``CurrentProject`` (bearer auth), store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.db import unit_of_work
from api.errors import Unauthorized
from api.models import Project
from api.services import keys as keys_service
from api.settings import Settings
from api.storage import ObjectStore


def get_session(request: Request) -> Iterator[Session]:
    # Function scope: the commit happens before the response is sent, so a 2xx means the data is durable.
    with unit_of_work(request.app.state.sessionmaker) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]


def current_project(request: Request, session: SessionDep) -> Project:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer API key")
    return keys_service.authenticate(session=session, key=token.strip())


CurrentProject = Annotated[Project, Depends(current_project)]
