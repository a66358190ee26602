"""Several images in one ``multipart/form-data`` body, kept in memory under a count and a byte cap.

The dataset upload (:mod:`api.uploads`) streams one large file to disk; predictions take a few images, so their parts
are read into memory — never more than ``max_bytes`` in all (413 before reading when Content-Length already says
so, or as soon as the body passes it) and never more than ``max_images`` parts of the image field (413 as soon as
one more begins). Parts under other names are skipped without being kept.
"""

from __future__ import annotations

from fastapi import Request

from api.errors import TooManyImages
from api.multipart import multipart_boundary, read_parts
from api.services.predict import ReceivedImage


async def receive_images(request: Request, *, field_name: str, max_images: int, max_bytes: int,
                         max_images_setting: str) -> list[ReceivedImage]:
    """The ``field_name`` parts of the body, in order; an empty list when there is none (the caller decides).

    Raises 415 (not multipart), 413 (over ``max_bytes``, or more than ``max_images`` images, naming
    ``max_images_setting``), 400 (the body ends before its closing boundary) or 422 (a malformed body).
    """
    boundary = multipart_boundary(request, max_bytes=max_bytes,
                                  hint=f"send the images as multipart/form-data, one {field_name!r} part each")
    images: list[tuple[str | None, bytearray]] = []
    current: bytearray | None = None  # None: a part that is not an image, skipped

    def on_part(name: str, filename: str | None) -> None:
        nonlocal current
        current = None
        if name != field_name:
            return
        if len(images) >= max_images:
            raise TooManyImages(max_images, max_images_setting)
        current = bytearray()
        images.append((filename, current))

    def on_data(chunk: bytes) -> None:
        if current is not None:
            current.extend(chunk)

    await read_parts(request, boundary, max_bytes=max_bytes, on_part=on_part, on_data=on_data)
    return [ReceivedImage(filename=filename, data=bytes(data)) for filename, data in images]
