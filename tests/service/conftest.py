"""Fixtures of the service tests, in two layers, each on both backends.

In process (``app_service``, ``app_key``, ``app_client``): the FastAPI app built here, on a fresh PostgreSQL
database (with the Redis broker's settings) or a SQLite file (with the filesystem broker), objects in a local
directory. Enqueued tasks are captured; a test runs them with ``app_service.drain()`` through the worker's own task
bodies. Most tests live here: they need no worker process and no broker.

The real stack (``stack``, ``api_key``, ``client``; tests marked ``stack``): one session-scoped stack per backend.
``postgres``: PostgreSQL (a fresh database per run), Redis broker (random db + key prefix), moto's S3 server.
``sqlite``: SQLite file, local object directory, Celery's filesystem transport.
Each stack runs ``nas migrate``, real ``celery worker``s (one for ``ingest``, one for ``trials,models``) and uvicorn
on a free port as subprocesses. Crashes, outages, the CLI's processes and the browser need it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from anyio.from_thread import start_blocking_portal

from api.main import create_app
from api.migrate import upgrade_head
from api.runtime import Runtime, build_runtime
from api.services.keys import CreatedKey, create_api_key
from api.settings import Settings
from tests.service.helpers import (BIN, CHROMEDRIVER, CHROMIUM, ROOT, AppService, Cell, api_command, create_database,
                                   drop_database, free_port, open_cell, process_env, redis_broker, settings_from_env,
                                   start_process, start_worker, stop_processes)

S3_BUCKET = "nas-test"
# The tiny networks on 16 px images train through every code path (EMA included, from 20 steps) in a sixth of the
# engine's 150-step floor per trial; the stack's workers keep the engine's floor.
IN_PROCESS_MIN_TRIAL_STEPS = 24
# The backends the in-process service tests run on: both by default (`make test`); `make test-fast` may name one
# (TEST_BACKENDS=sqlite) for the edit-run loop. Stack tests always run on both.
APP_BACKENDS = [kind for kind in os.environ.get("TEST_BACKENDS", "postgres,sqlite").split(",") if kind]
if not APP_BACKENDS or set(APP_BACKENDS) - {"postgres", "sqlite"}:
    raise pytest.UsageError(f"TEST_BACKENDS names postgres and/or sqlite, not {APP_BACKENDS}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test on the real stack carries the ``stack`` mark, so ``-m "not stack"`` never starts one."""
    unmarked = [item.nodeid for item in items
                if {"stack", "cell"} & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("stack")]
    if unmarked:
        raise pytest.UsageError(f"tests using the stack without @pytest.mark.stack: {unmarked}")


# ------------------------------------------------------------------------------------------------ in process

@pytest.fixture(scope="session", params=APP_BACKENDS)
def app_backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppService]:
    """The in-process service of one backend, migrated once per session (tests isolate by project)."""
    kind, token = request.param, secrets.token_hex(4)
    env = process_env(tmp_path_factory.mktemp(f"app-{kind}"))
    database = f"nas_test_app_{token}"
    if kind == "postgres":
        env.update(NAS_DATABASE_URL=create_database(database), **redis_broker(f"app-{token}"))
    try:
        settings = settings_from_env(env)
        upgrade_head(settings.database_url)
        with start_blocking_portal() as portal:
            service = AppService.of(create_app(settings), kind=kind, env=env, portal=portal)
            yield service
            service.runtime.engine.dispose()
    finally:
        if kind == "postgres":
            drop_database(database)


@pytest.fixture
def app_service(app_backend: AppService, monkeypatch: pytest.MonkeyPatch) -> AppService:
    """The in-process service for one test: its task queue starts empty, enqueued tasks are captured, and the
    worker's task bodies, when drained, run on this service's database and store. Its trials and final models train
    at least ``IN_PROCESS_MIN_TRIAL_STEPS`` steps, not the engine's floor: these tests prove the control plane."""
    import api.queue
    from nas_core import trainer
    from worker import tasks

    app_backend.queued.clear()
    monkeypatch.setattr(trainer, "MIN_TRIAL_STEPS", IN_PROCESS_MIN_TRIAL_STEPS)
    monkeypatch.setattr(api.queue, "enqueue", app_backend.enqueue)
    for module in (tasks.datasets, tasks.models, tasks.trials):
        monkeypatch.setattr(module, "get_runtime", lambda: app_backend.runtime)
    return app_backend


