"""Fault injection across the stack (PostgreSQL + Redis + S3): API restart, a stopped broker, dropped DB connections.

Each test runs a private cell (API + trial workers on their own broker namespace, short leases) and checks that the
search completes with every trial accounted for exactly once. The broker test gives its cell a Redis of its own
(``redis-server`` without persistence on a free loopback port) and kills it mid-trial: the shared test Redis is never
stopped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.service.helpers import (POSTGRES_ADMIN_URL, Cell, all_trials, experiment_body, free_port, kill9, open_cell,
                                   ready_dataset, running_trial_with_epochs, start_api, start_process, stop_process,
                                   trial_rows, wait_for, wait_for_status)

pytestmark = pytest.mark.stack


@pytest.fixture(autouse=True)
def postgres_only(stack):
    if stack.kind != "postgres":
        pytest.skip("fault injection targets the PostgreSQL + Redis + S3 deployment")


def assert_complete(stack, client, experiment_id: str, max_trials: int) -> None:
    done = wait_for_status(client, experiment_id, {"succeeded", "failed"}, timeout_s=180)
    assert done["status"] == "succeeded", done
    trials = all_trials(client, experiment_id)
    assert sorted(t["number"] for t in trials) == list(range(1, max_trials + 1))
    assert all(t["status"] in ("succeeded", "pruned") for t in trials), [t["error"] for t in trials]


def test_api_restart_mid_search_loses_nothing(stack, api_key, cell):
    cell.start_worker("steady")
    with stack.client(api_key.key) as stack_client, cell.client(api_key.key) as client:
        dataset = ready_dataset(stack_client)
        body = experiment_body(dataset["id"], strategy="tpe", budget={"max_trials": 3, "epochs_per_trial": 20})
        experiment = client.post("/v1/experiments", json=body).json()
        wait_for(running_trial_with_epochs(client, experiment["id"]), what="a running trial", cell=cell)
        api = cell.processes[0]
        stop_process(api)
        port = int(cell.base_url.rsplit(":", 1)[1])
        cell.processes[0], _ = start_api(cell.env, cell.log_dir / "api-restarted.log", port=port)
        wait_for(lambda: _answers(client), what="the restarted API", cell=cell)
        assert_complete(stack, client, experiment["id"], 3)


def _answers(client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except Exception:
        return False


@dataclass
class PrivateRedis:
    """A ``redis-server`` of one test, without persistence, on a fixed loopback port so it can restart in place."""

    executable: str
    port: int
    directory: Path
    log_dir: Path
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.starts += 1
        self.process = start_process([self.executable, "--bind", "127.0.0.1", "--port", str(self.port), "--save",
                                      "", "--appendonly", "no", "--dir", str(self.directory)],
                                     dict(os.environ), self.log_dir / f"redis-{self.starts}.log")
        wait_for(self.answers, timeout_s=10, what=f"redis-server on port {self.port}")

    def answers(self) -> bool:
        try:
            # One try: redis-py's default retries would spend seconds on a server that is down.
            with redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=1,
                             retry=Retry(NoBackoff(), 0)) as client:
                return client.ping()
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            kill9(self.process)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server is not on PATH: the broker outage needs a Redis of its own to stop")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = PrivateRedis(executable=executable, port=free_port(), directory=directory, log_dir=tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.kill()


@pytest.fixture
def cell_on_private_redis(stack, tmp_path, private_redis) -> Iterator[Cell]:
    # Depends on private_redis, so pytest tears it down first: the cell's processes stop before their broker.
    with open_cell(stack, tmp_path, NAS_BROKER_URL=private_redis.url) as result:
        yield result


def test_a_broker_stopped_mid_search_loses_nothing(stack, api_key, private_redis, cell_on_private_redis):
    cell = cell_on_private_redis
    cell.start_worker("reconnecting")
    with stack.client(api_key.key) as stack_client, cell.client(api_key.key) as client:
        dataset = ready_dataset(stack_client)
        # No pruning: a trial must still be running when the broker goes away.
        body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 3, "epochs_per_trial": 300},
                               pruner={"kind": "none"})
        experiment = client.post("/v1/experiments", json=body).json()
        wait_for(running_trial_with_epochs(client, experiment["id"]), what="a running trial", cell=cell)
        private_redis.kill()
        statuses = [t["status"] for t in all_trials(client, experiment["id"])]
        assert "running" in statuses, f"stopped too late: {statuses}\n{cell.logs()}"
        assert not private_redis.answers()
        time.sleep(5)
        # Without persistence the restarted Redis has lost every queued and unacknowledged message: the workers
        # reconnect, and the reaper re-enqueues pending trials and reschedules the idle experiment.
        private_redis.start()
        assert_complete(stack, client, experiment["id"], 3)
        assert all(len(t["epochs"]) == 300 for t in all_trials(client, experiment["id"]))


def test_dropped_database_connections_during_a_trial_are_survived(stack, api_key, cell):
    cell.start_worker("resilient")
    database = stack.settings.database_url.rsplit("/", 1)[1]
    with stack.client(api_key.key) as stack_client, cell.client(api_key.key) as client:
        dataset = ready_dataset(stack_client)
        # No pruning here: every trial must run its whole curve, so a half-written one would show.
        body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 2, "epochs_per_trial": 40},
                               pruner={"kind": "none"})
        experiment = client.post("/v1/experiments", json=body).json()
        wait_for(running_trial_with_epochs(client, experiment["id"]), what="a running trial", cell=cell)
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            for _ in range(1):  # cut every connection to the service's database, mid-trial
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
                time.sleep(0.7)
        assert_complete(stack, client, experiment["id"], 2)
        # No trial was half-written: every finished trial has its full curve.
        for trial in trial_rows(stack, experiment["id"]):
            assert trial.status == "succeeded" and trial.val_accuracy is not None
        assert all(len(t["epochs"]) == 40 for t in all_trials(client, experiment["id"]))
