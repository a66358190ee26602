"""A trial's latency: onnxruntime p50 and p90 on its exported network, and the device named on the experiment."""

from __future__ import annotations

import onnxruntime

from tests.service.helpers import TERMINAL, all_trials, experiment_body, ready_dataset, wait_for_status


def test_a_trial_records_p50_and_p90_and_the_experiment_names_the_device(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    created = app_client.post("/v1/experiments", json=experiment_body(
        dataset["id"], budget={"max_trials": 1, "epochs_per_trial": 1}))
    assert created.status_code == 201, created.text
    app_service.drain()
    done = wait_for_status(app_client, created.json()["id"], TERMINAL)
    [trial] = all_trials(app_client, done["id"])
    assert trial["status"] == "succeeded", trial
    assert 0 < trial["latency_ms"] <= trial["latency_p90_ms"]
    device = done["reproducibility"]["latency_device"]
    assert device["threads"] == 1 and device["onnxruntime"] == onnxruntime.__version__
    assert device["cpu_model"] and device["logical_cpus"] >= 1


def test_a_latency_batch_records_per_image_latency_at_that_batch(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    created = app_client.post("/v1/experiments", json=experiment_body(
        dataset["id"], budget={"max_trials": 1, "epochs_per_trial": 1}, objective={"latency_batch": 4}))
    assert created.status_code == 201, created.text
    assert created.json()["objective"]["latency_batch"] == 4
    app_service.drain()
    done = wait_for_status(app_client, created.json()["id"], TERMINAL)
    assert done["objective"]["latency_batch"] == 4
    [trial] = all_trials(app_client, done["id"])
    assert trial["status"] == "succeeded", trial
    assert trial["latency_batch_ms"] > 0 and 0 < trial["latency_ms"] <= trial["latency_p90_ms"]
    for batch in (0, 2000):
        refused = app_client.post("/v1/experiments", json=experiment_body(
            dataset["id"], budget={"max_trials": 1, "epochs_per_trial": 1}, objective={"latency_batch": batch}))
        assert refused.status_code == 422, refused.text
        assert [error["field"] for error in refused.json()["errors"]] == ["body.objective.latency_batch"], \
            refused.json()


def test_without_a_latency_batch_none_is_measured(app_service, app_client):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    created = app_client.post("/v1/experiments", json=experiment_body(
        dataset["id"], budget={"max_trials": 1, "epochs_per_trial": 1}))
    assert "latency_batch" not in created.json()["objective"]
    app_service.drain()
    done = wait_for_status(app_client, created.json()["id"], TERMINAL)
    [trial] = all_trials(app_client, done["id"])
    assert trial["latency_batch_ms"] is None
