"""A trial's latency: onnxruntime p50 and p90 on its exported network, and the device named on the experiment."""

from __future__ import annotations

import onnxruntime

from api.db import utcnow
from api.orm import Experiment
from api.schemas.experiments import MAX_OTHER_LATENCY_DEVICES
from api.services.search.trials import _record_latency_device
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
    assert done["latency_device"] == {**device, "mixed": False, "other_devices": []}


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


def test_a_trial_measured_on_another_device_marks_the_experiments_latencies_mixed(app_service, app_client, app_key):
    dataset = ready_dataset(app_client, drain=app_service.drain)
    first = {"cpu_model": "CPU A", "logical_cpus": 8, "threads": 1, "runtime": "onnxruntime CPUExecutionProvider",
             "onnxruntime": "1.20.0"}
    with app_service.runtime.unit_of_work() as session:
        experiment = Experiment(project_id=app_key.project_id, dataset_id=dataset["id"], name="latency",
                                status="running", strategy="random", budget={"max_trials": 1, "epochs_per_trial": 1},
                                seed=3, auto_model=False, reproducibility={"seed": 3}, finished_at=utcnow())
        session.add(experiment)
        session.flush()
        experiment_id = experiment.id

    def record(**changes) -> dict:
        with app_service.runtime.unit_of_work() as session:
            _record_latency_device(session, experiment_id, {**first, **changes})
        return app_client.get(f"/v1/experiments/{experiment_id}").json()

    assert app_client.get(f"/v1/experiments/{experiment_id}").json()["latency_device"] is None
    assert record()["latency_device"] == {**first, "mixed": False, "other_devices": []}
    # more logical CPUs on the same CPU model, threads and runtime: comparable
    assert record(logical_cpus=64)["latency_device"]["mixed"] is False
    other = {**first, "cpu_model": "CPU B"}
    read = record(cpu_model="CPU B")
    assert read["latency_device"] == {**first, "mixed": True, "other_devices": [other]}
    assert read["reproducibility"]["latency_device"] == first and read["reproducibility"]["seed"] == 3
    assert record(cpu_model="CPU B")["latency_device"]["other_devices"] == [other]  # named once
    assert record(threads=2)["latency_device"]["other_devices"] == [other, {**first, "threads": 2}]
    for version in range(2 * MAX_OTHER_LATENCY_DEVICES):
        read = record(onnxruntime=f"9.{version}")
    assert len(read["latency_device"]["other_devices"]) == MAX_OTHER_LATENCY_DEVICES
    assert read["latency_device"]["mixed"] is True
