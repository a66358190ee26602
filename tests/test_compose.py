"""docker-compose.yml, Dockerfile and .env.example checked without a Docker engine: they must name real settings,
real entry points, consistent ports and volumes, and every variable a deployment has to provide."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest
import yaml

from api.queue import QUEUES
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
NAS_SERVICES = [name for name, service in SERVICES.items() if service.get("image", "").startswith("nas-service")]


def command_of(service: dict) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_the_service_set_is_complete():
    expected = {"postgres", "redis", "minio", "minio-init", "migrate", "api", "worker-gpu", "worker-ingest"}
    assert expected <= set(SERVICES)
    assert set(NAS_SERVICES) == {"migrate", "api", "worker-gpu", "worker-ingest"}


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
    for name in ("api", "worker-gpu", "worker-ingest"):
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
