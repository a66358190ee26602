"""The object store goes away while a final model is built: the model is never `ready` with a missing or partial
file, and it is built again once the store is back.

Each outage test gives the model job an object store of its own: a moto S3 server on a free port, holding a copy of
the dataset in a private bucket, that the test stops and starts again on the same port. moto keeps its buckets in
the test process (its backends are module state), so a restarted server serves the same objects — like a MinIO
restart with its disk intact — and the test asserts that rather than re-uploading. The stack's own moto server
shares that state but is never stopped, so other tests are not disturbed.
"""

from __future__ import annotations

import errno
import hashlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import urllib3
from minio.error import S3Error, ServerError
from sqlalchemy.exc import OperationalError
from urllib3.exceptions import MaxRetryError, NewConnectionError

from api.orm import Dataset, Experiment, Model
from api.services.models import build as service
from api.services.models.artifacts import ARTIFACT_FILES
from api.services.models.requests import create_model
from api.settings import Settings
from api.storage import ObjectNotFound, S3Store
from nas_core.errors import InvalidSearchSpace
from tests.service.helpers import (Cell, add_experiment, api_command, free_port, ready_dataset, start_process,
                                   stop_process, wait_for)

TF_FORMATS = {"savedmodel", "tflite", "tflite_int8"}  # NAS_TF_EXPORT is off in the suite: every other format is made


# ------------------------------------------------------------------------------------------------ classification

def _s3_error(status: int, code: str) -> S3Error:
    return S3Error(urllib3.HTTPResponse(status=status), code, "message", "/bucket/key", "req", "host")


def _chained(error: BaseException, cause: BaseException, *, suppress: bool = False) -> BaseException:
    try:
        try:
            raise cause
        except BaseException:
            if suppress:
                raise error from None
            raise error  # noqa: B904 -- an implicit context is the case under test
    except BaseException as raised:
        return raised


@pytest.mark.parametrize("error", [
    _s3_error(503, "SlowDown"), _s3_error(500, "InternalError"), ServerError("bad gateway", 502),
    MaxRetryError(None, "/bucket/key", NewConnectionError(None, "Connection refused")),
    ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), ConnectionResetError(),
    OSError(errno.EHOSTUNREACH, "No route to host"), TimeoutError(),
    OperationalError("UPDATE models", {}, Exception("server closed the connection unexpectedly")),
    service.ArtifactNotStored("holds 10 bytes, expected 20"),
    _chained(RuntimeError("upload failed"), ConnectionResetError()),
], ids=lambda error: type(error).__name__)
def test_outages_are_transient(error):
    assert service.is_transient(error)


@pytest.mark.parametrize("error", [
    _s3_error(404, "NoSuchKey"), _s3_error(403, "AccessDenied"), ServerError("teapot", 418),
    ObjectNotFound("p/datasets/d/manifest.json"), ValueError("width must be positive"),
    InvalidSearchSpace("no such op"), FileNotFoundError(errno.ENOENT, "model.onnx"), MemoryError(),
    OSError(errno.ENOSPC, "No space left on device"), RuntimeError("ONNX logits differ from PyTorch"),
    _chained(RuntimeError("export failed"), ConnectionResetError(), suppress=True),
], ids=lambda error: type(error).__name__)
def test_failures_of_the_model_itself_are_not_transient(error):
    assert not service.is_transient(error)


def test_retry_backoff_doubles_and_is_capped_below_the_queued_staleness_period():
    settings = Settings(model_retry_backoff_s=5, model_queued_stale_after_s=30)
    assert [service.retry_delay_s(settings=settings, attempt=n) for n in range(1, 5)] == [5, 10, 20, 30]


# ------------------------------------------------------------------------------------------------ outages

@pytest.fixture
def postgres_only(stack):
    if stack.kind != "postgres":
        pytest.skip("fault injection targets the PostgreSQL + Redis + S3 deployment")


@dataclass
class PrivateS3:
    """A moto S3 server the test can stop and start again on the same port, and a store on its bucket."""

    port: int
    bucket: str
    server: object = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        self.server = None

    def store(self) -> S3Store:
        return S3Store(bucket=self.bucket, endpoint=self.endpoint, access_key="test", secret_key="test",
                       secure=False)

    def env(self) -> dict[str, str]:
        return {"NAS_STORAGE_URL": f"s3://{self.bucket}", "NAS_S3_ENDPOINT": self.endpoint,
                "NAS_S3_ACCESS_KEY": "test", "NAS_S3_SECRET_KEY": "test", "NAS_S3_SECURE": "false"}


