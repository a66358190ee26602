"""Datasets over HTTP, in process: upload → ingestion (the worker's task, run by the test) → ready/failed, list,
get, delete."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from tests import archives
from tests.service.helpers import upload, wait_for_dataset


def _ingested(service, client, data: bytes) -> dict:
    """Upload ``data``, run its ingestion, and return the dataset as the API then shows it."""
    dataset_id = upload(client, data).json()["id"]
    service.drain()
    return wait_for_dataset(client, dataset_id)


def _object_keys(service, dataset: dict, project_id: str) -> list[str]:
    return service.runtime.store.list_keys(f"{project_id}/datasets/{dataset['id']}/")


def _objects_left(service, dataset: dict, project_id: str, timeout_s: float = 5) -> list[str]:
    """The dataset's objects once its deletion had time to run: it follows the commit that failed the row."""
    deadline = time.monotonic() + timeout_s
    while (keys := _object_keys(service, dataset, project_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return keys


def test_upload_ingests_to_ready_and_stores_shards_then_lists_gets_deletes(app_service, app_client, app_key):
    data = archives.make_image_folder_zip(classes={"cat": 7, "dog": 6}, size=(24, 20))
    response = upload(app_client, data, name="pets")
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] == "processing" and created["name"] == "pets"
    assert created["sha256"] == hashlib.sha256(data).hexdigest() and created["size_bytes"] == len(data)

    app_service.drain()
    ready = wait_for_dataset(app_client, created["id"])
    assert ready["status"] == "ready", ready
    assert ready["num_images"] == 13
    assert ready["classes"] == [{"name": "cat", "count": 7}, {"name": "dog", "count": 6}]
    assert ready["image"]["channels"] == 3 and ready["image"]["height"] == ready["image"]["width"] <= 16
    assert sum(ready["splits"].values()) == 13 and min(ready["splits"].values()) >= 1
    assert ready["errors"] == []

    keys = _object_keys(app_service, created, app_key.project_id)
    prefix = f"{app_key.project_id}/datasets/{created['id']}/"
    assert {prefix + "manifest.json", prefix + "upload.zip", prefix + "split.npz"} <= set(keys)
    manifest = json.loads(app_service.runtime.store.read_bytes(prefix + "manifest.json"))
    assert manifest["upload_sha256"] == created["sha256"] and manifest["num_images"] == 13

    listed = app_client.get("/v1/datasets", params={"limit": 10}).json()
    assert listed["total"] == 1 and listed["data"][0]["id"] == created["id"]

    assert app_client.delete(f"/v1/datasets/{created['id']}").status_code == 204
    assert app_client.get(f"/v1/datasets/{created['id']}").status_code == 404
    assert _object_keys(app_service, created, app_key.project_id) == []


def test_grayscale_in_a_wrapper_folder_stays_one_channel(app_service, app_client):
    data = archives.make_image_folder_zip(classes={"a": 5, "b": 5}, mode="L", wrapper="my-data")
    ready = _ingested(app_service, app_client, data)
    assert ready["status"] == "ready", ready
    assert ready["image"]["channels"] == 1 and [c["name"] for c in ready["classes"]] == ["a", "b"]


def test_list_is_paginated(app_client):
    ids = [upload(app_client, archives.make_image_folder_zip(seed=seed)).json()["id"] for seed in range(3)]
    first = app_client.get("/v1/datasets", params={"limit": 2, "offset": 0}).json()
    second = app_client.get("/v1/datasets", params={"limit": 2, "offset": 2}).json()
    assert first["total"] == second["total"] == 3
    assert len(first["data"]) == 2 and len(second["data"]) == 1
    assert {d["id"] for d in first["data"] + second["data"]} == set(ids)


REJECTED = {
    "zip-slip-dotdot": lambda: archives.zip_slip("dotdot"),
    "zip-slip-inner-dotdot": lambda: archives.zip_slip("inner_dotdot"),
    "zip-slip-absolute": lambda: archives.zip_slip("absolute"),
    "zip-slip-drive-letter": lambda: archives.zip_slip("drive_backslash"),
    "zip-slip-backslash": lambda: archives.zip_slip("backslash"),
    "symlink": archives.symlink_zip,
    "encrypted": archives.encrypted_zip,
    "nul-in-a-member-name": archives.nul_name_zip,
    "nested-archive": archives.nested_zip,
    "bomb-by-ratio": archives.bomb_ratio_zip,
    "bomb-by-member-count": lambda: archives.many_members_zip(201),  # the suite's settings allow 200 members
    "empty-class": archives.empty_class_zip,
    "single-class": archives.single_class_zip,
    "not-a-zip": archives.not_a_zip,
    "decodes-to-too-many-pixels": archives.decode_amplification_zip,
    "class-names-in-two-unicode-forms": archives.normalisation_twins_zip,
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_bad_archive_fails_with_report_and_stores_nothing(app_service, app_client, app_key, case):
    response = upload(app_client, REJECTED[case]())
    assert response.status_code == 202, response.text
    app_service.drain()
    failed = wait_for_dataset(app_client, response.json()["id"])
    assert failed["status"] == "failed", failed
    assert failed["errors"] and all("error" in item for item in failed["errors"]) and failed["detail"]
    assert failed["num_images"] is None and failed["splits"] is None
    assert _objects_left(app_service, failed, app_key.project_id) == []


SKIPPED_FILES = {
    "text-as-png": (archives.text_as_png_zip, "cat/notes.png", "not an image"),
    "truncated-jpeg": (archives.truncated_jpeg_zip, "dog/broken.jpg", "truncated"),
    # The limit a report cites is the service's setting, not Pillow's own threshold.
    "pixel-bomb": (archives.pixel_bomb_zip, "cat/huge.png", "the per-image limit NAS_MAX_IMAGE_PIXELS = 40000000"),
}


@pytest.mark.parametrize("case", sorted(SKIPPED_FILES))
def test_bad_file_is_skipped_and_reported(app_service, app_client, case):
    build, bad_file, reason = SKIPPED_FILES[case]
    ready = _ingested(app_service, app_client, build())
    assert ready["status"] == "ready", ready
    assert ready["num_images"] == 12
    assert [item["file"] for item in ready["errors"]] == [bad_file]
    assert reason in ready["errors"][0]["error"], ready["errors"]


def test_a_small_zip_that_decodes_to_billions_of_pixels_fails_at_once_naming_the_limit(app_service, app_client):
    data = archives.decode_amplification_zip()  # 22 kB; 60 valid PNGs of 6300×6300, 2.4 G pixels in all
    started = time.monotonic()
    failed = _ingested(app_service, app_client, data)
    assert failed["status"] == "failed", failed
    assert time.monotonic() - started < 30  # decoding them all would take minutes of worker time
    assert "NAS_MAX_DATASET_PIXELS = 2000000000" in failed["detail"], failed["detail"]
    assert failed["errors"][0] == {"file": None, "error": "60 images declare 2381400000 pixels in all, more than the "
                                                          "limit NAS_MAX_DATASET_PIXELS = 2000000000; nothing was "
                                                          "decoded"}


def test_class_names_differing_only_in_unicode_normalisation_fail_the_dataset(app_service, app_client):
    failed = _ingested(app_service, app_client, archives.normalisation_twins_zip())
    assert failed["status"] == "failed", failed
    assert "'cafe\\u0301' and 'caf\\xe9'" in failed["detail"] and "normalisation" in failed["detail"]
    assert sorted(item["file"] for item in failed["errors"]) == sorted(["caf\u00e9/", "cafe\u0301/"])


def test_duplicate_images_are_kept_once_and_never_straddle_splits(app_service, app_client, app_key):
    copies = {f"cat/copy-{index}.png": "cat/cat_000.png" for index in range(6)}
    copies["dog/also-a-cat.png"] = "cat/cat_001.png"  # one image in two classes: its label is ambiguous
    data = archives.make_image_folder_zip(classes={"cat": 8, "dog": 8}, duplicates=copies)
    ready = _ingested(app_service, app_client, data)
    assert ready["status"] == "ready", ready
    assert ready["classes"] == [{"name": "cat", "count": 7}, {"name": "dog", "count": 8}]
    errors = {item["file"]: item["error"] for item in ready["errors"]}
    assert sorted(errors) == sorted([*copies, "cat/cat_001.png"])
    assert all(errors[name] == "duplicate of cat/cat_000.png (same bytes); skipped, one copy kept"
               for name in copies if name.startswith("cat/"))
    assert "dog/also-a-cat.png (class 'dog')" in errors["cat/cat_001.png"]
    assert "cat/cat_001.png (class 'cat')" in errors["dog/also-a-cat.png"]

    from nas_core.data import unpack_dataset

    store, prefix = app_service.runtime.store, f"{app_key.project_id}/datasets/{ready['id']}/"
    tensors = unpack_dataset(json.loads(store.read_bytes(prefix + "manifest.json")),
                             lambda name: store.read_bytes(prefix + name))
    content = {part: [tensors.images[index].numpy().tobytes() for index in tensors.split[part].tolist()]
               for part in ("train", "val", "test")}
    every = [image for part in content.values() for image in part]
    assert len(every) == len(set(every)) == 15  # no content twice, so none in two splits


def test_the_list_of_bad_files_is_capped_and_counts_the_rest():
    from api.services.datasets import MAX_LISTED_ERRORS, capped_errors

    errors = [{"file": f"cat/notes-{index:05d}.png", "error": "not an image"} for index in range(MAX_LISTED_ERRORS + 7)]
    capped = capped_errors(errors)
    assert capped[:MAX_LISTED_ERRORS] == errors[:MAX_LISTED_ERRORS] and len(capped) == MAX_LISTED_ERRORS + 1
    assert capped[-1] == {"file": None, "error": f"7 more files with errors are not listed (the first "
                                                 f"{MAX_LISTED_ERRORS} are)"}
    assert capped_errors(errors[:MAX_LISTED_ERRORS]) == errors[:MAX_LISTED_ERRORS]


def test_another_projects_dataset_is_not_found_on_get_and_delete(app_service, app_client):
    dataset_id = upload(app_client, archives.make_image_folder_zip()).json()["id"]
    with app_service.client(app_service.new_key().key) as other:
        for response in (other.get(f"/v1/datasets/{dataset_id}"), other.delete(f"/v1/datasets/{dataset_id}")):
            assert response.status_code == 404
            assert response.headers["content-type"] == "application/problem+json"
        assert other.get("/v1/datasets").json() == {"data": [], "total": 0}
    assert app_client.get(f"/v1/datasets/{dataset_id}").status_code == 200  # the owner still has it
    app_service.drain()
    wait_for_dataset(app_client, dataset_id)


def test_upload_without_file_part_or_not_multipart_is_rejected(app_client):
    missing = app_client.post("/v1/datasets", files={"name": (None, "x")})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "body.file"
    not_multipart = app_client.post("/v1/datasets", content=b"PK...", headers={"content-type": "application/zip"})
    assert not_multipart.status_code == 415
    assert not_multipart.headers["content-type"] == "application/problem+json"
    too_long = upload(app_client, archives.make_image_folder_zip(), name="n" * 201)
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "body.name"
    assert app_client.get("/v1/datasets").json()["total"] == 0


def test_a_nul_in_a_member_name_fails_the_dataset_at_once_with_a_readable_report(app_service, app_client):
    # PostgreSQL text cannot hold NUL: what is stored of the archive's names has its control characters escaped.
    failed = _ingested(app_service, app_client, archives.nul_name_zip())
    assert failed["status"] == "failed", failed
    assert "\x00" not in failed["detail"] and "cat/evil\\x00.png" in failed["detail"], failed["detail"]
    assert {"file": "cat/evil\\x00.png", "error": "NUL byte in member name"} in failed["errors"]


@pytest.mark.parametrize("cut", ["half-the-file", "no-closing-boundary"])
def test_a_multipart_body_cut_short_is_refused_at_the_edge(app_client, cut):
    data = archives.make_image_folder_zip()
    head = (b'--cut\r\nContent-Disposition: form-data; name="file"; filename="d.zip"\r\n'
            b"Content-Type: application/zip\r\n\r\n")
    body = head + (data[:len(data) // 2] if cut == "half-the-file" else data + b"\r\n")
    response = app_client.post("/v1/datasets", content=body,
                               headers={"Content-Type": "multipart/form-data; boundary=cut"})
    assert response.status_code == 400 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/incomplete-body"
    assert app_client.get("/v1/datasets").json()["total"] == 0


def test_a_stored_upload_goes_with_a_transaction_that_rolls_back(app_service, app_key, tmp_path):
    """The upload is stored before its row commits; a rollback (a lost Idempotency-Key race) must not orphan it."""
    from api.orm import Project
    from api.services import datasets as datasets_service

    data = archives.make_image_folder_zip(classes={"ring": 3, "dot": 3}, size=(16, 16))
    path = tmp_path / "upload.zip"
    path.write_bytes(data)
    received = datasets_service.ReceivedUpload(path=path, filename="upload.zip", size_bytes=len(data),
                                               sha256=hashlib.sha256(data).hexdigest())
    store = app_service.runtime.store
    for commit in (False, True):
        session = app_service.runtime.sessionmaker()
        try:
            dataset = datasets_service.create_dataset(session=session, store=store, upload=received,
                                                      project=session.get(Project, app_key.project_id), name=None)
            session.flush()
            prefix = dataset.storage_prefix
            assert store.list_keys(prefix)
            if commit:
                session.commit()
            session.get(Project, app_key.project_id)  # a new transaction, then its rollback
            session.rollback()
            assert bool(store.list_keys(prefix)) is commit, commit
        finally:
            session.close()
