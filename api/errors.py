"""The API's errors and the one place that renders every one of them as ``application/problem+json``.

The catalogue: :class:`ValidationFailed` (422, one shape: ``errors`` names each field), :class:`NotFound` (404),
:class:`Conflict` (409: the resource's state forbids the request), :class:`QuotaExceeded` (429) and
:class:`StorageQuotaExceeded` (413), :class:`RateLimited` (429 with ``Retry-After``), :class:`PayloadTooLarge`
(413), :class:`UnsupportedMediaType` (415), :class:`IncompleteBody` (400), :class:`Unauthorized` (401) and
:class:`NotReady` (503). Services raise these; :class:`APIError` itself is their base.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from nas_core.errors import NASError

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
# nginx's status for a request its client abandoned (closed the connection before the body was read): nobody
# receives it, but metrics count it apart from the server's own errors.
CLIENT_CLOSED_REQUEST = 499


class APIError(Exception):
    """An error with an HTTP status and a stable ``type`` slug (``/problems/<type>``)."""

    def __init__(self, status: int, type: str, detail: str, *, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.type, self.detail = status, type, detail
        self.errors = errors
        self.headers = headers


class ValidationFailed(APIError):
    """422, the shape of every invalid request: ``errors`` names each field by where it was sent
    (``body.budget.max_trials``, ``path.experiment_id``, ``query.limit``, ``header.Idempotency-Key``). ``type`` is
    ``validation-error`` unless a more specific slug says what was wrong (``invalid-search-space``)."""

    def __init__(self, errors: list[dict[str, Any]], detail: str = "the request is not valid", *,
                 type: str = "validation-error") -> None:
        super().__init__(422, type, detail, errors=errors)

    @classmethod
    def field(cls, field: str, error: str, detail: str = "the request is not valid") -> ValidationFailed:
        """One invalid field."""
        return cls([{"field": field, "error": error}], detail)


class PayloadTooLarge(APIError):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, "payload-too-large", f"the request body exceeds the limit of {max_bytes} bytes")


class TooManyImages(APIError):
    """413: more image parts than one request may carry (``setting`` names the limit)."""

    def __init__(self, max_images: int, setting: str) -> None:
        super().__init__(413, "too-many-images", f"send at most {max_images} images per request ({setting})")


class NotFound(APIError):
    def __init__(self, what: str) -> None:
        super().__init__(404, "not-found", f"{what} not found")


class Conflict(APIError):
    """409: the request is valid but the resource's state forbids it; ``type`` says which state (``dataset-in-use``,
    ``model-not-ready``, ``budget-spent``, …)."""

    def __init__(self, type: str, detail: str) -> None:
        super().__init__(409, type, detail)


class QuotaExceeded(APIError):
    """429 without ``Retry-After``: the slot frees when the project's own work finishes, not after a known time."""

    def __init__(self, detail: str) -> None:
        super().__init__(429, "quota-exceeded", detail)


class StorageQuotaExceeded(APIError):
    def __init__(self, detail: str) -> None:
        super().__init__(413, "storage-quota-exceeded", detail)


class RateLimited(APIError):
    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(429, "rate-limited", detail, headers={"Retry-After": str(retry_after_s)})


class UnsupportedMediaType(APIError):
    def __init__(self, detail: str) -> None:
        super().__init__(415, "unsupported-media-type", detail)


class IncompleteBody(APIError):
    def __init__(self, detail: str) -> None:
        super().__init__(400, "incomplete-body", detail)


class Unauthorized(APIError):
    def __init__(self, detail: str = "a valid API key is required") -> None:
        super().__init__(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


class NotReady(APIError):
    def __init__(self, detail: str, *, errors: list[dict[str, Any]]) -> None:
        super().__init__(503, "not-ready", detail, errors=errors)


# An error names what was wrong, it does not echo the input back: a 1 MiB body must not earn a larger answer.
MAX_LISTED_ERRORS = 50
MAX_ECHOED_CHARS = 200


def problem(status: int, type: str, detail: str, *, errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": f"/problems/{type}", "title": HTTPStatus(status).phrase, "status": status,
                            "detail": _shortened(detail, 5 * MAX_ECHOED_CHARS)}
    if errors is not None:
        body["errors"] = jsonable_encoder(_bounded(errors))
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _bounded(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first MAX_LISTED_ERRORS errors with every string cut short, then one entry counting the rest."""
    listed = [{key: _shortened(value, MAX_ECHOED_CHARS) if isinstance(value, str) else value
               for key, value in error.items()} for error in errors[:MAX_LISTED_ERRORS]]
    if len(errors) > MAX_LISTED_ERRORS:
        listed.append({"field": None, "error": f"{len(errors) - MAX_LISTED_ERRORS} more errors are not listed"})
    return listed


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


def render(error: APIError) -> JSONResponse:
    return problem(error.status, error.type, error.detail, errors=error.errors, headers=error.headers)


def not_json(reason: str) -> ValidationFailed:
    """The answer to a body that does not parse as JSON, wherever that is noticed."""
    return ValidationFailed([{"field": "body", "error": reason}], detail="the request body is not valid JSON")


def engine_error(exc: NASError) -> ValidationFailed:
    """An engine error that reached a request, as the one 422 shape (``type`` ``invalid-input``): every entry names
    a ``field`` (the body, where the engine named none, e.g. an entry per archive ``file``); an error without
    entries gets one for the body."""
    errors = [entry if "field" in entry else {"field": "body", **entry} for entry in exc.errors]
    return ValidationFailed(errors or [{"field": "body", "error": exc.message}], exc.message, type="invalid-input")


_HTTP_TYPES = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}


def add_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return render(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 400 and detail.startswith("There was an error parsing the body"):
            # A body that is not even decodable is one more invalid request: same status and shape as the rest.
            return render(not_json("not valid JSON (or not UTF-8)"))
        return problem(exc.status_code, _HTTP_TYPES.get(exc.status_code, "http-error"), detail,
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e["type"] == "json_invalid" for e in errors):  # loc ("body", <offset>) is no field: one clear error
            error = next(e for e in errors if e["type"] == "json_invalid")
            reason = error.get("ctx", {}).get("error", error["msg"])
            return render(not_json(f"{reason} at character {error['loc'][-1]}"))
        return render(ValidationFailed(
            [{"field": ".".join(str(p) for p in e["loc"]), "error": e["msg"]} for e in errors]))

    @app.exception_handler(ClientDisconnect)
    async def _client_disconnected(request: Request, exc: ClientDisconnect) -> Response:
        # The client's doing (a closed tab, a killed upload), not the server's: no traceback, no 500.
        log.info("client closed the connection during %s %s; request abandoned", request.method, request.url.path)
        return Response(status_code=CLIENT_CLOSED_REQUEST)

    @app.exception_handler(NASError)
    async def _engine_error(request: Request, exc: NASError) -> JSONResponse:
        return render(engine_error(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal-error", "an unexpected error occurred")
