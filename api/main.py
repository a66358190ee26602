"""The ASGI application: ``uvicorn --factory api.main:create_app``."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from api.errors import add_exception_handlers
from api.routes import datasets, experiments, health, models, search_space
from api.settings import Settings, get_settings
from api.runtime import build_runtime

ROUTERS = (health.router, datasets.router, experiments.router, search_space.router, models.router)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=logging.INFO)
    app = FastAPI(title="nas-service", version="0.1.0",
                  description="Neural architecture search as a self-hosted REST service.")
    runtime = build_runtime(settings)
    app.state.settings, app.state.engine = settings, runtime.engine
    app.state.sessionmaker, app.state.store = runtime.sessionmaker, runtime.store
    add_exception_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
