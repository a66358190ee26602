"""What every client command shares: the connection options, one way to call the API, one way to fail.

An API error or an unreachable server ends the command with one red line on stderr and exit code 1, e.g.
``error: 404 not-found: experiment not found`` — never a traceback.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from nas_client import AuthenticatedClient

DEFAULT_URL = "http://127.0.0.1:8000"
# soft_wrap: an error stays one line however narrow the terminal (or pipe) is.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

Url = Annotated[str, typer.Option("--url", envvar="NAS_URL", help="Base URL of the nas-service API.")]
ApiKey = Annotated[str | None, typer.Option("--api-key", envvar="NAS_API_KEY", show_default=False,
                                            help="API key (from `nas keys create`).")]
Result = TypeVar("Result")
Command = TypeVar("Command", bound=Callable[..., Any])


class ClientError(Exception):
    """A failed call, already phrased for people."""


def problem_message(status: int, content: bytes) -> str:
    """One line from a problem+json body: ``404 not-found: experiment not found (field: error; …)``.

    >>> problem_message(404, b'{"type": "/problems/not-found", "detail": "experiment not found"}')
    '404 not-found: experiment not found'
    """
    try:
        problem = json.loads(content)
        slug, detail = problem["type"].rsplit("/", 1)[-1], problem["detail"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"{status} {content[:200].decode(errors='replace').strip() or 'no response body'}"
    items = [f"{item.get('field') or item.get('check') or item.get('file', '')}: {item.get('error', '')}".strip(": ")
             for item in problem.get("errors") or [] if isinstance(item, dict)]
    suffix = f" ({'; '.join(items[:5])}{'; …' if len(items) > 5 else ''})" if items else ""
    return f"{status} {slug}: {detail}{suffix}"


def connect(url: str, api_key: str | None) -> AuthenticatedClient:
    if not api_key:
        raise ClientError("no API key: set NAS_API_KEY or pass --api-key (create one with `nas keys create`)")
    return AuthenticatedClient(base_url=url.rstrip("/"), token=api_key,
                               timeout=httpx.Timeout(60.0, connect=10.0))


def call(operation: Any, *args: Any, client: AuthenticatedClient, **kwargs: Any) -> Any:
    """Run a generated operation (``nas_client.api.<tag>.<operation>``); its parsed result, or ClientError."""
    response = operation.sync_detailed(*args, client=client, **kwargs)
    if response.status_code >= 400:
        raise ClientError(problem_message(response.status_code, response.content))
    return response.parsed


def poll(fetch: Callable[[], Result], done: Callable[[Result], bool], *, interval_s: float,
         timeout_s: float | None, what: str) -> Result:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        value = fetch()
        if done(value):
            return value
        if deadline is not None and time.monotonic() > deadline:
            raise ClientError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


def fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(1)


def handles_errors(command: Command) -> Command:
    """Turn API and connection failures into one red line and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ClientError as error:
            raise fail(str(error)) from None
        except httpx.TransportError as error:  # refused, DNS, timeouts: the server is not answering
            where = error.request.url.copy_with(query=None) if _has_request(error) else "the server"
            raise fail(f"cannot reach {where}: {error or type(error).__name__}") from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _has_request(error: httpx.TransportError) -> bool:
    try:
        _ = error.request  # httpx raises RuntimeError when no request is attached
    except RuntimeError:
        return False
    return True


def human_count(value: int | None) -> str:
    return f"{value:,}" if value is not None else ""


def fixed(value: float | None, digits: int) -> str:
    return f"{value:.{digits}f}" if value is not None else ""
