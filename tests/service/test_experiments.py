"""Experiments over HTTP: searches, cancel, resume, leaderboard.

In process, the test runs the worker's tasks (scheduler, trials) itself once the API has queued them. A trial that
must be stopped while it trains (cancel, the time budget) runs in a worker process of the stack.
"""

from __future__ import annotations

import httpx
import pytest

from api.orm import Experiment, Project
from api.repositories import experiments as experiments_repository
from api.schemas.experiments import ExperimentCreate
from api.services import experiments as experiments_service
from api.services.search import scheduler
from tests.service.helpers import (TERMINAL, add_experiment, all_trials, experiment_body, ready_dataset,
                                   wait_for_a_trained_epoch, wait_for_status, wait_until_trials)

@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["tpe", "evolution", "random"])
def test_four_trial_search_end_to_end(app_service, app_client, strategy):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    created = app_client.post("/v1/experiments", json=experiment_body(dataset["id"], strategy=strategy, concurrency=2))
    assert created.status_code == 201, created.text
    experiment = created.json()
    assert experiment["status"] in ("queued", "running") and experiment["strategy"] == strategy
    record = experiment["reproducibility"]
    assert record["dataset_sha256"] == dataset["sha256"] and record["seed"] == 7
    assert record["search_space_version"] and record["packages"]["torch"] and record["strategy"]["name"] == strategy

    app_service.drain()
    done = wait_for_status(app_client, experiment["id"], TERMINAL)
    assert done["status"] == "succeeded", done
    assert done["progress"]["completed"] == 4 and done["progress"]["running"] == 0
    trials = all_trials(app_client, experiment["id"])
    assert sorted(t["number"] for t in trials) == [1, 2, 3, 4]
    assert len({t["arch_hash"] + str(t["decisions"]) for t in trials}) == 4
    finished = [t for t in trials if t["status"] == "succeeded"]
    assert finished, trials
    for trial in finished:
        assert 0.0 <= trial["val_accuracy"] <= 1.0 and trial["params"] > 0 and trial["flops"] > 0
        assert trial["latency_ms"] > 0 and trial["duration_s"] > 0 and trial["attempts"] == 1
        assert [e["epoch"] for e in trial["epochs"]] == [1, 2]
        assert trial["arch"]["arch"]["stages"] and trial["seed"] >= 0

    board = app_client.get(f"/v1/experiments/{experiment['id']}/leaderboard").json()
    accuracies = [row["val_accuracy"] for row in board["data"]]
    assert accuracies == sorted(accuracies, reverse=True) and board["total"] == len(finished)
    assert [row["rank"] for row in board["data"]] == list(range(1, len(finished) + 1))
    assert board["data"][0]["id"] == done["best"]["trial_id"] and board["data"][0]["id"] in board["pareto"]
    assert set(board["pareto"]) <= {row["id"] for row in board["data"]}


