"""Final models end to end: retrain, test on held-out data, verified ONNX/.pt2 downloads, scoping, crash recovery.

The experiment and its succeeded trial are written straight to the database (a tiny candidate), so these tests
exercise the model job alone. The client-side check uses only numpy + Pillow + onnxruntime on the raw zip members.
The verified downloads (streamed, or presigned on S3) and the killed job run on the stack; the rest in process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import json
import os
import secrets
import signal
import time
import zipfile

import numpy as np
import onnxruntime
import pytest
import torch
from celery import Celery
from PIL import Image

from api.db import utcnow
from api.orm import Experiment, Model, Trial
from api.queue import BUILD_MODEL, celery_config
from api.services.models import requests as service
from api.services.models.artifacts import ARTIFACT_FILES, _missing_formats
from api.services.models.build import run_model_job
from api.services.models.reaper import reap_stale_models
from tests.service.helpers import (TINY, TINY_CLASSES, add_experiment, held_out_images, settings_from_env, start_worker,
                                   tiny_dataset, wait_for_model)


# ------------------------------------------------------------------------------------------------ fixtures

@pytest.fixture
def dataset(stack, client) -> tuple[dict, bytes]:
    return tiny_dataset(client)


@pytest.fixture
def app_dataset(app_service, app_client) -> tuple[dict, bytes]:
    return tiny_dataset(app_client, drain=app_service.drain)


def preprocess(images: list[Image.Image], spec: dict) -> np.ndarray:
    """What a client does with preprocessing.json, with numpy and Pillow only."""
    geometry = spec["input"]
    assert spec["resize"] == "bilinear" and spec["layout"] == "NCHW"
    batch = []
    for image in images:
        resized = image.convert(spec["color_mode"]).resize((geometry["width"], geometry["height"]),
                                                           Image.Resampling.BILINEAR)
        array = np.asarray(resized, dtype=np.float32).reshape(geometry["height"], geometry["width"], -1)
        array = (array / spec["scale"] - np.array(spec["mean"], np.float32)) / np.array(spec["std"], np.float32)
        batch.append(array.transpose(2, 0, 1))
    return np.stack(batch).astype(np.float32)


# ------------------------------------------------------------------------------------------------ tests

@pytest.mark.stack
def test_model_becomes_ready_and_its_onnx_reproduces_the_test_accuracy(stack, client, api_key, dataset):
    dataset_row, zip_bytes = dataset
    experiment_id, (trial_id,) = add_experiment(stack, project_id=api_key.project_id, dataset_id=dataset_row["id"],
                                                trials=[{"status": "succeeded", "val_accuracy": 0.5,
                                                         "params": 500}])
    created = client.post(f"/v1/experiments/{experiment_id}/models", json={"epochs": 3})
    assert created.status_code == 202, created.text
    assert created.json()["status"] == "queued" and created.json()["trial_id"] == trial_id
    model = wait_for_model(client, created.json()["id"])
    assert model["status"] == "ready", model["detail"]
    assert model["epochs"] == 3 and model["attempts"] == 1 and model["params"] > 0 and model["flops"] > 0
    assert model["latency_ms"] > 0 and sorted(a["format"] for a in model["artifacts"]) == [
        "card", "card_md", "onnx", "onnx_int8", "preprocessing", "pt2"]  # NAS_TF_EXPORT is off in the suite
    assert model["tensorflow"] is None
    assert "object" not in model["artifacts"][0]  # storage keys stay server-side
    listed = client.get(f"/v1/experiments/{experiment_id}/models").json()
    assert listed["total"] == 1 and listed["data"][0]["id"] == model["id"]
    assert model["id"] in [m["id"] for m in client.get("/v1/models").json()["data"]]

    files = {}
    for artifact in model["artifacts"]:
        response = client.get(f"/v1/models/{model['id']}/artifacts/{artifact['format']}", follow_redirects=True)
        assert response.status_code == 200, response.text
        assert len(response.content) == artifact["size"]
        assert hashlib.sha256(response.content).hexdigest() == artifact["sha256"]
        files[artifact["format"]] = response.content
    if stack.kind == "sqlite":  # streamed by the API itself
        response = client.get(f"/v1/models/{model['id']}/artifacts/onnx")
        assert response.headers["content-disposition"] == 'attachment; filename="model.onnx"'
    else:  # a short-lived presigned URL
        response = client.get(f"/v1/models/{model['id']}/artifacts/onnx")
        assert response.status_code == 307 and "X-Amz-Expires=" in response.headers["location"]

    spec = json.loads(files["preprocessing"])
    images, names = held_out_images(stack, dataset_row, zip_bytes)
    inputs = preprocess(images, spec)
    labels = np.array([spec["classes"].index(name) for name in names])
    session = onnxruntime.InferenceSession(files["onnx"], providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": inputs})[0]
    predicted = logits.argmax(1)
    assert len(labels) == model["test_images"] == dataset_row["splits"]["test"]
    assert float((predicted == labels).mean()) == model["test_accuracy"]
    matrix = np.zeros((len(TINY_CLASSES), len(TINY_CLASSES)), int)
    np.add.at(matrix, (labels, predicted), 1)
    assert matrix.tolist() == model["confusion_matrix"]
    assert [c["support"] for c in model["per_class"]] == matrix.sum(1).tolist()

    program_path = stack.settings.data_dir / f"{model['id']}.pt2"
    program_path.write_bytes(files["pt2"])
    with torch.no_grad():
        pt2_logits = torch.export.load(str(program_path)).module()(torch.from_numpy(inputs)).numpy()
    assert np.abs(pt2_logits - logits).max() <= 1e-4 and (pt2_logits.argmax(1) == predicted).all()

    card = json.loads(files["card"])
    assert card["dataset"]["sha256"] == dataset_row["sha256"] and card["seed"] == 1000
    assert card["architecture"] == TINY.arch.to_dict() and card["metrics"]["test_accuracy"] == model["test_accuracy"]
    assert card["confusion_matrix"] == model["confusion_matrix"] and card["packages"]["onnxruntime"]


@pytest.mark.slow
def test_a_model_announces_its_time_and_starts_from_the_leaders_kept_weights(app_service, app_client, app_key,
                                                                            app_dataset, monkeypatch):
    from api.services.object_keys import trial_weights_key
    from nas_core.builder import build_model

    dataset_row, _ = app_dataset
    experiment_id, (leader, other) = add_experiment(
        app_service, project_id=app_key.project_id, dataset_id=dataset_row["id"],
        trials=[{"status": "succeeded", "val_accuracy": 0.9, "params": 500, "measured_epoch_s": 0.5},
                {"status": "succeeded", "val_accuracy": 0.4, "params": 500, "measured_epoch_s": 0.5}])
    network = build_model(TINY.arch, 3, len(TINY_CLASSES), input_size=(dataset_row["image"]["height"],) * 2)
    buffer = io.BytesIO()
    torch.save(network.state_dict(), buffer)
    app_service.runtime.store.put_bytes(trial_weights_key(app_key.project_id, experiment_id, leader), buffer.getvalue())
    splits = dataset_row["splits"]
    epoch_s = 0.5 * (splits["train"] + splits["val"]) / splits["train"]  # train+val, no validation pass

    created = app_client.post(f"/v1/experiments/{experiment_id}/models", json={"epochs": 4}).json()
    assert created["trial_id"] == leader
    assert created["estimated_seconds"] == pytest.approx(4 * epoch_s + service.MODEL_OVERHEAD_S)
    app_service.drain()
    model = wait_for_model(app_client, created["id"])
    assert model["status"] == "ready" and model["warm_started"] is True
    # the int8 ONNX file: its own artifact, downloadable, measured next to float32 on the test split
    artifacts = {artifact["format"]: artifact for artifact in model["artifacts"]}
    assert sorted(artifacts) == sorted(set(ARTIFACT_FILES) - {"savedmodel", "tflite", "tflite_int8"}), model["int8"]
    files = {}
    for format in ("onnx", "onnx_int8", "card"):
        response = app_client.get(f"/v1/models/{model['id']}/artifacts/{format}")
        assert response.status_code == 200 and len(response.content) == artifacts[format]["size"]
        assert hashlib.sha256(response.content).hexdigest() == artifacts[format]["sha256"]
        files[format] = response.content
    assert response.headers["content-disposition"] == 'attachment; filename="card.json"'
    int8 = model["int8"]
    assert int8["fp32"]["size_bytes"] == artifacts["onnx"]["size"] and int8["fp32"]["test_accuracy"] == \
        model["test_accuracy"]
    assert int8["int8"]["size_bytes"] == artifacts["onnx_int8"]["size"] and (int8["reason"] is None) != int8["flagged"]
    assert int8["accuracy_change"] == pytest.approx(int8["int8"]["test_accuracy"] - model["test_accuracy"])
    assert 0 <= int8["agreement"] <= 1 and int8["calibration_images"] == splits["train"]
    assert int8["int8"]["latency_ms_batch_1"] > 0 and int8["max_accuracy_drop"] == 0.01
    assert json.loads(files["card"])["metrics"]["int8"] == int8
    session = onnxruntime.InferenceSession(files["onnx_int8"], providers=["CPUExecutionProvider"])
    size = dataset_row["image"]["height"]
    assert session.run(["logits"], {"input": np.zeros((2, 3, size, size), np.float32)})[0].shape == (
        2, len(TINY_CLASSES))
    assert model["validation_held_out"] is False and model["kept_epoch"] is None  # the leader learned: train+val
    assert model["augmentation_added"] is None and json.loads(files["card"])["training"]["policy"] == "none"
    assert model["bf16"] in (True, False) and json.loads(files["card"])["metrics"]["bf16"] == model["bf16"]
    # no weights were kept for the other trial: it trains from scratch; a time budget that fits a long enough
    # schedule (here one epoch) adds TrivialAugment, which the model, its card and its recipe state
    monkeypatch.setattr("nas_core.final.STRONG_AUGMENT_EPOCHS", 1)
    with app_service.runtime.unit_of_work() as session:
        experiment = session.get(Experiment, experiment_id)
        budget = dict(experiment.budget)
        experiment.budget = {**budget, "model_minutes": 0.05}
    scratch = app_client.post(f"/v1/experiments/{experiment_id}/models", json={"trial_id": other}).json()
    assert scratch["epochs"] == 1  # 3 s, less the job's overhead: the fewest epochs
    app_service.drain()
    scratch = wait_for_model(app_client, scratch["id"])
    assert scratch["warm_started"] is False and scratch["augmentation_added"] == "trivial"
    card = app_client.get(f"/v1/models/{scratch['id']}/artifacts/card").json()
    assert card["training"]["policy"] == "trivial" and card["metrics"]["augmentation_added"] == "trivial"
    card_md = app_client.get(f"/v1/models/{scratch['id']}/artifacts/card_md").text
    assert "Augmentation policy added in retraining: trivial" in card_md
    assert ("Trained under bf16 autocast" in card_md) is scratch["bf16"] is card["metrics"]["bf16"]
    with app_service.runtime.unit_of_work() as session:
        session.get(Experiment, experiment_id).budget = budget
    # No trial has learned (3 classes: 0.38 and 0.37 are less than a tenth of the way from chance to 1): the final
    # model keeps the val split to choose its weights by, among its epochs and the leader's own.
    with app_service.runtime.unit_of_work() as session:
        session.get(Trial, leader).val_accuracy, session.get(Trial, other).val_accuracy = 0.38, 0.37
    held_out = app_client.post(f"/v1/experiments/{experiment_id}/models", json={"epochs": 2}).json()
    app_service.drain()
    held_out = wait_for_model(app_client, held_out["id"])
    assert held_out["status"] == "ready" and held_out["warm_started"] is True
    assert held_out["validation_held_out"] is True and held_out["kept_epoch"] in (0, 1, 2)
    assert held_out["augmentation_added"] is None  # asked-for epochs, nothing learned: the search's recipe stays
    card_md = app_client.get(f"/v1/models/{held_out['id']}/artifacts/card_md")
    assert card_md.status_code == 200 and "the val split was held out" in card_md.text
    assert app_client.get(f"/v1/models/{held_out['id']}/artifacts/card").json()["trained_on"] == ["train"]
    assert json.loads(files["card"])["trained_on"] == ["train", "val"]


@pytest.mark.slow  # converts with TensorFlow
def test_with_tf_export_on_a_model_has_verified_tensorflow_files_and_a_card_listing_every_artifact(
        app_service, app_client, app_key, app_dataset, monkeypatch):
    from worker import tasks

    if importlib.util.find_spec("onnx2tf") is None:  # not imported: it sets the recursion limit to C int max
        pytest.skip("the tf extra is not installed")
    from ai_edge_litert.interpreter import Interpreter

    runtime = dataclasses.replace(app_service.runtime,
                                  settings=app_service.settings.model_copy(update={"tf_export": True}))
    monkeypatch.setattr(tasks.models, "get_runtime", lambda: runtime)
    dataset_row, zip_bytes = app_dataset
    experiment_id, _ = add_experiment(app_service, project_id=app_key.project_id, dataset_id=dataset_row["id"],
                                      trials=[{"status": "succeeded", "val_accuracy": 0.5, "params": 500},
                                              {"status": "failed"}])  # a failed trial trained nothing
    created = app_client.post(f"/v1/experiments/{experiment_id}/models", json={"epochs": 1})
    assert created.status_code == 202, created.text
    app_service.drain()
    model = wait_for_model(app_client, created.json()["id"])
    assert model["status"] == "ready", model["detail"]
    artifacts = {artifact["format"]: artifact for artifact in model["artifacts"]}
    assert sorted(artifacts) == sorted(ARTIFACT_FILES), model["tensorflow"]
    files = {}
    for format, artifact in artifacts.items():
        response = app_client.get(f"/v1/models/{model['id']}/artifacts/{format}")
        assert response.status_code == 200 and hashlib.sha256(response.content).hexdigest() == artifact["sha256"]
        files[format] = response.content
        filename = ARTIFACT_FILES[format].filename
        assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'

    tensorflow = model["tensorflow"]
    for format in ("savedmodel", "tflite"):
        check = tensorflow[format]
        assert check["ok"] and check["layout"] == "NHWC" and check["argmax_agreement"] == 1.0, check
        assert check["max_abs_diff"] <= tensorflow["atol"] and check["images"] == model["test_images"]
    assert tensorflow["seconds"] > 0 and tensorflow["versions"]["onnx2tf"]
    # the int8 TFLite file: calibrated on the int8 ONNX file's images, measured on the whole test split
    tflite_int8 = tensorflow["tflite_int8"]
    assert tflite_int8["ok"] and tflite_int8["layout"] == "NHWC" and tflite_int8["images"] == model["test_images"]
    assert tflite_int8["calibration_images"] == model["int8"]["calibration_images"]
    assert tflite_int8["fp32_test_accuracy"] == model["test_accuracy"] and 0 <= tflite_int8["agreement"] <= 1
    assert tflite_int8["accuracy_change"] == pytest.approx(tflite_int8["test_accuracy"] - model["test_accuracy"])
    assert tflite_int8["size_bytes"] == artifacts["tflite_int8"]["size"]
    assert tflite_int8["latency_ms_batch_1"] > 0 and (tflite_int8["reason"] is None) != tflite_int8["flagged"]
    # the card lists every other artifact with the bytes the API serves; card.md is rendered from it
    card = json.loads(files["card"])
    listed = {entry["format"]: entry for entry in card["artifacts"]}
    assert sorted(listed) == sorted(set(artifacts) - {"card"}) and card["missing_formats"] == {}
    for format, entry in listed.items():
        assert (entry["sha256"], entry["size"]) == (artifacts[format]["sha256"], artifacts[format]["size"])
        assert entry["file"] == ARTIFACT_FILES[format].filename
    assert listed["tflite"]["layout"] == "NHWC" and listed["onnx"]["layout"] == "NCHW"
    assert listed["tflite"]["verification"]["runtime"] == "litert" and listed["preprocessing"]["verification"] is None
    assert card["metrics"]["tensorflow"] == tensorflow
    # each model file's test accuracy and batch-1 latency, as the job measured them (nothing is timed again)
    int8 = model["int8"]["int8"]
    measured = {format: (entry["test_accuracy"], entry["latency_ms_batch_1"]) for format, entry in listed.items()}
    assert measured == {"onnx": (model["test_accuracy"], model["latency_ms"]),
                        "onnx_int8": (int8["test_accuracy"], int8["latency_ms_batch_1"]),
                        "pt2": (model["test_accuracy"], None), "savedmodel": (model["test_accuracy"], None),
                        "tflite": (model["test_accuracy"], None), "preprocessing": (None, None),
                        "tflite_int8": (tflite_int8["test_accuracy"], tflite_int8["latency_ms_batch_1"]),
                        "card_md": (None, None)}
    assert card["search"] == {"experiment_id": experiment_id, "strategy": "random", "trials_trained": 1,
                              "budget": {"max_trials": 2, "epochs_per_trial": 1}}
    markdown = files["card_md"].decode()
    assert all(entry["sha256"] in markdown for format, entry in listed.items() if format != "card_md")
    assert f"random search (experiment `{experiment_id}`); trials trained: 1" in markdown
    assert f"| {model['test_accuracy']:.4f} | {model['latency_ms']:.3f} |" in markdown
    spec = json.loads(files["preprocessing"])
    assert spec["layout"] == "NCHW" and spec["layouts"]["savedmodel"] == spec["layouts"]["tflite"] == "NHWC"
    assert spec["layouts"]["tflite_int8"] == "NHWC" and listed["tflite_int8"]["verification"]["runtime"] == "litert"
    with zipfile.ZipFile(io.BytesIO(files["savedmodel"])) as bundle:
        assert "saved_model/saved_model.pb" in bundle.namelist()

    # a client runs the TFLite file on the test images laid out NHWC and gets the ONNX file's predictions
    images, _ = held_out_images(app_service, dataset_row, zip_bytes)
    inputs = preprocess(images, spec)
    onnx_logits = onnxruntime.InferenceSession(files["onnx"], providers=["CPUExecutionProvider"]).run(
        ["logits"], {"input": inputs})[0]
    interpreter = Interpreter(model_content=files["tflite"])
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, (len(inputs), *inputs.shape[2:], inputs.shape[1]))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, np.ascontiguousarray(inputs.transpose(0, 2, 3, 1)))
    interpreter.invoke()
    tflite_logits = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert np.abs(tflite_logits - onnx_logits).max() <= 1e-4
    assert (tflite_logits.argmax(1) == onnx_logits.argmax(1)).all()


def test_the_schema_the_cli_and_the_dashboard_know_every_artifact_format():
    import typing
    from pathlib import Path

    from api.schemas.models import ArtifactRead
    from cli.commands.models import FILE_NAMES, ArtifactFormat

    file_names = {format: file.filename for format, file in ARTIFACT_FILES.items()}
    assert set(typing.get_args(ArtifactRead.model_fields["format"].annotation)) == set(file_names)
    assert {format.value for format in ArtifactFormat} == set(file_names) and FILE_NAMES == file_names
    dashboard = (Path(service.__file__).parents[2] / "static" / "models.js").read_text()
    assert all(f'{format}: "{name}"' in dashboard for format, name in file_names.items())


def test_a_model_built_with_tf_export_off_says_so_in_its_card():
    metrics = {"int8": {"int8": None, "reason": "quantizer failed"}, "tensorflow": None}
    assert _missing_formats(metrics) == {"onnx_int8": "quantizer failed",
                                         "savedmodel": "not made: NAS_TF_EXPORT is off",
                                         "tflite": "not made: NAS_TF_EXPORT is off",
                                         "tflite_int8": "not made: NAS_TF_EXPORT is off"}


def test_the_announced_time_counts_the_tensorflow_conversion_when_it_is_on(app_service, app_key, app_dataset):
    dataset_row, _ = app_dataset
    experiment_id, _ = add_experiment(app_service, project_id=app_key.project_id, dataset_id=dataset_row["id"],
                                      trials=[{"status": "succeeded", "val_accuracy": 0.5, "params": 500,
                                               "measured_epoch_s": 0.5}])
    estimates = {}
    for tf_export in (False, True):
        settings = app_service.settings.model_copy(update={"tf_export": tf_export})
        with app_service.runtime.unit_of_work() as session:
            model = service.create_model(session=session, settings=settings, project_id=app_key.project_id,
                                         experiment=session.get(Experiment, experiment_id), epochs=2)
            session.info.pop("after_commit")
            estimates[tf_export] = model.estimated_seconds
    assert estimates[True] == pytest.approx(estimates[False] + service.TF_EXPORT_OVERHEAD_S)


def test_a_time_budget_sets_the_final_models_epochs():
    experiment = Experiment(budget={"max_trials": 4, "epochs_per_trial": 10, "model_minutes": 1.0})
    trial = Trial(measured_epoch_s=4.0)
    dataset_row = type("Row", (), {"splits": {"train": 80, "val": 20, "test": 20}})()
    settings = settings_from_env({})
    overhead = service.model_overhead_s(settings)  # export and checks, TensorFlow formats included (on by default)
    plan = service.plan_retraining(experiment=experiment, trial=trial, dataset=dataset_row, settings=settings,
                                   epochs=None)
    budget_s = 60 - overhead
    assert plan.epochs == int(budget_s / 5.0) < 30  # 3 × 10 would take 150 s
    # the whole budget is announced: the job refits the epochs to its own step time
    assert plan.train_seconds == budget_s and plan.estimated_seconds == pytest.approx(60)
    half = Experiment(budget={"max_trials": 4, "epochs_per_trial": 10, "max_minutes": 4.0})
    assert service.plan_retraining(experiment=half, trial=trial, dataset=dataset_row, settings=settings,
                                   epochs=None).epochs == int((service.DEFAULT_MODEL_SHARE * 240
                                                               - overhead) / 5.0)
    asked = service.plan_retraining(experiment=half, trial=trial, dataset=dataset_row, settings=settings, epochs=50)
    assert asked.epochs == 50 and asked.train_seconds is None  # asked-for epochs are kept, never refitted
    assert asked.estimated_seconds == pytest.approx(50 * 5.0 + overhead)
    roomy = Experiment(budget={"max_trials": 4, "epochs_per_trial": 10, "model_minutes": 60.0})
    plan = service.plan_retraining(experiment=roomy, trial=trial, dataset=dataset_row, settings=settings,
                                   epochs=None)
    assert int((3600 - overhead) / 5.0) > 640
    assert plan.epochs == 320  # the time allows more: 32 × the search's 10
    assert plan.train_seconds == 320 * 5.0 == service.max_fitted_epochs(experiment=roomy, settings=settings) * 5.0
    # A lengthened search trained its trial for 20 epochs, not 10: the cap follows the trial.
    lengthened = Trial(measured_epoch_s=trial.measured_epoch_s, planned_epochs=20)
    assert service.plan_retraining(experiment=roomy, trial=lengthened, dataset=dataset_row, settings=settings,
                                   epochs=None).epochs == 640
    unmeasured = service.plan_retraining(experiment=half, trial=Trial(), dataset=dataset_row, settings=settings,
                                         epochs=None)
    assert unmeasured.estimated_seconds is None and unmeasured.train_seconds == 240 - overhead
    # A search that stalled after one of its four minutes leaves the other three to its final model.
    stalled = Experiment(budget=half.budget, elapsed_s=60.0, detail=f"search ended: {service.UNLEARNED_STOP}")
    assert service.plan_retraining(experiment=stalled, trial=Trial(), dataset=dataset_row, settings=settings,
                                   epochs=None).train_seconds == pytest.approx(240 + 180 - overhead)


def test_a_final_model_may_raise_its_side_up_to_what_the_space_allows_unless_latency_or_flops_are_bound():
    from api.services.models.build import _side_limit

    stored = type("Row", (), {"image": {"height": 96, "width": 96, "channels": 3}})()
    assert _side_limit(Experiment(search_space={}, constraints={}, objective={}), stored) == 96
    assert _side_limit(Experiment(search_space={"input_scale": [0.5, 0.75]}, constraints={}, objective={}),
                       stored) == 72
    assert _side_limit(Experiment(search_space={}, constraints={"max_params": 10**6}, objective={}), stored) == 96
    for constraints, objective in [({"max_latency_ms": 5.0}, {}), ({"max_mflops": 50.0}, {}),
                                   ({}, {"mode": "pareto"}), ({}, {"mode": "accuracy", "latency_target_ms": 2.0})]:
        assert _side_limit(Experiment(search_space={}, constraints=constraints, objective=objective), stored) is None


def test_a_long_final_schedule_may_add_an_augmentation_policy_unless_the_space_rules_it_out():
    from api.services.models.build import _space_allows_policy

    def experiment(search_space):
        return Experiment(search_space=search_space, constraints={}, objective={})

    assert _space_allows_policy(experiment({}))
    assert _space_allows_policy(experiment({"train/policy": ["none", "trivial"]}))
    assert not _space_allows_policy(experiment({"train/policy": "none"}))
    assert not _space_allows_policy(experiment({"train/policy": ["randaugment"]}))


def test_a_draw_at_the_top_goes_to_the_lowest_validation_loss(app_service, app_client, app_key, app_dataset):
    """Without a trial_id, trials within one standard error of the leader's accuracy (on the validation split's
    image count) are compared by validation loss; the experiment's best and the leaderboard keep their order."""
    from api.orm import Dataset

    dataset_row, _ = app_dataset
    experiment_id, (leader, learning, near, behind, lossless) = add_experiment(
        app_service, project_id=app_key.project_id, dataset_id=dataset_row["id"],
        trials=[{"status": "succeeded", "val_accuracy": 0.403, "val_loss": 1.57, "params": 10},
                {"status": "succeeded", "val_accuracy": 0.389, "val_loss": 1.44, "params": 90},
                {"status": "succeeded", "val_accuracy": 0.375, "val_loss": 1.52, "params": 20},
                {"status": "succeeded", "val_accuracy": 0.250, "val_loss": 1.30, "params": 30},
                {"status": "succeeded", "val_accuracy": 0.400, "params": 5}])

    def default_trial(val_images: int) -> str:
        with app_service.runtime.unit_of_work() as session:
            dataset = session.get(Dataset, dataset_row["id"])
            dataset.splits = {**dataset.splits, "val": val_images}
            session.flush()
            return service.default_trial(session, session.get(Experiment, experiment_id)).id

    assert default_trial(72) == learning  # 0.403, 0.400, 0.389 and 0.375 are one draw on 72 images
    assert default_trial(10_000) == leader  # on 10,000 a 1.4-point lead is real
    assert default_trial(0) == leader
    created = app_client.post(f"/v1/experiments/{experiment_id}/models", json={"epochs": 1})
    assert created.status_code == 202 and created.json()["trial_id"] == leader  # the splits say 0 val images now
    default_trial(72)
    created = app_client.post(f"/v1/experiments/{experiment_id}/models", json={"epochs": 1})
    assert created.status_code == 202 and created.json()["trial_id"] == learning
    assert app_client.get(f"/v1/experiments/{experiment_id}").json()["best"]["trial_id"] == leader
    board = app_client.get(f"/v1/experiments/{experiment_id}/leaderboard").json()["data"]
    assert [row["id"] for row in board] == [leader, lossless, learning, near, behind]


