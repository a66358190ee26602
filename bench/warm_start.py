"""Warm start on real images, through the service: does a search seeded with an earlier one find better networks?

``python -m bench.warm_start [--data mnist500] [--trials 10] [--epochs 4] [--seeds 1] [--port 0]`` uploads the data
set once to an embedded service (``nas serve``, as ``make demo`` runs it) and, per seed, runs three evolution
searches of ``--trials`` trials × ``--epochs`` epochs each on the default space (no final models):

- ``first``: a cold search (seed ``s``);
- ``warm``: a search warm-started from ``first`` (``warm_start.experiment_ids``), with seed ``s + 1000``;
- ``cold``: the same search without the warm start (seed ``s + 1000``): what the seeds are compared against.

It prints each search's best validation accuracy (the leaderboard's first row, the experiment's own trials only), the
warm search's echo (seeds used and skipped) and, over the seeds, the mean of ``warm`` minus ``cold``; the last line
is ``warm_start data=… trials=… epochs=… seeds=… first=… warm=… cold=… warm_minus_cold=…``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.budget import (DATASETS, BenchError, build_split, follow_search, request, upload_ready, usable_cpus,
                          write_zip)


def search(http: httpx.Client, dataset_id: str, *, trials: int, epochs: int, seed: int,
           warm_from: str | None = None) -> dict:
    """One search to its end; the experiment with its leaderboard's best validation accuracy added."""
    body = {"dataset_id": dataset_id, "strategy": "evolution", "seed": seed, "auto_model": False,
            "budget": {"max_trials": trials, "epochs_per_trial": epochs}}
    if warm_from is not None:
        body["warm_start"] = {"experiment_ids": [warm_from]}
    experiment = follow_search(http, request(http, "POST", "/v1/experiments", json=body), timeout_s=6 * 3600)
    if experiment["status"] != "succeeded":
        raise BenchError(f"search {experiment['status']}: {experiment.get('detail')}")
    board = request(http, "GET", f"/v1/experiments/{experiment['id']}/leaderboard", params={"limit": 1})
    experiment["best_val_accuracy"] = board["data"][0]["val_accuracy"] if board["data"] else float("nan")
    return experiment


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=DATASETS, default="mnist500")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    from cli._embedded import embedded_service, free_port
    from nas_client import AuthenticatedClient

    split = build_split(args.data, seed=0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="nas-warm-") as folder:
        workdir = Path(folder)
        zip_path = workdir / f"{split.name}.zip"
        write_zip(split, zip_path)
        env = dict(os.environ, NAS_DATA_DIR=str(workdir / "state"),
                   OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(usable_cpus())))
        with embedded_service(env=env, port=args.port or free_port(), log_path=workdir / "serve.log",
                              project="warm") as (url, key):
            client = AuthenticatedClient(base_url=url, token=key, timeout=httpx.Timeout(60.0))
            http = client.get_httpx_client()
            dataset = upload_ready(client, zip_path, split.name)
            for seed in range(args.seeds):
                started = time.monotonic()
                common = {"trials": args.trials, "epochs": args.epochs}
                first = search(http, dataset["id"], seed=seed, **common)
                warm = search(http, dataset["id"], seed=seed + 1000, warm_from=first["id"], **common)
                cold = search(http, dataset["id"], seed=seed + 1000, **common)
                row = {"seed": seed, "first": first["best_val_accuracy"], "warm": warm["best_val_accuracy"],
                       "cold": cold["best_val_accuracy"], "echo": warm.get("warm_start"),
                       "seconds": time.monotonic() - started}
                rows.append(row)
                print(f"seed {seed}: first {row['first']:.4f}  warm {row['warm']:.4f}  cold {row['cold']:.4f}  "
                      f"(warm start {row['echo']}; {row['seconds']:.0f} s)", flush=True)

    def mean(key: str) -> float:
        return statistics.mean(row[key] for row in rows)

    gain = statistics.mean(row["warm"] - row["cold"] for row in rows)
    print(f"warm_start data={args.data} trials={args.trials} epochs={args.epochs} seeds={args.seeds} "
          f"first={mean('first'):.4f} warm={mean('warm'):.4f} cold={mean('cold'):.4f} warm_minus_cold={gain:+.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
