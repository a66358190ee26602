"""Load on the API: concurrent clients over an experiment with 10,000 trials, plus parallel dataset uploads.

Seeds one project with an experiment of ``--trials`` finished trials (real candidates decoded from the default space,
two epochs of curve each) straight into the database, starts the API (uvicorn, ``--api-workers`` processes, one per
core by default, loopback only) and drives it with ``--clients`` threads for ``--seconds``, each mixing experiment
list / get, trials pages and leaderboard pages, while one more thread uploads small datasets. Backends come from
``NAS_*`` settings (default: embedded SQLite in a temporary directory). The generator runs on the same CPUs as the
API, so its figures include that competition.

    python -m bench.load [--trials 10000] [--clients 8] [--seconds 20]

Prints requests/s, p50/p99 latency per call and the error count; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from statistics import quantiles

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(trials: int) -> tuple[str, str]:
    """A project with a ready dataset and a finished experiment of ``trials`` trials; returns (key, experiment id)."""
    from api.db import new_id, utcnow
    from api.migrate import upgrade_head
    from api.orm import Dataset, Experiment, Trial, TrialEpoch
    from api.runtime import get_runtime
    from api.services.keys import create_api_key
    from nas_core.space import default_search_space

    runtime = get_runtime()
    upgrade_head(runtime.settings.database_url)
    with runtime.unit_of_work() as session:
        created = create_api_key(session=session, project_name=f"load-{new_id()[:8]}")
    space = default_search_space()
    rng = random.Random(0)
    now = utcnow()
    with runtime.unit_of_work() as session:
        dataset = Dataset(project_id=created.project_id, name="seeded", status="ready", sha256="0" * 64,
                          size_bytes=0, storage_prefix=f"{created.project_id}/datasets/seeded/", num_images=1000,
                          classes=[{"name": "a", "count": 500}, {"name": "b", "count": 500}],
                          image={"channels": 1, "height": 28, "width": 28},
                          splits={"train": 700, "val": 150, "test": 150}, errors=[])
        session.add(dataset)
        session.flush()
        experiment = Experiment(project_id=created.project_id, dataset_id=dataset.id, name="load", status="succeeded",
                                strategy="random", budget={"max_trials": trials, "epochs_per_trial": 2},
                                concurrency=4, seed=0, trials_created=trials, reproducibility={}, finished_at=now)
        session.add(experiment)
        session.flush()
        trial_rows, epoch_rows = [], []
        for number in range(1, trials + 1):
            decisions = space.param_space.sample(rng)
            candidate = space.decode(decisions)
            trial_id = new_id()
            accuracy = rng.uniform(0.5, 0.99)
            trial_rows.append({"id": trial_id, "experiment_id": experiment.id, "number": number,
                               "status": rng.choice(["succeeded"] * 8 + ["pruned", "failed"]),
                               "decisions": decisions, "arch": candidate.to_dict(), "arch_hash": candidate.arch.hash(),
                               "seed": number, "val_accuracy": accuracy, "val_loss": 1 - accuracy,
                               "params": rng.randint(5_000, 2_000_000), "flops": rng.randint(10**6, 10**9),
                               "latency_ms": rng.uniform(0.2, 20), "feasible": True, "attempts": 1,
                               "duration_s": rng.uniform(5, 60), "created_at": now - timedelta(seconds=trials - number),
                               "started_at": now, "finished_at": now - timedelta(seconds=trials - number)})
            epoch_rows += [{"trial_id": trial_id, "epoch": epoch, "val_accuracy": accuracy * epoch / 2,
                            "val_loss": 1.0, "train_loss": 1.0, "seconds": 1.0} for epoch in (1, 2)]
        session.execute(Trial.__table__.insert(), trial_rows)
        session.execute(TrialEpoch.__table__.insert(), epoch_rows)
        experiment_id = experiment.id
    return created.key, experiment_id


def tiny_zip(index: int) -> bytes:
    from tests.archives import make_image_folder_zip

    return make_image_folder_zip(classes={"a": 5, "b": 5}, size=(16, 16), seed=index)


def drive(base_url: str, key: str, experiment_id: str, *, clients: int, seconds: float) -> dict:
    calls = {
        "list experiments": ("GET", "/v1/experiments", {"limit": 20}),
        "get experiment": ("GET", f"/v1/experiments/{experiment_id}", None),
        "trials page": ("GET", f"/v1/experiments/{experiment_id}/trials", "trials"),
        "leaderboard": ("GET", f"/v1/experiments/{experiment_id}/leaderboard", {"limit": 50}),
        "list datasets": ("GET", "/v1/datasets", {"limit": 20}),
    }
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()

    def client_loop(worker: int) -> None:
        rng = random.Random(worker)
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            while time.monotonic() < deadline:
                name = rng.choice(list(calls))
                method, path, params = calls[name]
                if params == "trials":
                    params = {"limit": 100, "offset": rng.randrange(0, 9_900, 100)}
                started = time.perf_counter()
                try:
                    response = http.request(method, path, params=params)
                    ok = response.status_code == 200
                except httpx.HTTPError as error:
                    ok, response = False, error
                elapsed = time.perf_counter() - started
                with lock:
                    latencies[name].append(elapsed)
                    if not ok:
                        errors.append(f"{name}: {getattr(response, 'status_code', response)}")

    # Built before the clock starts: the load generator shares the CPUs with the API and should not compete more
    # than it must (an upload takes tens of milliseconds, so this is more than one thread can send).
    archives = [tiny_zip(index) for index in range(int(seconds * 50))]

    def upload_loop() -> None:
        index = 0
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                archive = archives[index % len(archives)]
                response = http.post("/v1/datasets", files={"file": (f"d{index}.zip", archive)})
                with lock:
                    latencies["upload dataset"].append(time.perf_counter() - started)
                    if response.status_code != 202:
                        errors.append(f"upload: {response.status_code}")
                index += 1

    # The seeding left a large heap in this process: keep the collector's full passes over it out of the latencies.
    gc.collect()
    gc.freeze()
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    threads.append(threading.Thread(target=upload_loop))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    stats = {}
    for name, values in sorted(latencies.items()):
        cuts = quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
        stats[name] = {"requests": len(values), "p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000}
    total = sum(len(v) for v in latencies.values())
    return {"requests": total, "requests_per_s": total / wall, "errors": len(errors), "error_samples": errors[:5],
            "calls": stats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--api-workers", type=int, default=os.cpu_count() or 1,
                        help="uvicorn worker processes (default: one per core, as a deployment would run)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nas-load-") as tmp:
        os.environ.setdefault("NAS_DATA_DIR", tmp)
        os.environ.setdefault("NAS_LOG_FORMAT", "text")
        # The bench measures the API, not the per-project rate limiter (one project sends every request here).
        os.environ.setdefault("NAS_RATE_LIMIT_PER_MINUTE", "0")
        seeded = time.perf_counter()
        key, experiment_id = seed(args.trials)
        print(f"seeded {args.trials} trials in {time.perf_counter() - seeded:.1f} s")
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--host",
                                   "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
                                   "--workers", str(args.api_workers)],
                                  cwd=ROOT, env=dict(os.environ))
        base_url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            figures = drive(base_url, key, experiment_id, clients=args.clients, seconds=args.seconds)
        finally:
            server.terminate()
            server.wait(timeout=30)
    for name, call in figures["calls"].items():
        print(f"{name:>18}: {call['requests']:6d} requests  p50 {call['p50_ms']:7.1f} ms  p99 {call['p99_ms']:7.1f} ms")
    print(f"{figures['requests']} requests, {figures['requests_per_s']:.0f} req/s, {figures['errors']} errors")
    board = figures["calls"].get("leaderboard", {})
    print(json.dumps({"trials": args.trials, "clients": args.clients, "api_workers": args.api_workers,
                      "seconds": args.seconds,
                      "requests_per_s": round(figures["requests_per_s"], 1), "errors": figures["errors"],
                      "leaderboard_p50_ms": round(board.get("p50_ms", 0), 2),
                      "leaderboard_p99_ms": round(board.get("p99_ms", 0), 2),
                      "p99_ms": {name: round(call["p99_ms"], 2) for name, call in figures["calls"].items()}}))


if __name__ == "__main__":
    main()
