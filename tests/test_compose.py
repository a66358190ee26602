"""docker-compose.yml, Dockerfile and .env.example checked without a Docker engine: they must name real settings,
real entry points, consistent ports and volumes, health checks that mean something, and every variable a deployment
has to provide; and the file must stay one that tests/deploy can run as processes (the same services, commands and
environment names)."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest

from api.queue import QUEUES, celery_config
from api.settings import Settings
from tests.deploy.topology import (ADDED_SETTINGS, COMPOSE, IMAGE_ONLY_CHECKS, PROCESSES, SERVICES, STAND_INS,
                                   Loopback, local_command, local_env, local_healthcheck, run_variables)

ROOT = Path(__file__).resolve().parents[1]
NAS_SERVICES = [name for name, service in SERVICES.items() if service.get("image", "").startswith("nas-service")]
WORKERS = ("worker-gpu", "worker-ingest")


def command_of(service: dict) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_the_service_set_is_complete():
    expected = {"postgres", "redis", "minio", "minio-init", "migrate", "api", *WORKERS}
    assert expected <= set(SERVICES)
    assert set(NAS_SERVICES) == {"migrate", "api", *WORKERS}


@pytest.mark.parametrize("name", NAS_SERVICES)
def test_environment_names_only_settings_that_exist(name):
    fields = {f"NAS_{field.upper()}" for field in Settings.model_fields}
    environment = SERVICES[name]["environment"]
    unknown = sorted(key for key in environment if key.startswith("NAS_") and key not in fields)
    assert not unknown, f"{name}: {unknown} are not settings"
    # Outside embedded mode every backend is explicit.
    assert {"NAS_DATABASE_URL", "NAS_BROKER_URL", "NAS_STORAGE_URL"} <= set(environment)
    assert environment["NAS_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert environment["NAS_BROKER_URL"].startswith("redis://")
    assert environment["NAS_STORAGE_URL"].startswith("s3://")


@pytest.mark.parametrize("name", NAS_SERVICES)
def test_commands_refer_to_real_entry_points(name):
    argv = command_of(SERVICES[name])
    program = argv[0]
    if program == "nas":
        from cli.main import app

        commands = {command.name or command.callback.__name__ for command in app.registered_commands}
        assert argv[1] in commands, f"nas has no command {argv[1]!r}"
    elif program == "uvicorn":
        module, _, attribute = argv[1].partition(":")
        factory = getattr(importlib.import_module(module), attribute)
        assert callable(factory) and "--factory" in argv
        assert argv[argv.index("--http") + 1] == "api.http_protocol:HttpToolsProtocol"  # the header cap
        assert argv[argv.index("--port") + 1] == "8000"
    elif program == "celery":
        module = argv[argv.index("-A") + 1]
        assert hasattr(importlib.import_module(module), "app")
        assert argv[3] == "worker", argv
        queues = argv[argv.index("-Q") + 1].split(",")
        assert set(queues) <= set(QUEUES), queues
    else:
        pytest.fail(f"{name}: unexpected program {program!r}")


def test_every_queue_is_served_and_the_gpu_worker_reserves_a_gpu():
    served = set()
    for name in ("worker-gpu", "worker-ingest"):
        argv = command_of(SERVICES[name])
        served |= set(argv[argv.index("-Q") + 1].split(","))
    assert served == set(QUEUES)
    gpu = SERVICES["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices and devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    argv = command_of(gpu)
    assert argv[argv.index("-c") + 1] == "1"  # one trial at a time per GPU
    assert "trials" in argv[argv.index("-Q") + 1] and gpu["environment"]["NAS_WORKER_DEVICE"] == "cuda"


def test_ports_volumes_dependencies_and_health_checks_are_consistent():
    declared = set(COMPOSE["volumes"])
    used = set()
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"
                used.add(source)
        for dependency in service.get("depends_on", {}):
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
    assert used == declared, f"declared but unused: {declared - used}"
    api_ports = SERVICES["api"]["ports"]
    assert any(str(port).endswith(":8000") for port in api_ports)
    for name in ("postgres", "redis", "minio", "api"):
        assert "healthcheck" in SERVICES[name], f"{name} has no health check"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", *WORKERS):
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_env_example_provides_every_required_variable():
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    assert required and required <= example, required - example


def test_dockerfile_is_multi_stage_non_root_and_copies_real_paths():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, flags=re.MULTILINE)) >= 2
    users = re.findall(r"^USER (\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    for sources in re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+) \S+$", dockerfile, flags=re.MULTILINE):
        for source in sources.split():
            assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    entry = re.search(r'^CMD \["uvicorn", "([^"]+)"', dockerfile, flags=re.MULTILINE).group(1)
    assert '"--http", "api.http_protocol:HttpToolsProtocol"' in dockerfile  # the header cap
    module, _, attribute = entry.partition(":")
    assert callable(getattr(importlib.import_module(module), attribute))


def test_the_image_installs_every_package_it_runs():
    """`nas migrate` imports the migrations package and the CLI its client: the builder must copy each one."""
    import tomllib

    dockerfile = (ROOT / "Dockerfile").read_text()
    builder = dockerfile.split("FROM ", 2)[1]
    includes = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    for pattern in includes["include"]:
        package = pattern.rstrip("*")
        assert re.search(rf"^COPY {package} ", builder, flags=re.MULTILINE), f"builder does not copy {package}"


def test_every_process_of_the_image_has_a_health_check_of_its_own():
    """The image's HTTP check is the API's; a worker is healthy when its own node answers a ping."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    check = re.search(r"^HEALTHCHECK .* CMD (.+)$", dockerfile, flags=re.MULTILINE).group(1)
    assert "http://127.0.0.1:8000/" in check and re.search(r'^CMD \["uvicorn"', dockerfile, flags=re.MULTILINE)
    assert SERVICES["migrate"]["healthcheck"] == {"disable": True}
    assert "127.0.0.1:8000/readyz" in " ".join(SERVICES["api"]["healthcheck"]["test"])
    for name in WORKERS:
        kind, line = SERVICES[name]["healthcheck"]["test"]
        ping = shlex.split(line.replace("$$", "$"))
        assert kind == "CMD-SHELL" and ping[:2] == ["celery", "-A"] and ping[3:5] == ["inspect", "ping"], ping
        # The same broker settings as the process (api.queue's app, which the worker's module re-exports).
        assert importlib.import_module("worker.app").app is importlib.import_module(ping[2].split(":")[0]).celery_app
        argv = command_of(SERVICES[name])
        node = argv[argv.index("-n") + 1]
        # Its own node: %h is the container's host name, which a health check's shell reads from $HOSTNAME.
        assert ping[ping.index("-d") + 1] == node.replace("%h", "$HOSTNAME"), (ping, node)
        assert float(ping[ping.index("--timeout") + 1]) < int(SERVICES[name]["healthcheck"]["timeout"].rstrip("s"))


