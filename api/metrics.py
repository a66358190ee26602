"""Prometheus metrics: request latency from a middleware, the rest read from the database and broker per scrape.

Resource gauges are computed when ``/metrics`` is scraped (a custom collector), never kept in process memory, so
every API replica reports the same truth and a restart loses nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Receive, Scope, Send

from api.db import utcnow
from api.orm import Dataset, Experiment, Model, Trial, TrialAttempt
from api.queue import QUEUES
from api.settings import Settings

log = logging.getLogger(__name__)


def request_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("nas_http_request_duration_seconds", "HTTP request latency by route template and status",
                     ["method", "route", "status"], registry=registry,
                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


class RequestMetrics:
    """ASGI middleware timing every HTTP request, labelled by route *template* (bounded label values)."""

    def __init__(self, app: ASGIApp, *, histogram: Histogram) -> None:
        self.app, self.histogram = app, histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_and_record(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.histogram.labels(scope["method"], _route_template(scope), str(status)).observe(
                time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    # Routing writes the matched route into the (shared) scope; read it once the request is done.
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class StateCollector:
    """Rows by status, broker queue depth and worker heartbeats, read at scrape time."""

    def __init__(self, *, engine: Engine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings

    def collect(self) -> Iterator[Metric]:
        try:
            with Session(self.engine) as session:
                yield from self._rows(session)
                yield from self._heartbeats(session)
        except Exception:  # a scrape must answer even when the database does not
            log.warning("metrics: database unavailable", exc_info=True)
        depth = GaugeMetricFamily("nas_queue_depth", "Messages waiting in each broker queue", labels=["queue"])
        for queue, count in queue_depths(self.settings).items():
            depth.add_metric([queue], count)
        yield depth

    def _rows(self, session: Session) -> Iterator[Metric]:
        for name, model, doc in (("nas_trials", Trial, "Trials by state"),
                                 ("nas_experiments", Experiment, "Experiments by state"),
                                 ("nas_datasets", Dataset, "Datasets by state"),
                                 ("nas_models", Model, "Final models by state")):
            family = GaugeMetricFamily(name, doc, labels=["status"])
            for status, count in session.execute(select(model.status, func.count()).group_by(model.status)):
                family.add_metric([status], count)
            yield family

    def _heartbeats(self, session: Session) -> Iterator[Metric]:
        family = GaugeMetricFamily("nas_worker_heartbeat_age_seconds",
                                   "Seconds since each worker's running attempt last sent a heartbeat",
                                   labels=["worker"])
        now = utcnow()
        rows = session.execute(select(TrialAttempt.worker, func.max(TrialAttempt.heartbeat_at))
                               .where(TrialAttempt.status == "running").group_by(TrialAttempt.worker))
        for worker, heartbeat_at in rows:
            if heartbeat_at.tzinfo is None:
                heartbeat_at = heartbeat_at.replace(tzinfo=now.tzinfo)
            family.add_metric([worker], max(0.0, (now - heartbeat_at).total_seconds()))
        yield family


def queue_depths(settings: Settings) -> dict[str, int]:
    """Messages waiting per queue; empty when the broker cannot be asked (a scrape never fails on it)."""
    try:
        if settings.broker_url.startswith(("redis://", "rediss://")):
            import redis

            client = redis.Redis.from_url(settings.broker_url, socket_timeout=2)
            try:
                # kombu keeps a list per priority step: the plain name for priority 0, a suffixed one for others.
                keys = {queue: [queue] + [f"{queue}\x06\x16{step}" for step in (3, 6, 9)] for queue in QUEUES}
                return {queue: sum(int(client.llen(settings.broker_key_prefix + key)) for key in names)
                        for queue, names in keys.items()}
            finally:
                client.close()
        if settings.broker_url.startswith("filesystem"):
            folder = Path(settings.broker_dir) / "queue"
            names = [path.name for path in folder.iterdir()] if folder.exists() else []
            return {queue: sum(name.endswith(f".{queue}.msg") for name in names) for queue in QUEUES}
    except Exception:
        log.warning("metrics: broker unavailable", exc_info=True)
    return {}