def test_invalid_requests_are_rejected_with_problem_details(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    cases = [
        (experiment_body(dataset["id"], strategy="grid"), "strategy"),
        (experiment_body(dataset["id"], budget={"max_trials": 0, "epochs_per_trial": 1}), "max_trials"),
        (experiment_body(dataset["id"], search_space={"kernel": [4]}), "search_space.kernel"),
        (experiment_body(dataset["id"], search_space={"no_such_dimension": 1}), "search_space.no_such_dimension"),
        (experiment_body(dataset["id"], strategy_settings={"no_such_setting": 1}), "strategy_settings"),
        (experiment_body(dataset["id"], strategy_settings={"startup": "grid"}), "strategy_settings"),
        (experiment_body(dataset["id"], strategy="tpe", strategy_settings={"refine_fraction": 2}),
         "strategy_settings"),
        (experiment_body(dataset["id"], pruner={"kind": "asha", "no_such_setting": 1}), "pruner"),
        (experiment_body(dataset["id"], pruner={"kind": "asha", "min_resource": 1.5}), "pruner"),
        (experiment_body(dataset["id"], strategy_settings={"population_size": 2.5}), "strategy_settings"),
        (experiment_body(dataset["id"], status="succeeded"), "status"),
    ]
    for body, field in cases:
        response = app_client.post("/v1/experiments", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert any(field in error["field"] for error in response.json()["errors"]), response.json()
    missing = app_client.post("/v1/experiments", json=experiment_body("0" * 32))
    assert missing.status_code == 404
    # NUL cannot be stored (PostgreSQL text): refused at the edge, in bodies, paths and queries alike.
    for method, path, kwargs, field in [
            ("POST", "/v1/experiments", {"json": experiment_body(dataset["id"], name="a\x00b")}, "name"),
            ("POST", "/v1/experiments", {"json": experiment_body("a\x00b")}, "dataset_id"),
            ("GET", "/v1/experiments/a%00b", {}, "path.experiment_id"),
            ("GET", "/v1/experiments", {"params": {"status": "running\x00"}}, "query.status"),
            ("POST", "/v1/datasets", {"files": {"file": ("d.zip", b"PK")}, "data": {"name": "a\x00b"}}, "name")]:
        response = app_client.request(method, path, **kwargs)
        assert response.status_code == 422, (path, response.text)
        assert any(field in error["field"] for error in response.json()["errors"]), response.json()
    assert app_client.get("/v1/experiments").json()["total"] == 0  # nothing half-created


def test_an_unsatisfiable_constraint_fails_fast_naming_it(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 2, "epochs_per_trial": 1},
                           objective={"constraints": {"max_params": 10}})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain()
    done = wait_for_status(app_client, experiment["id"], TERMINAL, timeout_s=60)
    assert done["status"] == "failed"
    assert "max_params = 10 is binding" in done["detail"] and "smallest value seen" in done["detail"], done["detail"]
    # screened before anything was trained: no trial exists, the screening is counted by reason
    assert all_trials(app_client, experiment["id"]) == []
    assert done["screened"]["by_reason"]["max_params"] == done["screened"]["total"] > 0
    assert done["screened"]["smallest"]["max_params"] > 10
    assert done["progress"]["completed"] == 0
    assert app_client.get(f"/v1/experiments/{experiment['id']}/leaderboard").json()["data"] == []


@pytest.mark.slow
def test_screened_candidates_do_not_consume_the_budget(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    # Two conv stages of 16 or 256 channels: only 16 → 16 fits 20,000 parameters, a quarter of the architectures.
    space = {"num_stages": 2, "depth": 1, "op": "conv", "kernel": 3, "stem_width": 16, "width": [16, 256],
             "se": False, "train/batch_size": 16}
    body = experiment_body(dataset["id"], strategy="tpe", budget={"max_trials": 3, "epochs_per_trial": 1},
                           search_space=space, objective={"constraints": {"max_params": 20_000}})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain()
    done = wait_for_status(app_client, experiment["id"], TERMINAL)
    assert done["status"] == "succeeded", done
    trials = all_trials(app_client, experiment["id"])
    assert len(trials) == 3 and all(t["status"] == "succeeded" and t["feasible"] for t in trials)
    assert all(t["params"] <= 20_000 and t["arch"]["arch"]["stages"][1]["width"] == 16 for t in trials)
    assert all(t["arch"]["arch"]["resolution"] == 16 for t in trials)  # the input side each trial trained at
    assert done["screened"]["total"] >= 1 and set(done["screened"]["by_reason"]) == {"max_params"}
    # cost is predicted before training and measured during it
    assert all(t["predicted_epoch_s"] > 0 and t["measured_epoch_s"] > 0 for t in trials)
    assert all(0.0 <= t["val_balanced_accuracy"] <= 1.0 and len(t["val_recall"]) == 2 for t in trials)


@pytest.mark.parametrize("adaptive", [True, False])
def test_a_timed_search_whose_trials_have_not_learned_trains_its_best_ones_longer(app_service, app_client,
                                                                                    monkeypatch, adaptive):
    """Three trials of one epoch finish without learning (the bar is set out of reach): the next two train two
    epochs, and they are the leader and the lowest-loss trial of the one-epoch ones trained on (from the kept
    weights); once those two have not learned either, the next trial trains four epochs, the leader of the
    two-epoch ones first (unless turned off)."""
    from nas_core import fidelity

    monkeypatch.setattr(fidelity, "LEARNED_PROGRESS", 1.01)  # no balanced accuracy reaches it
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="random", pruner={"kind": "none"}, concurrency=1,
                           budget={"max_trials": 6, "epochs_per_trial": 1, "max_minutes": 30,
                                   "adaptive_epochs": adaptive})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain()
    done = wait_for_status(app_client, experiment["id"], TERMINAL)
    assert done["status"] == "succeeded", done
    trials = sorted(all_trials(app_client, experiment["id"]), key=lambda t: t["number"])
    assert len(trials) == 6 and all(t["status"] == "succeeded" for t in trials)
    lengths = [t["planned_epochs"] for t in trials]
    assert [len(t["epochs"]) for t in trials] == lengths  # each trained its planned length in full
    assert not any(t["reference_design"] for t in trials)  # the tiny space holds no reference design
    if not adaptive:
        assert lengths == [1] * 6 and all(t["started_from_trial"] is None for t in trials)
        return
    assert lengths == [1, 1, 1, 2, 2, 4]

    def leader(group):
        return max(group, key=lambda t: (t["val_accuracy"], -t["number"]))

    first = trials[:3]
    lowest_loss = min((t for t in first if t is not leader(first)), key=lambda t: (t["val_loss"], t["number"]))
    assert [t["decisions"] for t in trials[3:5]] == [leader(first)["decisions"], lowest_loss["decisions"]]
    assert trials[5]["decisions"] == leader(trials[3:5])["decisions"]
    # The leader's weights were kept, so its promoted run trains on from them; newcomers start from random weights.
    assert trials[3]["started_from_trial"] == leader(first)["number"]
    assert all(t["started_from_trial"] is None for t in first)


def test_a_timed_search_whose_trials_cannot_be_made_long_enough_ends_and_leaves_its_time_to_the_final_model(
        app_service, app_client, monkeypatch):
    """No trial learns and the one doubling allowed is spent: more trials of that length would not learn either, so
    the search ends with the budget of trials and minutes left, and the final model gets the minutes."""
    from api.services.models.requests import UNLEARNED_STOP, unspent_minutes
    from nas_core import fidelity

    monkeypatch.setattr(fidelity, "LEARNED_PROGRESS", 1.01)  # no balanced accuracy reaches it
    monkeypatch.setattr(fidelity, "MAX_DOUBLINGS", 1)
    dataset = ready_dataset(app_client, drain=app_service.drain)
    done, trials = _run_timed_search(app_service, app_client, dataset["id"])
    assert done["status"] == "succeeded" and done["detail"] == f"search ended: {UNLEARNED_STOP}", done["detail"]
    assert [t["planned_epochs"] for t in trials] == [1, 1, 1, 2, 2]
    with app_service.runtime.unit_of_work() as session:
        row = session.get(Experiment, done["id"])
        assert 29 < unspent_minutes(row) < 30
        row.detail = "time budget spent"
        assert unspent_minutes(row) == 0.0  # a search that spent its time, or ended otherwise, leaves none


def test_a_timed_search_whose_leader_outclasses_what_the_time_left_admits_ends_and_leaves_its_time_to_the_final_model(
        app_service, app_client, monkeypatch):
    """Once the time share admits only networks far cheaper than the leader and the last three of them finished far
    below it, the search ends with trials and minutes left, and the final model gets the minutes. Here every trial
    counts as cheap and far below, so the search ends as soon as three trials besides the leader have finished."""
    from api.services.models.requests import OUTCLASSED_STOP
    from nas_core import fidelity

    monkeypatch.setattr(fidelity, "LEARNED_PROGRESS", 0.0)  # every leader has learned: no trial is lengthened
    monkeypatch.setattr(fidelity, "OUTCLASSED_PROGRESS", 1.0)  # no trial goes beyond the leader: all are far below
    monkeypatch.setattr(fidelity, "OUTCLASSED_COST", 1e9)  # every share and every trial is far cheaper
    dataset = ready_dataset(app_client, drain=app_service.drain)
    done, trials = _run_timed_search(app_service, app_client, dataset["id"])
    _assert_ended_early(app_service, done, trials, OUTCLASSED_STOP, trials_run=1 + fidelity.OUTCLASSED_STREAK)

    monkeypatch.setattr(fidelity, "OUTCLASSED_COST", 0.0)  # the share admits networks as costly as the leader
    done, trials = _run_timed_search(app_service, app_client, dataset["id"])
    _assert_went_on(done, trials, OUTCLASSED_STOP, more_than=1 + fidelity.OUTCLASSED_STREAK)


def test_a_timed_search_that_has_settled_ends_and_leaves_its_time_to_the_final_model(app_service, app_client,
                                                                                      monkeypatch):
    """Once half the minutes are spent and the last trials have all finished within the noise of the leader or below
    it, the search ends with trials and minutes left, and the final model gets the minutes. Here every score lies
    within the noise and half the time counts as spent from the start, so the search ends as soon as four trials
    have finished after the first, unless the budget turns the rule off."""
    from api.services.models.requests import SETTLED_STOP
    from nas_core import fidelity, ranking

    monkeypatch.setattr(fidelity, "LEARNED_PROGRESS", 0.0)  # every leader has learned: no trial is lengthened
    monkeypatch.setattr(ranking, "noise_floor", lambda best, *, val_images: 0.0)  # every score within the noise
    monkeypatch.setattr(fidelity, "SETTLED_AFTER", 0.0)
    dataset = ready_dataset(app_client, drain=app_service.drain)
    done, trials = _run_timed_search(app_service, app_client, dataset["id"])
    _assert_ended_early(app_service, done, trials, SETTLED_STOP, trials_run=1 + fidelity.SETTLED_STREAK)

    done, trials = _run_timed_search(app_service, app_client, dataset["id"], stop_when_settled=False)
    _assert_went_on(done, trials, SETTLED_STOP, more_than=1 + fidelity.SETTLED_STREAK)  # the user turned it off

    monkeypatch.setattr(fidelity, "SETTLED_AFTER", 0.5)  # a few seconds of 30 minutes: far from half
    done, trials = _run_timed_search(app_service, app_client, dataset["id"])
    _assert_went_on(done, trials, SETTLED_STOP, more_than=1 + fidelity.SETTLED_STREAK)


def _assert_ended_early(app_service, done: dict, trials: list[dict], stop: str, *, trials_run: int) -> None:
    """The search ended succeeded with ``stop`` after ``trials_run`` trials and left nearly all its 30 minutes to its
    final model."""
    from api.services.models.requests import unspent_minutes

    assert done["status"] == "succeeded" and done["detail"] == f"search ended: {stop}", done["detail"]
    assert len(trials) == trials_run
    with app_service.runtime.unit_of_work() as session:
        assert 29 < unspent_minutes(session.get(Experiment, done["id"])) < 30


def _assert_went_on(done: dict, trials: list[dict], stop: str, *, more_than: int) -> None:
    """The search ended succeeded, not with ``stop``, after more than ``more_than`` trials."""
    assert done["status"] == "succeeded" and done["detail"] != f"search ended: {stop}", done["detail"]
    assert len(trials) > more_than


def _run_timed_search(app_service, app_client, dataset_id: str, **budget) -> tuple[dict, list[dict]]:
    """A random search of at most 10 one-epoch trials with 30 minutes (``budget``: more budget fields), run to its
    end: the experiment as it ended and its trials by number."""
    body = experiment_body(dataset_id, strategy="random", pruner={"kind": "none"}, concurrency=1,
                           budget={"max_trials": 10, "epochs_per_trial": 1, "max_minutes": 30, **budget})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain()
    done = wait_for_status(app_client, experiment["id"], TERMINAL)
    return done, sorted(all_trials(app_client, experiment["id"]), key=lambda t: t["number"])


def test_trial_lengths_wait_for_a_reference_design_before_they_double_or_stop_a_search(tmp_path):
    """Near-chance trials of small proposals, run while the references were too slow for the time share, say nothing
    of the data: the length stays and the search goes on. Once a reference has finished near chance, the length
    doubles while two longer trials fit the time left, and the search stops when they do not."""
    from api.orm import Trial
    from api.settings import Settings
    from nas_core.screening import DataShape

    settings = Settings(data_dir=str(tmp_path), trial_time_limit_s=1000)
    shape = DataShape(channels=1, side=28, num_classes=10, train_images=2800, val_images=600)

    def search(elapsed_s: float) -> Experiment:
        return Experiment(budget={"max_minutes": 3, "epochs_per_trial": 12, "max_trials": 100}, elapsed_s=elapsed_s,
                          running_since=None, concurrency=1)

    def trials(*, reference: bool) -> list[Trial]:
        return [Trial(status="succeeded", planned_epochs=12, val_balanced_accuracy=0.2, measured_epoch_s=2.0,
                      reference_design=reference and number == 0) for number in range(3)]

    assert scheduler.trial_epochs(search(60.0), settings, trials(reference=False), shape) == (12, False)
    assert scheduler.trial_epochs(search(60.0), settings, trials(reference=True), shape) == (24, False)
    assert scheduler.trial_epochs(search(150.0), settings, trials(reference=True), shape) == (12, True)
    # a space without reference designs (narrowed by the user) has only its proposals to judge by
    assert scheduler.trial_epochs(search(150.0), settings, trials(reference=False), shape,
                                  has_references=False) == (12, True)


def test_promoted_trials_may_take_the_share_of_the_time_left_their_lengthening_counted_on(tmp_path):
    """The search lengthens its trials only when two of the new length fit the time left; the promoted ones are
    screened against that share (half the time left, all of it for the second), not a newcomer's fair share."""
    from api.settings import Settings
    from nas_core.screening import Limits

    settings = Settings(data_dir=str(tmp_path), trial_time_limit_s=1000)
    experiment = Experiment(budget={"max_minutes": 3}, elapsed_s=60.0, running_since=None, concurrency=1)
    fair = Limits(max_trial_seconds=10.0)
    assert scheduler._reference_limits(fair, experiment, settings).max_trial_seconds == pytest.approx(36.0)
    assert scheduler._promotion_limits(fair, experiment, settings, at_length=0).max_trial_seconds == 60.0
    assert scheduler._promotion_limits(fair, experiment, settings, at_length=1).max_trial_seconds == 120.0
    assert scheduler._promotion_limits(fair, experiment, settings.model_copy(update={"trial_time_limit_s": 50}),
                                       at_length=1).max_trial_seconds == 50.0  # never past the trial time limit
    generous = Limits(max_trial_seconds=90.0)  # a fair share above it stays
    assert scheduler._promotion_limits(generous, experiment, settings, at_length=0).max_trial_seconds == 90.0


def test_a_time_bound_pass_screens_for_a_share_of_the_time_left():
    """Near the deadline, screening must not hold the worker for longer than the trials it could still add: a pass
    screens for a twentieth of the search's time left, at most SCREEN_MAX_SECONDS; one without ``max_minutes`` for
    SCREEN_MAX_SECONDS."""
    def search(elapsed_s: float, max_minutes: float | None = 3) -> Experiment:
        return Experiment(budget={"max_minutes": max_minutes}, elapsed_s=elapsed_s, running_since=None, concurrency=1)

    assert scheduler._screening_seconds(search(0.0, max_minutes=60)) == scheduler.SCREEN_MAX_SECONDS
    assert scheduler._screening_seconds(search(0.0)) == pytest.approx(180 * scheduler.SCREEN_TIME_SHARE)
    assert scheduler._screening_seconds(search(170.0)) == pytest.approx(10 * scheduler.SCREEN_TIME_SHARE)
    assert scheduler._screening_seconds(search(400.0)) == 0.0
    assert scheduler._screening_seconds(search(170.0, max_minutes=None)) == scheduler.SCREEN_MAX_SECONDS


@pytest.mark.stack
def test_the_deadline_stops_a_running_trial_at_its_epoch_boundary(stack, client):
    """Ten minutes pass while the first trial runs: it stops after its epoch, and nothing starts after it."""
    from api.orm import Experiment

    dataset = ready_dataset(client)
    body = experiment_body(dataset["id"], strategy="random", pruner={"kind": "none"},
                           budget={"max_trials": 3, "epochs_per_trial": 400, "max_minutes": 10})
    experiment = client.post("/v1/experiments", json=body).json()
    wait_for_a_trained_epoch(client, experiment["id"])
    with stack.runtime.unit_of_work() as session:  # ten minutes of search time pass at once
        session.get(Experiment, experiment["id"]).elapsed_s = 600.0
    done = wait_for_status(client, experiment["id"], TERMINAL, timeout_s=60)
    trials = all_trials(client, experiment["id"])
    assert len(trials) == 1, "no trial starts after the deadline"
    [trial] = trials
    # stopped at an epoch boundary with its curve; as no trial finished in time, it is the search's answer
    assert trial["status"] == "succeeded" and trial["error"].startswith("time budget spent: stopped after epoch")
    stopped_after = int(trial["error"].split("epoch ", 1)[1].split(" ", 1)[0])
    assert [e["epoch"] for e in trial["epochs"]] == list(range(1, stopped_after + 1)) and stopped_after < 400
    assert done["status"] == "succeeded" and done["detail"] == "time budget spent" and done["elapsed_s"] >= 600
    assert done["best"]["trial_id"] == trial["id"]


def test_a_search_that_exhausts_its_space_ends_succeeded(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    fixed = {"num_stages": 1, "depth": 1, "op": "conv", "width": 16, "stem_width": 16, "kernel": 3, "se": False,
             "expansion": 1, "activation": "relu", "downsample": "max", "input_scale": 1.0, "head_dropout": 0.0,
             "train/lr": 0.003, "train/weight_decay": 0.0005, "train/label_smoothing": 0.0, "train/augment": 0.0,
             "train/vflip": False,
             "train/policy": "none", "train/mix": "none", "train/schedule": "cosine", "train/batch_size": 16,
             "train/hflip": [False, True]}  # two points in all
    body = experiment_body(dataset["id"], strategy="evolution", search_space=fixed,
                           budget={"max_trials": 3, "epochs_per_trial": 1})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain()
    done = wait_for_status(app_client, experiment["id"], TERMINAL, timeout_s=60)
    assert done["status"] == "succeeded" and "exhausted" in (done["detail"] or ""), (done["detail"], done["progress"])
    assert done["progress"]["succeeded"] == 2 and done["progress"]["running"] == done["progress"]["pending"] == 0


@pytest.mark.stack
def test_cancel_while_running_then_resume_to_completion(stack, client):
    dataset = ready_dataset(client)
    # No pruning: resumed trials must still be running when the test cancels them again.
    body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 3, "epochs_per_trial": 400},
                           pruner={"kind": "none"})
    experiment = client.post("/v1/experiments", json=body).json()
    wait_for_a_trained_epoch(client, experiment["id"])
    first = client.post(f"/v1/experiments/{experiment['id']}/cancel")
    assert first.status_code == 202 and first.json()["status"] in ("canceling", "canceled")
    second = client.post(f"/v1/experiments/{experiment['id']}/cancel")
    assert second.status_code == 202 and second.json()["status"] in ("canceling", "canceled")
    canceled = wait_for_status(client, experiment["id"], {"canceled"}, timeout_s=60)
    assert canceled["progress"]["running"] == 0
    stopped = all_trials(client, experiment["id"])
    assert [t["status"] for t in stopped] == ["canceled"] and len(stopped[0]["epochs"]) < 400

    # Resume with a smaller epoch budget is not possible, but a resumed search goes on where it stopped.
    resumed = client.post(f"/v1/experiments/{experiment['id']}/resume", json={"max_trials": 2})
    assert resumed.status_code == 202 and resumed.json()["status"] == "running"
    # The canceled trial does not count; cancel again quickly so the test stays short, then check numbering.
    wait_until_trials(client, experiment["id"], count=2)
    client.post(f"/v1/experiments/{experiment['id']}/cancel")
    wait_for_status(client, experiment["id"], {"canceled"}, timeout_s=60)
    numbers = sorted(t["number"] for t in all_trials(client, experiment["id"]))
    assert numbers[:2] == [1, 2] and len(set(numbers)) == len(numbers)


