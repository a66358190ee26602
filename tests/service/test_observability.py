"""/metrics (in process) and structured logs of the API process (on the live stack)."""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from urllib.parse import urlparse

import pytest

from tests import archives
from tests.service.helpers import upload, wait_for_dataset


def samples(text: str, name: str) -> dict[str, float]:
    """``{label-string: value}`` of every sample of ``name`` in a Prometheus exposition."""
    found = {}
    for line in text.splitlines():
        match = re.match(rf"^{name}(\{{.*\}})? (\S+)$", line)  # label values may hold braces: /v1/x/{id}
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


def test_metrics_report_requests_resources_and_queues(app_service, app_client):
    dataset_id = upload(app_client, archives.make_image_folder_zip()).json()["id"]
    app_service.drain()
    dataset = wait_for_dataset(app_client, dataset_id)
    app_client.get(f"/v1/datasets/{dataset['id']}")
    response = app_service.client().get("/metrics")  # like the probes, no key needed: counts only, no ids
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert samples(text, "nas_datasets")['{status="ready"}'] >= 1
    assert set(samples(text, "nas_queue_depth")) == {'{queue="ingest"}', '{queue="trials"}', '{queue="models"}'}
    counts = samples(text, "nas_http_request_duration_seconds_count")
    assert counts['{method="GET",route="/v1/datasets/{dataset_id}",status="200"}'] >= 1
    assert not any(dataset["id"] in labels for labels in counts)  # route templates, never raw ids
    assert "# TYPE nas_worker_heartbeat_age_seconds gauge" in text and "# TYPE nas_trials gauge" in text


@pytest.mark.stack
def test_logs_are_json_lines_carrying_the_request_id(stack, client):
    request_id = f"test-{uuid.uuid4().hex[:12]}"
    response = client.get("/v1/datasets", headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    minted = client.get("/v1/datasets", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", minted)
    lines = [json.loads(line) for line in stack.logs["api"].read_text().splitlines() if line.startswith("{")]
    assert lines and all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line.get("request_id") == request_id for line in lines)


@pytest.mark.stack
def test_a_client_hanging_up_mid_upload_counts_as_499_logged_at_info_not_as_a_server_error(stack, api_key):
    request_id = f"hangup-{uuid.uuid4().hex[:12]}"
    upload_499 = '{method="POST",route="/v1/datasets",status="499"}'
    upload_500 = '{method="POST",route="/v1/datasets",status="500"}'

    def counts() -> dict[str, float]:
        return samples(stack.client().get("/metrics").text, "nas_http_request_duration_seconds_count")

    before = counts()
    url = urlparse(stack.base_url)
    head = (f"POST /v1/datasets HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {api_key.key}\r\n"
            f"Content-Type: multipart/form-data; boundary=cut\r\nContent-Length: 1000000\r\n"
            f"X-Request-ID: {request_id}\r\n\r\n").encode()
    part = (b'--cut\r\nContent-Disposition: form-data; name="file"; filename="d.zip"\r\n'
            b"Content-Type: application/zip\r\n\r\n" + b"\0" * 65536)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head + part)
        time.sleep(1)  # the handler is streaming the body when the client goes away
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and counts().get(upload_499, 0) <= before.get(upload_499, 0):
        time.sleep(0.3)
    after = counts()
    assert after.get(upload_499, 0) == before.get(upload_499, 0) + 1, after
    assert after.get(upload_500, 0) == before.get(upload_500, 0), after
    lines = [json.loads(line) for line in stack.logs["api"].read_text().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == request_id]
    assert [line["level"] for line in mine if "closed the connection" in line["message"]] == ["info"], mine
    assert not [line for line in mine if line["level"] in ("error", "critical") or "exception" in line], mine
