"""One error type for the API and one place that renders every error as ``application/problem+json``."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from nas_core.errors import NASError

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


class APIError(Exception):
    """An error with an HTTP status and a stable ``type`` slug (``/problems/<type>``)."""

    def __init__(self, status: int, type: str, detail: str, *, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.type, self.detail = status, type, detail
        self.errors = errors
        self.headers = headers


class NotFound(APIError):
    def __init__(self, what: str) -> None:
        super().__init__(404, "not-found", f"{what} not found")


class Unauthorized(APIError):
    def __init__(self, detail: str = "a valid API key is required") -> None:
        super().__init__(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def problem(status: int, type: str, detail: str, *, errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": f"/problems/{type}", "title": HTTPStatus(status).phrase, "status": status,
                            "detail": detail}
    if errors is not None:
        body["errors"] = jsonable_encoder(errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_HTTP_TYPES = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}


def add_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return problem(exc.status, exc.type, exc.detail, errors=exc.errors, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 400 and detail.startswith("There was an error parsing the body"):
            # A body that is not even decodable is one more invalid request: same status and shape as the rest.
            return problem(422, "validation-error", "the request body could not be parsed",
                           errors=[{"field": "body", "error": "not valid JSON (or not UTF-8)"}])
        return problem(exc.status_code, _HTTP_TYPES.get(exc.status_code, "http-error"), detail,
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "error": e["msg"]} for e in exc.errors()]
        return problem(422, "validation-error", "the request is not valid", errors=errors)

    @app.exception_handler(NASError)
    async def _engine_error(request: Request, exc: NASError) -> JSONResponse:
        return problem(422, "invalid-input", exc.message, errors=exc.errors)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal-error", "an unexpected error occurred")