@pytest.mark.slow
def test_resume_after_cancel_finishes_the_budget(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="tpe", budget={"max_trials": 3, "epochs_per_trial": 1})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_client.post(f"/v1/experiments/{experiment['id']}/cancel")
    app_service.drain()  # the scheduler's message, delivered after the cancel
    canceled = wait_for_status(app_client, experiment["id"], {"canceled"})
    assert canceled["progress"]["completed"] < 3
    resumed = app_client.post(f"/v1/experiments/{experiment['id']}/resume")
    assert resumed.status_code == 202, resumed.text
    app_service.drain()
    done = wait_for_status(app_client, experiment["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded" and done["progress"]["completed"] == 3
    numbers = [t["number"] for t in all_trials(app_client, experiment["id"])]
    assert len(numbers) == len(set(numbers))


def test_cancel_and_resume_of_finished_experiments_conflict(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 1, "epochs_per_trial": 1})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain()
    wait_for_status(app_client, experiment["id"], {"succeeded"})
    conflict = app_client.post(f"/v1/experiments/{experiment['id']}/cancel")
    assert conflict.status_code == 409 and conflict.json()["type"] == "/problems/experiment-finished"
    assert app_client.post(f"/v1/experiments/{experiment['id']}/resume").status_code == 409
    # The dataset is free again once nothing runs on it.
    assert app_client.delete(f"/v1/datasets/{dataset['id']}").status_code == 204


def test_dataset_in_use_cannot_be_deleted(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 1, "epochs_per_trial": 300})
    experiment = app_client.post("/v1/experiments", json=body).json()
    response = app_client.delete(f"/v1/datasets/{dataset['id']}")
    assert response.status_code == 409 and response.json()["type"] == "/problems/dataset-in-use"
    app_client.post(f"/v1/experiments/{experiment['id']}/cancel")
    wait_for_status(app_client, experiment["id"], {"canceled"}, timeout_s=60)