def test_when_no_trial_has_learned_the_final_model_takes_a_reference_design(app_service, app_client, app_key,
                                                                           app_dataset):
    """Every trial near chance (balanced accuracy less than halfway from chance to 1): the draw is settled among the
    trials of the space's reference designs, by the same noise rule; once a trial has learned, among all again."""
    from api.orm import Dataset
    from api.services.search.trials import _keep_weights_if_leading

    dataset_row, _ = app_dataset
    experiment_id, (leader, learning, reference, weak_reference, proposal) = add_experiment(
        app_service, project_id=app_key.project_id, dataset_id=dataset_row["id"],
        trials=[{"status": "succeeded", "val_accuracy": 0.61, "val_balanced_accuracy": 0.60, "val_loss": 0.69},
                {"status": "succeeded", "val_accuracy": 0.60, "val_balanced_accuracy": 0.58, "val_loss": 0.66},
                {"status": "succeeded", "val_accuracy": 0.58, "val_balanced_accuracy": 0.57, "val_loss": 0.68,
                 "reference_design": True},
                {"status": "succeeded", "val_accuracy": 0.40, "val_balanced_accuracy": 0.41, "val_loss": 0.60,
                 "reference_design": True},
                {"status": "running", "val_accuracy": 0.62, "val_balanced_accuracy": 0.62, "val_loss": 0.70}])

    def default_trial() -> str:
        with app_service.runtime.unit_of_work() as session:
            dataset = session.get(Dataset, dataset_row["id"])
            dataset.splits = {**dataset.splits, "val": 72}
            session.flush()
            return service.default_trial(session, session.get(Experiment, experiment_id)).id

    assert default_trial() == reference  # 0.40 lies outside the noise of the references' 0.58
    created = app_client.post(f"/v1/experiments/{experiment_id}/models", json={"epochs": 1})
    assert created.status_code == 202 and created.json()["trial_id"] == reference
    assert app_client.get(f"/v1/experiments/{experiment_id}").json()["best"]["trial_id"] == leader
    # The search keeps the weights of the reference it would hand over, whoever leads.
    kept = []
    store = type("Store", (), {"put_bytes": lambda self, key, data: kept.append(key),
                               "delete_prefix": lambda self, prefix: None})()
    model = torch.nn.Linear(1, 1)
    _keep_weights_if_leading(unit_of_work=app_service.runtime.unit_of_work, store=store, project_id=app_key.project_id,
                             experiment_id=experiment_id, trial_id=proposal, metric="accuracy", value=0.59,
                             model=model, val_loss=0.5, balanced_accuracy=0.59)
    assert kept == []  # a proposal within the noise, with the lowest loss, is not the pick while nothing learned
    # A trial that has learned (balanced accuracy 0.9 of two classes) ends the fallback: the plain noise rule.
    with app_service.runtime.unit_of_work() as session:
        session.get(Trial, leader).val_balanced_accuracy = 0.9
    assert default_trial() == learning


