"""docker-compose.yml's topology, run as processes on loopback (see tests/deploy/topology.py): the services reach
the S3 server at 127.0.0.1, a client on the host at localhost, and a search goes from upload to a downloaded model
through the public endpoint; the workers' reaper ingests a stale dataset again (no beat); every health check of the
compose file passes, and fails once its process is gone."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from minio import Minio
from sqlalchemy import update

from api.db import utcnow
from api.orm import Dataset
from api.runtime import build_runtime
from tests import archives
from tests.deploy.topology import (IMAGE_ONLY_CHECKS, ONE_SHOT, PROCESSES, SERVICES, Deployment, deployed,
                                   signed_for)
from tests.service.helpers import BIN, ROOT, TINY_SPACE, settings_from_env, stop_processes, wait_for

# Seven processes and a search on a shared machine: more than the suite's 300 s per test when it is busy.
pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(600)]

HEALTH_CHECKED = [name for name, service in SERVICES.items()
                  if "test" in service.get("healthcheck", {}) and name not in IMAGE_ONLY_CHECKS]


def nas(deployment: Deployment, *args: str, env: dict[str, str], timeout_s: float = 120) -> str:
    """A ``nas`` command; its last line of stdout (the id or path it prints) once it succeeded."""
    result = subprocess.run([str(BIN / "nas"), *args], cwd=ROOT, env=dict(env, COLUMNS="200"), capture_output=True,
                            text=True, timeout=timeout_s)
    assert result.returncode == 0, f"nas {' '.join(args)}\n{result.stdout}{result.stderr}\n{deployment.logs()}"
    return result.stdout.strip().splitlines()[-1]


def test_the_compose_topology_searches_and_serves_the_model_through_the_public_endpoint(tmp_path):
    with deployed(tmp_path / "deployment") as deployment:
        assert set(deployment.processes) == set(PROCESSES) - set(ONE_SHOT)
        # Every health check of the compose file passes, within the time compose gives it.
        for service in HEALTH_CHECKED:
            result = deployment.wait_healthy(service)
            assert result.returncode == 0, f"{service}: {result.stdout}{result.stderr}\n{deployment.logs()}"
        api_env = deployment.env("api")
        store = Minio(api_env["NAS_S3_ENDPOINT"], access_key=api_env["NAS_S3_ACCESS_KEY"],
                      secret_key=api_env["NAS_S3_SECRET_KEY"], secure=False, region="us-east-1")
        bucket = urlparse(api_env["NAS_STORAGE_URL"]).netloc
        assert store.bucket_exists(bucket)  # minio's stand-in (its own check runs `mc`, see IMAGE_ONLY_CHECKS)

        # `docker compose exec api nas keys create`, then the CLI on the host with NAS_URL and NAS_API_KEY only.
        key = nas(deployment, "keys", "create", "--project", "deploy", env=api_env)
        public_endpoint = api_env["NAS_S3_PUBLIC_ENDPOINT"]
        assert urlparse(f"//{public_endpoint}").hostname == "localhost" != urlparse(
            f"//{api_env['NAS_S3_ENDPOINT']}").hostname
        client_env = {name: value for name, value in api_env.items() if not name.startswith("NAS_")}
        client_env.update(NAS_URL=deployment.api_url, NAS_API_KEY=key)

        archive = tmp_path / "shapes.zip"
        archive.write_bytes(archives.make_image_folder_zip(classes={"ring": 12, "dot": 12}, size=(16, 16)))
        dataset_id = nas(deployment, "datasets", "upload", str(archive), "--wait", "--timeout", "120",
                         env=client_env)
        experiment_id = nas(deployment, "experiments", "create", "--dataset", dataset_id, "--strategy", "random",
                            "--max-trials", "2", "--epochs", "1", "--space", json.dumps(TINY_SPACE), "--seed", "3",
                            env=client_env)
        with httpx.Client(base_url=deployment.api_url, headers={"Authorization": f"Bearer {key}"},
                          timeout=30) as http:
            # The search succeeds and its final model (auto_model) is built by the trials/models worker.
            models = wait_for(lambda: http.get(f"/v1/experiments/{experiment_id}/models").json()["data"],
                              timeout_s=180, what="the final model to be queued")
            model_id = models[0]["id"]
            written = nas(deployment, "models", "download", model_id, "--output", str(tmp_path), "--wait",
                          "--timeout", "240", env=client_env, timeout_s=270)
            model = http.get(f"/v1/models/{model_id}").json()
            assert model["status"] == "ready", model
            experiment = http.get(f"/v1/experiments/{experiment_id}").json()
            assert experiment["status"] == "succeeded" and experiment["progress"]["completed"] == 2, experiment
            onnx = next(artifact for artifact in model["artifacts"] if artifact["format"] == "onnx")
            assert hashlib.sha256(Path(written).read_bytes()).hexdigest() == onnx["sha256"]

            # The redirect names the public endpoint, and its signature is the one for that host: an S3 server
            # checks the Host header a client sends, so a URL signed for 127.0.0.1 would be refused at localhost.
            location = http.get(f"/v1/models/{model_id}/artifacts/onnx").headers["location"]
            assert urlparse(location).netloc == public_endpoint, location
            credentials = {"access_key": api_env["NAS_S3_ACCESS_KEY"], "secret_key": api_env["NAS_S3_SECRET_KEY"]}
            assert signed_for(location, public_endpoint, **credentials) == location
            assert (parse_qs(urlparse(signed_for(location, api_env["NAS_S3_ENDPOINT"], **credentials)).query)
                    ["X-Amz-Signature"] != parse_qs(urlparse(location).query)["X-Amz-Signature"])

        # The README's `curl -L` from the host (curl drops the Authorization header on the redirect).
        assert shutil.which("curl"), "curl is needed to check the README's download command"
        fetched = tmp_path / "curl-model.onnx"
        subprocess.run(["curl", "-fsSL", "-H", f"Authorization: Bearer {key}", "-o", str(fetched),
                        f"{deployment.api_url}/v1/models/{model_id}/artifacts/onnx"], check=True, timeout=60)
        assert hashlib.sha256(fetched.read_bytes()).hexdigest() == onnx["sha256"]

        # No beat: every worker runs the reaper. The row a crashed ingest leaves (`processing`, one attempt used,
        # untouched for a day) is found by a worker's periodic dataset sweep, and the dataset is ingested again.
        runtime = build_runtime(settings_from_env(api_env))
        try:
            with runtime.unit_of_work() as session:
                session.execute(update(Dataset).where(Dataset.id == dataset_id)
                                .values(status="processing", ingest_attempts=1,
                                        updated_at=utcnow() - timedelta(days=1)))

            def ingested_again() -> bool:
                with runtime.unit_of_work() as session:
                    row = session.get(Dataset, dataset_id)
                    return (row.status, row.ingest_attempts) == ("ready", 2)

            wait_for(ingested_again, timeout_s=60, what="the workers' reaper to ingest the stale dataset again")
        finally:
            runtime.engine.dispose()

        # Health checks mean something: once their processes are gone, each fails.
        for service in deployment.processes:  # still healthy after the work
            assert deployment.wait_healthy(service).returncode == 0, service

        stop_processes(list(deployment.processes.values()))
        with ThreadPoolExecutor(4) as pool:
            after = dict(zip(deployment.processes, pool.map(deployment.healthcheck, deployment.processes),
                             strict=True))
        assert all(result.returncode != 0 for result in after.values()), after
