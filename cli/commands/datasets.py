"""``nas datasets``: upload (with a progress bar), list, show, delete."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from cli.commands._client import (DEFAULT_URL, ApiKey, ClientError, Url, call, connect, console, err_console,
                                  handles_errors, poll)
from nas_client.api.datasets import delete_dataset, get_dataset, list_datasets, upload_dataset
from nas_client.models import UploadDatasetBody
from nas_client.types import UNSET, File

app = typer.Typer(help="Upload and manage image datasets.", no_args_is_help=True)


class ProgressReader:
    """A read-only file that advances a progress bar as httpx streams it into the multipart body."""

    def __init__(self, handle: BinaryIO, on_read) -> None:
        self._handle, self._on_read = handle, on_read

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        self._on_read(len(chunk))
        return chunk

    def fileno(self) -> int:  # lets httpx send a Content-Length instead of a chunked body
        return self._handle.fileno()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()


def upload_with_progress(client, path: Path, name: str | None) -> dict:
    """POST the archive, streaming it from disk with a progress bar on stderr; the new dataset as a dict."""
    columns = (TextColumn("uploading {task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with open(path, "rb") as handle, Progress(*columns, console=err_console) as progress:
        task = progress.add_task(path.name, total=path.stat().st_size)
        reader = ProgressReader(handle, lambda n: progress.update(task, advance=n))
        body = UploadDatasetBody(file=File(payload=reader, file_name=path.name, mime_type="application/zip"),
                                 name=name if name is not None else UNSET)
        dataset = call(upload_dataset, client=client, body=body)
    return dataset.to_dict()


def wait_until_ingested(client, dataset_id: str, *, timeout_s: float | None) -> dict:
    with err_console.status("ingesting (decode, validate, split)…"):
        return poll(lambda: call(get_dataset, dataset_id, client=client).to_dict(),
                    lambda d: d["status"] != "processing", interval_s=0.5, timeout_s=timeout_s, what="ingestion")


def describe(dataset: dict) -> str:
    if dataset["status"] != "ready":
        return f"dataset {dataset['id']} is {dataset['status']}"
    image = dataset["image"]
    return (f"dataset {dataset['id']} ready: {dataset['num_images']} images, {len(dataset['classes'])} classes, "
            f"{image['channels']}×{image['height']}×{image['width']}, splits {dataset['splits']}")


@app.command("upload")
@handles_errors
def upload(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                                help="A zip with one folder of images per class.")],
           name: Annotated[str | None, typer.Option(help="Dataset name (default: the file name).")] = None,
           wait: Annotated[bool, typer.Option("--wait", help="Wait until ingestion ends; exit 1 if it fails.")] = False,
           timeout: Annotated[float | None, typer.Option(help="Give up waiting after this many seconds.")] = None,
           url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Upload PATH and print the new dataset's id (the last line of stdout)."""
    client = connect(url, api_key)
    dataset = upload_with_progress(client, path, name)
    if wait:
        dataset = wait_until_ingested(client, dataset["id"], timeout_s=timeout)
        err_console.print(describe(dataset))
        if dataset["status"] != "ready":
            for error in dataset["errors"][:10]:
                err_console.print(f"  {json.dumps(error)}", markup=False)
            console.print(dataset["id"])
            raise ClientError(f"ingestion failed: {dataset['detail']}")
    console.print(dataset["id"])


@app.command("list")
@handles_errors
def list_(limit: Annotated[int, typer.Option(min=1, max=500)] = 50, offset: Annotated[int, typer.Option(min=0)] = 0,
          url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """List the project's datasets, newest first."""
    page = call(list_datasets, client=connect(url, api_key), limit=limit, offset=offset).to_dict()
    table = Table(title=f"datasets ({page['total']})")
    for column in ("id", "name", "status", "images", "classes", "shape", "created"):
        table.add_column(column, justify="right" if column in ("images", "classes") else "left")
    for row in page["data"]:
        image = row["image"]
        table.add_row(row["id"], row["name"], row["status"], str(row["num_images"] or ""),
                      str(len(row["classes"] or [])) if row["classes"] else "",
                      f"{image['channels']}×{image['height']}×{image['width']}" if image else "",
                      row["created_at"][:19])
    console.print(table)


@app.command("show")
@handles_errors
def show(dataset_id: str, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Print one dataset as JSON."""
    console.print_json(json.dumps(call(get_dataset, dataset_id, client=connect(url, api_key)).to_dict()))


@app.command("delete")
@handles_errors
def delete(dataset_id: str, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Delete a dataset and its files (refused while an active experiment uses it)."""
    call(delete_dataset, dataset_id, client=connect(url, api_key))
    err_console.print(f"deleted dataset {dataset_id}")