def test_when_no_trial_has_learned_the_references_within_the_noise_go_by_their_order_of_preference(
        app_service, app_client, app_key, app_dataset):
    """Near chance, a 12-epoch loss says little about a long schedule: of the reference designs within the noise, the
    one first in the order of preference (measured on long schedules) is the final model's, whatever its loss, and
    the search keeps its weights rather than those of the reference with the lowest loss."""
    from api.orm import Dataset
    from api.services.search.trials import _keep_weights_if_leading
    from api.services.search_spaces import search_space_for

    dataset_row, _ = app_dataset
    experiment_id, (proposal, second, first, weak_first) = add_experiment(
        app_service, project_id=app_key.project_id, dataset_id=dataset_row["id"],
        trials=[{"status": "succeeded", "val_accuracy": 0.60, "val_balanced_accuracy": 0.59, "val_loss": 0.60},
                {"status": "succeeded", "val_accuracy": 0.58, "val_balanced_accuracy": 0.57, "val_loss": 0.66,
                 "reference_design": True},
                {"status": "succeeded", "val_accuracy": 0.56, "val_balanced_accuracy": 0.55, "val_loss": 0.69,
                 "reference_design": True},
                {"status": "succeeded", "val_accuracy": 0.40, "val_balanced_accuracy": 0.40, "val_loss": 0.70,
                 "reference_design": True}])
    with app_service.runtime.unit_of_work() as session:
        experiment = session.get(Experiment, experiment_id)
        space = search_space_for(experiment)
        session.get(Trial, second).decisions = space.reference_points()[1]
        session.get(Trial, first).decisions = space.reference_points(mirror_symmetric=True)[0]  # trained with flips
        session.get(Trial, weak_first).decisions = space.reference_points()[0]
        session.get(Dataset, dataset_row["id"]).splits = {**dataset_row["splits"], "val": 72}

    with app_service.runtime.unit_of_work() as session:
        assert service.default_trial(session, session.get(Experiment, experiment_id)).id == first
    kept = []
    store = type("Store", (), {"put_bytes": lambda self, key, data: kept.append(key.split("/")[-2]),
                               "delete_prefix": lambda self, prefix: None})()
    for trial_id, value, loss, rank in ((second, 0.58, 0.66, 1), (first, 0.56, 0.69, 0)):
        _keep_weights_if_leading(unit_of_work=app_service.runtime.unit_of_work, store=store,
                                 project_id=app_key.project_id, experiment_id=experiment_id, trial_id=trial_id,
                                 metric="accuracy", value=value, model=torch.nn.Linear(1, 1), val_loss=loss,
                                 balanced_accuracy=value - 0.01, reference=rank)
    assert kept == [first]
    # the ranks come from the trials' decisions; a reference outside the noise still loses to one within it
    with app_service.runtime.unit_of_work() as session:
        session.get(Trial, first).val_accuracy = 0.45
    with app_service.runtime.unit_of_work() as session:
        assert service.default_trial(session, session.get(Experiment, experiment_id)).id == second


