"""What the service tests share: processes of the real stack, the in-process service, HTTP and database shortcuts.

Test modules import from here, never from each other or from ``conftest`` (fixtures live there).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import numpy as np
import onnx
import psycopg
from anyio.from_thread import BlockingPortal
from fastapi import FastAPI
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from api.db import new_id, utcnow
from api.main import create_app
from api.orm import Dataset, Experiment, Model, Trial, TrialAttempt
from api.queue import RUN_TRIAL, create_celery
from api.repositories import experiments as experiments_repository
from api.runtime import Runtime
from api.services.keys import CreatedKey, create_api_key
from api.services.object_keys import model_prefix
from api.settings import Settings
from nas_core.data import IngestLimits, ingest_zip
from nas_core.export import preprocessing_dict
from nas_core.spec import ArchSpec, Candidate, StageSpec, TrainSpec
from tests import archives

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
POSTGRES_ADMIN_URL = os.environ.get("NAS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("NAS_TEST_REDIS", "redis://127.0.0.1:6379")
# Small limits keep the bad-input archives small and the suite fast.
TEST_LIMITS = {"NAS_MAX_UPLOAD_BYTES": str(2_000_000), "NAS_ZIP_MAX_MEMBERS": "200",
               "NAS_INGEST_TIME_LIMIT_S": "120", "NAS_INGEST_STALE_AFTER_S": "600", "NAS_MAX_RESOLUTION": "16",
               # Running trials notice cancel within a second; a dead worker is presumed dead after 30 s.
               "NAS_TRIAL_HEARTBEAT_S": "1", "NAS_TRIAL_STALE_AFTER_S": "30",
               # Starting TensorFlow costs every final model seconds; the tests that check those formats turn it on.
               "NAS_TF_EXPORT": "false"}

# How every deployment runs the API (Dockerfile, docker-compose.yml, `nas serve`): with the header-capped protocol.
HTTP_PROTOCOL = "api.http_protocol:HttpToolsProtocol"


# ------------------------------------------------------------------------------------------------ processes

def api_command(port: int) -> list[str]:
    return [str(BIN / "uvicorn"), "api.main:create_app", "--factory", "--http", HTTP_PROTOCOL, "--host", "127.0.0.1",
            "--port", str(port)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_env(data_dir: Path, **nas_settings: str) -> dict[str, str]:
    """This process's environment without its ``NAS_*`` variables, plus the suite's limits and ``nas_settings``:
    what every process of a stack (or a subprocess of the in-process service) runs with."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NAS_")}
    env.update(TEST_LIMITS, NAS_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.update(nas_settings)
    return env


def settings_from_env(env: dict[str, str]) -> Settings:
    with mock.patch.dict(os.environ, env):
        return Settings()


def start_process(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """``command`` in a process group of its own (so it and its children stop together), logging to ``log_path``."""
    log_file = open(log_path, "ab")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                            start_new_session=True)


def start_worker(env: dict[str, str], log_path: Path, *, queues: str, name: str) -> subprocess.Popen:
    """A solo ``celery worker`` for ``queues``, as deployed (one task at a time, no gossip)."""
    return start_process([str(BIN / "celery"), "-A", "worker.app", "worker", "-Q", queues, "-c", "1", "-P", "solo",
                          "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}@%h",
                          "--loglevel", "INFO"], env, log_path)


def start_api(env: dict[str, str], log_path: Path, *, port: int | None = None,
              timeout_s: float = 30) -> tuple[subprocess.Popen, str]:
    """uvicorn with ``env`` on ``port`` (a free one by default); returns it and its base URL once it answers."""
    port = port or free_port()
    process = start_process(api_command(port), env, log_path)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return process, base_url


def stop_processes(processes: list[subprocess.Popen], timeout_s: float = 15) -> None:
    """Stop processes together: SIGTERM to every group first, then one shared wait (SIGKILL after it), so a cell of
    an API and two workers costs one graceful shutdown, not three in a row."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def stop_process(process: subprocess.Popen) -> None:
    stop_processes([process])


def kill9(process: subprocess.Popen) -> None:
    """SIGKILL to the process's whole group: nothing of it gets to clean up."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_for(predicate: Callable[[], Any], *, timeout_s: float = 60, what: str = "condition",
             cell: Cell | None = None) -> Any:
    """Call ``predicate`` until it returns something truthy (returned); fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{cell.logs() if cell else ''}")


# ------------------------------------------------------------------------------------------------ HTTP shortcuts

def upload(client: httpx.Client, data: bytes, *, name: str | None = None, filename: str = "data.zip"
           ) -> httpx.Response:
    return client.post("/v1/datasets", files={"file": (filename, data, "application/zip")},
                       data={"name": name} if name else None)


def wait_for_dataset(client: httpx.Client, dataset_id: str, timeout_s: float = 120) -> dict:
    """Poll until the dataset leaves ``processing``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"/v1/datasets/{dataset_id}").json()
        if body["status"] != "processing":
            return body
        time.sleep(0.2)
    raise AssertionError(f"dataset {dataset_id} still processing after {timeout_s}s")


