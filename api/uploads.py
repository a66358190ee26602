"""Streaming multipart upload with a byte cap, read straight from the ASGI receive channel.

FastAPI's ``UploadFile`` would read the whole body before the handler runs; here the body is parsed chunk by
chunk (python-multipart's streaming parser), the file part goes to a temporary file and is hashed on the way, and
the request is refused with 413 as soon as the cap is passed — or before reading anything when Content-Length
already says so.

Temporary files live under the data dir (``Settings.upload_tmp_dir``), not the system's temp dir: a killed API
cannot delete its files, so each API sweeps that directory when it starts (``sweep_stale_uploads``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from api.errors import ValidationFailed
from api.multipart import multipart_boundary, read_parts
from api.services.datasets import ReceivedUpload

MAX_FIELD_BYTES = 1024
UPLOAD_PREFIX, UPLOAD_SUFFIX = "nas-upload-", ".zip"
# Several API processes may share the data dir: a file untouched this long belongs to no live upload (a live one
# is written to as its bytes arrive, then copied to the store within minutes).
STALE_UPLOAD_AFTER_S = 3600

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReceivedForm:
    upload: ReceivedUpload | None
    fields: dict[str, str]


def sweep_stale_uploads(directory: Path, *, older_than_s: float = STALE_UPLOAD_AFTER_S) -> list[Path]:
    """Delete upload temp files in ``directory`` left by a killed API: those untouched for ``older_than_s``.

    Younger files may be uploads in flight in another API process sharing the directory, so they stay. Creates the
    directory if needed; returns what was deleted.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cutoff, removed = time.time() - older_than_s, []
    for path in directory.glob(f"{UPLOAD_PREFIX}*{UPLOAD_SUFFIX}"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # another API swept it first
            continue
    if removed:
        log.info("removed %d stale upload file(s) from %s", len(removed), directory)
    return removed


async def receive_upload(request: Request, *, max_bytes: int, tmp_dir: Path, file_field: str = "file"
                         ) -> ReceivedForm:
    """Parse a ``multipart/form-data`` body: ``file_field`` to a temp file in ``tmp_dir`` (caller deletes it), short
    text fields.

    Raises APIError 413 (over ``max_bytes``), 415 (not multipart), 400 (the body ends before the closing boundary:
    a cut-short upload is refused here, not found out during ingestion) or 422 (malformed body).
    """
    boundary = multipart_boundary(request, max_bytes=max_bytes, hint="send the archive as multipart/form-data")
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(prefix=UPLOAD_PREFIX, suffix=UPLOAD_SUFFIX, dir=tmp_dir, delete=False)
    digest, fields, field_buffers = hashlib.sha256(), {}, {}
    current: str | None = None
    file_seen, file_size = False, 0

    def on_part(name: str, filename: str | None) -> None:
        nonlocal current, file_seen
        current = name
        if name == file_field:
            if file_seen:
                raise ValidationFailed.field(f"body.{file_field}", "sent more than once",
                                             f"send exactly one {file_field!r} part")
            file_seen = True
            fields["__filename__"] = filename or "upload.zip"

    def on_data(chunk: bytes) -> None:
        nonlocal file_size
        if current == file_field:
            tmp.write(chunk)
            digest.update(chunk)
            file_size += len(chunk)
        else:
            buffer = field_buffers.setdefault(current, bytearray())
            buffer += chunk
            if len(buffer) > MAX_FIELD_BYTES:
                raise ValidationFailed.field(f"body.{current}", f"longer than {MAX_FIELD_BYTES} bytes",
                                             f"form field {current!r} is too long")

    try:
        await read_parts(request, boundary, max_bytes=max_bytes, on_part=on_part, on_data=on_data)
        tmp.close()
    except BaseException:
        tmp.close()
        os.unlink(tmp.name)
        raise

    text_fields = {name: bytes(value).decode("utf-8", "replace") for name, value in field_buffers.items()}
    if not file_seen:
        os.unlink(tmp.name)
        return ReceivedForm(upload=None, fields=text_fields)
    upload = ReceivedUpload(path=Path(tmp.name), filename=fields["__filename__"], sha256=digest.hexdigest(),
                            size_bytes=file_size)
    return ReceivedForm(upload=upload, fields=text_fields)
