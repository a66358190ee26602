"""Liveness and readiness probes (no auth)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.errors import NotReady
from api.schemas.common import Health, error_responses
from api.services.health import readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, operation_id="healthz", summary="Liveness: the API process answers")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, operation_id="readyz",
            summary="Readiness: database, broker and object store are reachable", responses=error_responses(503))
async def readyz(request: Request) -> Health:
    state = request.app.state
    checks = await run_in_threadpool(readiness, settings=state.settings, engine=state.engine, store=state.store)
    failed = [{"check": name, "error": result} for name, result in checks.items() if result != "ok"]
    if failed:
        raise NotReady(f"not ready: {', '.join(f['check'] for f in failed)}", errors=failed)
    return Health(status="ok", checks=checks)