def ingested(client: httpx.Client, data: bytes, *, drain: Callable[[], object] | None = None) -> dict:
    """Upload the zip ``data`` and return the dataset once it is ready.

    ``drain``: runs the in-process service's captured ingestion (``AppService.drain``); without it, a stack's
    worker ingests and this polls.
    """
    dataset_id = upload(client, data).json()["id"]
    if drain is not None:
        drain()
    dataset = wait_for_dataset(client, dataset_id)
    assert dataset["status"] == "ready", dataset
    return dataset


def ready_dataset(client: httpx.Client, *, drain: Callable[[], object] | None = None, **kwargs) -> dict:
    """Upload a small two-class dataset and return it once ingested (``drain``: as for :func:`ingested`)."""
    data = archives.make_image_folder_zip(classes=kwargs.pop("classes", {"ring": 12, "dot": 12}), size=(16, 16),
                                          **kwargs)
    return ingested(client, data, drain=drain)


# Tiny networks on 16 px images: each trial trains in well under a second on one CPU thread.
TINY_SPACE = {"num_stages": [1, 2], "depth": 1, "width": {"low": 16, "high": 24}, "stem_width": 16, "kernel": 3,
              "se": False, "expansion": [1, 3], "train/batch_size": 16}
TERMINAL = {"succeeded", "failed", "canceled"}


def experiment_body(dataset_id: str, **overrides) -> dict:
    body = {"dataset_id": dataset_id, "strategy": "evolution", "budget": {"max_trials": 4, "epochs_per_trial": 2},
            "search_space": TINY_SPACE, "seed": 7, "auto_model": False}
    body.update(overrides)
    return body


def wait_for_status(client: httpx.Client, experiment_id: str, statuses: set[str], timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"/v1/experiments/{experiment_id}").json()
        if body["status"] in statuses:
            return body
        time.sleep(0.25)
    raise AssertionError(f"experiment {experiment_id} still {body['status']} after {timeout_s}s: {body}")


def all_trials(client: httpx.Client, experiment_id: str) -> list[dict]:
    return client.get(f"/v1/experiments/{experiment_id}/trials", params={"limit": 500}).json()["data"]


def wait_for_a_trained_epoch(client: httpx.Client, experiment_id: str, timeout_s: float = 60) -> None:
    """Until a running trial of the experiment has finished an epoch."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        trials = all_trials(client, experiment_id)
        if any(t["status"] == "running" and t["epochs"] for t in trials):
            return
        time.sleep(0.2)
    raise AssertionError(f"no trial started: {trials}")


def wait_until_trials(client: httpx.Client, experiment_id: str, *, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(all_trials(client, experiment_id)) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} trials after {timeout_s}s")


def wait_for_model(client: httpx.Client, model_id: str, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"/v1/models/{model_id}").json()
        if body["status"] in ("ready", "failed"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"model {model_id} not finished after {timeout_s}s: {body}")


# ------------------------------------------------------------------------------------------------ database shortcuts

# A candidate small enough that a final model of it trains, exports and verifies in seconds.
TINY = Candidate(arch=ArchSpec(stem_width=4, stages=(StageSpec(op="conv", depth=1, width=8, kernel=3),)),
                 train=TrainSpec(lr=1e-2, augment=0.0, batch_size=16))


def add_experiment(service, *, project_id: str, dataset_id: str, trials: list[dict]) -> tuple[str, list[str]]:
    """A finished experiment with the given trials (status, val_accuracy, params, feasible) of the tiny candidate,
    written straight to ``service``'s database (a stack or the in-process service)."""
    with service.runtime.unit_of_work() as session:
        experiment = Experiment(project_id=project_id, dataset_id=dataset_id, name="direct", status="succeeded",
                                strategy="random", budget={"max_trials": len(trials), "epochs_per_trial": 1},
                                seed=7, auto_model=False, finished_at=utcnow())
        session.add(experiment)
        session.flush()
        ids = []
        for number, values in enumerate(trials):
            trial = Trial(experiment_id=experiment.id, number=number, arch=TINY.to_dict(), arch_hash=TINY.hash(),
                          seed=1000 + number, **{"decisions": {}, **values})
            session.add(trial)
            session.flush()
            ids.append(trial.id)
        return experiment.id, ids