@pytest.fixture
def app_key(app_service: AppService) -> CreatedKey:
    """A fresh project and key per test: isolation on a shared database."""
    return app_service.new_key()


@pytest.fixture
def app_client(app_service: AppService, app_key: CreatedKey) -> Iterator[httpx.Client]:
    with app_service.client(app_key.key) as http:
        yield http


# ------------------------------------------------------------------------------------------------ the real stack

@dataclass
class Stack:
    kind: str
    env: dict[str, str]
    settings: Settings
    runtime: Runtime
    base_url: str
    logs: dict[str, Path]

    def new_key(self, project_name: str | None = None) -> CreatedKey:
        with self.runtime.unit_of_work() as session:
            return create_api_key(session=session, project_name=project_name or f"p-{secrets.token_hex(6)}")

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def dump_logs(self) -> str:
        return "\n".join(f"----- {name} -----\n{path.read_text(errors='replace')[-6000:]}"
                         for name, path in self.logs.items() if path.exists())


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session", params=["postgres", "sqlite"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    kind = request.param
    token = secrets.token_hex(4)
    data_dir = tmp_path_factory.mktemp(f"stack-{kind}")
    env = process_env(data_dir)
    cleanups = []
    if kind == "postgres":
        database = f"nas_test_{token}"
        env["NAS_DATABASE_URL"] = create_database(database)
        cleanups.append(lambda: drop_database(database))
        endpoint = request.getfixturevalue("moto_s3")
        from minio import Minio

        s3 = Minio(endpoint.split("://")[1], access_key="test", secret_key="test", secure=False, region="us-east-1")
        if not s3.bucket_exists(S3_BUCKET):
            s3.make_bucket(S3_BUCKET)
        env.update(redis_broker(token), NAS_STORAGE_URL=f"s3://{S3_BUCKET}", NAS_S3_ENDPOINT=endpoint,
                   NAS_S3_ACCESS_KEY="test", NAS_S3_SECRET_KEY="test", NAS_S3_SECURE="false")
    settings = settings_from_env(env)
    subprocess.run([str(BIN / "nas"), "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)

    logs = {"worker-ingest": data_dir / "worker-ingest.log", "worker-gpu": data_dir / "worker-gpu.log",
            "api": data_dir / "api.log"}
    port = free_port()
    # One worker per queue family, as in production: ingestion never waits behind a training task.
    workers = [start_worker(env, logs[f"worker-{name}"], queues=queues, name=f"test-{kind}-{name}-{token}")
               for name, queues in (("ingest", "ingest"), ("gpu", "trials,models"))]
    api = start_process(api_command(port), env, logs["api"])
    runtime = build_runtime(settings)
    result = Stack(kind=kind, env=env, settings=settings, runtime=runtime, base_url=f"http://127.0.0.1:{port}",
                   logs=logs)
    try:
        _wait_ready(result, api)
        yield result
    finally:
        stop_processes([api, *workers])
        runtime.engine.dispose()
        if request.session.testsfailed:
            print(f"\n===== {kind} stack logs =====\n{result.dump_logs()}")
        for cleanup in cleanups:
            cleanup()


def _wait_ready(stack: Stack, api: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if api.poll() is not None:
            break
        try:
            if httpx.get(stack.base_url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{stack.kind} stack did not become ready\n{stack.dump_logs()}")


@pytest.fixture
def api_key(stack: Stack) -> CreatedKey:
    """A fresh project and key per test: isolation without restarting servers."""
    return stack.new_key()


@pytest.fixture
def client(stack: Stack, api_key: CreatedKey) -> Iterator[httpx.Client]:
    with stack.client(api_key.key) as http:
        yield http


@pytest.fixture
def cell(stack: Stack, tmp_path: Path) -> Iterator[Cell]:
    """A private cell on the stack (see :class:`tests.service.helpers.Cell`); it stops when the test ends."""
    with open_cell(stack, tmp_path) as result:
        yield result


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make setup installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="nas-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", f"--user-data-dir={profile}", "--window-size=1440,1100"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
