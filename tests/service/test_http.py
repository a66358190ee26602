"""HTTP contract: byte cap before the body is read, auth, problem+json everywhere, probes.

Caps on the request head and body are properties of the server as deployed (uvicorn with the capped protocol, raw
bytes on a socket) and run on the stack; what the app answers runs in process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from urllib.parse import urlparse

import httpx
import pytest
from fastapi import FastAPI

from api.errors import add_exception_handlers
from api.services.keys import revoke_api_key
from nas_core.errors import DatasetRejected, InvalidSearchSpace, NASError
from tests.service.helpers import start_api, stop_process

BOUNDARY = "nasboundary"


def _raw_request(stack, headers: dict[str, str], body_chunks=(), *, read_timeout_s: float = 10,
                 path: str = "/v1/datasets") -> tuple[int, bytes]:
    """Send headers and some body bytes, never finish the body, and read what the server answers meanwhile."""
    url = urlparse(stack.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=read_timeout_s) as sock:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n{head}\r\n".encode())
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading, which is the point
        response = b""
        while b"\r\n\r\n" not in response:
            data = sock.recv(65536)
            if not data:
                break
            response += data
    status = int(response.split(b" ", 2)[1])
    return status, response


def _multipart_head(auth: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth}", "Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **extra}


@pytest.mark.stack
def test_upload_temp_files_live_in_the_data_dir_and_a_killed_apis_are_swept_at_the_next_start(stack, api_key,
                                                                                                 tmp_path):
    uploads = stack.settings.data_dir / "tmp" / "uploads"
    present = set(uploads.glob("nas-upload-*.zip"))
    api, base_url = start_api(stack.env, tmp_path / "api.log")
    try:
        url = urlparse(base_url)
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            head = "".join(f"{name}: {value}\r\n" for name, value in
                           _multipart_head(api_key.key, **{"Content-Length": "1000000"}).items())
            sock.sendall(f"POST /v1/datasets HTTP/1.1\r\nHost: {url.netloc}\r\n{head}\r\n".encode())
            sock.sendall(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.zip\"\r\n"
                         "Content-Type: application/zip\r\n\r\n".encode() + b"PK" * 4096)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not set(uploads.glob("nas-upload-*.zip")) - present:
                time.sleep(0.1)
            os.killpg(api.pid, signal.SIGKILL)  # mid-upload: nothing gets to clean up
            api.wait()
    finally:
        stop_process(api)
    left = set(uploads.glob("nas-upload-*.zip")) - present
    assert left, "the upload's temporary file is not under <data dir>/tmp/uploads"
    in_flight = uploads / "nas-upload-in-flight.zip"  # another API process's upload, still being written
    in_flight.write_bytes(b"PK")
    an_hour_ago = time.time() - 3700
    for path in left:
        os.utime(path, (an_hour_ago, an_hour_ago))
    api, _ = start_api(stack.env, tmp_path / "api-restarted.log")
    try:
        assert not [path for path in left if path.exists()]
        assert in_flight.exists()
    finally:
        stop_process(api)
        in_flight.unlink()


@pytest.mark.stack
def test_body_over_cap_with_content_length_is_413_before_any_body_is_sent(stack, api_key):
    cap = stack.settings.max_upload_bytes
    started = time.monotonic()
    status, response = _raw_request(stack, _multipart_head(api_key.key, **{"Content-Length": str(cap * 50)}))
    assert status == 413, response
    assert b"application/problem+json" in response
    assert time.monotonic() - started < 5


@pytest.mark.stack
def test_chunked_body_over_cap_is_413_while_the_client_is_still_sending(stack, api_key):
    cap = stack.settings.max_upload_bytes
    part_head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.zip\"\r\n"
                 "Content-Type: application/zip\r\n\r\n").encode()

    def chunks():
        payload = b"\0" * 65536
        yield b"%x\r\n%s\r\n" % (len(part_head), part_head)
        for _ in range(cap // len(payload) + 4):  # a little over the cap; the body is never terminated
            yield b"%x\r\n%s\r\n" % (len(payload), payload)

    status, response = _raw_request(stack, _multipart_head(api_key.key, **{"Transfer-Encoding": "chunked"}),
                                     chunks())
    assert status == 413, response


@pytest.mark.stack
@pytest.mark.parametrize("authorization", [None, "Bearer nas_" + "A" * 43])
def test_no_json_body_is_read_before_the_key_is_checked(stack, authorization):
    # A gigabyte is announced and never sent: the 401 must not wait for it.
    headers = {"Content-Type": "application/json", "Content-Length": str(10**9),
               **({"Authorization": authorization} if authorization else {})}
    started = time.monotonic()
    status, response = _raw_request(stack, headers, [b'{"dataset_id": "'], path="/v1/experiments")
    assert status == 401, response
    assert b"application/problem+json" in response
    assert time.monotonic() - started < 5


@pytest.mark.stack
def test_json_body_over_the_cap_is_413_before_it_is_read_or_once_it_passes_the_cap(stack, client, api_key):
    cap = stack.settings.max_json_bytes
    head = {"Authorization": f"Bearer {api_key.key}", "Content-Type": "application/json"}
    started = time.monotonic()
    status, response = _raw_request(stack, {**head, "Content-Length": str(cap + 1)}, path="/v1/experiments")
    assert status == 413 and b"application/problem+json" in response, response
    assert time.monotonic() - started < 5

    def chunks():
        payload = b" " * 65536
        yield b"%x\r\n%s\r\n" % (len(payload), payload)
        for _ in range(cap // len(payload) + 4):  # a little over the cap; the body is never terminated
            yield b"%x\r\n%s\r\n" % (len(payload), payload)

    status, response = _raw_request(stack, {**head, "Transfer-Encoding": "chunked"}, chunks(),
                                     path="/v1/experiments")
    assert status == 413, response
    # Every JSON POST, a body-less one with an Idempotency-Key (whose fingerprint reads the body) included.
    for path in ("/v1/experiments", "/v1/experiments/0123456789abcdef0123456789abcdef/cancel"):
        response = client.post(path, content=b" " * (cap + 1), headers={"Content-Type": "application/json",
                                                                       "Idempotency-Key": "k"})
        assert response.status_code == 413, response.text
        assert response.json()["type"] == "/problems/payload-too-large"


@pytest.mark.parametrize("content", [b'{"dataset_id": ', b'{"budget": {"max_trials": NaN}}',
                                     b'{"budget": {"max_minutes": Infinity}}', b"\xff\xfe{", b"[" * 100_000])
def test_a_body_that_is_not_json_is_one_clear_problem(app_client, content):
    response = app_client.post("/v1/experiments", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/validation-error" and body["detail"] == "the request body is not valid JSON"
    assert [error["field"] for error in body["errors"]] == ["body"], body  # not "body.15"


@pytest.mark.parametrize(("error", "fields"), [
    (NASError("the input is not usable"), ["body"]),
    (InvalidSearchSpace("bad space", errors=[{"field": "search_space", "error": "must be an object"}]),
     ["search_space"]),
    (DatasetRejected("bad archive", errors=[{"file": "a/1.png", "error": "damaged"}, {"file": None, "error": "x"}]),
     ["body", "body"]),
])
def test_an_engine_error_is_the_one_422_shape_naming_a_field_per_entry(error, fields):
    app = FastAPI()
    add_exception_handlers(app)

    @app.get("/engine")
    def _raise() -> None:
        raise error

    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            return await http.get("/engine")

    response = asyncio.run(get())
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/invalid-input" and body["detail"] == error.message
    assert [entry["field"] for entry in body["errors"]] == fields and all(entry["error"] for entry in body["errors"])


def _send_head(stack, head_chunks) -> bytes:
    """Send a GET's request line and then ``head_chunks`` (headers); return what the server answers."""
    url = urlparse(stack.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        try:
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {url.netloc}\r\n".encode())
            for chunk in head_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading, which is the point
        response = b""
        while data := sock.recv(65536):
            response += data
    return response


@pytest.mark.stack
def test_request_headers_past_the_cap_are_431_problem_before_they_are_parsed(stack):
    cap = stack.settings.max_header_bytes
    for head in ([b"X-Big: " + b"a" * cap + b"\r\n\r\n"],  # one large header
                 [b"".join(b"X-%d: v\r\n" % i for i in range(cap // 8)) + b"\r\n"],  # many small ones
                 [b"X-Endless: "] + [b"a" * 8192] * (2 * cap // 8192)):  # a head that never ends
        response = _send_head(stack, head)
        assert response.startswith(b"HTTP/1.1 431 "), response[:200]
        assert b"content-type: application/problem+json" in response and b"/problems/headers-too-large" in response
    with stack.client() as http:
        assert http.get("/healthz", headers={"X-Fine": "a" * (cap // 2)}).status_code == 200


@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-key",
                                           "Bearer nas_" + "A" * 43])
def test_missing_malformed_or_unknown_key_is_401_problem(app_service, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    with app_service.client() as http:
        response = http.get("/v1/datasets", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert body["status"] == 401 and body["type"] == "/problems/unauthorized" and body["title"] and body["detail"]


def test_revoked_key_is_401(app_service, app_client, app_key):
    assert app_client.get("/v1/datasets").status_code == 200
    with app_service.runtime.unit_of_work() as session:
        revoke_api_key(session=session, key_id=app_key.key_id)
    response = app_client.get("/v1/datasets")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_unknown_route_method_and_invalid_query_are_problems(app_client):
    not_found = app_client.get("/v1/nothing-here")
    assert not_found.status_code == 404 and not_found.headers["content-type"] == "application/problem+json"
    wrong_method = app_client.put("/v1/datasets")
    assert wrong_method.status_code == 405 and wrong_method.json()["type"] == "/problems/method-not-allowed"
    invalid = app_client.get("/v1/datasets", params={"limit": 0, "offset": -1})
    assert invalid.status_code == 422 and invalid.headers["content-type"] == "application/problem+json"
    assert {error["field"] for error in invalid.json()["errors"]} == {"query.limit", "query.offset"}
    missing = app_client.get("/v1/datasets/0123456789abcdef0123456789abcdef")
    assert missing.status_code == 404 and missing.json()["detail"] == "dataset not found"


@pytest.mark.stack
def test_probes(stack):
    with stack.client() as http:
        assert http.get("/healthz").json() == {"status": "ok", "checks": {}}
        ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "store": "ok"}


def test_readyz_is_503_naming_each_unreachable_dependency(moto_s3, tmp_path):
    import asyncio

    import httpx

    from api.main import create_app
    from api.settings import Settings

    settings = Settings(data_dir=tmp_path, storage_url="s3://no-such-bucket", s3_endpoint=moto_s3,
                        s3_access_key="a", s3_secret_key="b", s3_secure=False,
                        broker_url=f"redis://127.0.0.1:{_closed_port()}/0")
    async def probe() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(create_app(settings)), base_url="http://t") as http:
            return await http.get("/readyz")

    response = asyncio.run(probe())
    assert response.status_code == 503 and response.headers["content-type"] == "application/problem+json"
    assert {error["check"] for error in response.json()["errors"]} == {"broker", "store"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed
