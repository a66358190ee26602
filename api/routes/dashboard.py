"""The web dashboard: one static page at ``/`` that reads the same ``/v1`` routes with the user's key.

The page and its assets ship inside the package (``api/static``): no CDN, no build step, works offline.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.errors import NotFound

router = APIRouter(include_in_schema=False)
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
_MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# The page only talks to its own origin (artifact downloads stream through the API with redirect=false).
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                       "img-src 'self' data: blob:; connect-src 'self'; "
                                       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"}


def _asset(name: str) -> FileResponse:
    path = STATIC_DIR / name
    # Only files that ship in the folder itself: no sub-paths, so no traversal out of it.
    if "/" in name or name.startswith(".") or path.suffix not in _MEDIA_TYPES or not path.is_file():
        raise NotFound("asset")
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=_HEADERS)


@router.get("/")
def index() -> FileResponse:
    return _asset("index.html")


@router.get("/static/{name}")
def static_asset(name: str) -> FileResponse:
    return _asset(name)