def test_another_projects_experiment_is_404_on_every_route(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 1, "epochs_per_trial": 1})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_service.drain()
    wait_for_status(app_client, experiment["id"], TERMINAL)
    trial_id = all_trials(app_client, experiment["id"])[0]["id"]
    with app_service.client(app_service.new_key().key) as other:
        base = f"/v1/experiments/{experiment['id']}"
        for method, path in [("GET", base), ("GET", base + "/trials"), ("GET", f"{base}/trials/{trial_id}"),
                             ("GET", base + "/leaderboard"), ("POST", base + "/cancel"), ("POST", base + "/resume")]:
            response = other.request(method, path)
            assert response.status_code == 404, (method, path, response.text)
        assert other.get("/v1/experiments").json() == {"data": [], "total": 0}
        # Nor can another project start a search on this project's dataset.
        assert other.post("/v1/experiments", json=experiment_body(dataset["id"])).status_code == 404


def test_search_space_is_served(app_service, app_client):
    space = app_client.get("/v1/search-space")
    assert space.status_code == 200
    body = space.json()
    assert "stage2/kernel" in str(body) and "train/lr" in str(body)
    assert app_service.client().get("/v1/search-space").status_code == 401


@pytest.mark.parametrize("budget, planned", [({"max_trials": 9, "epochs_per_trial": 1}, 9),
                                             ({"max_trials": 90, "epochs_per_trial": 1, "max_minutes": 60}, 20)])