@pytest.fixture
def private_s3(stack, postgres_only) -> Iterator[PrivateS3]:
    s3 = PrivateS3(port=free_port(), bucket=f"nas-outage-{secrets.token_hex(4)}")
    s3.start()
    s3.store().client.make_bucket(s3.bucket)
    try:
        yield s3
    finally:
        if s3.server is not None:
            s3.stop()


def copy_dataset(stack, private_s3: PrivateS3, dataset_id: str) -> list[str]:
    """Put the dataset's objects into the private bucket; returns their keys."""
    with stack.runtime.unit_of_work() as session:
        prefix = session.get(Dataset, dataset_id).storage_prefix
    keys = stack.runtime.store.list_keys(prefix)
    target = private_s3.store()
    for key in keys:
        target.put_bytes(key, stack.runtime.store.read_bytes(key))
    assert keys
    return keys


def queued_model(stack, *, project_id: str, experiment_id: str, epochs: int) -> Model:
    """A model row that no worker was told about (the test runs the job itself)."""
    with stack.runtime.unit_of_work() as session:
        model = create_model(session=session, settings=stack.settings, project_id=project_id,
                             experiment=session.get(Experiment, experiment_id), epochs=epochs)
        session.info.pop("after_commit")
    return model


def model_row(stack, model_id: str) -> Model:
    with stack.runtime.unit_of_work() as session:
        return session.get(Model, model_id)


class StopsAfterFirstUpload:
    """The private S3 store, with the server stopped right after the first artifact landed: a real outage
    mid-upload (the next request is refused by the network), leaving one partial attempt behind."""

    def __init__(self, private_s3: PrivateS3) -> None:
        self._store, self._s3, self.uploads = private_s3.store(), private_s3, 0

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def put_file(self, key, path) -> None:
        self._store.put_file(key, path)
        self.uploads += 1
        if self.uploads == 1:
            self._s3.stop()


@pytest.mark.stack
def test_an_outage_mid_upload_requeues_the_model_and_the_next_attempt_cleans_up(stack, api_key, private_s3):
    with stack.client(api_key.key) as client:
        dataset = ready_dataset(client)
    dataset_keys = copy_dataset(stack, private_s3, dataset["id"])
    experiment_id, _ = add_experiment(stack, project_id=api_key.project_id, dataset_id=dataset["id"],
                                      trials=[{"status": "succeeded", "val_accuracy": 0.5, "params": 500}])
    model = queued_model(stack, project_id=api_key.project_id, experiment_id=experiment_id, epochs=1)
    settings = stack.settings.model_copy(update={"model_max_attempts": 3, "model_retry_backoff_s": 7})
    flaky = StopsAfterFirstUpload(private_s3)

    with pytest.raises(service.ModelJobDeferred) as deferred:
        service.run_model_job(unit_of_work=stack.runtime.unit_of_work, store=flaky, settings=settings,
                              model_id=model.id)
    assert deferred.value.attempt == 1 and deferred.value.retry_in_s == 7
    assert flaky.uploads == 1 and private_s3.server is None  # the outage hit between two artifacts
    row = model_row(stack, model.id)
    assert (row.status, row.attempts, row.lease_token, row.artifacts) == ("queued", 1, None, [])
    assert "object store unavailable" in row.detail and "MaxRetryError" in row.detail

    private_s3.start()  # same port, same buckets: the restarted server kept its objects
    store = private_s3.store()
    assert store.list_keys(dataset_keys[0].rsplit("/", 2)[0] + "/") == sorted(dataset_keys)
    partial = store.list_keys(row.storage_prefix)
    assert partial == [row.storage_prefix + "attempt-1/model.onnx"]  # could not be deleted while the store was down

    assert service.run_model_job(unit_of_work=stack.runtime.unit_of_work, store=store, settings=settings,
                                 model_id=model.id) == "ready"
    row = model_row(stack, model.id)
    assert row.status == "ready" and row.attempts == 2 and row.detail is None
    expected = sorted(row.storage_prefix + "attempt-2/" + file.filename
                      for format, file in ARTIFACT_FILES.items() if format not in TF_FORMATS)
    assert store.list_keys(row.storage_prefix) == expected  # the partial attempt is gone
    for artifact in row.artifacts:
        assert hashlib.sha256(store.read_bytes(artifact["object"])).hexdigest() == artifact["sha256"]


