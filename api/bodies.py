"""JSON request bodies: read only for a valid key, never past ``NAS_MAX_JSON_BYTES``, and only if they are JSON.

FastAPI reads a route's body before it resolves the route's dependencies, so the key check (a dependency) would
come after an anonymous client had made the API receive and parse any amount of JSON. ``api.deps.GuardedRoute``,
the route class of every router, therefore checks the key first and then reads the body here: refused with 413
before reading when Content-Length already says so, or as soon as a chunked body passes the cap, and with 422 when
it is not JSON (NaN and Infinity included: no JSON column can store them). FastAPI then gets the body from memory.
Uploads stream their own body under their own cap (``api.uploads``).
"""

from __future__ import annotations

import json

from fastapi import Request
from starlette.types import Message

from api.errors import PayloadTooLarge, not_json


def carries_body(request: Request) -> bool:
    """Whether the request announces a body (chunked, or a non-zero Content-Length)."""
    return "transfer-encoding" in request.headers or request.headers.get("content-length", "0") != "0"


async def read_json_body(request: Request, *, max_bytes: int) -> bytes:
    """The whole body, at most ``max_bytes`` of it (413 otherwise), checked to parse when it is declared JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(max_bytes)
    chunks, received = [], 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise PayloadTooLarge(max_bytes)
        chunks.append(chunk)
    body = b"".join(chunks)
    if body and _declared_json(request.headers.get("content-type", "")):
        _check_json(body)
    return body


def with_body(request: Request, body: bytes) -> Request:
    """The same request with its body already received: whoever reads it next (FastAPI, the Idempotency-Key
    fingerprint) reads it from memory; after that, the client's channel answers again (disconnects)."""
    replayed = False

    async def receive() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await request.receive()

    return Request(request.scope, receive)


def _declared_json(content_type: str) -> bool:
    # What FastAPI parses as JSON: application/json and application/*+json.
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _check_json(body: bytes) -> None:
    try:
        json.loads(body, parse_constant=_no_constants)
    except json.JSONDecodeError as error:
        raise not_json(f"{error.msg} at character {error.pos}") from None
    except UnicodeDecodeError:
        raise not_json("not UTF-8") from None
    except RecursionError:
        raise not_json("nested too deeply") from None
    except ValueError as error:  # NaN / Infinity, or an integer of more than 4300 digits
        raise not_json(str(error)) from None