def test_the_scheduler_gives_the_strategy_the_experiments_trial_budget(app_service, app_client, app_key, monkeypatch,
                                                                      budget, planned):
    """Strategies place their phases (evolution's start-up, TPE's refinement) within ``budget.max_trials``, or
    within the trials a time budget is shared for when that is fewer."""
    dataset = ready_dataset(app_client, drain=app_service.drain)
    asked: list[int | None] = []
    strategy_for = scheduler.strategy_for

    class Recording:
        def __init__(self, strategy):
            self.strategy = strategy

        def ask(self, *args, budget=None, **kwargs):
            asked.append(budget)
            return self.strategy.ask(*args, budget=budget, **kwargs)

    monkeypatch.setattr(scheduler, "strategy_for", lambda experiment: Recording(strategy_for(experiment)))
    session = app_service.runtime.sessionmaker()
    try:  # never committed, so nothing is enqueued and no worker runs it
        data = ExperimentCreate(**experiment_body(dataset["id"], budget=budget, concurrency=2))
        experiment = experiments_service.create_experiment(session=session, settings=app_service.settings,
                                                           project=session.get(Project, app_key.project_id),
                                                           data=data)
        session.flush()
        assert len(scheduler.schedule(session=session, settings=app_service.settings, experiment_id=experiment.id)) == 2
        assert asked and set(asked) == {planned}
        settings = experiment.reproducibility["strategy"]["settings"]
        assert (settings["startup"], settings["startup_fraction"]) == ("tpe", 0.5)
    finally:
        session.rollback()
        session.close()