def test_model_requests_are_validated_and_scoped_to_the_project(app_service, app_client, app_key, app_dataset):
    dataset_row, _ = app_dataset
    experiment_id, trial_ids = add_experiment(app_service, project_id=app_key.project_id, dataset_id=dataset_row["id"],
                                              trials=[{"status": "succeeded", "val_accuracy": 0.4, "params": 10},
                                                      {"status": "succeeded", "val_accuracy": 0.6, "params": 90},
                                                      {"status": "succeeded", "val_accuracy": 0.6, "params": 80},
                                                      {"status": "succeeded", "val_accuracy": 0.9, "params": 5,
                                                       "feasible": False},
                                                      {"status": "failed"}])
    empty_id, _ = add_experiment(app_service, project_id=app_key.project_id, dataset_id=dataset_row["id"],
                                 trials=[{"status": "failed"}])
    # Built directly and never enqueued, so it stays queued: the "not ready" case is deterministic.
    with app_service.runtime.unit_of_work() as session:
        experiment = session.get(Experiment, experiment_id)
        model = service.create_model(session=session, settings=app_service.settings, project_id=app_key.project_id,
                                     experiment=experiment)
        session.info.pop("after_commit")
    assert model.trial_id == trial_ids[2]  # best feasible accuracy, tie broken by fewer params
    assert model.epochs == app_service.settings.model_epochs_multiplier * 1


    assert app_client.get(f"/v1/models/{model.id}/artifacts/onnx").status_code == 409
    unknown = app_client.get(f"/v1/models/{model.id}/artifacts/weights")
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    assert app_client.get(f"/v1/models/{model.id}/artifacts/..%2F..%2Fetc").status_code == 404
    assert app_client.post(f"/v1/experiments/{empty_id}/models", json={}).status_code == 409
    assert app_client.post(f"/v1/experiments/{experiment_id}/models",
                       json={"trial_id": trial_ids[4]}).status_code == 409
    assert app_client.post(f"/v1/experiments/{experiment_id}/models", json={"trial_id": "nope"}).status_code == 404
    assert app_client.post(f"/v1/experiments/{experiment_id}/models", json={"epochs": 0}).status_code == 422
    assert app_client.post(f"/v1/experiments/{experiment_id}/models", json={"color": 1}).status_code == 422

    with app_service.client(app_service.new_key().key) as other:
        assert other.get(f"/v1/models/{model.id}").status_code == 404
        assert other.get(f"/v1/models/{model.id}/artifacts/onnx").status_code == 404
        assert other.post(f"/v1/experiments/{experiment_id}/models", json={}).status_code == 404
        assert other.get(f"/v1/experiments/{experiment_id}/models").status_code == 404
        assert other.get("/v1/models").json() == {"data": [], "total": 0}
    assert app_client.get(f"/v1/models/{model.id}").json()["status"] == "queued"
    assert app_client.get("/v1/models", params={"limit": 1}).json()["total"] == 1


