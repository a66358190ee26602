"""The ASGI application: ``uvicorn --factory api.main:create_app``."""

from __future__ import annotations

import gc
import sys

from fastapi import Depends, FastAPI

from prometheus_client import CollectorRegistry

from api.deps import reject_nul_characters, replay_response
from api.errors import add_exception_handlers
from api.logs import RequestId, configure_logging
from api.metrics import RequestMetrics, StateCollector, request_histogram
from api.routes import dashboard, datasets, experiments, health, metrics, models, search_space
from api.settings import Settings, get_settings
from api.runtime import build_runtime
from api.services.idempotency import IdempotentReplay
from api.services.rate_limit import make_rate_limiter
from api.uploads import sweep_stale_uploads

ROUTERS = (health.router, metrics.router, datasets.router, experiments.router, search_space.router, models.router,
           dashboard.router)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_format)
    # Handlers run in a thread pool next to the event loop thread; with CPython's default 5 ms switch interval the
    # loop waits up to 5 ms for the GIL at every hand-off under load, which dominates tail latency.
    sys.setswitchinterval(settings.api_switch_interval_ms / 1000)
    app = FastAPI(title="nas-service", version="0.1.0",
                  description="Neural architecture search as a self-hosted REST service.",
                  dependencies=[Depends(reject_nul_characters)])
    sweep_stale_uploads(settings.upload_tmp_dir)  # what an API killed mid-upload left behind
    runtime = build_runtime(settings)
    app.state.settings, app.state.engine = settings, runtime.engine
    app.state.sessionmaker, app.state.store = runtime.sessionmaker, runtime.store
    registry = CollectorRegistry()  # per app: several apps in one process never share series
    registry.register(StateCollector(engine=runtime.engine, settings=settings))
    app.state.metrics_registry = registry
    app.add_middleware(RequestMetrics, histogram=request_histogram(registry))
    app.add_middleware(RequestId)  # outermost: the request id is set before anything logs
    add_exception_handlers(app)
    app.state.rate_limiter = make_rate_limiter(settings)
    app.add_exception_handler(IdempotentReplay, replay_response)
    for router in ROUTERS:
        app.include_router(router)
    # What exists now (modules, routes, schemas) lives as long as the process: move it out of the cyclic
    # collector's sight, so full collections under load scan only request garbage (pauses of ~100 ms otherwise).
    gc.collect()
    gc.freeze()
    return app
