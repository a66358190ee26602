"""``nas``: run the embedded service, manage API keys, migrate the database."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time

import typer

from cli.commands import datasets as datasets_commands
from cli.commands import experiments as experiments_commands
from cli.commands import models as models_commands

# No locals in tracebacks: an unexpected error must never print the API key held in a local variable.
app = typer.Typer(help="Neural architecture search as a self-hosted REST service.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_show_locals=False)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
# Client commands: they talk to a running server through the generated OpenAPI client (NAS_URL, NAS_API_KEY).
app.add_typer(datasets_commands.app, name="datasets")
app.add_typer(experiments_commands.app, name="experiments")
app.add_typer(models_commands.app, name="models")

log = logging.getLogger("nas")
STOP_GRACE_S = 30
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _settings():
    from api.settings import get_settings

    try:
        return get_settings()
    except ValueError as error:  # pydantic's ValidationError: bad NAS_* settings
        typer.echo(f"invalid settings: {error}", err=True)
        raise typer.Exit(2) from None


@app.command()
def migrate() -> None:
    """Upgrade the configured database to the latest schema (``alembic upgrade head``)."""
    from api.migrate import upgrade_head

    settings = _settings()
    upgrade_head(settings.database_url)
    typer.echo(f"database at head: {settings.describe()['database']}", err=True)


@keys_app.command("create")
def keys_create(project: str = typer.Option(..., "--project",
                                            help="Project name; created if it does not exist.")) -> None:
    """Create an API key for PROJECT and print it once, as the last line of stdout."""
    from api.runtime import get_runtime
    from api.services.keys import create_api_key

    settings = _settings()
    if settings.is_sqlite:  # embedded mode: make `nas keys create` work before the first `nas serve`
        from api.migrate import upgrade_head

        upgrade_head(settings.database_url)
    with get_runtime().unit_of_work() as session:
        created = create_api_key(session=session, project_name=project)
    typer.echo(f"project {created.project_name} ({created.project_id}), key id {created.key_id}; "
               "the key is shown only once:")
    typer.echo(created.key)


@keys_app.command("list")
def keys_list(project: str | None = typer.Option(None, "--project", help="Only this project's keys.")) -> None:
    """List API keys: id, project, prefix, created, last used (to the minute), revoked. Keys themselves are never
    stored, so never shown."""
    from api.runtime import get_runtime
    from api.services.keys import list_api_keys

    _settings()
    with get_runtime().unit_of_work() as session:
        keys = list_api_keys(session=session, project_name=project)
    typer.echo("key id\tproject\tprefix\tcreated\tlast used\trevoked")
    for key in keys:
        typer.echo("\t".join((key.key_id, key.project_name, key.prefix, key.created_at, key.last_used_at or "-",
                              key.revoked_at or "-")))


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key id printed by `nas keys create`.")) -> None:
    """Revoke an API key; requests with it get 401 from now on."""
    from api.runtime import get_runtime
    from api.services.keys import revoke_api_key

    _settings()
    with get_runtime().unit_of_work() as session:
        revoke_api_key(session=session, key_id=key_id)
    typer.echo(f"revoked {key_id}", err=True)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Interface the API listens on."),
          port: int = typer.Option(8000, help="Port the API listens on."),
          stop_timeout: float = typer.Option(STOP_GRACE_S, min=0, help="Seconds the API and the worker get to stop "
                                             "(a running trial stops at its next batch) before they and every "
                                             "process they started are killed.")) -> None:
    """Embedded mode: migrate, then run the API (uvicorn) and one worker (all queues) until Ctrl-C / SIGTERM."""
    from api.migrate import upgrade_head

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_head(settings.database_url)
    for what, where in settings.describe().items():
        log.info("%s: %s", what, where)

    # Own sessions, hence own process groups: a terminal's Ctrl-C reaches only this process, which then stops the
    # children in order, and each child's group holds everything it started (Celery's pool processes).
    die_with_us = _signal_on_parent_death(os.getpid())
    children = {
        "api": subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory",
                                 "--http", "api.http_protocol:HttpToolsProtocol", "--host", host, "--port", str(port)],
                                start_new_session=True, preexec_fn=die_with_us),
        # One worker for every queue; like every worker it runs the reaper thread (worker.reaper).
        "worker": subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker.app", "worker",
                                    "-Q", "ingest,trials,models", "-c", "1", "--loglevel", "INFO",
                                    "-n", f"nas-embedded-{os.getpid()}@%h"], start_new_session=True,
                                   preexec_fn=die_with_us),
    }
    log.info("API on http://%s:%d (create a key with `nas keys create --project NAME`)", host, port)

    stopping = False

    def request_stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                log.error("%s exited with %s; stopping", name, child.returncode)
                exit_code, stopping = 1, True
        time.sleep(0.2)
    _stop_children(children, grace_s=stop_timeout)
    raise typer.Exit(exit_code)


def _signal_on_parent_death(parent_pid: int):
    """A ``preexec_fn``: the child gets SIGTERM if this process dies without stopping it (even by SIGKILL).
    Linux only (``prctl(PR_SET_PDEATHSIG)``); elsewhere None, and stopping relies on the process groups alone."""
    if not sys.platform.startswith("linux"):
        return None

    def preexec() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _stop_children(children: dict[str, subprocess.Popen], *, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM each child, wait up to ``grace_s`` in all, then SIGKILL each child's process group: whatever a child
    started (Celery's pool processes) goes with it, even when the child itself was killed first."""
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for name, child in children.items():
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %ss; killing it and every process it started", name, grace_s)
        # Each child leads its own group (start_new_session), so its pid is the group's id.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    log.info("stopped")


if __name__ == "__main__":
    app()