def _start_model_worker(env: dict[str, str], log_path):
    return start_worker(env, log_path, queues="models", name=f"models-{secrets.token_hex(3)}")


def _row(service, model_id: str) -> Model:
    with service.runtime.unit_of_work() as session:
        return session.get(Model, model_id)


@pytest.mark.stack
def test_a_model_job_killed_mid_way_completes_after_a_restart(stack, client, api_key, dataset, tmp_path):
    dataset_row, _ = dataset
    experiment_id, _ = add_experiment(stack, project_id=api_key.project_id, dataset_id=dataset_row["id"],
                                      trials=[{"status": "succeeded", "val_accuracy": 0.5, "params": 500}])
    # A dedicated worker with short heartbeat/stale periods on a broker namespace of its own (the stack's worker
    # never sees these messages), sharing the stack's database and object store.
    env = {**stack.env, "NAS_DATABASE_URL": stack.settings.database_url, "NAS_STORAGE_URL": stack.settings.storage_url,
           "NAS_DATA_DIR": str(tmp_path), "NAS_BROKER_KEY_PREFIX": f"nas-models-{secrets.token_hex(4)}:",
           "NAS_MODEL_HEARTBEAT_S": "0.3", "NAS_MODEL_STALE_AFTER_S": "2"}
    settings = settings_from_env(env)
    with stack.runtime.unit_of_work() as session:
        experiment = session.get(Experiment, experiment_id)
        model = service.create_model(session=session, settings=stack.settings, project_id=api_key.project_id,
                                     experiment=experiment, epochs=150)
        session.info.pop("after_commit")
    worker = _start_model_worker(env, tmp_path / "worker.log")
    try:
        Celery("nas-test", config_source=celery_config(settings)).send_task(
            BUILD_MODEL.name, args=[model.id], queue=BUILD_MODEL.queue)
        deadline = time.monotonic() + 60
        while (row := _row(stack, model.id)).status == "queued" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert row.status == "running", (tmp_path / "worker.log").read_text()
        time.sleep(1.0)  # a few heartbeats into training
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        killed = _row(stack, model.id)
        assert killed.status == "running" and killed.attempts == 1, killed.detail
        while (utcnow() - _row(stack, model.id).heartbeat_at).total_seconds() <= settings.model_stale_after_s:
            time.sleep(0.2)

        worker = _start_model_worker(env, tmp_path / "worker.log")  # its start-up sweep requeues the model
        body = wait_for_model(client, model.id, timeout_s=120)
        assert body["status"] == "ready", (body["detail"], (tmp_path / "worker.log").read_text()[-4000:])
        assert body["attempts"] == 2
        keys = stack.runtime.store.list_keys(_row(stack, model.id).storage_prefix)
        assert keys and all("/attempt-2/" in key for key in keys)  # nothing of the killed attempt is served
        assert client.get(f"/v1/models/{model.id}/artifacts/card", follow_redirects=True).status_code == 200
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)


