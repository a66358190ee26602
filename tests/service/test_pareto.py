"""Pareto searches over HTTP (objective mode "pareto"): validation of the objective, the leaderboard by Pareto layer,
and the trial the final model is built from."""

from __future__ import annotations

import pytest

from api.orm import Experiment, Model
from api.services.search import scheduler
from tests.service.helpers import TERMINAL, add_experiment, all_trials, experiment_body, ready_dataset, wait_for_status

PARETO = {"mode": "pareto", "minimize": ["latency_ms"]}


def test_the_objective_mode_is_validated_and_echoed(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)

    def create(objective):
        return app_client.post("/v1/experiments", json=experiment_body(dataset["id"], objective=objective))

    plain = create({"constraints": {"max_params": 100000}})
    assert plain.status_code == 201, plain.text
    assert plain.json()["objective"] == {"metric": "accuracy", "constraints": {"max_params": 100000},
                                         "mode": "accuracy"}
    pareto = create({"mode": "pareto", "metric": "balanced_accuracy"})
    assert pareto.status_code == 201, pareto.text
    assert pareto.json()["objective"] == {"metric": "balanced_accuracy", "constraints": {}, "mode": "pareto",
                                          "minimize": ["latency_ms"]}
    both = create({"mode": "pareto", "minimize": ["params", "latency_ms"]}).json()
    assert both["objective"]["minimize"] == ["params", "latency_ms"]
    assert app_client.get(f"/v1/experiments/{both['id']}").json()["objective"] == both["objective"]

    for objective, field in [({"mode": "pareto", "minimize": ["latency_ms", "flops"]}, "body.objective.minimize.1"),
                             ({"mode": "pareto", "minimize": []}, "body.objective.minimize"),
                             ({"mode": "pareto", "minimize": ["params", "params"]}, "body.objective.minimize"),
                             ({"minimize": ["latency_ms"]}, "body.objective.minimize"),
                             ({"mode": "fastest"}, "body.objective.mode")]:
        refused = create(objective)
        assert refused.status_code == 422, (objective, refused.text)
        problem = refused.json()
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert problem["type"].endswith("validation-error") and problem["status"] == 422
        assert [error["field"] for error in problem["errors"]] == [field], problem


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["tpe", "evolution"])
def test_a_pareto_search_end_to_end(app_service, app_client, strategy):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    created = app_client.post("/v1/experiments", json=experiment_body(
        dataset["id"], strategy=strategy, concurrency=2, objective={"mode": "pareto", "minimize": ["latency_ms",
                                                                                                   "params"]}))
    assert created.status_code == 201, created.text
    app_service.drain()
    done = wait_for_status(app_client, created.json()["id"], TERMINAL)
    assert done["status"] == "succeeded", done
    trials = all_trials(app_client, done["id"])
    assert len(trials) == 4 and all(t["latency_ms"] > 0 and t["params"] > 0 for t in trials)
    board = app_client.get(f"/v1/experiments/{done['id']}/leaderboard").json()
    layers = [row["pareto_layer"] for row in board["data"]]
    assert layers == sorted(layers) and layers[0] == 1
    assert board["data"][0]["id"] == done["best"]["trial_id"]


def _pareto_experiment(app_service, app_key, dataset_id, trials, objective=PARETO):
    experiment_id, ids = add_experiment(app_service, project_id=app_key.project_id, dataset_id=dataset_id,
                                        trials=trials)
    with app_service.runtime.unit_of_work() as session:
        session.get(Experiment, experiment_id).objective = dict(objective)
    return experiment_id, ids


def test_the_leaderboard_of_a_pareto_search_is_ordered_by_layer_then_metric(app_service, app_client, app_key):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    trials = [{"status": "succeeded", "val_accuracy": 0.90, "params": 900, "latency_ms": 9.0},   # layer 1
              {"status": "succeeded", "val_accuracy": 0.80, "params": 100, "latency_ms": 10.0},  # layer 2
              {"status": "succeeded", "val_accuracy": 0.70, "params": 100, "latency_ms": 1.0},   # layer 1
              {"status": "succeeded", "val_accuracy": 0.85, "params": 500, "latency_ms": 5.0},   # layer 1
              {"status": "succeeded", "val_accuracy": 0.60, "params": 50, "latency_ms": 11.0},   # layer 3
              {"status": "pruned", "val_accuracy": 0.99, "params": 10, "latency_ms": 0.1},       # not ranked
              {"status": "succeeded", "val_accuracy": 0.99, "params": 10, "latency_ms": 0.1, "feasible": False}]
    experiment_id, ids = _pareto_experiment(app_service, app_key, dataset["id"], trials)

    body = app_client.get(f"/v1/experiments/{experiment_id}/leaderboard").json()
    assert [row["id"] for row in body["data"]] == [ids[0], ids[3], ids[2], ids[1], ids[4]]
    assert [row["pareto_layer"] for row in body["data"]] == [1, 1, 1, 2, 3]
    assert [row["rank"] for row in body["data"]] == [1, 2, 3, 4, 5] and body["total"] == 5
    # ``pareto`` stays the front over (metric, params, latency), as in accuracy mode: the fewest params count there
    assert set(body["pareto"]) == set(ids[:5])
    page = app_client.get(f"/v1/experiments/{experiment_id}/leaderboard", params={"offset": 2, "limit": 2}).json()
    assert [(row["id"], row["rank"], row["pareto_layer"]) for row in page["data"]] == [(ids[2], 3, 1),
                                                                                       (ids[1], 4, 2)]
    # with params minimised too, the two smallest trials join the front
    with app_service.runtime.unit_of_work() as session:
        session.get(Experiment, experiment_id).objective = {"mode": "pareto", "minimize": ["latency_ms", "params"]}
    rows = app_client.get(f"/v1/experiments/{experiment_id}/leaderboard").json()["data"]
    assert [(row["id"], row["pareto_layer"]) for row in rows] == [(ids[0], 1), (ids[3], 1), (ids[1], 1),
                                                                   (ids[2], 1), (ids[4], 1)]
    # accuracy mode: the metric alone, and no layer
    with app_service.runtime.unit_of_work() as session:
        session.get(Experiment, experiment_id).objective = {"metric": "accuracy"}
    rows = app_client.get(f"/v1/experiments/{experiment_id}/leaderboard").json()["data"]
    assert [row["id"] for row in rows] == [ids[0], ids[3], ids[1], ids[2], ids[4]]
    assert [row["pareto_layer"] for row in rows] == [None] * 5


