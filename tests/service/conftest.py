"""The service under test, on real backends: one session-scoped stack per backend, fresh projects per test.

``postgres``: PostgreSQL (a fresh database per run), Redis broker (random db + key prefix), moto's S3 server.
``sqlite``: SQLite file, local object directory, Celery's filesystem transport.
Each stack runs ``nas migrate``, real ``celery worker``s (one for ``ingest``, one for ``trials,models``) and uvicorn
on a
free port as subprocesses.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import httpx
import psycopg
import pytest

from api.runtime import Runtime, build_runtime
from api.services.keys import CreatedKey, create_api_key
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
POSTGRES_ADMIN_URL = os.environ.get("NAS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("NAS_TEST_REDIS", "redis://127.0.0.1:6379")
S3_BUCKET = "nas-test"
# Small limits keep the bad-input archives small and the suite fast.
TEST_LIMITS = {"NAS_MAX_UPLOAD_BYTES": str(2_000_000), "NAS_ZIP_MAX_MEMBERS": "200",
               "NAS_INGEST_TIME_LIMIT_S": "120", "NAS_INGEST_STALE_AFTER_S": "600", "NAS_MAX_RESOLUTION": "16",
               # Running trials notice cancel within a second; a dead worker is presumed dead after 30 s.
               "NAS_TRIAL_HEARTBEAT_S": "1", "NAS_TRIAL_STALE_AFTER_S": "30"}


# How every deployment runs the API (Dockerfile, docker-compose.yml, `nas serve`): with the header-capped protocol.
HTTP_PROTOCOL = "api.http_protocol:HttpToolsProtocol"


def api_command(port: int) -> list[str]:
    return [str(BIN / "uvicorn"), "api.main:create_app", "--factory", "--http", HTTP_PROTOCOL, "--host", "127.0.0.1",
            "--port", str(port)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_from_env(env: dict[str, str]) -> Settings:
    with mock.patch.dict(os.environ, env):
        return Settings()


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


def _start(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log_file = open(log_path, "wb")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                            start_new_session=True)


def start_api(env: dict[str, str], log_path: Path, *, port: int | None = None,
              timeout_s: float = 30) -> tuple[subprocess.Popen, str]:
    """uvicorn with ``env`` on ``port`` (a free one by default); returns it and its base URL once it answers."""
    port = port or free_port()
    process = _start(api_command(port), env, log_path)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return process, base_url


def _stop_all(processes: list[subprocess.Popen], timeout_s: float = 15) -> None:
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


def _stop(process: subprocess.Popen) -> None:
    _stop_all([process])


@pytest.fixture(scope="session", params=["postgres", "sqlite"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    kind = request.param
    token = secrets.token_hex(4)
    data_dir = tmp_path_factory.mktemp(f"stack-{kind}")
    env = {key: value for key, value in os.environ.items() if not key.startswith("NAS_")}
    env.update(TEST_LIMITS, NAS_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cleanups = []
    if kind == "postgres":
        database = f"nas_test_{token}"
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        cleanups.append(lambda: _drop_database(database))
        endpoint = request.getfixturevalue("moto_s3")
        from minio import Minio

        s3 = Minio(endpoint.split("://")[1], access_key="test", secret_key="test", secure=False, region="us-east-1")
        if not s3.bucket_exists(S3_BUCKET):
            s3.make_bucket(S3_BUCKET)
        admin_url = psycopg.conninfo.conninfo_to_dict(POSTGRES_ADMIN_URL)
        env.update(
            NAS_DATABASE_URL=f"postgresql+psycopg://{admin_url.get('user', 'postgres')}@{admin_url.get('host')}:"
                             f"{admin_url.get('port', 5432)}/{database}",
            NAS_BROKER_URL=f"{REDIS_URL}/{secrets.randbelow(15) + 1}", NAS_BROKER_KEY_PREFIX=f"nas-test-{token}:",
            NAS_STORAGE_URL=f"s3://{S3_BUCKET}", NAS_S3_ENDPOINT=endpoint, NAS_S3_ACCESS_KEY="test",
            NAS_S3_SECRET_KEY="test", NAS_S3_SECURE="false")
    settings = settings_from_env(env)
    subprocess.run([str(BIN / "nas"), "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)

    logs = {"worker-ingest": data_dir / "worker-ingest.log", "worker-gpu": data_dir / "worker-gpu.log",
            "api": data_dir / "api.log"}
    port = free_port()
    # One worker per queue family, as in production: ingestion never waits behind a training task.
    workers = [_start([str(BIN / "celery"), "-A", "worker.app", "worker", "-Q", queues, "-c", "1", "-P", "solo",
                       "--without-gossip", "--without-mingle", "--without-heartbeat",
                       "-n", f"test-{kind}-{name}-{token}@%h", "--loglevel", "INFO"], env, logs[f"worker-{name}"])
               for name, queues in (("ingest", "ingest"), ("gpu", "trials,models"))]
    api = _start(api_command(port), env, logs["api"])
    runtime = build_runtime(settings)
    result = Stack(kind=kind, env=env, settings=settings, runtime=runtime, base_url=f"http://127.0.0.1:{port}",
                   logs=logs)
    try:
        _wait_ready(result, api)
        yield result
    finally:
        _stop_all([api, *workers])
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


def _drop_database(database: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture
def api_key(stack: Stack) -> CreatedKey:
    """A fresh project and key per test: isolation without restarting servers."""
    return stack.new_key()


@pytest.fixture
def client(stack: Stack, api_key: CreatedKey) -> Iterator[httpx.Client]:
    with stack.client(api_key.key) as http:
        yield http


def wait_for_dataset(client: httpx.Client, dataset_id: str, timeout_s: float = 120) -> dict:
    """Poll until the dataset leaves ``processing``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"/v1/datasets/{dataset_id}").json()
        if body["status"] != "processing":
            return body
        time.sleep(0.2)
    raise AssertionError(f"dataset {dataset_id} still processing after {timeout_s}s")


def upload(client: httpx.Client, data: bytes, *, name: str | None = None, filename: str = "data.zip"
           ) -> httpx.Response:
    return client.post("/v1/datasets", files={"file": (filename, data, "application/zip")},
                       data={"name": name} if name else None)