def test_a_search_that_maximised_balanced_accuracy_hands_back_its_best_by_balanced_accuracy(
        app_service, app_key, app_dataset):
    dataset_row, _ = app_dataset
    experiment_id, trials = add_experiment(
        app_service, project_id=app_key.project_id, dataset_id=dataset_row["id"],
        trials=[{"status": "succeeded", "val_accuracy": 0.9, "val_balanced_accuracy": 0.55, "params": 10},
                {"status": "succeeded", "val_accuracy": 0.8, "val_balanced_accuracy": 0.75, "params": 10}])
    with app_service.runtime.unit_of_work() as session:
        experiment = session.get(Experiment, experiment_id)
        assert service.create_model(session=session, settings=app_service.settings, project_id=app_key.project_id,
                                    experiment=experiment).trial_id == trials[0]
        experiment.objective = {"metric": "balanced_accuracy"}
        assert service.create_model(session=session, settings=app_service.settings, project_id=app_key.project_id,
                                    experiment=experiment).trial_id == trials[1]
        session.rollback()  # built directly and never enqueued


class KeptWeights:
    """Trials of one experiment finishing as a search finishes them (:func:`_keep_weights_if_leading`, then the
    row), and the indexes of those whose weights the store holds."""

    def __init__(self, service, project_id: str, experiment_id: str, trials: list[str]) -> None:
        self.service, self.project_id, self.experiment_id, self.trials = service, project_id, experiment_id, trials

    def finish(self, index: int, value: float, loss: float | None = None, *,
               balanced_accuracy: float | None = None) -> None:
        from api.services.search.trials import _keep_weights_if_leading

        _keep_weights_if_leading(unit_of_work=self.service.runtime.unit_of_work, store=self.service.runtime.store,
                                 project_id=self.project_id, experiment_id=self.experiment_id,
                                 trial_id=self.trials[index], metric="accuracy", value=value,
                                 model=torch.nn.Linear(2, 2), val_loss=loss, balanced_accuracy=balanced_accuracy,
                                 val_accuracy=value if balanced_accuracy is not None else None)
        with self.service.runtime.unit_of_work() as session:
            trial = session.get(Trial, self.trials[index])
            trial.status, trial.val_accuracy, trial.val_loss = "succeeded", value, loss
            trial.val_balanced_accuracy = balanced_accuracy

    def kept(self) -> list[int]:
        from api.services.object_keys import trial_weights_key

        return [index for index, trial_id in enumerate(self.trials) if self.service.runtime.store.exists(
            trial_weights_key(self.project_id, self.experiment_id, trial_id))]


