"""The ``nas`` console script: keys create/list/revoke (on the in-process service's database), and ``nas serve``
start-up and clean stop (real processes, so marked ``stack``)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.service.helpers import BIN, ROOT, free_port


def test_keys_create_prints_a_working_key_last_and_revoke_disables_it(app_service):
    created = subprocess.run([str(BIN / "nas"), "keys", "create", "--project", "cli-project"], cwd=ROOT,
                             env=app_service.env, capture_output=True, text=True, check=True)
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("nas_")
    with app_service.client(key) as http:
        assert http.get("/v1/datasets").status_code == 200
        key_id = created.stdout.split("key id ")[1].split(";")[0]
        subprocess.run([str(BIN / "nas"), "keys", "revoke", key_id], cwd=ROOT, env=app_service.env, check=True,
                       capture_output=True)
        assert http.get("/v1/datasets").status_code == 401
    listed = subprocess.run([str(BIN / "nas"), "keys", "list", "--project", "cli-project"], cwd=ROOT,
                            env=app_service.env, capture_output=True, text=True, check=True).stdout.splitlines()
    rows = [line.split("\t") for line in listed[1:]]
    assert listed[0].startswith("key id\tproject") and [row[0] for row in rows] == [key_id]
    assert rows[0][1] == "cli-project" and key.startswith(rows[0][2]) and rows[0][5] != "-"  # revoked
    assert key not in "\n".join(listed)  # the key itself is never shown


def _embedded_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAS_")}
    env.update(NAS_DATA_DIR=str(tmp_path / "state"), OMP_NUM_THREADS="1")
    return env


def _start_serve(tmp_path, env: dict[str, str], *options: str) -> tuple[subprocess.Popen, int]:
    """``nas serve`` on a free port, once it answers ``/readyz``; returns it and the port."""
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")
    serve = subprocess.Popen([str(BIN / "nas"), "serve", "--port", str(port), *options], cwd=ROOT, env=env,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline, ready = time.monotonic() + 60, None
    while time.monotonic() < deadline and serve.poll() is None:
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if ready.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    if ready is None or ready.status_code != 200:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
        raise AssertionError(f"nas serve did not get ready:\n{(tmp_path / 'serve.log').read_text()}")
    return serve, port


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid → (parent pid, process group, state) of every process, from /proc (no psutil)."""
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        found[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return found


def _alive_in_groups(groups: set[int]) -> list[int]:
    # A zombie is dead already (it only waits to be reaped, by whoever adopted it): it does not count.
    return [pid for pid, (_, group, state) in _processes().items() if group in groups and state != "Z"]


@pytest.mark.stack
def test_serve_runs_api_and_worker_in_embedded_mode_and_stops_cleanly_on_sigterm(tmp_path):
    env = _embedded_env(tmp_path)
    key = subprocess.run([str(BIN / "nas"), "keys", "create", "--project", "embedded"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    serve, port = None, None
    try:
        serve, port = _start_serve(tmp_path, env)
        listed = httpx.get(f"http://127.0.0.1:{port}/v1/datasets", headers={"Authorization": f"Bearer {key}"})
        assert listed.json() == {"data": [], "total": 0}
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=45) == 0
        output = (tmp_path / "serve.log").read_text()
        assert str(tmp_path / "state") in output and "stopped" in output
    finally:
        if serve is not None and serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()


@pytest.mark.stack
def test_serve_stopped_while_the_worker_hangs_leaves_no_process_behind(tmp_path):
    """Ctrl-C while the worker cannot stop in time (a long trial): past the grace period the API, the worker and
    everything the worker started (its pool process) are gone, none left adopted by init."""
    env = _embedded_env(tmp_path)
    serve = None
    try:
        serve, _ = _start_serve(tmp_path, env, "--stop-timeout", "2")
        children = {pid: group for pid, (parent, group, _) in _processes().items() if parent == serve.pid}
        assert len(children) == 2 and all(pid == group for pid, group in children.items()), children  # own groups
        worker = next(pid for pid in children if b"celery" in Path(f"/proc/{pid}/cmdline").read_bytes())
        deadline = time.monotonic() + 90  # the worker forks its pool once it is up (slow on a loaded machine)
        while time.monotonic() < deadline and len(_alive_in_groups({worker})) < 2:
            time.sleep(0.3)
        assert len(_alive_in_groups({worker})) >= 2, _processes().get(worker)  # the worker and its pool
        os.kill(worker, signal.SIGSTOP)  # stuck: it cannot act on SIGTERM within the grace period
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=30) == 0, (tmp_path / "serve.log").read_text()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive_in_groups(set(children.values())):
            time.sleep(0.2)
        assert _alive_in_groups(set(children.values())) == [], (tmp_path / "serve.log").read_text()
        assert "killing it and every process it started" in (tmp_path / "serve.log").read_text()
    finally:
        if serve is not None and serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
