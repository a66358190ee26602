"""Request dependencies: ``SessionDep`` (one transaction per request), ``CurrentProject`` (bearer auth and the
project's rate limit), store, ``GuardedRoute`` (the key checked before a JSON body is read, see ``api.bodies``) and
``IdempotentRoute`` (``Idempotency-Key`` on POST routes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.bodies import carries_body, read_json_body, with_body
from api.db import end_unit_of_work
from api.errors import Unauthorized, ValidationFailed
from api.orm import Project
from api.services import keys as keys_service
from api.services import idempotency
from api.settings import Settings
from api.storage import ObjectStore


async def get_session(request: Request) -> AsyncIterator[Session]:
    # Opening a session does no I/O, so it happens on the event loop; the commit (or rollback) and close run in
    # the thread pool. Function scope: the commit happens before the response is sent (a 2xx means durable).
    session = request.app.state.sessionmaker()
    try:
        yield session
    except BaseException:
        await run_in_threadpool(end_unit_of_work, session, commit=False)
        raise
    await run_in_threadpool(end_unit_of_work, session, commit=True)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def reject_nul_characters(request: Request) -> None:
    """Every route's guard: a NUL in a path or query parameter is a 422 (PostgreSQL text cannot hold one)."""
    errors = [{"field": f"path.{name}", "error": "must not contain NUL characters"}
              for name, value in request.path_params.items() if "\x00" in str(value)]
    errors += [{"field": f"query.{name}", "error": "must not contain NUL characters"}
               for name, value in request.query_params.multi_items() if "\x00" in name or "\x00" in value]
    if errors:
        raise ValidationFailed(errors)


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]


def bearer_key(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer API key")
    return token.strip()


def current_project(request: Request, session: SessionDep) -> Project:
    project = keys_service.authenticate(session=session, key=bearer_key(request))
    request.app.state.rate_limiter.check(project.id)
    return project


CurrentProject = Annotated[Project, Depends(current_project)]


def _check_key(request: Request) -> None:
    """401 unless the bearer key is valid, in a transaction of its own that changes nothing: the route's
    ``CurrentProject`` authenticates again in the request's transaction (rate limit, last use)."""
    session = request.app.state.sessionmaker()
    try:
        keys_service.authenticate(session=session, key=bearer_key(request))
    finally:
        end_unit_of_work(session, commit=False)


def streams_own_body(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a handler that reads its request body itself, under its own cap (uploads): ``GuardedRoute`` leaves
    its body alone (its dependencies, the key check first, still run before it reads)."""
    endpoint.streams_own_body = True  # type: ignore[attr-defined]
    return endpoint


class GuardedRoute(APIRoute):
    """A route that reads no request body before the key is known good, and no more of it than NAS_MAX_JSON_BYTES.

    FastAPI would read (and parse) the body before any dependency runs; here a POST, PUT or PATCH that carries a
    body gets its key checked, then its body read under the cap (``api.bodies``), and only then FastAPI's handler.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not self.methods & {"POST", "PUT", "PATCH"} or getattr(self.endpoint, "streams_own_body", False):
            return handler

        async def guarded_handler(request: Request) -> Response:
            if carries_body(request):
                await run_in_threadpool(_check_key, request)
                body = await read_json_body(request, max_bytes=request.app.state.settings.max_json_bytes)
                request = with_body(request, body)
            return await handler(request)

        return guarded_handler

# ---------------------------------------------------------------------------------------------------------------
# Idempotency-Key: the dependency looks for a stored answer before the handler runs; the route class stores the
# handler's answer in the same transaction as the resource it created.

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY_LENGTH = 255


async def idempotency_key(request: Request, session: SessionDep, project: CurrentProject,
                          key: Annotated[str | None, Header(alias=IDEMPOTENCY_HEADER, description=(
                              "Send the same key to replay this request's first successful answer instead of "
                              "running it again (24 h); reusing a key with another body is a 422."))] = None) -> None:
    if key is None:
        return
    key = key.strip()
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValidationFailed.field(f"header.{IDEMPOTENCY_HEADER}",
                                     f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    # A multipart upload is streamed by its handler, which hashes it and calls check_idempotent_upload.
    multipart = request.headers.get("content-type", "").startswith("multipart/")
    fingerprint = None if multipart else idempotency.body_fingerprint(await request.body())
    pending = idempotency.IdempotentRequest(project_id=project.id, key=key, method=request.method,
                                               path=request.url.path, fingerprint=fingerprint)
    request.state.idempotency = (session, pending)
    if fingerprint is not None:
        await run_in_threadpool(idempotency.find_replay, session=session, request=pending)


async def check_idempotent_upload(request: Request, *, fingerprint: str) -> None:
    """In a multipart handler, once the body is received: replay or refuse a reused key (no-op without one)."""
    if (state := getattr(request.state, "idempotency", None)) is None:
        return
    session, pending = state
    pending = replace(pending, fingerprint=fingerprint)
    request.state.idempotency = (session, pending)
    await run_in_threadpool(idempotency.find_replay, session=session, request=pending)


def _remember(request: Request, response: Response) -> None:
    session, pending = request.state.idempotency
    if pending.fingerprint is None:
        raise RuntimeError("a multipart route must call check_idempotent_upload before it creates anything")
    stored = idempotency.StoredResponse(status_code=response.status_code,
                                           media_type=response.media_type or "application/json",
                                           body=bytes(response.body).decode())
    try:
        idempotency.remember(session=session, settings=request.app.state.settings, request=pending,
                                response=stored)
    except IntegrityError:
        # A concurrent duplicate committed first: undo everything this request did and answer with its response.
        session.rollback()
        idempotency.find_replay(session=session, request=pending)
        raise


class IdempotentRoute(GuardedRoute):
    """A route whose POSTs honour ``Idempotency-Key``: the first 2xx answer is replayed for the same key and body."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        dependencies = list(kwargs.get("dependencies") or [])
        if "POST" in (kwargs.get("methods") or ()) and not any(d.dependency is idempotency_key for d in dependencies):
            kwargs["dependencies"] = [*dependencies, Depends(idempotency_key)]
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def remembering_handler(request: Request) -> Response:
            response = await handler(request)
            # Still inside the request's transaction: the session commits after this returns.
            if getattr(request.state, "idempotency", None) is not None and 200 <= response.status_code < 300:
                await run_in_threadpool(_remember, request, response)
            return response

        return remembering_handler


async def replay_response(request: Request, replay: idempotency.IdempotentReplay) -> Response:
    """The exception handler of :class:`IdempotentReplay`: the stored answer, marked as a replay."""
    stored = replay.response
    return Response(stored.body, status_code=stored.status_code, media_type=stored.media_type,
                    headers={"Idempotent-Replayed": "true"})
