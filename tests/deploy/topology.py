"""docker-compose.yml as processes on loopback: the compose file is read and translated here, never restated.

Every compose service has a local counterpart: a stand-in for the images of others (:data:`STAND_INS`) or, for
the services of our image (:data:`PROCESSES`), a process that runs its compose command with its compose
environment. Only what a container network gives and one machine lacks is translated: a service's host name
becomes a loopback address, a container port the port compose publishes it on, ``%h`` the service's own host name
(each container has one), ``/data`` (the scratch volume they share) a directory, and the GPU worker trains on the
CPU where there is no GPU. ``tests/test_compose.py`` fails when the compose file grows something this cannot
translate; ``tests/deploy/test_topology.py`` runs it.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml
from minio import Minio

from tests.service.helpers import (BIN, REDIS_URL, ROOT, create_database, drop_database, process_env, redis_broker,
                                   start_process, stop_processes)

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# The variables a deployment provides in .env; a run starts from the example and changes only ports and names.
ENV_EXAMPLE = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line.strip() and not line.startswith("#"))

STAND_INS = {
    "postgres": "the machine's PostgreSQL (127.0.0.1:5432, trust auth): a fresh database",
    "redis": "the machine's Redis (127.0.0.1:6379): a database number and key prefix of this run's own",
    "minio": "moto's S3 server, listening on MinIO's published port",
    "minio-init": "the bucket, made with the minio client as `mc mb --ignore-existing` does",
}
# Ours, in the order compose starts them (migrate completes before the others start).
PROCESSES = ("migrate", "api", "worker-gpu", "worker-ingest")
ONE_SHOT = ("migrate",)
# Settings the local run adds to the compose environment, with the reason; no other name may differ.
ADDED_SETTINGS = {
    "NAS_BROKER_KEY_PREFIX": "the machine's Redis serves other runs at the same time",
    "NAS_REAPER_INTERVAL_S": "the workers' reapers sweep datasets within the run (every 2 s, not every 5 minutes)",
    "NAS_TF_EXPORT": "the TensorFlow formats have their own tests; the run's model is built without them",
}
REAPER_INTERVAL_S = "2"
# Health checks that need a program only their image has; the stand-in is checked another way.
IMAGE_ONLY_CHECKS = {"minio": "`mc` exists only in the MinIO image: the stand-in's S3 API is asked for the bucket"}

_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's variable syntax: ``${VAR}``, ``$VAR``, ``${VAR:-default}``, ``${VAR:?error}``, ``$$`` for ``$``."""
    def value(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1) or match.group(4), match.group(2), match.group(3)
        current = variables.get(name)
        missing = current is None or (operator is not None and operator.startswith(":") and not current)
        if missing and operator and operator.endswith("?"):
            raise KeyError(f"{name}: {argument}")
        if missing and operator:
            return argument
        return current or ""

    return _VARIABLE.sub(value, text)


def resolve(node: Any, variables: Mapping[str, str]) -> Any:
    """``node`` of the compose file with every string interpolated."""
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, dict):
        return {key: resolve(value, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(value, variables) for value in node]
    return node


def seconds(duration: str) -> float:
    """A compose duration (``15s``, ``1m30s``) in seconds."""
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(number) * scale[unit] for number, unit in _DURATION.findall(duration))


def command_of(service: str) -> list[str]:
    command = SERVICES[service].get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


@dataclass(frozen=True)
class Loopback:
    """What this run's compose network turns into: backends, ports and names on one machine."""

    token: str
    variables: dict[str, str]  # the run's .env: the example with this run's ports and bucket
    database_url: str
    broker_url: str
    broker_key_prefix: str
    data_dir: Path
    gpu: bool = False

    def hostname(self, service: str) -> str:
        """The host name the service's container would have (unique to this run)."""
        return f"{service}-{self.token}"

    def published(self, service: str, container_port: int) -> int:
        """The host port compose publishes ``container_port`` of ``service`` on; here the process listens on it."""
        for mapping in resolve(SERVICES[service].get("ports", []), self.variables):
            host, _, container = str(mapping).rpartition(":")
            if int(container) == container_port:
                return int(host)
        raise KeyError(f"{service} publishes no port {container_port}")

    @property
    def s3_endpoint(self) -> str:
        """Where the services reach the S3 server (compose: ``minio:9000``)."""
        return f"127.0.0.1:{self.published('minio', 9000)}"

    @property
    def redis_db(self) -> int:
        return int(urlparse(self.broker_url).path.lstrip("/") or 0)

    @property
    def database(self) -> tuple[str, str]:
        """The database's user and name."""
        url = urlparse(self.database_url)
        return url.username or "postgres", url.path.lstrip("/")