def test_the_final_model_of_a_pareto_search_is_the_best_metric_of_the_first_layer(app_service, app_client, app_key):
    """Of two trials with the best accuracy, accuracy mode prefers the smaller one (its tie-break), a Pareto search
    over latency the faster one: the smaller one is dominated there. Any trial can still be asked for."""
    dataset = ready_dataset(app_client, drain=app_service.drain)
    trials = [{"status": "succeeded", "val_accuracy": 0.9, "params": 100, "latency_ms": 4.0, "measured_epoch_s": 0.1},
              {"status": "succeeded", "val_accuracy": 0.9, "params": 800, "latency_ms": 2.0, "measured_epoch_s": 0.1},
              {"status": "succeeded", "val_accuracy": 0.5, "params": 900, "latency_ms": 9.0, "measured_epoch_s": 0.1}]
    plain_id, (small, fast, worst) = add_experiment(app_service, project_id=app_key.project_id,
                                                    dataset_id=dataset["id"], trials=trials)
    assert app_client.get(f"/v1/experiments/{plain_id}").json()["best"]["trial_id"] == small

    experiment_id, (small, fast, worst) = _pareto_experiment(app_service, app_key, dataset["id"], trials)
    assert app_client.get(f"/v1/experiments/{experiment_id}").json()["best"]["trial_id"] == fast
    board = app_client.get(f"/v1/experiments/{experiment_id}/leaderboard").json()["data"]
    assert [(row["id"], row["pareto_layer"]) for row in board] == [(fast, 1), (small, 2), (worst, 3)]
    created = app_client.post(f"/v1/experiments/{experiment_id}/models", json={"epochs": 1})
    assert created.status_code == 202, created.text
    assert created.json()["trial_id"] == fast
    chosen = app_client.post(f"/v1/experiments/{experiment_id}/models", json={"trial_id": worst, "epochs": 1})
    assert chosen.status_code == 202 and chosen.json()["trial_id"] == worst

    # the automatic final model, when the scheduler ends the search
    auto_id, (small, fast, worst) = _pareto_experiment(app_service, app_key, dataset["id"], trials)
    settings = app_service.settings.model_copy(update={"auto_model": True})
    with app_service.runtime.unit_of_work() as session:
        experiment = session.get(Experiment, auto_id)
        experiment.status, experiment.auto_model = "running", True
        session.flush()
        scheduler.schedule(session=session, settings=settings, experiment_id=auto_id)
        assert experiment.status == "succeeded"
        models = session.query(Model).filter(Model.experiment_id == auto_id).all()
        assert [model.trial_id for model in models] == [fast]


def test_the_cli_sends_the_objective_from_json_or_a_file(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from typer.testing import CliRunner

    from cli.commands import experiments as commands

    sent = []

    def fake_call(operation, *, client, body):
        sent.append(body.to_dict())
        return SimpleNamespace(id="e" * 32, strategy="evolution", budget={"max_trials": 2, "epochs_per_trial": 1})

    monkeypatch.setattr(commands, "call", fake_call)
    monkeypatch.setattr(commands, "connect", lambda url, key: None)
    runner = CliRunner()
    inline = runner.invoke(commands.app, ["create", "--dataset", "d" * 32, "--max-params", "5000", "--objective",
                                          '{"mode": "pareto", "minimize": ["latency_ms", "params"]}'])
    assert inline.exit_code == 0, inline.output
    path = tmp_path / "objective.json"
    path.write_text('{"mode": "pareto", "constraints": {"max_latency_ms": 3}}')
    from_file = runner.invoke(commands.app, ["create", "--dataset", "d" * 32, "--metric", "balanced_accuracy",
                                             "--objective", f"@{path}"])
    assert from_file.exit_code == 0, from_file.output
    assert [body["objective"] for body in sent] == [
        {"mode": "pareto", "minimize": ["latency_ms", "params"], "constraints": {"max_params": 5000}},
        {"mode": "pareto", "constraints": {"max_latency_ms": 3}, "metric": "balanced_accuracy"}]
    refused = runner.invoke(commands.app, ["create", "--dataset", "d" * 32, "--objective", "[1]"])
    assert refused.exit_code == 1 and "--objective: expected a JSON object" in refused.output


def test_the_cli_leaderboard_shows_the_layer_of_a_pareto_search():
    from cli.commands.experiments import leaderboard_table

    row = {"rank": 1, "number": 3, "id": "t" * 32, "val_accuracy": 0.9, "params": 1000, "flops": 2e6,
           "latency_ms": 1.5}
    layered = leaderboard_table({"data": [{**row, "pareto_layer": 1}], "pareto": [row["id"]]})
    plain = leaderboard_table({"data": [{**row, "pareto_layer": None}], "pareto": []})
    assert [column.header for column in layered.columns][-1] == "layer"
    assert "layer" not in [column.header for column in plain.columns]
