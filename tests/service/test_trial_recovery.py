"""Crash safety of searches with real worker processes: SIGKILL mid-trial, redelivery, a trial that always crashes,
two workers on one experiment, and refused writes from a stale lease.

Each test runs its own *cell*: an API and trial workers on a private broker namespace (same database and object
store as the session's stack), with short heartbeat settings, so killing a worker never disturbs other tests.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from api.models import Trial, TrialAttempt
from api.queue import create_celery
from api.repositories import experiments as repository
from api.services.search import RUN_TRIAL_TASK
from tests.service.conftest import BIN, _start, _stop_all, settings_from_env, start_api
from tests.service.test_experiments import (all_trials, experiment_body, ready_dataset,
                                            wait_for_status)

FAST_LEASES = {"NAS_TRIAL_HEARTBEAT_S": "0.5", "NAS_TRIAL_STALE_AFTER_S": "4", "NAS_TRIAL_REAPER_INTERVAL_S": "1",
               "NAS_TRIAL_MAX_ATTEMPTS": "2"}


@dataclass
class Cell:
    env: dict[str, str]
    base_url: str
    log_dir: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start_worker(self, name: str) -> subprocess.Popen:
        process = _start([str(BIN / "celery"), "-A", "worker.app", "worker", "-Q", "trials,models", "-c", "1",
                          "-P", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat",
                          "-n", f"{name}-{secrets.token_hex(3)}@%h", "--loglevel", "INFO"],
                         self.env, self.log_dir / f"{name}.log")
        self.processes.append(process)
        return process

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def send_trial(self, trial_id: str) -> None:
        create_celery(settings_from_env(self.env)).send_task(RUN_TRIAL_TASK, args=[trial_id], queue="trials")

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} -----\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.log_dir.glob("*.log")))


def kill9(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextmanager
def open_cell(stack, tmp_path: Path, **settings: str) -> Iterator[Cell]:
    """Run a cell on ``stack`` (data and logs under ``tmp_path``); its processes stop on exit.

    ``settings`` (``NAS_*`` variables) override the cell's, e.g. ``NAS_BROKER_URL`` to give it a broker of its own.
    """
    env = dict(stack.env, **FAST_LEASES)
    # Same database and objects as the stack, a private broker namespace.
    env.update(NAS_DATABASE_URL=stack.settings.database_url, NAS_STORAGE_URL=stack.settings.storage_url,
               NAS_DATA_DIR=str(tmp_path))
    if stack.kind == "postgres":
        env["NAS_BROKER_KEY_PREFIX"] = f"nas-cell-{secrets.token_hex(4)}:"
    env.update(settings)
    api, base_url = start_api(env, tmp_path / "api.log")
    result = Cell(env=env, base_url=base_url, log_dir=tmp_path, processes=[api])
    try:
        yield result
    finally:
        _stop_all(result.processes)


@pytest.fixture
def cell(stack, tmp_path) -> Iterator[Cell]:
    with open_cell(stack, tmp_path) as result:
        yield result


def trial_rows(stack, experiment_id: str) -> list[Trial]:
    with stack.runtime.unit_of_work() as session:
        return repository.all_trials(session, experiment_id)


def attempts_of(stack, trial_id: str) -> list[TrialAttempt]:
    with stack.runtime.unit_of_work() as session:
        return repository.attempts_for_trial(session, trial_id)


def wait_for(predicate, *, timeout_s: float = 60, what: str = "condition", cell: Cell | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{cell.logs() if cell else ''}")


def running_trial_with_epochs(client: httpx.Client, experiment_id: str, *, attempt: int = 1):
    return lambda: next((t for t in all_trials(client, experiment_id)
                         if t["status"] == "running" and t["epochs"] and t["attempts"] == attempt), None)


def test_sigkill_mid_trial_then_a_restarted_worker_completes_the_search(stack, api_key, cell):
    first = cell.start_worker("doomed")
    with stack.client(api_key.key) as stack_client, cell.client(api_key.key) as client:
        dataset = ready_dataset(stack_client)
        body = experiment_body(dataset["id"], strategy="evolution", budget={"max_trials": 2, "epochs_per_trial": 60})
        experiment = client.post("/v1/experiments", json=body).json()
        victim = wait_for(running_trial_with_epochs(client, experiment["id"]), what="a running trial", cell=cell)
        kill9(first)
        cell.start_worker("rescuer")
        done = wait_for_status(client, experiment["id"], {"succeeded", "failed"}, timeout_s=180)
        assert done["status"] == "succeeded", cell.logs()
        trials = all_trials(client, experiment["id"])
        assert sorted(t["number"] for t in trials) == [1, 2]  # no trial lost, none duplicated
        rescued = next(t for t in trials if t["id"] == victim["id"])
        assert rescued["number"] == victim["number"] and rescued["status"] == "succeeded"
        assert rescued["attempts"] == 2 and [e["epoch"] for e in rescued["epochs"]] == list(range(1, 61))
        # The new attempt started over from the trial's seed: same initial weights, data order and augmentations,
        # so its first epoch repeats the lost attempt's.
        lost_first, redone_first = victim["epochs"][0], rescued["epochs"][0]
        assert redone_first["val_loss"] == pytest.approx(lost_first["val_loss"], rel=1e-4), (lost_first, redone_first)
        attempts = attempts_of(stack, victim["id"])
        assert [a.status for a in attempts] == ["lost", "succeeded"] and attempts[0].worker != attempts[1].worker
        board = client.get(f"/v1/experiments/{experiment['id']}/leaderboard").json()
        assert len({row["id"] for row in board["data"]}) == len(board["data"]) <= 2


def test_redelivery_of_a_running_trial_does_nothing(stack, api_key, cell):
    cell.start_worker("first")
    cell.start_worker("second")
    with stack.client(api_key.key) as stack_client, cell.client(api_key.key) as client:
        dataset = ready_dataset(stack_client)
        body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 1, "epochs_per_trial": 40})
        experiment = client.post("/v1/experiments", json=body).json()
        running = wait_for(running_trial_with_epochs(client, experiment["id"]), what="a running trial", cell=cell)
        cell.send_trial(running["id"])  # the broker delivers the same trial again while it runs
        cell.send_trial(running["id"])
        done = wait_for_status(client, experiment["id"], {"succeeded", "failed"}, timeout_s=120)
        assert done["status"] == "succeeded"
        cell.send_trial(running["id"])  # ... and once more after it finished
        time.sleep(2)
        trial = all_trials(client, experiment["id"])[0]
        assert trial["attempts"] == 1 and trial["status"] == "succeeded" and len(trial["epochs"]) == 40
        assert [a.status for a in attempts_of(stack, running["id"])] == ["succeeded"]
        assert "skipped" in cell.logs()


def test_a_trial_that_keeps_crashing_fails_and_the_search_goes_on(stack, api_key, cell):
    with stack.client(api_key.key) as stack_client, cell.client(api_key.key) as client:
        dataset = ready_dataset(stack_client)
        # No pruning: the next trial must still be running when the test cancels it.
        body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 2, "epochs_per_trial": 200},
                               pruner={"kind": "none"})
        experiment = client.post("/v1/experiments", json=body).json()
        victim = None
        for attempt in range(1, 3):  # NAS_TRIAL_MAX_ATTEMPTS=2: two deaths and the trial is given up
            worker = cell.start_worker(f"crash-{attempt}")
            running = wait_for(running_trial_with_epochs(client, experiment["id"], attempt=attempt), timeout_s=60,
                               what=f"attempt {attempt}", cell=cell)
            victim = victim or running["id"]
            assert running["id"] == victim and running["attempts"] == attempt
            kill9(worker)
        worker = cell.start_worker("survivor")
        failed = wait_for(lambda: next((t for t in all_trials(client, experiment["id"])
                                        if t["id"] == victim and t["status"] == "failed"), None),
                          timeout_s=60, what="the crashing trial to fail", cell=cell)
        assert "lost 2 times" in failed["error"]
        # The search went on: the second trial runs on the survivor; cancel it to keep the test short.
        wait_for(lambda: len(all_trials(client, experiment["id"])) == 2, what="the next trial", cell=cell)
        client.post(f"/v1/experiments/{experiment['id']}/cancel")
        wait_for_status(client, experiment["id"], {"canceled"}, timeout_s=60)
        assert [a.status for a in attempts_of(stack, victim)] == ["lost", "lost"]


def test_two_workers_share_one_experiment_without_duplicate_numbers(stack, api_key, cell):
    cell.start_worker("left")
    cell.start_worker("right")
    with stack.client(api_key.key) as stack_client, cell.client(api_key.key) as client:
        dataset = ready_dataset(stack_client)
        body = experiment_body(dataset["id"], strategy="tpe", concurrency=2,
                               budget={"max_trials": 6, "epochs_per_trial": 15})
        experiment = client.post("/v1/experiments", json=body).json()
        done = wait_for_status(client, experiment["id"], {"succeeded", "failed"}, timeout_s=180)
        assert done["status"] == "succeeded", (done["detail"], done["progress"])
        trials = trial_rows(stack, experiment["id"])
        assert sorted(t.number for t in trials) == [1, 2, 3, 4, 5, 6]
        assert all(t.attempts == 1 for t in trials)
        workers = {a.worker for t in trials for a in attempts_of(stack, t.id)}
        assert len(workers) == 2, workers  # both workers took trials of the one experiment


def test_writes_from_a_stale_lease_are_refused(stack, client):
    dataset = ready_dataset(client)
    body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 1, "epochs_per_trial": 1})
    experiment = client.post("/v1/experiments", json=body).json()
    wait_for_status(client, experiment["id"], {"succeeded"})
    trial = trial_rows(stack, experiment["id"])[0]
    with stack.runtime.unit_of_work() as session:
        # A new attempt holds the lease now; the old attempt's token no longer writes anything.
        session.execute(Trial.__table__.update().where(Trial.id == trial.id)
                        .values(status="running", lease_token="new-lease"))
        assert not repository.update_leased_trial(session, trial.id, "old-lease", val_accuracy=0.0)
        assert repository.update_leased_trial(session, trial.id, "new-lease", val_accuracy=trial.val_accuracy)
        row = session.scalar(select(Trial).where(Trial.id == trial.id))
        assert row.val_accuracy == trial.val_accuracy
        session.execute(Trial.__table__.update().where(Trial.id == trial.id).values(status="succeeded"))


def test_a_killed_trial_resumes_from_its_last_checkpoint(stack, api_key, tmp_path):
    from api.services.search import trial_checkpoint_key

    with open_cell(stack, tmp_path, NAS_TRIAL_CHECKPOINT_S="0") as cell:  # a checkpoint after every epoch
        first = cell.start_worker("doomed")
        with stack.client(api_key.key) as stack_client, cell.client(api_key.key) as client:
            dataset = ready_dataset(stack_client)
            body = experiment_body(dataset["id"], strategy="random", pruner={"kind": "none"},
                                   budget={"max_trials": 1, "epochs_per_trial": 60})
            experiment = client.post("/v1/experiments", json=body).json()
            victim = wait_for(lambda: next((t for t in all_trials(client, experiment["id"])
                                            if t["status"] == "running" and len(t["epochs"]) >= 3), None),
                              what="a trial with three epochs", cell=cell)
            seen_before_kill = len(victim["epochs"])
            kill9(first)
            cell.start_worker("rescuer")
            done = wait_for_status(client, experiment["id"], {"succeeded", "failed"}, timeout_s=180)
            assert done["status"] == "succeeded", cell.logs()
            [rescued] = all_trials(client, experiment["id"])
            assert rescued["attempts"] == 2 and [e["epoch"] for e in rescued["epochs"]] == list(range(1, 61))
            lost, resumed = attempts_of(stack, victim["id"])
            assert lost.status == "lost" and resumed.status == "succeeded"
            # the new attempt started after the last checkpoint, not at epoch 1
            assert resumed.resumed_from_epoch is not None and resumed.resumed_from_epoch >= seen_before_kill - 1 >= 2
            key = trial_checkpoint_key(api_key.project_id, experiment["id"], victim["id"])
            assert not stack.runtime.store.exists(key)  # deleted once the trial ended
