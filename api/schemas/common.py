"""Schemas shared by resources, and the documented error responses every route attaches."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.errors import PROBLEM_JSON
from nas_core.options import MAX_TRIALS as MAX_TRIALS  # re-exported: the bound of every trial count

# Hard ceilings of what a request may store, whatever the settings allow: a stored value always renders and fits
# the database's integers. NAS_MAX_TRIALS and NAS_MAX_CONCURRENCY are checked below MAX_TRIALS.
MAX_BUDGET_MINUTES = 30 * 24 * 60  # 30 days
MAX_EPOCHS_PER_TRIAL = 1000
MAX_PARAMS = 10**12
MAX_LATENCY_MS = 3_600_000.0  # an hour per image
MAX_SQL_INT = 2**31 - 1  # the largest integer every backend's INTEGER column holds


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


class Problem(BaseModel):
    """An error, as RFC 9457 ``application/problem+json`` (rendered by ``api.errors``, never by routes)."""

    type: str = Field(description="Stable error slug, e.g. /problems/not-found.")
    title: str = Field(description="The HTTP status phrase.")
    status: int
    detail: str = Field(description="What went wrong, for people.")
    errors: list[dict[str, Any]] | None = Field(default=None, description="Per-item reports, e.g. "
                                                "[{\"field\": \"body.budget.max_trials\", \"error\": \"...\"}].")


_ERROR_MEANINGS = {
    400: "The body is cut short (a multipart upload without its closing boundary).",
    401: "Missing, unknown or revoked API key.",
    404: "No such resource in the key's project.",
    409: "The resource's state does not allow this.",
    413: "The body exceeds its size limit (NAS_MAX_UPLOAD_BYTES for uploads, NAS_MAX_JSON_BYTES for JSON), or the "
         "upload the project's storage quota.",
    429: "Rate limit or quota exceeded; `Retry-After` says when to retry a rate-limited request.",
    415: "The body is not multipart/form-data.",
    422: "The request is not valid; `errors` lists each field.",
    503: "A dependency (database, broker, object store) is unreachable.",
}


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# A string stored or looked up in the database: PostgreSQL text cannot hold NUL, so it is refused at the edge (422).
Text = Annotated[str, AfterValidator(_without_nul)]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each status documented with the shared Problem schema.

    >>> sorted(error_responses(401, 404))
    [401, 404]
    """
    return {status: {"model": Problem, "description": _ERROR_MEANINGS[status],
                     "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for status in statuses}


def links(status: int, source: str, targets: dict[str, tuple[str, dict[str, Any]]]) -> dict[int, dict[str, Any]]:
    """OpenAPI links of a success response: what a client can call next with the ids it just received.

    ``targets`` maps a link name to (operation id, {parameter: field of the response body}); a parameter named
    ``body.<field>`` fills that field of the target's JSON body. Clients and contract fuzzers follow them.
    """
    out = {}
    for name, (operation_id, parameters) in targets.items():
        link: dict[str, Any] = {"operationId": operation_id, "description": f"{operation_id} with this {source}'s id"}
        path = {k: f"$response.body#/{v}" for k, v in parameters.items() if not k.startswith("body.")}
        body = {k[5:]: f"$response.body#/{v}" for k, v in parameters.items() if k.startswith("body.")}
        if path:
            link["parameters"] = path
        if body:
            link["requestBody"] = body
        out[name] = link
    return {status: {"links": out}}


class SearchSpaceRead(BaseModel):
    """The block search space: its dimensions, the flat decisions they decode to, and how to override them."""

    model_config = ConfigDict(extra="allow")

    version: str = Field(description="Changes whenever decoding a decision would give a different network.")
    max_stages: int
    dimensions: dict[str, dict[str, Any]] = Field(description="Per dimension: description, type, per_stage, "
                                                  "the decisions it covers and its domain.")
    decisions: dict[str, dict[str, Any]] = Field(description="Flat labelled decisions ('stage2/kernel') and "
                                                 "their domains: {kind: int|float|categorical, …}.")
    override: dict[str, Any] = Field(description="The grammar of ExperimentCreate.search_space.")
    overrides_applied: dict[str, Any]


# Page parameters of every list route; the offset bound keeps it inside a 32-bit SQL integer on every backend.
Limit = Annotated[int, Query(ge=1, le=500, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=MAX_SQL_INT, description="Items to skip.")]