def test_no_beat_the_workers_reap():
    """The reaper is a thread of every worker (worker/reaper.py): no beat service, no -B, no periodic schedule."""
    for name in NAS_SERVICES:
        argv = command_of(SERVICES[name])
        assert not {"beat", "-B", "--beat"} & set(argv), f"{name}: {argv}"
    assert not any(key.startswith("beat_") for key in celery_config(Settings()))
    assert [name for name in NAS_SERVICES if command_of(SERVICES[name])[3:4] == ["worker"]] == list(WORKERS)


def test_minio_is_published_and_presigned_urls_are_signed_for_it():
    environment = SERVICES["api"]["environment"]
    assert environment["NAS_S3_ENDPOINT"] == "minio:9000"
    published = [str(port) for port in SERVICES["minio"]["ports"]]
    assert published == ["${MINIO_PORT:-9000}:9000"]
    assert environment["NAS_S3_PUBLIC_ENDPOINT"] == "${NAS_S3_PUBLIC_ENDPOINT:-localhost:9000}"
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert example["NAS_S3_PUBLIC_ENDPOINT"] == f"localhost:{example['MINIO_PORT']}"
    for name in NAS_SERVICES:
        assert SERVICES[name]["environment"]["NAS_S3_PUBLIC_ENDPOINT"] == environment["NAS_S3_PUBLIC_ENDPOINT"]


# ------------------------------------------------------------------------------------------------ tests/deploy

LOOPBACK = Loopback(token="t0", variables=run_variables(api_port=18000, s3_port=19000, bucket="nas-t0"),
                    database_url="postgresql+psycopg://postgres@127.0.0.1:5432/nas_t0",
                    broker_url="redis://127.0.0.1:6379/7", broker_key_prefix="nas-t0:", data_dir=Path("scratch"))


def test_the_local_topology_has_every_service_of_the_compose_file():
    assert set(SERVICES) == set(STAND_INS) | set(PROCESSES)
    assert not set(STAND_INS) & set(PROCESSES)
    assert set(PROCESSES) == set(NAS_SERVICES)  # every service of our image runs as a process


@pytest.mark.parametrize("name", NAS_SERVICES)
def test_the_local_topology_runs_the_compose_command_with_only_addresses_changed(name):
    compose, local = command_of(SERVICES[name]), local_command(name, LOOPBACK)
    assert len(local) == len(compose) and local[:4] == compose[:4]
    for before, after in zip(compose, local, strict=True):
        assert after == before or (before, after) in {("0.0.0.0", "127.0.0.1"), ("8000", "18000")} or \
            ("%h" in before and after == before.replace("%h", LOOPBACK.hostname(name))), (before, after)


@pytest.mark.parametrize("name", NAS_SERVICES)
def test_the_local_topology_sets_the_compose_environment_names(name):
    compose = set(SERVICES[name]["environment"])
    local = {key for key in local_env(name, LOOPBACK) if key.startswith("NAS_")}
    assert local == compose | set(ADDED_SETTINGS)
    fields = {f"NAS_{field.upper()}" for field in Settings.model_fields}
    assert set(ADDED_SETTINGS) <= fields and not set(ADDED_SETTINGS) & compose


@pytest.mark.parametrize("name", [name for name, service in SERVICES.items()
                                  if "test" in service.get("healthcheck", {})])
def test_every_health_check_runs_locally_or_says_why_not(name):
    command = local_healthcheck(name, LOOPBACK)
    assert (command is None) == (name in IMAGE_ONLY_CHECKS), name
    if command is not None:
        text = " ".join(command)
        assert not re.search(r"\b(postgres|redis|minio):\d", text) and ":8000" not in text, text

