"""The embedded service as a child process, for programs that drive the real HTTP API (``make demo``, benchmarks).

    with embedded_service(env=dict(os.environ, NAS_DATA_DIR="state"), port=free_port(), log_path=Path("serve.log"),
                          project="demo") as (base_url, key):
        ...  # HTTP calls with ``Authorization: Bearer <key>``

``nas keys create`` mints the key, ``nas serve`` (migrations, API, one worker for all queues) runs in its own
process group, and leaving the block — normally, on an exception or on Ctrl-C — stops it and everything it started.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

# `nas serve` stops its API and worker itself, waiting up to 30 s for each; past this it is killed.
STOP_TIMEOUT_S = 90


class ServiceError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait(predicate, *, timeout_s: float, what: str, interval: float = 0.5):
    """Call ``predicate`` until it returns something truthy (returned), or raise ServiceError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise ServiceError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def ready(base_url: str) -> bool:
    try:
        return httpx.get(base_url + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def embedded_service(*, env: dict[str, str], port: int, log_path: Path, project: str,
                     start_timeout_s: float = 120) -> Iterator[tuple[str, str]]:
    """Run ``nas serve`` with ``env`` on ``port`` until the block ends; yields ``(base_url, api_key)``."""
    nas = str(Path(sys.executable).parent / "nas")
    created = subprocess.run([nas, "keys", "create", "--project", project], env=env, capture_output=True, text=True)
    if created.returncode != 0:
        raise ServiceError(f"`nas keys create` exited with {created.returncode}: {_last_error(created.stderr)}")
    key = created.stdout.strip().splitlines()[-1]
    base_url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([nas, "serve", "--port", str(port)], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait(lambda: server.poll() is not None or ready(base_url), timeout_s=start_timeout_s, what="the server")
        if server.poll() is not None:
            raise ServiceError(f"nas serve exited with {server.returncode} (log: {log_path})")
        yield base_url, key
    finally:
        _stop(server)


def _last_error(output: str) -> str:
    """The final exception of a traceback (possibly wrapped over lines), else the last line."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if re.match(r"[\w.]+(Error|Exception|Exit)\b", line)]
    return " ".join(lines[starts[-1]:]) if starts else (lines or ["no output"])[-1]


def _stop(server: subprocess.Popen) -> None:
    # The API and the worker run in sessions of their own: remember them in case `nas serve` has to be killed.
    children = _descendants(server.pid)
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    for pid, started in children:
        if _start_time(pid) == started:  # still the same process, not a reused id
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _descendants(root: int) -> list[tuple[int, str]]:
    """(pid, start time) of every process below ``root``, read from /proc (empty where there is none)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent:
                frontier.append(pid)
                found.append((pid, _start_time(pid)))
    return [(pid, started) for pid, started in found if started is not None]


def _start_time(pid: int) -> str | None:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None
