"""The HTTP/1.1 protocol the API is served with: uvicorn's httptools protocol with a cap on the request head.

uvicorn's httptools protocol, unlike its h11 one, buffers a request line and headers of any size before the app
sees the request (a 20 MB header is accepted). This one counts the head's bytes as they arrive, before they are
parsed, and past ``NAS_MAX_HEADER_BYTES`` answers 431 ``application/problem+json`` and closes the connection;
nothing of that request reaches the app. Serve with ``uvicorn --http api.http_protocol:HttpToolsProtocol``.

The close lingers a little (at most LINGER_S seconds and LINGER_BYTES discarded): closing a socket with unread input
makes the kernel reset the connection, and the client would lose the 431 for a "connection reset".
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as UvicornHttpToolsProtocol

from api.errors import PROBLEM_JSON
from api.settings import get_settings

_HEAD_END = b"\r\n\r\n"
LINGER_S = 1.0
LINGER_BYTES = 1024 * 1024


def head_too_large(max_bytes: int) -> bytes:
    """The whole 431 response, as written on the connection."""
    status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    body = json.dumps({"type": "/problems/headers-too-large", "title": status.phrase, "status": int(status),
                       "detail": f"the request line and headers exceed the limit of {max_bytes} bytes"}).encode()
    return (f"HTTP/1.1 {int(status)} {status.phrase}\r\ncontent-type: {PROBLEM_JSON}\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class HttpToolsProtocol(UvicornHttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes = get_settings().max_header_bytes
        self.head_bytes = 0
        self.reading_head = True  # until the current request's headers are complete
        self.discarded: int | None = None  # bytes read since refusing (None: not refused)

    def data_received(self, data: bytes) -> None:
        if self.discarded is not None:
            self.discarded += len(data)
            if self.discarded > LINGER_BYTES:
                self.transport.close()
            return
        if self.reading_head:
            # Counted before the parser buffers it; the head ends at the first blank line (pipelined requests
            # after it are counted from the next read on).
            end = data.find(_HEAD_END)
            self.head_bytes += len(data) if end < 0 else end + len(_HEAD_END)
            if self.head_bytes > self.max_head_bytes:
                self._refuse()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self.reading_head, self.head_bytes = False, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.reading_head = True
        super().on_message_complete()

    def _refuse(self) -> None:
        self.discarded = 0
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # never inside a pipelined response still going
            self.transport.write(head_too_large(self.max_head_bytes))
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer is complete: the client reads it while its input is discarded
        self.loop.call_later(LINGER_S, self.transport.close)
