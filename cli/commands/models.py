"""``nas models``: create a final model from a search, list, show, download its artifacts, classify images."""

from __future__ import annotations

import hashlib
import io
import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from cli.commands._client import (DEFAULT_URL, ApiKey, ClientError, Url, call, connect, console, err_console,
                                  fixed, handles_errors, human_count, poll, problem_message)
from nas_client.api.models import create_model, get_model, list_experiment_models, list_models, predict
from nas_client.models import ModelCreate, PredictBody
from nas_client.types import File

app = typer.Typer(help="Final models: retrain the winner, test, export, download.", no_args_is_help=True)


class ArtifactFormat(str, Enum):
    onnx = "onnx"
    onnx_int8 = "onnx_int8"
    pt2 = "pt2"
    savedmodel = "savedmodel"
    tflite = "tflite"
    tflite_int8 = "tflite_int8"
    preprocessing = "preprocessing"
    card_md = "card_md"
    card = "card"


FILE_NAMES = {"onnx": "model.onnx", "onnx_int8": "model.int8.onnx", "pt2": "model.pt2",
              "savedmodel": "model.savedmodel.zip", "tflite": "model.tflite", "tflite_int8": "model.int8.tflite",
              "preprocessing": "preprocessing.json", "card_md": "card.md", "card": "card.json"}


def describe(model: dict) -> str:
    if model["status"] != "ready":
        return f"model {model['id']} is {model['status']}" + (f": {model['detail']}" if model["detail"] else "")
    return (f"model {model['id']} ready: test accuracy {model['test_accuracy']:.4f}, {model['params']:,} params, "
            f"ONNX latency {model['latency_ms']:.2f} ms/image; artifacts "
            + ", ".join(f"{a['format']} ({a['size'] / 1024:.0f} KiB)" for a in model["artifacts"]))


def wait_until_built(client, model_id: str, *, timeout_s: float | None) -> dict:
    with err_console.status("building the model (retrain, test, export)…"):
        return poll(lambda: call(get_model, model_id, client=client).to_dict(),
                    lambda m: m["status"] in ("ready", "failed"), interval_s=1.0, timeout_s=timeout_s,
                    what="the model")


def download_artifact(client, model_id: str, format: str, destination: Path) -> str:
    """Stream one artifact to ``destination`` (following the 307 to a presigned URL); its sha256 hex digest."""
    digest = hashlib.sha256()
    http = client.get_httpx_client()
    # httpx drops the Authorization header on a redirect to another origin, as a presigned URL requires.
    with http.stream("GET", f"/v1/models/{model_id}/artifacts/{format}", follow_redirects=True) as response:
        if response.status_code >= 400:
            raise ClientError(problem_message(response.status_code, response.read()))
        total = int(response.headers["content-length"]) if "content-length" in response.headers else None
        partial = destination.with_name(destination.name + ".part")
        columns = (TextColumn(f"downloading {destination.name}"), BarColumn(), DownloadColumn(),
                   TransferSpeedColumn())
        with open(partial, "wb") as handle, Progress(*columns, console=err_console) as progress:
            task = progress.add_task("", total=total)
            for chunk in response.iter_bytes():
                handle.write(chunk)
                digest.update(chunk)
                progress.update(task, advance=len(chunk))
        partial.replace(destination)  # a half-written file never takes the real name
    return digest.hexdigest()


