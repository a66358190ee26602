"""A ``multipart/form-data`` body read chunk by chunk from the ASGI receive channel, under a byte cap.

The one parser loop behind the dataset upload (:mod:`api.uploads`: one large file streamed to disk) and predictions
(:mod:`api.image_uploads`: a few images in memory). Callers get each part's name and filename when its headers end
and its data as it arrives; this module refuses what every multipart body is refused for: 415 (not multipart), 413
(over ``max_bytes``, before reading when Content-Length already says so, else as soon as the body passes it), 422
(malformed), 400 (the body ends before its closing boundary).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from api.errors import APIError, IncompleteBody, PayloadTooLarge, UnsupportedMediaType, ValidationFailed


@dataclass
class _Headers:
    values: dict[bytes, bytes] = field(default_factory=dict)
    name: bytes = b""
    value: bytes = b""


def multipart_boundary(request: Request, *, max_bytes: int, hint: str) -> bytes:
    """The body's boundary; 415 with ``hint`` when the body is not multipart, 413 when Content-Length is over."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise UnsupportedMediaType(hint)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(max_bytes)
    return params[b"boundary"]


async def read_parts(request: Request, boundary: bytes, *, max_bytes: int,
                     on_part: Callable[[str, str | None], None], on_data: Callable[[bytes], None]) -> None:
    """Feed the body through the parser: ``on_part(name, filename)`` when a part's headers end, ``on_data(chunk)``
    for its bytes. An :class:`~api.errors.APIError` the callbacks raise propagates unchanged."""
    headers, ended = _Headers(), False

    def on_part_begin() -> None:
        nonlocal headers
        headers = _Headers()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        if headers.value:
            headers.name, headers.value = b"", b""
        headers.name += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        headers.value += data[start:end]

    def on_header_end() -> None:
        headers.values[headers.name.lower()] = headers.value
        headers.name, headers.value = b"", b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(headers.values.get(b"content-disposition", b""))
        filename = disposition.get(b"filename")
        on_part(disposition.get(b"name", b"").decode("utf-8", "replace"),
                filename.decode("utf-8", "replace") if filename is not None else None)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        on_data(data[start:end])

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_end": on_end,
    })
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise PayloadTooLarge(max_bytes)
        try:
            parser.write(chunk)
        except APIError:
            raise
        except Exception as error:  # python-multipart raises its own parse errors
            raise ValidationFailed.field("body", f"malformed multipart: {error}",
                                         f"malformed multipart body: {error}") from None
    parser.finalize()
    if not ended:
        raise IncompleteBody("the multipart body ends before its closing boundary")
