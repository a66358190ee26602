"""The ``nas`` console script: keys create/revoke against a stack, and ``nas serve`` start-up and clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx

from tests.service.conftest import BIN, ROOT, free_port


def test_keys_create_prints_a_working_key_last_and_revoke_disables_it(stack):
    created = subprocess.run([str(BIN / "nas"), "keys", "create", "--project", "cli-project"], cwd=ROOT,
                             env=stack.env, capture_output=True, text=True, check=True)
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("nas_")
    with stack.client(key) as http:
        assert http.get("/v1/datasets").status_code == 200
        key_id = created.stdout.split("key id ")[1].split(";")[0]
        subprocess.run([str(BIN / "nas"), "keys", "revoke", key_id], cwd=ROOT, env=stack.env, check=True,
                       capture_output=True)
        assert http.get("/v1/datasets").status_code == 401


def test_serve_runs_api_and_worker_in_embedded_mode_and_stops_cleanly_on_sigterm(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
    env.update(NAS_DATA_DIR=str(tmp_path / "state"), OMP_NUM_THREADS="1")
    key = subprocess.run([str(BIN / "nas"), "keys", "create", "--project", "embedded"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")
    serve = subprocess.Popen([str(BIN / "nas"), "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, ready = time.monotonic() + 60, None
        while time.monotonic() < deadline and serve.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert ready is not None and ready.status_code == 200, (tmp_path / "serve.log").read_text()
        listed = httpx.get(f"http://127.0.0.1:{port}/v1/datasets", headers={"Authorization": f"Bearer {key}"})
        assert listed.json() == {"data": [], "total": 0}
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=45) == 0
        output = (tmp_path / "serve.log").read_text()
        assert str(tmp_path / "state") in output and "stopped" in output
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