@app.command("create")
@handles_errors
def create(experiment_id: str,
           trial: Annotated[str | None,
                            typer.Option("--trial", help="Trial id (default: the leaderboard best).")] = None,
           epochs: Annotated[int | None, typer.Option(min=1, help="Training epochs (default: a multiple of the "
                                                                   "search's).")] = None,
           url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Retrain a trial on train+val, test and export it; print the model's id (the last line of stdout)."""
    body: dict[str, Any] = {key: value for key, value in (("trial_id", trial), ("epochs", epochs)) if value is not None}
    model = call(create_model, experiment_id, client=connect(url, api_key), body=ModelCreate.from_dict(body))
    err_console.print(f"model {model.id} {model.status} (trial {model.trial_id}, {model.epochs} epochs); "
                      f"download it with `nas models download {model.id} --wait`")
    console.print(model.id)


@app.command("list")
@handles_errors
def list_(experiment: Annotated[str | None, typer.Option(help="Only this experiment's models.")] = None,
          limit: Annotated[int, typer.Option(min=1, max=500)] = 50, offset: Annotated[int, typer.Option(min=0)] = 0,
          url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """List final models, newest first."""
    client = connect(url, api_key)
    if experiment:
        page = call(list_experiment_models, experiment, client=client, limit=limit, offset=offset).to_dict()
    else:
        page = call(list_models, client=client, limit=limit, offset=offset).to_dict()
    table = Table(title=f"models ({page['total']})")
    for column in ("id", "experiment", "status", "test acc", "params", "latency ms", "created"):
        table.add_column(column)
    for row in page["data"]:
        table.add_row(row["id"], row["experiment_id"], row["status"], fixed(row["test_accuracy"], 4),
                      human_count(row["params"]), fixed(row["latency_ms"], 2), row["created_at"][:19])
    console.print(table)


@app.command("show")
@handles_errors
def show(model_id: str, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Print one model as JSON."""
    console.print_json(json.dumps(call(get_model, model_id, client=connect(url, api_key)).to_dict()))


@app.command("download")
@handles_errors
def download(model_id: str,
             format: Annotated[ArtifactFormat, typer.Option("--format", help="Which artifact.")] = ArtifactFormat.onnx,
             output: Annotated[Path | None, typer.Option("--output", "-o", help="File or directory to write "
                                                         "(default: model.onnx, model.int8.onnx, model.pt2, "
                                                         "preprocessing.json or card.json here).")] = None,
             wait: Annotated[bool, typer.Option("--wait", help="Wait until the model is ready first.")] = False,
             timeout: Annotated[float | None, typer.Option(help="Give up waiting after this many seconds.")] = None,
             url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Download an artifact of a ready model and print the path written (the last line of stdout)."""
    client = connect(url, api_key)
    if wait:
        model = wait_until_built(client, model_id, timeout_s=timeout)
        err_console.print(describe(model))
        if model["status"] != "ready":
            raise ClientError(f"model {model_id} failed: {model['detail']}")
    destination = output or Path(FILE_NAMES[format.value])
    if destination.is_dir():
        destination = destination / FILE_NAMES[format.value]
    sha256 = download_artifact(client, model_id, format.value, destination)
    err_console.print(f"wrote {destination} (sha256 {sha256})")
    console.print(str(destination))


@app.command("predict")
@handles_errors
def predict_(model_id: str,
             images: Annotated[list[Path], typer.Argument(
                 exists=True, dir_okay=False, readable=True, show_default=False,
                 help="Image files (PNG, JPEG, GIF, BMP, TIFF, WebP; any size), sent in one request.")],
             top_k: Annotated[int, typer.Option("--top-k", min=1, max=1000, help="Classes listed per image.")] = 5,
             as_json: Annotated[bool, typer.Option("--json", help="Print the API's answer as JSON.")] = False,
             url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Classify images with a ready model: each image's most probable classes (the server runs the ONNX file)."""
    body = PredictBody(images=[File(payload=io.BytesIO(path.read_bytes()), file_name=path.name) for path in images])
    answer = call(predict, model_id, client=connect(url, api_key), body=body, top_k=top_k).to_dict()
    if as_json:
        console.print_json(json.dumps(answer))
        return
    table = Table(title=f"model {model_id}")
    for column, justify in (("image", "left"), ("#", "right"), ("class", "left"), ("probability", "right")):
        table.add_column(column, justify=justify)
    for path, entry in zip(images, answer["data"], strict=True):
        for rank, item in enumerate(entry["top"], start=1):
            table.add_row(str(path) if rank == 1 else "", str(rank), item["class"], f"{item['probability']:.4f}",
                          end_section=rank == len(entry["top"]))
    console.print(table)
    err_console.print(f"{len(images)} image(s) in {answer['latency_ms']:.2f} ms of onnxruntime")