def local_setting(name: str, value: str, loopback: Loopback) -> str:
    """A compose setting's value for a process on this machine."""
    if name == "NAS_DATABASE_URL":
        assert urlparse(value).hostname == "postgres" and value.split("://")[0] == loopback.database_url.split("://")[0]
        return loopback.database_url
    if name == "NAS_BROKER_URL":
        assert urlparse(value).hostname == "redis", value
        return loopback.broker_url
    if name == "NAS_S3_ENDPOINT":
        assert value == "minio:9000", value
        return loopback.s3_endpoint
    if name == "NAS_DATA_DIR":
        assert value == "/data", value  # the nas-scratch volume, shared by every service of the image
        return str(loopback.data_dir)
    if name == "NAS_WORKER_DEVICE" and value == "cuda" and not loopback.gpu:
        return "cpu"
    return value


def local_env(service: str, loopback: Loopback) -> dict[str, str]:
    """The service's compose environment, translated, plus :data:`ADDED_SETTINGS` and what a container of the
    image has: the virtualenv first on ``PATH`` (the Dockerfile's ``ENV PATH``) and ``HOSTNAME``."""
    compose_env = resolve(SERVICES[service].get("environment", {}), loopback.variables)
    settings = {name: local_setting(name, str(value), loopback) for name, value in compose_env.items()}
    for name, value in settings.items():
        for host in SERVICES:
            assert not re.search(rf"(^|[/@]){re.escape(host)}:\d", value), f"{name}={value} names service {host}"
    settings.update(NAS_BROKER_KEY_PREFIX=loopback.broker_key_prefix, NAS_REAPER_INTERVAL_S=REAPER_INTERVAL_S,
                    NAS_TF_EXPORT="false")
    env = {key: value for key, value in process_env(loopback.data_dir).items() if not key.startswith("NAS_")}
    env.update(settings, PATH=f"{BIN}:{env.get('PATH', '')}", HOSTNAME=loopback.hostname(service))
    return env


def local_argument(argument: str, service: str, loopback: Loopback, ports: dict[int, int]) -> str:
    argument = argument.replace("%h", loopback.hostname(service))
    for container, host in ports.items():
        argument = argument.replace(f"127.0.0.1:{container}", f"127.0.0.1:{host}")
    return "127.0.0.1" if argument == "0.0.0.0" else argument


def local_command(service: str, loopback: Loopback, argv: list[str] | None = None) -> list[str]:
    """The service's compose command (or ``argv``, a command inside its container) for this machine: listening on
    loopback, on the published port, under the service's host name."""
    argv = command_of(service) if argv is None else argv
    container_ports = [int(str(mapping).rpartition(":")[2]) for mapping in SERVICES[service].get("ports", [])]
    ports = {port: loopback.published(service, port) for port in container_ports}
    local = [local_argument(argument, service, loopback, ports) for argument in argv]
    for index, argument in enumerate(argv[:-1]):
        if argument == "--port":
            local[index + 1] = str(ports[int(argv[index + 1])])
    return local


def local_healthcheck(service: str, loopback: Loopback) -> list[str] | None:
    """The service's compose health check as a command here (None where it needs its image's own program)."""
    if service in IMAGE_ONLY_CHECKS:
        return None
    test = resolve(SERVICES[service]["healthcheck"]["test"], loopback.variables)
    if test[0] == "CMD-SHELL":
        assert not re.search(r"[;&|<>`]", test[1]), f"{service}: translate this shell line by hand: {test[1]}"
        argv = shlex.split(test[1])
    else:
        assert test[0] == "CMD", test
        argv = list(test[1:])
    # Inside their containers these clients reach the server on its default local address; here, on loopback.
    if argv[0] == "pg_isready":
        assert set(argv[1::2]) <= {"-U", "-d"}, argv
        user, database = loopback.database
        argv = ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", user, "-d", database]
    elif argv[0] == "redis-cli":
        argv = ["redis-cli", "-h", urlparse(REDIS_URL).hostname, "-p", str(urlparse(REDIS_URL).port or 6379),
                "-n", str(loopback.redis_db), *argv[1:]]
    argv = local_command(service, loopback, argv)
    if test[0] == "CMD-SHELL":  # through a shell, which expands $HOSTNAME from the environment as in a container
        return ["sh", "-c", " ".join(f'"{word}"' if "$" in word else shlex.quote(word) for word in argv)]
    return argv


@dataclass
class Deployment:
    """The topology running here: processes by compose service name, logs in ``log_dir``."""

    loopback: Loopback
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        """The API as a client on the host reaches it (compose publishes it on NAS_PORT)."""
        return f"http://localhost:{self.loopback.published('api', 8000)}"

    def env(self, service: str) -> dict[str, str]:
        return local_env(service, self.loopback)

    def healthcheck(self, service: str) -> subprocess.CompletedProcess[str]:
        """Run the service's translated health check once, within its compose timeout."""
        argv = local_healthcheck(service, self.loopback)
        assert argv is not None, f"{service}: {IMAGE_ONLY_CHECKS[service]}"
        timeout_s = seconds(SERVICES[service]["healthcheck"].get("timeout", "30s"))
        try:
            return subprocess.run(argv, cwd=ROOT, env=self.env(service), capture_output=True, text=True,
                                  timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout_s}s")

    def wait_healthy(self, service: str) -> subprocess.CompletedProcess[str]:
        """Until the check passes, for as long as compose would try (start period plus retries × interval)."""
        check = SERVICES[service]["healthcheck"]
        deadline = time.monotonic() + seconds(check.get("start_period", "0s")) + \
            check.get("retries", 3) * seconds(check.get("interval", "30s"))
        while True:
            result = self.healthcheck(service)
            if result.returncode == 0 or time.monotonic() > deadline:
                return result
            process = self.processes.get(service)
            if process is not None and process.poll() is not None:
                return result  # exited: it will not turn healthy
            time.sleep(1)

    def logs(self) -> str:
        return "\n".join(f"----- {path.stem} -----\n{path.read_text(errors='replace')[-5000:]}"
                         for path in sorted(self.log_dir.glob("*.log")))