@pytest.mark.stack
def test_an_outage_on_the_last_attempt_fails_the_model_naming_the_outage(stack, api_key, private_s3):
    with stack.client(api_key.key) as client:
        dataset = ready_dataset(client)
    copy_dataset(stack, private_s3, dataset["id"])
    experiment_id, _ = add_experiment(stack, project_id=api_key.project_id, dataset_id=dataset["id"],
                                      trials=[{"status": "succeeded", "val_accuracy": 0.5, "params": 500}])
    model = queued_model(stack, project_id=api_key.project_id, experiment_id=experiment_id, epochs=1)
    private_s3.stop()
    settings = stack.settings.model_copy(update={"model_max_attempts": 1})
    assert service.run_model_job(unit_of_work=stack.runtime.unit_of_work, store=private_s3.store(),
                                 settings=settings, model_id=model.id) == "failed"
    row = model_row(stack, model.id)
    assert row.status == "failed" and row.artifacts == [] and row.lease_token is None
    assert "object store unavailable" in row.detail and "gave up after 1 attempts" in row.detail


@pytest.fixture
def outage_cell(stack, private_s3, tmp_path) -> Iterator[Cell]:
    """An API and a models worker on a private broker namespace whose object store is ``private_s3``."""
    env = dict(stack.env, **private_s3.env(), NAS_DATABASE_URL=stack.settings.database_url,
               NAS_DATA_DIR=str(tmp_path), NAS_BROKER_KEY_PREFIX=f"nas-outage-{secrets.token_hex(4)}:",
               NAS_MODEL_HEARTBEAT_S="0.3", NAS_MODEL_STALE_AFTER_S="3", NAS_MODEL_RETRY_BACKOFF_S="2",
               NAS_MODEL_MAX_ATTEMPTS="4")
    port = free_port()
    cell = Cell(env=env, base_url=f"http://127.0.0.1:{port}", log_dir=tmp_path)
    cell.processes.append(start_process(api_command(port), env, tmp_path / "api.log"))
    try:
        wait_for(lambda: _answers(cell), timeout_s=30, what="the cell's API", cell=cell)
        yield cell
    finally:
        for process in cell.processes:
            stop_process(process)


def _answers(cell: Cell) -> bool:
    try:
        return httpx.get(cell.base_url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.stack
def test_the_store_down_during_a_model_job_then_back_yields_a_ready_model(stack, api_key, private_s3,
                                                                           outage_cell):
    cell = outage_cell
    with stack.client(api_key.key) as stack_client:
        dataset = ready_dataset(stack_client)
    copy_dataset(stack, private_s3, dataset["id"])
    experiment_id, _ = add_experiment(stack, project_id=api_key.project_id, dataset_id=dataset["id"],
                                      trials=[{"status": "succeeded", "val_accuracy": 0.5, "params": 500}])
    cell.start_worker("outage")
    with cell.client(api_key.key) as client:
        created = client.post(f"/v1/experiments/{experiment_id}/models", json={"epochs": 40})
        assert created.status_code == 202, created.text
        model_id = created.json()["id"]
        wait_for(lambda: client.get(f"/v1/models/{model_id}").json()["status"] == "running", timeout_s=60,
                 what="the model job to start", cell=cell)
        time.sleep(1.0)  # into training: the dataset is loaded, the uploads are still ahead
        private_s3.stop()

        def requeued() -> dict | None:
            body = client.get(f"/v1/models/{model_id}").json()
            assert body["status"] not in ("ready", "failed") and body["artifacts"] == [], body  # not while down
            return body if body["status"] == "queued" else None

        body = wait_for(requeued, timeout_s=60, what="the interrupted attempt to be requeued", cell=cell)
        assert body["attempts"] == 1 and "object store unavailable" in body["detail"], body
        private_s3.start()

        deadline = time.monotonic() + 60
        while (body := client.get(f"/v1/models/{model_id}").json())["status"] not in ("ready", "failed"):
            assert time.monotonic() < deadline, cell.logs()
            time.sleep(0.3)
        assert body["status"] == "ready", (body["detail"], cell.logs())
        assert body["attempts"] == 2 and sorted(a["format"] for a in body["artifacts"]) == sorted(
            set(ARTIFACT_FILES) - TF_FORMATS)
        row = model_row(stack, model_id)
        store = private_s3.store()
        assert store.list_keys(row.storage_prefix) == sorted(a["object"] for a in row.artifacts)
        for artifact in row.artifacts:
            data = store.read_bytes(artifact["object"])
            assert len(data) == artifact["size"]
            assert hashlib.sha256(data).hexdigest() == artifact["sha256"]
        onnx = next(a for a in row.artifacts if a["format"] == "onnx")
        download = client.get(f"/v1/models/{model_id}/artifacts/onnx", follow_redirects=True)
        assert download.status_code == 200 and hashlib.sha256(download.content).hexdigest() == onnx["sha256"]
    assert "retry" in cell.logs().lower()
