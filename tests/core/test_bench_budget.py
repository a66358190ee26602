"""The budget benchmark's parts that need no service: data sets, what the service is fed, the baseline network."""

from __future__ import annotations

import argparse
import io
import json
import zipfile

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from bench import budget

SPEC = {"classes": [str(d) for d in range(10)], "input": {"channels": 1, "height": 28, "width": 28},
        "color_mode": "L", "resize": "bilinear", "scale": 255.0, "mean": [0.5], "std": [0.25]}


@pytest.mark.slow  # loads and resamples the public data sets
@pytest.mark.parametrize(("name", "train", "test", "side"),
                         [("digits", 1437, 360, 32), ("mnist5k", 4000, 1000, 28), ("mnist500", 500, 1000, 28)])
def test_splits_hold_back_test_images_stratified_and_seeded(name, train, test, side):
    split = budget.build_split(name, seed=0)
    assert split.train_x.shape == (train, side, side) and split.test_x.shape == (test, side, side)
    assert split.train_x.dtype == np.uint8 and split.train_x.max() > 200  # 0..255 pixels, not 0..16
    assert np.bincount(split.test_y).min() >= test // 10 - 2  # every class is held back
    if name == "mnist500":
        assert np.bincount(split.train_y).tolist() == [50] * 10
    again = budget.build_split(name, seed=0)
    assert np.array_equal(split.train_x, again.train_x) and np.array_equal(split.test_y, again.test_y)


@pytest.mark.slow
def test_scenes_are_colour_imbalanced_and_seeded(tmp_path, monkeypatch):
    monkeypatch.setattr(budget, "SCENES_IMAGES", 400)  # the same generator, fewer images: seconds, not tens
    split = budget.build_split("scenes", seed=0)
    assert split.train_x.shape[1:] == (96, 96, 3) and len(split.train_y) + len(split.test_y) == 400
    counts = np.bincount(split.train_y, minlength=10)
    assert counts[0] > 5 * counts[9] > 0  # the commonest class about ten times the rarest
    assert not np.array_equal(split.train_x[..., 0], split.train_x[..., 1])  # colour, not gray in three channels
    assert np.array_equal(budget.build_split("scenes", seed=0).test_x, split.test_x)
    budget.write_zip(split, tmp_path / "scenes.zip")
    with zipfile.ZipFile(tmp_path / "scenes.zip") as archive:
        image = Image.open(io.BytesIO(archive.read(archive.namelist()[0])))
        assert image.mode == "RGB" and image.size == (96, 96)


def test_held_back_images_are_not_uploaded(tmp_path):
    split = budget.build_split("digits", seed=1)
    budget.write_zip(split, tmp_path / "digits.zip")
    with zipfile.ZipFile(tmp_path / "digits.zip") as archive:
        names = archive.namelist()
        assert len(names) == len(split.train_y)
        assert {name.split("/")[1] for name in names} == set(split.classes)  # one folder per class
        first = np.asarray(Image.open(io.BytesIO(archive.read(names[0]))))
    uploaded = {image.tobytes() for image in split.train_x}
    assert first.tobytes() in uploaded
    assert sum(image.tobytes() in uploaded for image in split.test_x) < 5  # only chance duplicates of digits


def test_onnx_inputs_follow_preprocessing_json():
    images = np.full((2, 32, 32), 255, dtype=np.uint8)
    batch = budget.onnx_inputs(images, SPEC, "NCHW")
    assert batch.shape == (2, 1, 28, 28) and batch.dtype == np.float32
    assert np.allclose(batch, (1.0 - 0.5) / 0.25)
    assert budget.onnx_inputs(images, SPEC, "NHWC").shape == (2, 28, 28, 1)


def test_baseline_network_and_augmentation():
    model = budget.baseline_cnn(1, 10).eval()
    assert 900_000 < sum(p.numel() for p in model.parameters()) < 1_500_000
    x = torch.rand(3, 1, 28, 28)
    assert model(x).shape == (3, 10)
    crops = budget.random_crop(x, 2, torch.Generator().manual_seed(0))
    assert crops.shape == x.shape
    centred = budget.random_crop(x, 0, torch.Generator().manual_seed(0))
    assert torch.equal(centred, x)


@pytest.mark.slow
def test_baseline_training_keeps_to_its_time():
    split = budget.build_split("mnist500", seed=0)
    x, y = torch.from_numpy(split.train_x[:128, None]), torch.from_numpy(split.train_y[:128])
    model, figures = budget.train_baseline(x, y, 10, seconds=4.0, seed=0)
    assert figures["epochs_done"] >= 1 and figures["wall_s"] < 4.0 + 2 * figures["first_epoch_s"]
    assert not model.training


def test_experiment_falls_back_to_a_full_budget_only_when_the_api_requires_it():
    sent = []

    def answer(request):
        body = json.loads(request.content)
        sent.append(body["budget"])
        if "max_trials" not in body["budget"]:
            return httpx.Response(422, json={"type": "/problems/validation", "title": "Unprocessable", "status": 422,
                                             "detail": "invalid body", "errors": [
                                                 {"field": "body.budget.max_trials", "error": "Field required"}]})
        return httpx.Response(201, json={"id": "e1", "status": "queued"})

    http = httpx.Client(base_url="http://api", transport=httpx.MockTransport(answer))
    experiment, fallback = budget.create_experiment(http, "d1", 2.0, 0)
    assert fallback and experiment["id"] == "e1"
    assert sent == [{"max_minutes": 2.0}, {**budget.FALLBACK_BUDGET, "max_minutes": 2.0}]
    sent.clear()
    budget.create_experiment(http, "d1", 2.0, 0, model_minutes=6.0)
    assert sent == [{"max_minutes": 2.0, "model_minutes": 6.0},
                    {**budget.FALLBACK_BUDGET, "max_minutes": 2.0, "model_minutes": 6.0}]


def test_summary_line(capsys):
    split = budget.build_split("digits", seed=0)
    service = {"spec": {**SPEC, "input": {"channels": 1, "height": 32, "width": 32}}, "accuracy": 0.95,
               "params": 40_000, "service_test_accuracy": 0.94, "test_time_mirror": False, "model_epochs": 14,
               "estimated_seconds": None,
               "ingest_s": 3.0, "search_s": 121.0, "model_s": 40.0, "total_s": 161.0, "fallback": False,
               "experiment": {"strategy": "evolution", "status": "succeeded", "detail": None,
                              "progress": {"completed": 3, "succeeded": 2, "pruned": 1, "failed": 0}}}
    baseline = {"accuracy": 0.9612, "params": 1_175_210, "wall_s": 160.0, "budget_s": 161.0, "epochs_done": 20,
                "epochs_planned": 19, "batch_size": 64, "first_epoch_s": 8.0, "schedule_done": True}
    budget.report(argparse.Namespace(minutes=2.0, model_minutes=None), split, service, baseline)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == ("budget data=digits minutes=2 service_acc=0.9500 baseline_acc=0.9612 margin_pts=-1.1 "
                       "service_params=40000 baseline_params=1175210 service_s=161.0 within_budget=yes")
    budget.report(argparse.Namespace(minutes=2.0, model_minutes=6.0), split, service, baseline)
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith("within_budget=yes model_minutes=6")
    assert any(line.startswith("screened") and "n/a" in line for line in out)
    assert any(line.startswith("trials") and "3 trained" in line for line in out)