def listening_port() -> int:
    """A free port below the kernel's ephemeral range. The API binds its port seconds after it is chosen (after the
    migrations), and a port from that range (what binding port 0 gives) can meanwhile become the local end of any
    outgoing connection on the machine."""
    ephemeral_low = 32768
    with contextlib.suppress(OSError, ValueError, IndexError):
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        port = 10000 + secrets.randbelow(max(ephemeral_low - 10000, 1000))
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def run_variables(*, api_port: int, s3_port: int, bucket: str) -> dict[str, str]:
    """This run's .env: the example, with free ports, the public S3 endpoint under the client's host name
    (``localhost``; the services use ``127.0.0.1``) and a bucket of its own."""
    return dict(ENV_EXAMPLE, NAS_PORT=str(api_port), MINIO_PORT=str(s3_port), NAS_S3_BUCKET=bucket,
                NAS_S3_PUBLIC_ENDPOINT=f"localhost:{s3_port}")


@contextlib.contextmanager
def deployed(tmp_path: Path) -> Iterator[Deployment]:
    """Start the whole topology (stand-ins, then ``migrate``, then the long-running processes) and stop it on exit;
    the run's database and Redis keys go with it. The GPU worker trains on a GPU where there is one."""
    import torch
    from moto.server import ThreadedMotoServer

    token = secrets.token_hex(4)
    (tmp_path / "data").mkdir(parents=True)
    (tmp_path / "logs").mkdir()
    api_port, s3_port = listening_port(), listening_port()
    while s3_port == api_port:
        s3_port = listening_port()
    variables = run_variables(api_port=api_port, s3_port=s3_port, bucket=f"nas-deploy-{token}")
    database = f"nas_deploy_{token}"
    broker = redis_broker(f"deploy-{token}")
    with contextlib.ExitStack() as cleanup:
        loopback = Loopback(token=token, variables=variables, database_url=create_database(database),
                            broker_url=broker["NAS_BROKER_URL"], broker_key_prefix=broker["NAS_BROKER_KEY_PREFIX"],
                            data_dir=tmp_path / "data", gpu=torch.cuda.is_available())
        cleanup.callback(drop_database, database)
        cleanup.callback(_drop_redis_keys, loopback)
        s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=loopback.published("minio", 9000), verbose=False)
        s3.start()
        cleanup.callback(s3.stop)
        deployment = Deployment(loopback=loopback, log_dir=tmp_path / "logs")
        cleanup.callback(lambda: stop_processes(list(deployment.processes.values())))

        init = resolve(SERVICES["minio-init"]["environment"], variables)
        Minio(loopback.s3_endpoint, access_key=init["MINIO_ROOT_USER"], secret_key=init["MINIO_ROOT_PASSWORD"],
              secure=False, region="us-east-1").make_bucket(init["NAS_S3_BUCKET"])
        for service in PROCESSES:
            log_path = deployment.log_dir / f"{service}.log"
            if service in ONE_SHOT:
                with open(log_path, "wb") as log:
                    subprocess.run(local_command(service, loopback), cwd=ROOT, env=deployment.env(service),
                                   stdout=log, stderr=subprocess.STDOUT, check=True, timeout=120)
            else:
                deployment.processes[service] = start_process(local_command(service, loopback),
                                                              deployment.env(service), log_path)
        try:
            yield deployment
        except BaseException:
            print(f"===== deployment logs =====\n{deployment.logs()}")  # shown with the failure
            raise


def _drop_redis_keys(loopback: Loopback) -> None:
    import redis

    with redis.Redis.from_url(loopback.broker_url) as client:
        keys = list(client.scan_iter(match=f"{loopback.broker_key_prefix}*"))
        if keys:
            client.delete(*keys)


def signed_for(url: str, host: str, *, access_key: str, secret_key: str) -> str:
    """``url`` as a minio client at ``host`` would presign it at the same moment (same date and lifetime)."""
    parsed = urlparse(url)
    query = {key: values[0] for key, values in parse_qs(parsed.query).items()}
    bucket, _, key = parsed.path.lstrip("/").partition("/")
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    client = Minio(host, access_key=access_key, secret_key=secret_key, secure=parsed.scheme == "https",
                   region=query["X-Amz-Credential"].split("/")[2])
    return client.presigned_get_object(bucket, key, expires=timedelta(seconds=int(query["X-Amz-Expires"])),
                                       request_date=signed_at)
