"""Crash safety of searches with real worker processes: SIGKILL mid-trial, redelivery, a trial that always crashes,
two workers on one experiment; and refused writes from a stale lease (in process).

Each stack test runs its own *cell* (:class:`tests.service.helpers.Cell`): an API and trial workers on a private
broker namespace (same database and object store as the session's stack), with short heartbeat settings, so killing
a worker never disturbs other tests.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from api.orm import Trial
from api.repositories import experiments as repository
from tests.service.helpers import (all_trials, attempts_of, experiment_body, kill9, open_cell, ready_dataset,
                                   running_trial_with_epochs, trial_rows, wait_for, wait_for_status)

@pytest.mark.stack
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
        # and the precision the lost attempt stored before training, so its first epoch repeats the lost attempt's.
        assert isinstance(victim["bf16"], bool) and rescued["bf16"] == victim["bf16"]
        lost_first, redone_first = victim["epochs"][0], rescued["epochs"][0]
        assert redone_first["val_loss"] == pytest.approx(lost_first["val_loss"], rel=1e-4), (lost_first, redone_first)
        attempts = attempts_of(stack, victim["id"])
        assert [a.status for a in attempts] == ["lost", "succeeded"] and attempts[0].worker != attempts[1].worker
        board = client.get(f"/v1/experiments/{experiment['id']}/leaderboard").json()
        assert len({row["id"] for row in board["data"]}) == len(board["data"]) <= 2


@pytest.mark.stack
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


@pytest.mark.stack
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


@pytest.mark.stack
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


def test_writes_from_a_stale_lease_are_refused(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 1, "epochs_per_trial": 1})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain()
    wait_for_status(app_client, experiment["id"], {"succeeded"})
    trial = trial_rows(app_service, experiment["id"])[0]
    with app_service.runtime.unit_of_work() as session:
        # A new attempt holds the lease now; the old attempt's token no longer writes anything.
        session.execute(Trial.__table__.update().where(Trial.id == trial.id)
                        .values(status="running", lease_token="new-lease"))
        assert not repository.update_leased_trial(session, trial.id, "old-lease", val_accuracy=0.0)
        assert repository.update_leased_trial(session, trial.id, "new-lease", val_accuracy=trial.val_accuracy)
        row = session.scalar(select(Trial).where(Trial.id == trial.id))
        assert row.val_accuracy == trial.val_accuracy
        session.execute(Trial.__table__.update().where(Trial.id == trial.id).values(status="succeeded"))


@pytest.mark.stack
def test_a_killed_trial_resumes_from_its_last_checkpoint(stack, api_key, tmp_path):
    from api.services.object_keys import trial_checkpoint_key

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