def test_a_tie_with_the_leader_keeps_both_trials_weights(app_service, app_key, app_dataset):
    """The leaderboard breaks an accuracy tie by size (then latency, then number), so a trial that only ties the
    leader must not drop the leader's weights: the final model of either then starts from its own trial."""
    dataset_row, _ = app_dataset
    experiment_id, trials = add_experiment(
        app_service, project_id=app_key.project_id, dataset_id=dataset_row["id"],
        trials=[{"status": "succeeded", "val_accuracy": 0.9, "params": 10},
                {"status": "running", "params": 10}, {"status": "running", "params": 10}])
    search = KeptWeights(app_service, app_key.project_id, experiment_id, trials)
    search.finish(0, 0.9)
    search.finish(1, 0.9)  # a tie: the leader (trial 0, same size, lower number) keeps its weights
    assert {0, 1} <= set(search.kept())
    search.finish(2, 0.95)  # strictly better: the leader's weights go
    assert 2 in search.kept() and 0 not in search.kept()


def test_the_trial_a_final_model_would_pick_within_the_noise_keeps_its_weights(app_service, app_key, app_dataset):
    """Weights are kept for the leader and for the lowest validation loss within one standard error of it (what a
    final model retrains by default); a pick that is displaced by a better one loses them."""
    from api.orm import Dataset

    dataset_row, _ = app_dataset
    experiment_id, trials = add_experiment(
        app_service, project_id=app_key.project_id, dataset_id=dataset_row["id"],
        trials=[{"status": "running", "params": 10} for _ in range(5)])
    with app_service.runtime.unit_of_work() as session:
        dataset = session.get(Dataset, dataset_row["id"])
        dataset.splits = {**dataset.splits, "val": 72}
    search = KeptWeights(app_service, app_key.project_id, experiment_id, trials)
    finish, kept = search.finish, search.kept

    finish(0, 0.403, 1.57)
    finish(1, 0.250, 1.20)  # far below the leader: nothing kept
    assert kept() == [0]
    finish(2, 0.389, 1.44)  # a draw with the leader at a lower loss: the default pick keeps its weights
    assert kept() == [0, 2]
    finish(3, 0.375, 1.40)  # a lower loss still: the pick moves, the displaced one's weights go
    assert kept() == [0, 3]
    finish(4, 0.600, 1.50)  # a real lead: the old leader and pick fall out of the band
    assert kept() == [4]
    with app_service.runtime.unit_of_work() as session:
        assert service.default_trial(session, session.get(Experiment, experiment_id)).id == trials[4]


def test_a_time_bound_search_keeps_the_weights_of_both_trials_it_would_promote(app_service, app_key, app_dataset):
    """While the trials of a length have not learned, a search with ``max_minutes`` may double their length and
    train its two best again (by the metric, and by the lowest validation loss) from where they stopped: both keep
    their weights. Once a trial of that length has learned, the length is never promoted from and their weights go;
    a search without a time budget never lengthens, so keeps only the leader's and the pick's."""
    from api.orm import Dataset
    from api.repositories import experiments as repository
    from api.services.search import scheduler

    dataset_row, _ = app_dataset  # two classes: chance 0.5, learned from a balanced accuracy of 0.75
    with app_service.runtime.unit_of_work() as session:  # a noise band too narrow to make any of them the pick
        dataset = session.get(Dataset, dataset_row["id"])
        dataset.splits = {**dataset.splits, "val": 5000}

    def search(max_minutes: float | None):
        experiment_id, trials = add_experiment(
            app_service, project_id=app_key.project_id, dataset_id=dataset_row["id"],
            trials=[{"status": "running", "params": 10, "planned_epochs": 12} for _ in range(4)])
        with app_service.runtime.unit_of_work() as session:
            experiment = session.get(Experiment, experiment_id)
            experiment.budget = {**experiment.budget, "max_minutes": max_minutes}
        weights = KeptWeights(app_service, app_key.project_id, experiment_id, trials)
        return experiment_id, weights.kept, lambda index, value, loss: weights.finish(index, value, loss,
                                                                                      balanced_accuracy=value)

    experiment_id, kept, finish = search(10)
    finish(0, 0.60, 0.70)
    finish(1, 0.52, 0.66)  # far below the leader by the metric, but the lowest loss: the second promotion
    assert kept() == [0, 1]
    finish(2, 0.55, 0.65)  # a lower loss still: the promotion by loss moves, the displaced one's weights go
    assert kept() == [0, 2]
    with app_service.runtime.unit_of_work() as session:
        scheduled = scheduler._promotions(session.get(Experiment, experiment_id),
                                          repository.all_trials(session, experiment_id), 24, set(), val_images=5000)
    assert len(scheduled) == 2  # the same two the scheduler promotes
    finish(3, 0.90, 0.30)  # this length has learned: it will not be promoted from; the leader alone keeps them
    assert kept() == [3]

    _, kept, finish = search(None)
    finish(0, 0.60, 0.70)
    finish(1, 0.52, 0.66)  # no time budget: no promotion, so nothing to keep for it
    assert kept() == [0]