def trial_rows(service, experiment_id: str) -> list[Trial]:
    with service.runtime.unit_of_work() as session:
        return experiments_repository.all_trials(session, experiment_id)


def attempts_of(service, trial_id: str) -> list[TrialAttempt]:
    with service.runtime.unit_of_work() as session:
        return experiments_repository.attempts_for_trial(session, trial_id)


# ------------------------------------------------------------------------------------------------ cells

FAST_LEASES = {"NAS_TRIAL_HEARTBEAT_S": "0.5", "NAS_TRIAL_STALE_AFTER_S": "4", "NAS_TRIAL_REAPER_INTERVAL_S": "1",
               "NAS_TRIAL_MAX_ATTEMPTS": "2"}


@dataclass
class Cell:
    """An API and trial workers of one test on a private broker namespace, sharing a stack's database and store:
    killing one of its workers never disturbs other tests."""

    env: dict[str, str]
    base_url: str
    log_dir: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start_worker(self, name: str) -> subprocess.Popen:
        process = start_worker(self.env, self.log_dir / f"{name}.log", queues="trials,models",
                               name=f"{name}-{secrets.token_hex(3)}")
        self.processes.append(process)
        return process

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def send_trial(self, trial_id: str) -> None:
        create_celery(settings_from_env(self.env)).send_task(RUN_TRIAL.name, args=[trial_id], queue=RUN_TRIAL.queue)

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} -----\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.log_dir.glob("*.log")))


@contextmanager
def open_cell(stack, tmp_path: Path, **settings: str) -> Iterator[Cell]:
    """Run a cell on ``stack`` (data and logs under ``tmp_path``); its processes stop on exit.

    ``settings`` (``NAS_*`` variables) override the cell's, e.g. ``NAS_BROKER_URL`` to give it a broker of its own.
    """
    env = dict(stack.env, **FAST_LEASES)
    # Same database and objects as the stack, a private broker namespace.
    env.update(NAS_DATABASE_URL=stack.settings.database_url, NAS_STORAGE_URL=stack.settings.storage_url,
               NAS_DATA_DIR=str(tmp_path))
    if stack.kind == "postgres":
        env["NAS_BROKER_KEY_PREFIX"] = f"nas-cell-{secrets.token_hex(4)}:"
    env.update(settings)
    api, base_url = start_api(env, tmp_path / "api.log")
    result = Cell(env=env, base_url=base_url, log_dir=tmp_path, processes=[api])
    try:
        yield result
    finally:
        stop_processes(result.processes)


def running_trial_with_epochs(client: httpx.Client, experiment_id: str, *, attempt: int = 1):
    return lambda: next((t for t in all_trials(client, experiment_id)
                         if t["status"] == "running" and t["epochs"] and t["attempts"] == attempt), None)


# ------------------------------------------------------------------------------------------------ in process

class PortalTransport(httpx.BaseTransport):
    """A synchronous transport to an ASGI app, for a plain ``httpx.Client``: each request goes through httpx's own
    ``ASGITransport`` on the event loop that ``portal`` runs, one loop for all clients of the app, as in a server.
    An exception in the app is answered with a 500, as a server would."""

    def __init__(self, app: FastAPI, portal: BlockingPortal) -> None:
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # the body as bytes, which the event loop can read without this thread
        return self._portal.call(self._send, request)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self._asgi.handle_async_request(request)
        body = b"".join([chunk async for chunk in response.stream])
        return httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(body),
                              extensions=response.extensions)


@dataclass(frozen=True, slots=True)
class QueuedTask:
    """A task message the service enqueued after a commit: what a broker would have carried."""

    name: str
    args: list[Any]
    queue: str


