"""``POST /v1/models/{id}/predict``: answers checked against onnxruntime run directly on the downloaded files, the
image-safety rules of ingestion, the scoping and state rules of every model route, the LRU of loaded models.

The model row is written straight to the database with two real artifacts — a small linear ONNX classifier over
every pixel (so each pixel's position and value counts, and an image turned the wrong way gets another answer) and
its ``preprocessing.json`` — so these tests need no training. The reference answers use only numpy, Pillow and
onnxruntime, as a client following ``preprocessing.json`` would.
"""

from __future__ import annotations

import io
import json

import numpy as np
import onnxruntime
import pytest
from PIL import Image

from api.services import predict as predict_service
from tests import archives
from tests.service.helpers import (MODEL_CLASSES, TINY_CLASSES, add_experiment, add_model, held_out_images,
                                   tiny_dataset)

def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def noise(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    return Image.open(io.BytesIO(archives.image_bytes(size=size, mode=mode, seed=seed)))


def post(client, model_id: str, images: list[tuple[str, bytes]], **params):
    return client.post(f"/v1/models/{model_id}/predict", params=params,
                       files=[("images", (name, data, "application/octet-stream")) for name, data in images])


def reference(client, model_id: str, images: list[Image.Image]) -> np.ndarray:
    """Softmax probabilities from onnxruntime on the downloaded ONNX file, each image preprocessed as the downloaded
    preprocessing.json says (numpy and Pillow only)."""
    files = {}
    for format in ("onnx", "preprocessing"):
        response = client.get(f"/v1/models/{model_id}/artifacts/{format}")
        assert response.status_code == 200, response.text
        files[format] = response.content
    spec = json.loads(files["preprocessing"])
    height, width = spec["input"]["height"], spec["input"]["width"]
    batch = []
    for image in images:
        resized = image.convert(spec["color_mode"]).resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(resized, dtype=np.float32).reshape(height, width, -1)
        array = (array / spec["scale"] - np.array(spec["mean"], np.float32)) / np.array(spec["std"], np.float32)
        batch.append(array.transpose(2, 0, 1))
    session = onnxruntime.InferenceSession(files["onnx"], providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": np.stack(batch).astype(np.float32)})[0].astype(np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def as_probabilities(entry: dict) -> dict[str, float]:
    return {item["class"]: item["probability"] for item in entry["top"]}


def exif_rotated(upright: Image.Image) -> bytes:
    """``upright`` stored turned a quarter to the left, with EXIF orientation 6 ("turn right to view"): what a
    phone writes for a portrait photo."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(upright.transpose(Image.Transpose.ROTATE_90), exif=exif)


# ------------------------------------------------------------------------------------------------ answers

def test_every_kind_of_image_gets_the_answer_of_onnxruntime_on_the_downloaded_files(app_service, app_client, app_key):
    model_id = add_model(app_service, app_key.project_id, size=(6, 5))
    sent = [("wide.png", archives.image_bytes(size=(31, 9))),  # another size and aspect than the model's input
            ("photo.jpg", archives.image_bytes(size=(12, 14), fmt="JPEG", seed=1)),
            ("gray.png", archives.image_bytes(size=(7, 7), mode="L", seed=2)),
            ("alpha.png", archives.image_bytes(size=(6, 5), mode="RGBA", seed=3)),
            ("bits.bmp", archives.image_bytes(size=(8, 8), mode="1", fmt="BMP", seed=4)),
            ("palette.gif", encoded(noise((9, 6), seed=5).convert("P"), "GIF")),
            ("deep.tif", archives.image_bytes(size=(10, 4), mode="I;16", fmt="TIFF", seed=6)),
            ("modern.webp", archives.image_bytes(size=(5, 9), fmt="WEBP", seed=7))]
    decoded = [Image.open(io.BytesIO(data)) for _, data in sent]
    assert [image.mode for image in decoded] == ["RGB", "RGB", "L", "RGBA", "1", "P", "I;16", "RGB"]

    response = post(app_client, model_id, sent)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["latency_ms"] > 0 and [entry["filename"] for entry in body["data"]] == [n for n, _ in sent]
    expected = reference(app_client, model_id, [image if image.mode != "I;16" else _high_byte(image)
                                                for image in decoded])
    for entry, probabilities in zip(body["data"], expected, strict=True):
        ranked = np.argsort(-probabilities, kind="stable")[:5]
        assert [item["class"] for item in entry["top"]] == [MODEL_CLASSES[index] for index in ranked]
        assert [item["probability"] for item in entry["top"]] == pytest.approx(probabilities[ranked], abs=1e-5)
    # the images are not all alike to the model (a test of identical answers proves nothing)
    assert len({entry["top"][0]["class"] for entry in body["data"]}) > 1

    every = post(app_client, model_id, sent[:1], top_k=100).json()["data"][0]["top"]
    assert len(every) == len(MODEL_CLASSES) and sum(item["probability"] for item in every) == pytest.approx(1.0)
    assert every[:5] == body["data"][0]["top"]
    assert post(app_client, model_id, sent[:1], top_k=1).json()["data"][0]["top"] == body["data"][0]["top"][:1]


def _high_byte(image: Image.Image) -> Image.Image:
    # 16-bit grayscale: the stored tensors keep the high byte of each pixel (nas_core.data.preprocess_image)
    return Image.fromarray((np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8), mode="L")


def test_a_one_channel_model_and_an_exif_rotated_photo(app_service, app_client, app_key):
    model_id = add_model(app_service, app_key.project_id, channels=1, size=(4, 7), seed=1)
    upright = noise((9, 16), seed=8)
    rotated = exif_rotated(upright)
    assert Image.open(io.BytesIO(rotated)).size == (16, 9)  # stored sideways

    body = post(app_client, model_id, [("upright.png", encoded(upright)), ("rotated.png", rotated)]).json()
    upright_answer, rotated_answer = (as_probabilities(entry) for entry in body["data"])
    assert rotated_answer.keys() == upright_answer.keys()
    assert list(rotated_answer.values()) == pytest.approx(list(upright_answer.values()), abs=1e-6)
    expected = reference(app_client, model_id, [upright])[0]
    assert list(upright_answer.values()) == pytest.approx(sorted(expected, reverse=True)[:5], abs=1e-5)
    # the orientation matters to this model: ignoring the tag would have given another answer
    sideways = reference(app_client, model_id, [Image.open(io.BytesIO(rotated))])[0]
    assert not np.allclose(sorted(sideways, reverse=True)[:5], list(upright_answer.values()), atol=1e-3)


# ------------------------------------------------------------------------------------------------ refusals

def _problem(response, status: int, type: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"/problems/{type}", body
    return body


def test_bad_images_are_refused_with_each_one_named(app_service, app_client, app_key):
    model_id = add_model(app_service, app_key.project_id)
    good = archives.image_bytes(size=(8, 8))
    jpeg = archives.image_bytes(size=(64, 64), fmt="JPEG", seed=7)
    body = _problem(post(app_client, model_id, [("notes.png", b"just some text"), ("ok.png", good),
                                                ("empty.png", b"")]), 422, "invalid-image")
    assert [(error["field"], error["file"]) for error in body["errors"]] == [("body.images[0]", "notes.png"),
                                                                             ("body.images[2]", "empty.png")]
    assert all("not an image" in error["error"] for error in body["errors"])
    assert body["detail"] == "2 of 3 images cannot be used"
    # a JPEG cut in half still has a valid header: the full decode finds it out
    body = _problem(post(app_client, model_id, [("ok.png", good), ("cut.jpg", jpeg[: len(jpeg) // 2])]), 422,
                    "invalid-image")
    assert [error["field"] for error in body["errors"]] == ["body.images[1]"]
    assert "truncated" in body["errors"][0]["error"]

    # a ~100-byte PNG declaring 10⁸ pixels is refused from its header, before anything is decoded
    bomb = _problem(post(app_client, model_id, [("huge.png", archives.pixel_bomb_png())]), 422, "invalid-image")
    assert "pixel bomb" in bomb["errors"][0]["error"] and "NAS_MAX_IMAGE_PIXELS" in bomb["errors"][0]["error"]
    # formats outside ingestion's list are never decoded (here an ICO that Pillow could read)
    ico = encoded(noise((16, 16)), "ICO")
    assert "allowed format" in _problem(post(app_client, model_id, [("icon.ico", ico)]), 422,
                                        "invalid-image")["errors"][0]["error"]
    with app_service.variant(max_image_pixels=100) as strict, strict.client(app_key.key) as client:
        body = _problem(post(client, model_id, [("ok.png", good), ("big.png", archives.image_bytes(size=(11, 10)))]),
                        422, "invalid-image")
        assert [error["field"] for error in body["errors"]] == ["body.images[1]"]


def test_missing_too_many_and_too_large_bodies(app_service, app_client, app_key):
    model_id = add_model(app_service, app_key.project_id)
    image = ("a.png", archives.image_bytes(size=(8, 8)))
    nothing = app_client.post(f"/v1/models/{model_id}/predict", files=[("other", ("x.png", image[1]))])
    assert _problem(nothing, 422, "validation-error")["errors"] == [{"field": "body.images", "error": "Field required"}]
    _problem(app_client.post(f"/v1/models/{model_id}/predict", json={"images": []}), 415, "unsupported-media-type")
    _problem(app_client.post(f"/v1/models/{model_id}/predict", content=b"--b\r\nContent-Disposition: form-data; "
                             b'name="images"; filename="a.png"\r\n\r\nabc',
                             headers={"Content-Type": "multipart/form-data; boundary=b"}), 400, "incomplete-body")
    _problem(post(app_client, model_id, [image], top_k=0), 422, "validation-error")

    with app_service.variant(predict_max_images=2, predict_max_bytes=4000) as limited, \
            limited.client(app_key.key) as client:
        assert post(client, model_id, [image, image]).status_code == 200
        too_many = _problem(post(client, model_id, [image] * 3), 413, "too-many-images")
        assert "NAS_PREDICT_MAX_IMAGES" in too_many["detail"]
        large = ("large.png", archives.image_bytes(size=(40, 40)))
        assert len(large[1]) > 4000
        _problem(post(client, model_id, [large]), 413, "payload-too-large")
        # a chunked body without Content-Length is cut off once it passes the cap
        chunked = client.post(f"/v1/models/{model_id}/predict", content=iter([b"--b\r\n", b"x" * 5000]),
                              headers={"Content-Type": "multipart/form-data; boundary=b"})
        _problem(chunked, 413, "payload-too-large")


def test_the_rules_of_every_model_route(app_service, app_client, app_key):
    model_id = add_model(app_service, app_key.project_id)
    queued = add_model(app_service, app_key.project_id, status="queued")
    image = [("a.png", archives.image_bytes(size=(8, 8)))]
    assert post(app_client, model_id, image).status_code == 200
    _problem(post(app_client, queued, image), 409, "model-not-ready")
    _problem(post(app_client, "0" * 32, image), 404, "not-found")
    with app_service.client(app_service.new_key().key) as other:
        _problem(post(other, model_id, image), 404, "not-found")
    with app_service.client() as anonymous:
        _problem(post(anonymous, model_id, image), 401, "unauthorized")
    # no Idempotency-Key bookkeeping: a prediction creates nothing, so the same key may come again
    for _ in range(2):
        assert app_client.post(f"/v1/models/{model_id}/predict", headers={"Idempotency-Key": "again"},
                               files=[("images", image[0])]).status_code == 200


def test_loaded_models_stay_in_a_bounded_lru(app_service, app_key):
    first, second = (add_model(app_service, app_key.project_id, seed=seed) for seed in (1, 2))
    image = [("a.png", archives.image_bytes(size=(8, 8)))]
    with app_service.variant(predict_max_sessions=1) as service, service.client(app_key.key) as client:
        answers = [post(client, model_id, image).json()["data"][0]["top"] for model_id in (first, second, second)]
        assert [key[0] for key in predict_service.cached_models()] == [second]
        misses = predict_service.stats["misses"]
        assert post(client, second, image).json()["data"][0]["top"] == answers[1] == answers[2]
        assert predict_service.stats["misses"] == misses  # a hit: nothing read from the store
        assert post(client, first, image).json()["data"][0]["top"] == answers[0] != answers[1]
        assert [key[0] for key in predict_service.cached_models()] == [first]
        assert predict_service.stats["misses"] == misses + 1


# ------------------------------------------------------------------------------------------------ the CLI

def test_nas_models_predict_prints_each_images_top_classes(app_service, app_client, app_key, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli.commands import models as models_commands
    from cli.main import app
    from nas_client import AuthenticatedClient

    # The command's own generated client, its requests served by the in-process app instead of a socket.
    client = AuthenticatedClient(base_url="http://testserver", token=app_key.key)
    client.set_httpx_client(app_service.client(app_key.key))
    monkeypatch.setattr(models_commands, "connect", lambda url, api_key: client)
    monkeypatch.chdir(tmp_path)
    model_id = add_model(app_service, app_key.project_id)
    (tmp_path / "a.png").write_bytes(archives.image_bytes(size=(12, 12), seed=1))
    (tmp_path / "b.jpg").write_bytes(archives.image_bytes(size=(20, 8), fmt="JPEG", seed=2))
    expected = post(app_client, model_id, [(name, (tmp_path / name).read_bytes()) for name in ("a.png", "b.jpg")],
                    top_k=2).json()

    runner = CliRunner()
    printed = runner.invoke(app, ["models", "predict", model_id, "a.png", "b.jpg", "--top-k", "2"])
    assert printed.exit_code == 0, printed.output
    # data rows (the header's rules are heavy ones, ┃)
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in printed.stdout.splitlines()
             if line.count("│") == 5]
    assert cells == [[name if rank == 1 else "", str(rank), item["class"], f"{item['probability']:.4f}"]
                     for name, entry in zip(("a.png", "b.jpg"), expected["data"])
                     for rank, item in enumerate(entry["top"], start=1)]

    as_json = runner.invoke(app, ["models", "predict", model_id, "a.png", "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["data"][0]["top"][:2] == expected["data"][0]["top"]

    (tmp_path / "notes.png").write_text("not a picture")
    refused = runner.invoke(app, ["models", "predict", model_id, "notes.png"])
    assert refused.exit_code == 1 and "error: 422 invalid-image: 1 of 1 images cannot be used (body.images[0]: " \
        in refused.stderr
    missing = runner.invoke(app, ["models", "predict", "0" * 32, "a.png"])
    assert missing.exit_code == 1 and "error: 404 not-found: model not found" in missing.stderr


# ------------------------------------------------------------------------------------------------ a trained model

@pytest.mark.slow
def test_a_trained_models_predictions_reproduce_its_test_accuracy(app_service, app_client, app_key):
    dataset, zip_bytes = tiny_dataset(app_client, drain=app_service.drain)
    experiment_id, _ = add_experiment(app_service, project_id=app_key.project_id, dataset_id=dataset["id"],
                                      trials=[{"status": "succeeded", "val_accuracy": 0.5, "params": 500}])
    created = app_client.post(f"/v1/experiments/{experiment_id}/models", json={"epochs": 2}).json()
    app_service.drain()
    model = app_client.get(f"/v1/models/{created['id']}").json()
    assert model["status"] == "ready", model["detail"]

    images, names = held_out_images(app_service, dataset, zip_bytes)
    sent = [(f"{index}.png", encoded(image)) for index, image in enumerate(images)]
    body = post(app_client, model["id"], sent, top_k=len(TINY_CLASSES)).json()
    top1 = [entry["top"][0]["class"] for entry in body["data"]]
    assert np.mean([predicted == name for predicted, name in zip(top1, names, strict=True)]) == model["test_accuracy"]
    expected = reference(app_client, model["id"], images)
    for entry, probabilities in zip(body["data"], expected, strict=True):
        assert sorted(as_probabilities(entry).values(), reverse=True) == pytest.approx(
            sorted(probabilities, reverse=True), abs=1e-5)