def _assert_invalid(response: httpx.Response, field: str) -> list[dict]:
    """The one 422 shape: validation-error, errors naming the field by where it was sent (``body.…``)."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/validation-error" and body["detail"] == "the request is not valid", body
    assert [error["field"] for error in body["errors"]] == [field], body
    return body["errors"]


def test_every_budget_passes_one_validator_on_create_and_resume(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    body = experiment_body(dataset["id"], strategy="random", budget={"max_trials": 2, "epochs_per_trial": 400},
                           pruner={"kind": "none"})
    experiment = app_client.post("/v1/experiments", json=body).json()
    app_client.post(f"/v1/experiments/{experiment['id']}/cancel")
    wait_for_status(app_client, experiment["id"], {"canceled"}, timeout_s=60)
    most = app_service.settings.max_trials

    def budget(**fields) -> dict:
        return experiment_body(dataset["id"], budget={"max_trials": 2, "epochs_per_trial": 1, **fields})

    resume = f"/v1/experiments/{experiment['id']}/resume"
    for path, payload, field in [("/v1/experiments", budget(max_trials=most + 1), "body.budget.max_trials"),
                                 ("/v1/experiments", budget(max_trials=10**30), "body.budget.max_trials"),
                                 ("/v1/experiments", budget(max_minutes=10**9), "body.budget.max_minutes"),
                                 ("/v1/experiments", budget(epochs_per_trial=10**30), "body.budget.epochs_per_trial"),
                                 (resume, {"max_trials": most + 1}, "body.max_trials"),
                                 (resume, {"max_trials": 10**30}, "body.max_trials"),
                                 (resume, {"max_minutes": 10**9}, "body.max_minutes")]:
        _assert_invalid(app_client.post(path, json=payload), field)
    # Nothing of it was stored: the experiment still renders on every route.
    got = app_client.get(f"/v1/experiments/{experiment['id']}")
    assert got.status_code == 200 and got.json()["budget"]["max_trials"] == 2 and got.json()["status"] == "canceled"
    assert app_client.get("/v1/experiments").json()["total"] == 1
    assert app_client.post(f"/v1/experiments/{experiment['id']}/cancel").status_code == 202


def test_request_bodies_are_strict_bounded_and_their_settings_checked(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    few = {"max_trials": 1, "epochs_per_trial": 1}
    for body, field, mention in [
            (experiment_body(dataset["id"], budget={**few, "max_trials": True}), "body.budget.max_trials", ""),
            (experiment_body(dataset["id"], budget={**few, "max_trials": "2"}), "body.budget.max_trials", ""),
            (experiment_body(dataset["id"], seed=1.0), "body.seed", ""),
            (experiment_body(dataset["id"], auto_model="yes"), "body.auto_model", ""),
            (experiment_body(dataset["id"], concurrency=10**30), "body.concurrency", ""),
            (experiment_body(dataset["id"], objective={"constraints": {"max_params": 10**30}}),
             "body.objective.constraints.max_params", ""),
            (experiment_body(dataset["id"], pruner={"kind": "none", "no_such_setting": 1}), "body.pruner",
             "no_such_setting"),
            (experiment_body(dataset["id"], pruner={"kind": "asha", "min_early_stopping_rate": 10**9}),
             "body.pruner", "min_early_stopping_rate"),
            # A retry loop that runs under the experiment's lock: bounded, and the 422 names the setting.
            (experiment_body(dataset["id"], strategy_settings={"startup": "random", "startup_trials": 1,
                                                               "max_retries": 600_000}),
             "body.strategy_settings", "max_retries"),
            (experiment_body(dataset["id"], strategy="tpe", strategy_settings={"n_ei_candidates": 10**6}),
             "body.strategy_settings", "n_ei_candidates")]:
        errors = _assert_invalid(app_client.post("/v1/experiments", json=body), field)
        assert mention in errors[0]["error"], errors
    _assert_invalid(app_client.post("/v1/experiments/0123456789abcdef0123456789abcdef/models", json={"epochs": True}),
                    "body.epochs")
    # An error names what is wrong without echoing the input back.
    huge = app_client.post("/v1/experiments", json=experiment_body(dataset["id"], strategy_settings={
        "population_size": "p" * 700_000}))
    assert huge.status_code == 422 and len(huge.content) < 2000, len(huge.content)
    many = app_client.post("/v1/experiments", json={**experiment_body(dataset["id"]),
                                                **{f"unknown_{'x' * 300}_{i}": i for i in range(2000)}})
    assert many.status_code == 422 and len(many.content) < 20_000, len(many.content)
    assert len(many.json()["errors"]) == 51 and "1950 more" in many.json()["errors"][-1]["error"]
    assert app_client.get("/v1/experiments").json()["total"] == 0
    # JSON numbers for float fields may be integers.
    created = app_client.post("/v1/experiments", json=experiment_body(dataset["id"], budget={**few, "max_minutes": 60}))
    assert created.status_code == 201 and created.json()["budget"]["max_minutes"] == 60, created.text


@pytest.mark.parametrize("balanced, mirrored, upside_down, flips, turns", [
    (0.9, 0.88, 0.3, True, False), (0.9, 0.35, 0.3, False, False), (0.9, 0.88, 0.89, True, True),
    (0.61, 0.61, 0.61, False, False)])
def test_references_train_with_flips_once_a_trained_network_keeps_its_accuracy_in_the_mirror(
        app_service, app_client, app_key, balanced, mirrored, upside_down, flips, turns):
    """The first reference trains without flips; when it scores about as well on mirrored validation images (the
    data set is mirror-symmetric) the next reference flips, and when it does not (digits) the next one does not;
    the same upside down for vertical flips and quarter turns (orientation-free images). A network under a quarter
    of the way from chance to 1 (two classes) is too early to tell, however much it keeps: the next does not flip."""
    dataset = ready_dataset(app_client, drain=app_service.drain)
    session = app_service.runtime.sessionmaker()
    try:  # never committed, so nothing is enqueued and no worker runs it
        data = ExperimentCreate(**experiment_body(dataset["id"], search_space={}, concurrency=1,
                                                  budget={"max_trials": 10, "epochs_per_trial": 1}))
        experiment = experiments_service.create_experiment(session=session, settings=app_service.settings,
                                                           project=session.get(Project, app_key.project_id),
                                                           data=data)
        session.flush()
        assert len(scheduler.schedule(session=session, settings=app_service.settings, experiment_id=experiment.id)) == 1
        (first,) = experiments_repository.all_trials(session, experiment.id)
        assert first.arch["train"]["hflip"] is False and first.arch["train"]["vflip"] is False
        first.status = "running"  # a worker claims it, then it finishes
        first.status, first.val_balanced_accuracy = "succeeded", balanced
        first.val_mirrored_balanced_accuracy, first.val_upside_down_balanced_accuracy = mirrored, upside_down
        session.flush()
        assert len(scheduler.schedule(session=session, settings=app_service.settings, experiment_id=experiment.id)) == 1
        second = max(experiments_repository.all_trials(session, experiment.id), key=lambda trial: trial.number)
        assert second.number == 2
        assert (second.arch["train"]["hflip"], second.arch["train"]["vflip"]) == (flips, turns)
        assert first.reference_design is True and second.reference_design is True  # flipped or not
    finally:
        session.rollback()
        session.close()


def test_the_leaderboard_and_its_front_follow_the_metric_the_search_maximised(app_service, app_client, app_key):
    """An experiment that maximises balanced accuracy ranks by it (then accuracy), and its Pareto front is over it."""
    dataset = ready_dataset(app_client, drain=app_service.drain)
    experiment_id, (plain_best, balanced_best, dominated) = add_experiment(
        app_service, project_id=app_key.project_id, dataset_id=dataset["id"],
        trials=[{"status": "succeeded", "val_accuracy": 0.9, "val_balanced_accuracy": 0.55, "params": 10},
                {"status": "succeeded", "val_accuracy": 0.8, "val_balanced_accuracy": 0.75, "params": 10},
                {"status": "succeeded", "val_accuracy": 0.7, "val_balanced_accuracy": 0.5, "params": 20}])

    def board() -> tuple[list[str], set[str]]:
        body = app_client.get(f"/v1/experiments/{experiment_id}/leaderboard").json()
        return [row["id"] for row in body["data"]], set(body["pareto"])

    assert board() == ([plain_best, balanced_best, dominated], {plain_best})
    with app_service.runtime.unit_of_work() as session:
        experiment = session.get(Experiment, experiment_id)
        experiment.objective = {"metric": "balanced_accuracy"}  # a new revision: the cached pages go
    assert board() == ([balanced_best, plain_best, dominated], {balanced_best})
