"""Dataset thumbnails (``GET /v1/datasets/{id}/samples``, in process) and artifact downloads streamed through the
API from S3 (on the stack)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets

import numpy as np
import pytest
from PIL import Image

from api.orm import Dataset
from api.storage import dataset_prefix
from nas_core.data import unpack_dataset
from tests import archives
from tests.service.helpers import add_experiment, ingested, wait_for_model


def stored_split(service, project_id: str, dataset: dict, part: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A split's images (N, C, H, W), labels and the class names as stored, read independently of the API."""
    prefix = dataset_prefix(project_id, dataset["id"])
    store = service.runtime.store
    tensors = unpack_dataset(json.loads(store.read_bytes(prefix + "manifest.json")),
                             lambda name: store.read_bytes(prefix + name))
    index = tensors.split[part]
    return tensors.images[index].numpy(), tensors.labels[index].numpy(), tensors.classes


def test_samples_are_the_first_train_images_of_each_class(app_service, app_client, app_key):
    dataset = ingested(app_client, archives.make_image_folder_zip(classes={"cat": 9, "dog": 8, "eel": 7}, size=(14, 12),
                                                               seed=secrets.randbelow(1000)),
                    drain=app_service.drain)
    images, labels, classes = stored_split(app_service, app_key.project_id, dataset, "train")
    assert classes == ["cat", "dog", "eel"]

    response = app_client.get(f"/v1/datasets/{dataset['id']}/samples", params={"per_class": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["data"]) == 6
    assert [sample["class"] for sample in body["data"]] == ["cat", "cat", "dog", "dog", "eel", "eel"]
    geometry = dataset["image"]
    for sample in body["data"]:
        label = classes.index(sample["class"])
        # The first per_class train images of the class, in train-split order.
        assert sample["index"] in np.flatnonzero(labels == label)[:2].tolist()
        image = Image.open(io.BytesIO(base64.b64decode(sample["png"], validate=True)))
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.size == (geometry["width"], geometry["height"])
        assert np.array_equal(np.asarray(image).transpose(2, 0, 1), images[sample["index"]])

    default = app_client.get(f"/v1/datasets/{dataset['id']}/samples").json()
    per_class = {name: int((labels == i).sum()) for i, name in enumerate(classes)}
    assert default["total"] == sum(min(4, count) for count in per_class.values())
    # Held-out images never leave the API: no sample's pixels are those of a test-split image.
    held_out, _, _ = stored_split(app_service, app_key.project_id, dataset, "test")
    for sample in default["data"]:
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(sample["png"])))).transpose(2, 0, 1)
        assert np.array_equal(pixels, images[sample["index"]])
        assert not any(np.array_equal(pixels, image) for image in held_out)


def test_grayscale_samples_stay_single_channel(app_service, app_client, app_key):
    dataset = ingested(app_client, archives.make_image_folder_zip(classes={"a": 5, "b": 5}, mode="L"),
                    drain=app_service.drain)
    images, _, _ = stored_split(app_service, app_key.project_id, dataset, "train")
    body = app_client.get(f"/v1/datasets/{dataset['id']}/samples", params={"per_class": 16}).json()
    assert body["total"] == len(images)  # fewer train images than per_class: all of them
    for sample in body["data"]:
        image = Image.open(io.BytesIO(base64.b64decode(sample["png"])))
        assert image.mode == "L" and np.array_equal(np.asarray(image), images[sample["index"]][0])


def test_samples_are_scoped_validated_and_wait_for_ingestion(app_service, app_client, app_key):
    dataset = ingested(app_client, archives.make_image_folder_zip(), drain=app_service.drain)
    path = f"/v1/datasets/{dataset['id']}/samples"
    with app_service.client(app_service.new_key().key) as other:
        response = other.get(path)
        assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"
    assert app_client.get("/v1/datasets/no-such-dataset/samples").status_code == 404
    assert app_service.client().get(path).status_code == 401
    for bad in (0, 17, "many"):
        response = app_client.get(path, params={"per_class": bad})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "query.per_class"

    # A row still processing (never enqueued, so it stays that way).
    with app_service.runtime.unit_of_work() as session:
        processing = Dataset(project_id=app_key.project_id, name="pending", status="processing", sha256="0" * 64,
                             size_bytes=1, storage_prefix="unused/", errors=[])
        session.add(processing)
        session.flush()
        processing_id = processing.id
    response = app_client.get(f"/v1/datasets/{processing_id}/samples")
    assert response.status_code == 409 and response.json()["type"].endswith("dataset-not-ready")


@pytest.mark.slow
@pytest.mark.stack
@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_artifacts_stream_through_the_api_from_s3_when_asked(stack, client, api_key):
    dataset = ingested(client, archives.make_image_folder_zip(classes={"ant": 8, "bee": 8}))
    experiment_id, _ = add_experiment(stack, project_id=api_key.project_id, dataset_id=dataset["id"],
                                      trials=[{"status": "succeeded", "val_accuracy": 0.5, "params": 500}])
    created = client.post(f"/v1/experiments/{experiment_id}/models", json={"epochs": 1})
    assert created.status_code == 202, created.text
    model = wait_for_model(client, created.json()["id"])
    assert model["status"] == "ready", model["detail"]

    for artifact in model["artifacts"]:
        path = f"/v1/models/{model['id']}/artifacts/{artifact['format']}"
        streamed = client.get(path, params={"redirect": "false"})
        assert streamed.status_code == 200, streamed.text
        assert hashlib.sha256(streamed.content).hexdigest() == artifact["sha256"]
        assert int(streamed.headers["content-length"]) == artifact["size"]
        assert streamed.headers["content-disposition"].startswith("attachment; filename=")
    # The default stays a redirect to the store.
    redirected = client.get(f"/v1/models/{model['id']}/artifacts/onnx")
    assert redirected.status_code == 307 and "X-Amz-Expires=" in redirected.headers["location"]
    assert client.get(f"/v1/models/{model['id']}/artifacts/onnx", params={"redirect": "maybe"}).status_code == 422
