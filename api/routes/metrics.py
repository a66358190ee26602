"""``GET /metrics``: Prometheus exposition (aggregate counts only, no ids; no auth, like the probes)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, operation_id="metrics",
            summary="Prometheus metrics: request latency, resources by state, "
            "queue depth, worker heartbeats", responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(generate_latest, request.app.state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
