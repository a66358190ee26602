"""Fault injection across the stack (PostgreSQL + Redis + S3): API restart, a paused broker, dropped DB connections.

Each test runs a private cell (API + trial workers on their own broker namespace, short leases) and checks that the
search completes with every trial accounted for exactly once.
"""

from __future__ import annotations

import time

import psycopg
import pytest
import redis

from tests.service.conftest import POSTGRES_ADMIN_URL, REDIS_URL, _stop, start_api
from tests.service.test_experiments import all_trials, experiment_body, ready_dataset, wait_for_status
from tests.service.test_trial_recovery import cell, running_trial_with_epochs, trial_rows, wait_for  # noqa: F401


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
        _stop(api)
        port = int(cell.base_url.rsplit(":", 1)[1])
        cell.processes[0], _ = start_api(cell.env, cell.log_dir / "api-restarted.log", port=port)
        wait_for(lambda: _answers(client), what="the restarted API", cell=cell)
        assert_complete(stack, client, experiment["id"], 3)


def _answers(client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except Exception:
        return False


def test_a_paused_broker_delays_but_does_not_break_a_search(stack, api_key, cell):
    cell.start_worker("patient")
    broker = redis.Redis.from_url(REDIS_URL)
    with stack.client(api_key.key) as stack_client, cell.client(api_key.key) as client:
        dataset = ready_dataset(stack_client)
        body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 3, "epochs_per_trial": 15})
        experiment = client.post("/v1/experiments", json=body).json()
        wait_for(running_trial_with_epochs(client, experiment["id"]), what="a running trial", cell=cell)
        # Every Redis client blocks for 4 s: the worker's next enqueue and consume wait, then carry on.
        broker.execute_command("CLIENT", "PAUSE", "4000", "ALL")
        time.sleep(4.5)
        assert_complete(stack, client, experiment["id"], 3)


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