@dataclass
class AppService:
    """The API of one backend in this process: the stack's settings, with every enqueued task captured in
    ``queued`` instead of sent. A test runs what a worker would with :meth:`drain`, so no broker or worker process
    is involved and nothing runs behind the test's back.

    ``env`` reaches the same database and objects from a subprocess (the CLI, Alembic); ``portal`` runs the event
    loop that serves every client's requests.
    """

    kind: str
    env: dict[str, str]
    settings: Settings
    runtime: Runtime
    app: FastAPI
    portal: BlockingPortal
    queued: list[QueuedTask] = field(default_factory=list)

    def new_key(self, project_name: str | None = None) -> CreatedKey:
        """A key of a new project (or of ``project_name``): tests isolate by project on the shared database."""
        with self.runtime.unit_of_work() as session:
            return create_api_key(session=session, project_name=project_name or f"p-{secrets.token_hex(6)}")

    def client(self, key: str | None = None) -> httpx.Client:
        """An HTTP client of the app, authenticated with ``key`` when given."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(transport=PortalTransport(self.app, self.portal), base_url="http://testserver",
                            headers=headers)

    def enqueue(self, task_name: str, *, args: list[Any], queue: str) -> None:
        """Stands in for :func:`api.queue.enqueue` (same signature): keeps the message instead of sending it."""
        self.queued.append(QueuedTask(name=task_name, args=list(args), queue=queue))

    def drain(self, *task_names: str, max_tasks: int = 1000) -> list[tuple[QueuedTask, Any]]:
        """Run queued tasks first in, first out, through the worker's own task bodies, the tasks they queue
        included, until none is left; with ``task_names``, only tasks of those names (the others stay queued).

        Returns each task run with its result. A task that raises fails the test (a worker would log it).
        """
        from api.queue import celery_app

        ran = []
        while (task := self._next(task_names)) is not None:
            if len(ran) >= max_tasks:
                raise AssertionError(f"more than {max_tasks} tasks: {[t.name for t, _ in ran[-10:]]} ...")
            ran.append((task, celery_app.tasks[task.name](*task.args)))
        return ran

    def _next(self, task_names: tuple[str, ...]) -> QueuedTask | None:
        for index, task in enumerate(self.queued):
            if not task_names or task.name in task_names:
                return self.queued.pop(index)
        return None

    @contextmanager
    def variant(self, **overrides: Any) -> Iterator[AppService]:
        """Another API process on the same database, store and task queue, with some settings changed (quotas,
        rate limits); its engine is closed on exit."""
        settings = self.settings.model_copy(update=overrides)
        service = AppService.of(create_app(settings), kind=self.kind, env=self.env, portal=self.portal,
                                queued=self.queued)
        try:
            yield service
        finally:
            service.runtime.engine.dispose()

    @classmethod
    def of(cls, app: FastAPI, **fields: Any) -> AppService:
        """The service of ``app``: requests, drained tasks and a test's own rows share the app's engine, sessions
        and store."""
        state = app.state
        runtime = Runtime(settings=state.settings, engine=state.engine, sessionmaker=state.sessionmaker,
                          store=state.store)
        return cls(settings=state.settings, runtime=runtime, app=app, **fields)


# ------------------------------------------------------------------------------------------------ databases

def create_database(name: str) -> str:
    """A new, empty PostgreSQL database ``name`` on the test server; returns its SQLAlchemy URL."""
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    admin_url = psycopg.conninfo.conninfo_to_dict(POSTGRES_ADMIN_URL)
    return (f"postgresql+psycopg://{admin_url.get('user', 'postgres')}@{admin_url.get('host')}:"
            f"{admin_url.get('port', 5432)}/{name}")


def drop_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_broker(token: str) -> dict[str, str]:
    """A Redis broker namespace of its own (random db and key prefix) on the test Redis."""
    return {"NAS_BROKER_URL": f"{REDIS_URL}/{secrets.randbelow(15) + 1}", "NAS_BROKER_KEY_PREFIX": f"nas-test-{token}:"}


# ------------------------------------------------------------------------------------------------ models

TINY_CLASSES = {"ant": 20, "bee": 20, "cow": 20}  # the images per class of tiny_dataset's upload
MODEL_CLASSES = ["ant", "bee", "cow", "dog", "eel", "fox", "gnu"]  # add_model's default classes


def tiny_dataset(client, *, drain=None) -> tuple[dict, bytes]:
    """Upload three classes of 20 images and return the ready dataset and the zip; ``drain`` as in
    :func:`ready_dataset`."""
    data = archives.make_image_folder_zip(classes=TINY_CLASSES, seed=secrets.randbelow(1000))
    response = upload(client, data, name="tiny")
    assert response.status_code == 202, response.text
    if drain is not None:
        drain()
    body = wait_for_dataset(client, response.json()["id"])
    assert body["status"] == "ready", body
    return body, data


def held_out_images(stack, dataset_row: dict, zip_bytes: bytes) -> tuple[list[Image.Image], list[str]]:
    """The raw test-split images (Pillow) and their class names, straight from the uploaded zip's members."""
    limits = IngestLimits(max_resolution=stack.settings.max_resolution,
                          min_images_per_class=stack.settings.min_images_per_class)
    files = ingest_zip(zip_bytes, limits).files  # index → member name, the order the stored split refers to
    with stack.runtime.unit_of_work() as session:
        prefix = session.get(Dataset, dataset_row["id"]).storage_prefix
    test_index = np.load(io.BytesIO(stack.runtime.store.read_bytes(prefix + "split.npz")))["test"]
    archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    images = [Image.open(io.BytesIO(archive.read(files[i]))) for i in test_index]
    return images, [files[i].split("/")[0] for i in test_index]