def test_promotion_takes_the_preferred_reference_within_the_noise_before_the_lowest_loss(app_service, app_key,
                                                                                         app_dataset):
    """Near chance, on a few validation images, the references' short runs are one draw: after the leader, the
    search promotes (and keeps the weights of) the reference first in the order of preference within the leader's
    noise, not the one whose loss happened to be 0.002 lower (bench.budget's photos-small, seed 1)."""
    from api.orm import Dataset
    from api.repositories import experiments as repository
    from api.services.search import scheduler
    from api.services.search_spaces import search_space_for

    dataset_row, _ = app_dataset
    with app_service.runtime.unit_of_work() as session:
        dataset = session.get(Dataset, dataset_row["id"])
        dataset.splits = {**dataset.splits, "val": 72}
    experiment_id, trials = add_experiment(
        app_service, project_id=app_key.project_id, dataset_id=dataset_row["id"],
        trials=[{"status": "running", "params": 10, "planned_epochs": 12, "reference_design": True} for _ in range(3)])
    with app_service.runtime.unit_of_work() as session:
        experiment = session.get(Experiment, experiment_id)
        experiment.budget = {**experiment.budget, "max_minutes": 10}
        plain, residual, mbconv = search_space_for(experiment).reference_points()  # in the order of preference
        for trial_id, decisions in zip(trials, (plain, residual, mbconv), strict=True):
            session.get(Trial, trial_id).decisions = dict(decisions)
    weights = KeptWeights(app_service, app_key.project_id, experiment_id, trials)
    for index, (accuracy, loss) in enumerate([(0.389, 1.434), (0.389, 1.432), (0.431, 1.36)]):
        weights.finish(index, accuracy, loss, balanced_accuracy=accuracy / 2)
    assert weights.kept() == [0, 2]  # the residual network's weights, promoted by the loss before, are not kept

    def promoted(val_images):
        with app_service.runtime.unit_of_work() as session:
            return scheduler._promotions(session.get(Experiment, experiment_id),
                                         repository.all_trials(session, experiment_id), 24, set(),
                                         val_images=val_images)

    assert promoted(72) == [dict(mbconv), dict(plain)]
    assert promoted(None) == [dict(mbconv), dict(residual)]  # no noise rule (a Pareto search): the loss, as before
    from api.services.search_spaces import reference_ranks

    with app_service.runtime.unit_of_work() as session:  # a design no longer among the references: not preferred
        rows = repository.all_trials(session, experiment_id)
        rows[1].decisions = {**rows[1].decisions, "input_scale": 0.25}
        assert reference_ranks(session.get(Experiment, experiment_id), rows) == {trials[0]: 0, trials[2]: 2}


def test_claims_reaping_and_stale_lease_writes_follow_the_attempt_rules(app_service, app_client, app_key,
                                                                         app_dataset):
    from datetime import timedelta

    from sqlalchemy import update

    from api.repositories import models as repository

    dataset_row, _ = app_dataset
    experiment_id, _ = add_experiment(app_service, project_id=app_key.project_id, dataset_id=dataset_row["id"],
                                      trials=[{"status": "succeeded", "val_accuracy": 0.5, "params": 500}])
    with app_service.runtime.unit_of_work() as session:
        model = service.create_model(session=session, settings=app_service.settings, project_id=app_key.project_id,
                                     experiment=session.get(Experiment, experiment_id), epochs=1)
        session.info.pop("after_commit")

    def set_row(**values) -> None:
        with app_service.runtime.unit_of_work() as session:
            session.execute(update(Model).where(Model.id == model.id).values(**values))

    def run() -> str:
        return run_model_job(unit_of_work=app_service.runtime.unit_of_work, store=app_service.runtime.store,
                             settings=app_service.settings, model_id=model.id)

    def reap() -> list[str]:
        with app_service.runtime.unit_of_work() as session:
            reaped = reap_stale_models(session=session, settings=app_service.settings)
            session.info.pop("after_commit", None)  # this test inspects the rows; no worker should build it
        return reaped

    long_ago = utcnow() - timedelta(seconds=app_service.settings.model_stale_after_s + 60)
    set_row(status="running", attempts=1, lease_token="a" * 32, heartbeat_at=utcnow())
    assert run() == "skipped"  # a live attempt holds it: a duplicate delivery does nothing
    assert model.id not in reap()
    with app_service.runtime.unit_of_work() as session:  # a write carrying another lease is refused
        assert not repository.update_with_lease(session, model.id, "b" * 32, status="ready")
        assert repository.update_with_lease(session, model.id, "a" * 32, heartbeat_at=long_ago)

    assert model.id in reap()  # silent for longer than the stale period: back to the queue, lease revoked
    row = _row(app_service, model.id)
    assert (row.status, row.lease_token, row.attempts) == ("queued", None, 1)
    with app_service.runtime.unit_of_work() as session:  # the dead attempt, should it wake up, can no longer write
        assert not repository.update_with_lease(session, model.id, "a" * 32, status="ready")

    set_row(status="running", attempts=app_service.settings.model_max_attempts, heartbeat_at=long_ago)
    assert model.id in reap()
    row = _row(app_service, model.id)
    assert row.status == "failed" and "stopped responding" in row.detail
    assert app_client.get(f"/v1/models/{model.id}").json()["status"] == "failed"

    # The dataset deleted after the search finished: the job fails with a reason instead of crashing.
    set_row(status="queued", attempts=0, detail=None)
    assert app_client.delete(f"/v1/datasets/{dataset_row['id']}").status_code == 204
    assert run() == "failed"
    assert "dataset" in _row(app_service, model.id).detail
    assert app_client.post(f"/v1/experiments/{experiment_id}/models", json={}).status_code == 409
