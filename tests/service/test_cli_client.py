"""The ``nas`` client commands and the generated ``nas_client`` package against a live server (both backends)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from nas_client import AuthenticatedClient
from nas_client.api.datasets import get_dataset, list_datasets
from nas_client.api.experiments import get_experiment, list_experiments
from nas_client.api.search_space import get_search_space
from nas_client.models import DatasetList, DatasetRead, ExperimentList, Problem
from tests import archives
from tests.service.helpers import BIN, ROOT, TINY_SPACE, free_port, ready_dataset

# The commands run as processes of their own and reach the server over the network, as a user's would.
pytestmark = [pytest.mark.slow, pytest.mark.stack]


def nas(stack, key: str, *args: str, url: str | None = None, timeout_s: float = 120
        ) -> subprocess.CompletedProcess[str]:
    env = dict(stack.env, NAS_URL=url or stack.base_url, NAS_API_KEY=key, COLUMNS="200")
    return subprocess.run([str(BIN / "nas"), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout_s)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The last line of stdout (the id or path a command prints), after checking the command succeeded."""
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_upload_search_watch_leaderboard_model_download(stack, api_key, tmp_path):
    archive = tmp_path / "shapes.zip"
    archive.write_bytes(archives.make_image_folder_zip(classes={"ring": 12, "dot": 12}, size=(16, 16)))
    dataset_id = ok(nas(stack, api_key.key, "datasets", "upload", str(archive), "--name", "shapes", "--wait"))
    listed = nas(stack, api_key.key, "datasets", "list")
    assert listed.returncode == 0 and dataset_id in listed.stdout and "ready" in listed.stdout, listed.stdout

    experiment_id = ok(nas(stack, api_key.key, "experiments", "create", "--dataset", dataset_id, "--strategy",
                           "evolution", "--max-trials", "2", "--epochs", "1", "--space", json.dumps(TINY_SPACE),
                           "--seed", "3", "--no-auto-model", "--pruner", "median",
                           "--strategy-settings", '{"population_size": 4, "sample_size": 2}'))
    watched = nas(stack, api_key.key, "experiments", "watch", experiment_id, "--interval", "0.3")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "succeeded" in watched.stdout and "2/2 trials" in watched.stdout

    with stack.client(api_key.key) as http:
        experiment = http.get(f"/v1/experiments/{experiment_id}").json()
        assert experiment["status"] == "succeeded" and experiment["auto_model"] is False
        assert experiment["budget"]["max_trials"] == 2 and experiment["search_space"] == TINY_SPACE
        assert experiment["pruner"]["kind"] == "median"
        assert experiment["strategy_settings"] == {"population_size": 4, "sample_size": 2}
        best = experiment["best"]
    board = nas(stack, api_key.key, "experiments", "leaderboard", experiment_id, "--limit", "5")
    assert board.returncode == 0 and best["trial_id"] in board.stdout, board.stdout + board.stderr
    assert f"#{best['number']} ★" in board.stdout

    model_id = ok(nas(stack, api_key.key, "models", "create", experiment_id, "--epochs", "1"))
    written = ok(nas(stack, api_key.key, "models", "download", model_id, "--format", "onnx", "--output",
                     str(tmp_path), "--wait", "--timeout", "300", timeout_s=330))
    assert Path(written) == tmp_path / "model.onnx"
    with stack.client(api_key.key) as http:
        model = http.get(f"/v1/models/{model_id}").json()
    onnx = next(artifact for artifact in model["artifacts"] if artifact["format"] == "onnx")
    assert hashlib.sha256(Path(written).read_bytes()).hexdigest() == onnx["sha256"]
    assert Path(written).stat().st_size == onnx["size"] and not list(tmp_path.glob("*.part"))


def test_errors_are_one_red_line_and_exit_1(stack, api_key):
    cases = [
        (nas(stack, api_key.key, "experiments", "show", "0" * 32), "error: 404 not-found: experiment not found"),
        (nas(stack, "nas_not-a-key", "datasets", "list"), "error: 401 unauthorized"),
        (nas(stack, api_key.key, "experiments", "create", "--dataset", "0" * 32, "--strategy", "tpe",
             "--max-trials", "1", "--epochs", "1", "--max-minutes", "-1"),
         "error: 422 validation-error: the request is not valid (body.budget.max_minutes: "),
        (nas(stack, api_key.key, "experiments", "create", "--dataset", "0" * 32, "--strategy-settings", "[1]"),
         "error: --strategy-settings: expected a JSON object of strategy settings"),
        (nas(stack, api_key.key, "models", "download", "0" * 32), "error: 404 not-found: model not found"),
        (nas(stack, api_key.key, "datasets", "list", url=f"http://127.0.0.1:{free_port()}"), "error: cannot reach"),
    ]
    for result, expected in cases:
        assert result.returncode == 1, (expected, result.stdout, result.stderr)
        assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
        assert result.stderr.startswith(expected), result.stderr
        assert "Traceback" not in result.stdout + result.stderr


def test_generated_client_lists_and_reads_resources(stack, api_key, client):
    dataset = ready_dataset(client)
    api = AuthenticatedClient(base_url=stack.base_url, token=api_key.key)
    with api:
        datasets = list_datasets.sync(client=api, limit=10)
        assert isinstance(datasets, DatasetList) and datasets.total == 1
        assert [d.id for d in datasets.data] == [dataset["id"]]
        read = get_dataset.sync(dataset["id"], client=api)
        assert isinstance(read, DatasetRead) and read.status.value == "ready" and read.sha256 == dataset["sha256"]
        assert sorted(c.name for c in read.classes) == ["dot", "ring"] and read.image.height == 16
        experiments = list_experiments.sync(client=api)
        assert isinstance(experiments, ExperimentList) and experiments.total == 0 and experiments.data == []
        missing = get_experiment.sync_detailed("0" * 32, client=api)
        assert missing.status_code == 404 and isinstance(missing.parsed, Problem)
        assert missing.parsed.type_ == "/problems/not-found" and missing.parsed.detail == "experiment not found"
        space = get_search_space.sync(client=api)
        assert space is not None and space.to_dict() == client.get("/v1/search-space").json()
    anonymous = AuthenticatedClient(base_url=stack.base_url, token="nas_wrong")
    unauthorized = list_datasets.sync_detailed(client=anonymous)
    assert unauthorized.status_code == 401 and isinstance(unauthorized.parsed, Problem)