def linear_onnx(*, channels: int, height: int, width: int, classes: int, seed: int) -> bytes:
    """A classifier as the service exports them (input ``input`` [N, C, H, W] with a dynamic batch, output
    ``logits`` [N, classes]): one dense layer over every pixel, seeded weights."""
    rng = np.random.default_rng(seed)
    features = channels * height * width
    weights = (rng.standard_normal((features, classes)) * 3 / np.sqrt(features)).astype(np.float32)
    bias = rng.standard_normal(classes).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "weights", "bias"], ["logits"])],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", channels, height, width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        initializer=[numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model.SerializeToString()


def add_model(service, project_id: str, *, status: str = "ready", channels: int = 3, size: tuple[int, int] = (6, 5),
              classes: list[str] = MODEL_CLASSES, seed: int = 0) -> str:
    """A model row of a finished experiment with ``model.onnx`` and ``preprocessing.json`` in the store, as the model
    job leaves them (``size`` = (width, height) of the ONNX input)."""
    width, height = size
    spec = preprocessing_dict(classes=classes, channels=channels, height=height, width=width,
                              mean=[0.3, 0.5, 0.6][:channels], std=[0.2, 0.25, 0.3][:channels])
    files = {"onnx": ("model.onnx", linear_onnx(channels=channels, height=height, width=width, classes=len(classes),
                                                 seed=seed)),
             "preprocessing": ("preprocessing.json", json.dumps(spec).encode())}
    experiment_id, (trial_id,) = add_experiment(service, project_id=project_id, dataset_id=None,
                                                trials=[{"status": "succeeded", "val_accuracy": 0.5, "params": 10}])
    model_id = new_id()
    prefix = model_prefix(project_id, model_id)
    artifacts = []
    if status == "ready":
        for format, (name, data) in files.items():
            key = f"{prefix}attempt-1/{name}"
            service.runtime.store.put_bytes(key, data)
            artifacts.append({"format": format, "object": key, "size": len(data),
                              "sha256": hashlib.sha256(data).hexdigest()})
    with service.runtime.unit_of_work() as session:
        session.add(Model(id=model_id, project_id=project_id, experiment_id=experiment_id, trial_id=trial_id,
                          status=status, epochs=1, seed=1, metrics={}, artifacts=artifacts, storage_prefix=prefix,
                          attempts=1, finished_at=utcnow() if status == "ready" else None))
    return model_id


# ------------------------------------------------------------------------------------------------ the dashboard

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts"


def wait_until(driver, condition, timeout_s: float = 20, what: str = "condition"):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout_s, poll_frequency=0.1).until(lambda d: condition(d))
    except Exception as error:
        save_screenshot(driver, "failure")
        raise AssertionError(f"timed out waiting for {what}: {error!r}") from None


def by_testid(driver, testid: str, within=None):
    from selenium.webdriver.common.by import By

    return (within or driver).find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def read(driver, css: str, attribute: str | None = None) -> list[str]:
    """Attributes (or text) of all matches in one script call: the page re-renders sections while polling."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => arguments[1] ? e.getAttribute(arguments[1])"
        " : e.textContent.trim())", css, attribute)


def save_screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"dashboard-{name}.png"
    driver.save_screenshot(str(path))
    return path


def sign_in(driver, base_url: str, key: str) -> None:
    driver.get(base_url + "/#/experiments")
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    prompt = wait_until(driver, lambda d: [e for e in by_testid(d, "key-prompt") if e.is_displayed()],
                        what="key prompt")
    field = by_testid(driver, "key-input", prompt[0])[0]
    field.send_keys(key)
    by_testid(driver, "key-submit", prompt[0])[0].click()
