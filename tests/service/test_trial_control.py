"""Control of a search while and after it runs: stopping one trial, extending a succeeded search (in process).

A trial that must be stopped while it trains runs its task in a thread of the test, as a worker would, while the test
sends the stop request to the API.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import httpx
from typer.testing import CliRunner

from api.db import utcnow
from api.orm import Experiment, Trial
from api.queue import RUN_TRIAL, SCHEDULE, celery_app
from api.services.search.reaper import reap
from api.services.search.scheduler import elapsed_seconds
from api.services.search.trials import STOP_REQUESTED, _trial_beat
from nas_client import AuthenticatedClient
from nas_core import trainer
from tests.service.helpers import TERMINAL, all_trials, experiment_body, ready_dataset, trial_rows, wait_for_status


ENGINE_MIN_TRIAL_STEPS = trainer.MIN_TRIAL_STEPS  # read at import, before any fixture lowers it


def take_task(app_service, name: str):
    """The first queued task of ``name``, removed from the queue (the test runs it itself)."""
    task = next(task for task in app_service.queued if task.name == name)
    app_service.queued.remove(task)
    return task


def trial(client: httpx.Client, experiment_id: str, number: int) -> dict:
    return next(t for t in all_trials(client, experiment_id) if t["number"] == number)


def stop(client: httpx.Client, experiment_id: str, number: int) -> httpx.Response:
    return client.post(f"/v1/experiments/{experiment_id}/trials/{number}/stop")


def test_a_running_trial_stops_with_its_curve_and_the_search_goes_on(app_service, app_client, monkeypatch):
    # The engine's step floor: the first trial must still be training when the stop arrives.
    monkeypatch.setattr(trainer, "MIN_TRIAL_STEPS", ENGINE_MIN_TRIAL_STEPS)
    dataset = ready_dataset(app_client, drain=app_service.drain)
    # Long enough that the first trial is still training when the stop arrives; no pruning to stop it earlier.
    body = experiment_body(dataset["id"], strategy="random", pruner={"kind": "none"},
                           budget={"max_trials": 2, "epochs_per_trial": 40})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain(SCHEDULE.name)
    first = take_task(app_service, RUN_TRIAL.name)
    worker = threading.Thread(target=lambda: celery_app.tasks[first.name](*first.args), daemon=True)
    worker.start()
    deadline = time.monotonic() + 60
    while not trial(app_client, experiment["id"], 1)["epochs"]:
        assert time.monotonic() < deadline and worker.is_alive(), trial(app_client, experiment["id"], 1)
        time.sleep(0.02)

    response = stop(app_client, experiment["id"], 1)
    assert response.status_code == 202, response.text
    assert response.json()["number"] == 1 and response.json()["stop_requested_at"] is not None
    worker.join(timeout=60)
    assert not worker.is_alive()
    stopped = trial(app_client, experiment["id"], 1)
    assert stopped["status"] == "stopped" and stopped["error"] == STOP_REQUESTED, stopped
    assert 1 <= len(stopped["epochs"]) < 40 and stopped["val_accuracy"] is not None
    assert [e["epoch"] for e in stopped["epochs"]] == list(range(1, len(stopped["epochs"]) + 1))

    app_service.drain(SCHEDULE.name, RUN_TRIAL.name)  # the scheduler filled the slot with trial 2
    done = wait_for_status(app_client, experiment["id"], TERMINAL)
    assert done["status"] == "succeeded", done
    assert (done["progress"]["stopped"], done["progress"]["succeeded"], done["progress"]["completed"]) == (1, 1, 2)
    second = trial(app_client, experiment["id"], 2)
    assert second["status"] == "succeeded" and len(second["epochs"]) == 40
    board = app_client.get(f"/v1/experiments/{experiment['id']}/leaderboard").json()
    assert [row["number"] for row in board["data"]] == [2] and done["best"]["number"] == 2
    # The stopped trial has ended: stopping it again, or anything once the search is over, is a conflict.
    again = stop(app_client, experiment["id"], 1)
    assert again.status_code == 409 and again.json()["type"] == "/problems/experiment-finished", again.text


def test_a_pending_trial_that_is_stopped_never_starts(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="random", concurrency=2,
                           budget={"max_trials": 3, "epochs_per_trial": 1})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain(SCHEDULE.name)
    assert [t["status"] for t in all_trials(app_client, experiment["id"])] == ["pending", "pending"]

    response = stop(app_client, experiment["id"], 2)
    assert response.status_code == 202 and response.json()["status"] == "stopped", response.text
    again = stop(app_client, experiment["id"], 2)
    assert again.status_code == 409 and again.json()["type"] == "/problems/trial-finished", again.text
    assert "stopped" in again.json()["detail"]
    missing = stop(app_client, experiment["id"], 99)
    assert missing.status_code == 404 and missing.json()["type"] == "/problems/not-found"

    app_service.drain()  # trial 2's message arrives too, and does nothing
    done = wait_for_status(app_client, experiment["id"], TERMINAL)
    assert done["status"] == "succeeded", done
    trials = all_trials(app_client, experiment["id"])
    assert [(t["number"], t["status"]) for t in trials] == [(1, "succeeded"), (2, "stopped"), (3, "succeeded")]
    never = trials[1]
    assert never["attempts"] == 0 and never["started_at"] is None and never["epochs"] == []
    assert done["progress"]["stopped"] == 1 and done["progress"]["completed"] == 3


def test_stop_is_404_for_another_projects_experiment(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 1, "epochs_per_trial": 1})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain(SCHEDULE.name)
    with app_service.client(app_service.new_key().key) as other:
        response = stop(other, experiment["id"], 1)
        assert response.status_code == 404 and response.json()["type"] == "/problems/not-found", response.text
    assert trial(app_client, experiment["id"], 1)["stop_requested_at"] is None
    app_service.drain()
    assert wait_for_status(app_client, experiment["id"], TERMINAL)["status"] == "succeeded"


def test_a_trial_number_out_of_range_is_a_clear_422(app_service, app_client):
    """A number no INTEGER column holds is refused before any query (PostgreSQL would fail on it)."""
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 1, "epochs_per_trial": 1})
    experiment = app_client.post("/v1/experiments", json=body).json()
    for number in (94136498758, 2**31, 0, -1):
        response = stop(app_client, experiment["id"], number)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    assert stop(app_client, experiment["id"], 2**31 - 1).status_code == 404  # in range: no such trial
    app_service.drain()
    assert wait_for_status(app_client, experiment["id"], TERMINAL)["status"] == "succeeded"


def test_a_stop_request_outlives_the_worker_that_ran_the_trial(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="random", concurrency=2,
                           budget={"max_trials": 3, "epochs_per_trial": 1})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain(SCHEDULE.name)
    # A worker took both messages, started both trials and was killed long ago (before either noticed a stop).
    messages = [take_task(app_service, RUN_TRIAL.name) for _ in range(2)]
    first, second = trial_rows(app_service, experiment["id"])
    silent_since = utcnow() - timedelta(days=10)
    with app_service.runtime.unit_of_work() as session:
        for row in (first, second):
            session.execute(Trial.__table__.update().where(Trial.id == row.id)
                            .values(status="running", lease_token=f"dead-lease-{row.number}", attempts=1,
                                    heartbeat_at=silent_since, started_at=silent_since))
    for number in (1, 2):
        response = stop(app_client, experiment["id"], number)
        assert response.status_code == 202 and response.json()["status"] == "running", response.text
    # A live attempt's heartbeat reads the request (its trainer then stops at the next batch).
    beat = _trial_beat(unit_of_work=app_service.runtime.unit_of_work, trial_id=first.id,
                              experiment_id=experiment["id"], lease_token="dead-lease-1")
    assert beat() == STOP_REQUESTED
    with app_service.runtime.unit_of_work() as session:
        session.execute(Trial.__table__.update().where(Trial.id == first.id).values(heartbeat_at=silent_since))

    # The restarted worker gets trial 1's message again: it ends the trial stopped rather than starting it anew.
    [message] = [m for m in messages if m.args == [first.id]]
    assert celery_app.tasks[message.name](*message.args) == "skipped"
    assert trial(app_client, experiment["id"], 1)["status"] == "stopped"
    # Trial 2's message is lost: the reaper ends it stopped instead of handing it to a new attempt. (A stale period
    # of nine days keeps the sweep to this test's rows on the shared database.)
    settings = app_service.settings.model_copy(update={"trial_stale_after_s": 9 * 24 * 3600.0})
    with app_service.runtime.unit_of_work() as session:
        reaped = reap(session=session, settings=settings)
    assert second.id not in reaped["trials"]
    stopped = [trial(app_client, experiment["id"], number) for number in (1, 2)]
    assert [t["status"] for t in stopped] == ["stopped", "stopped"] and all(t["attempts"] == 1 for t in stopped)

    app_service.drain()  # trial 3, planned when trial 1 stopped
    done = wait_for_status(app_client, experiment["id"], TERMINAL)
    assert done["status"] == "succeeded" and done["progress"]["stopped"] == 2, done
    assert trial(app_client, experiment["id"], 3)["status"] == "succeeded"


def _experiment_models(client: httpx.Client, experiment_id: str) -> list[dict]:
    return client.get(f"/v1/experiments/{experiment_id}/models").json()["data"]


def test_a_succeeded_search_extends_with_a_larger_budget(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="evolution", auto_model=True,
                           budget={"max_trials": 2, "epochs_per_trial": 1})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain(SCHEDULE.name, RUN_TRIAL.name)  # the final models are queued, not built: only counted
    first = wait_for_status(app_client, experiment["id"], TERMINAL)
    assert first["status"] == "succeeded" and len(_experiment_models(app_client, experiment["id"])) == 1
    resume = f"/v1/experiments/{experiment['id']}/resume"

    for refused in (None, {"max_trials": 2}, {"max_trials": 1}, {"max_minutes": 30}):
        response = app_client.post(resume, json=refused)
        assert response.status_code == 409, (refused, response.text)
        problem = response.json()
        assert problem["type"] == "/problems/budget-not-raised" and "larger max_trials" in problem["detail"]
        assert response.headers["content-type"] == "application/problem+json"
    assert app_client.get(f"/v1/experiments/{experiment['id']}").json()["budget"]["max_trials"] == 2

    extended = app_client.post(resume, json={"max_trials": 4})
    assert extended.status_code == 202, extended.text
    assert extended.json()["status"] == "running" and extended.json()["finished_at"] is None
    assert extended.json()["budget"]["max_trials"] == 4
    app_service.drain(SCHEDULE.name, RUN_TRIAL.name)
    done = wait_for_status(app_client, experiment["id"], TERMINAL)
    assert done["status"] == "succeeded" and done["finished_at"] > first["finished_at"], done
    assert done["progress"]["completed"] == 4 and done["progress"]["max_trials"] == 4
    assert done["elapsed_s"] >= first["elapsed_s"]
    trials = all_trials(app_client, experiment["id"])
    assert [t["number"] for t in trials] == [1, 2, 3, 4]
    # The strategy went on from the whole history: no candidate of the first run is proposed again.
    assert len({t["arch_hash"] + str(t["decisions"]) for t in trials}) == 4
    board = app_client.get(f"/v1/experiments/{experiment['id']}/leaderboard").json()
    assert board["data"][0]["id"] == done["best"]["trial_id"] and board["total"] == done["progress"]["succeeded"]
    # A new final model for the search's new end, next to the first.
    models = _experiment_models(app_client, experiment["id"])
    assert len(models) == 2 and {m["trial_id"] for m in models} <= {t["id"] for t in trials}
    assert app_client.post(resume, json={"max_trials": 4}).status_code == 409


def test_extending_a_search_counts_the_minutes_it_already_ran(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 1, "epochs_per_trial": 1,
                                                                     "max_minutes": 30})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain(SCHEDULE.name, RUN_TRIAL.name)
    assert wait_for_status(app_client, experiment["id"], TERMINAL)["status"] == "succeeded"
    with app_service.runtime.unit_of_work() as session:  # as if the search had used its whole half hour
        session.execute(Experiment.__table__.update().where(Experiment.id == experiment["id"])
                        .values(elapsed_s=30 * 60.0))
    resume = f"/v1/experiments/{experiment['id']}/resume"
    spent = app_client.post(resume, json={"max_trials": 3})
    assert spent.status_code == 409 and spent.json()["type"] == "/problems/budget-spent", spent.text
    assert "max_minutes" in spent.json()["detail"]

    extended = app_client.post(resume, json={"max_trials": 3, "max_minutes": 40})
    assert extended.status_code == 202, extended.text
    assert extended.json()["elapsed_s"] >= 30 * 60 and extended.json()["budget"]["max_minutes"] == 40
    with app_service.runtime.unit_of_work() as session:
        left_s = 40 * 60 - elapsed_seconds(session.get(Experiment, experiment["id"]))
    assert 9 * 60 < left_s <= 10 * 60  # ten more minutes, not forty
    assert app_client.post(f"/v1/experiments/{experiment['id']}/cancel").status_code == 202


def test_cli_stops_a_trial_and_extends_a_search(app_service, app_client, app_key, monkeypatch):
    from cli.commands import experiments as commands

    def connect(url: str, api_key: str | None) -> AuthenticatedClient:
        client = AuthenticatedClient(base_url="http://testserver", token=api_key)
        return client.set_httpx_client(app_service.client(api_key))

    monkeypatch.setattr(commands, "connect", connect)
    runner = CliRunner()
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="random", concurrency=2,
                           budget={"max_trials": 2, "epochs_per_trial": 1})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain(SCHEDULE.name)

    result = runner.invoke(commands.app, ["stop-trial", experiment["id"], "2", "--api-key", app_key.key])
    assert result.exit_code == 0 and "trial #2" in result.output and "stopped" in result.output, result.output
    result = runner.invoke(commands.app, ["stop-trial", experiment["id"], "2", "--api-key", app_key.key])
    assert result.exit_code == 1 and "409 trial-finished" in result.output, result.output
    app_service.drain()
    done = wait_for_status(app_client, experiment["id"], TERMINAL)
    assert done["status"] == "succeeded" and done["progress"]["stopped"] == 1

    result = runner.invoke(commands.app, ["resume", experiment["id"], "--api-key", app_key.key])
    assert result.exit_code == 1 and "409 budget-not-raised" in result.output, result.output
    result = runner.invoke(commands.app, ["resume", experiment["id"], "--max-trials", "3", "--api-key", app_key.key])
    assert result.exit_code == 0 and "running" in result.output, result.output
    app_service.drain()
    done = wait_for_status(app_client, experiment["id"], TERMINAL)
    assert done["status"] == "succeeded" and [t["number"] for t in all_trials(app_client, done["id"])] == [1, 2, 3]
