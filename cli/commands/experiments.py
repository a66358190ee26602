"""``nas experiments``: create, list, show, watch (live trials table), leaderboard, cancel, resume (or extend),
stop-trial."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from cli.commands._client import (DEFAULT_URL, ApiKey, ClientError, Url, call, connect, console, err_console,
                                  fixed, handles_errors, human_count)
from nas_client.api.experiments import (cancel_experiment, create_experiment, get_experiment, get_leaderboard,
                                        list_experiments, list_trials, resume_experiment, stop_trial)
from nas_client.models import ExperimentCreate, ExperimentCreateStrategy, ExperimentResume

app = typer.Typer(help="Run and follow architecture searches.", no_args_is_help=True)
TERMINAL = ("succeeded", "failed", "canceled")


def parse_object(value: str | None, option: str, what: str) -> dict[str, Any]:
    """A JSON-object option (``--space``, ``--strategy-settings``, ``--pruner``, ``--objective``): inline JSON, or
    ``@path`` to a JSON file; empty when not given."""
    if not value:
        return {}
    try:
        text = Path(value[1:]).read_text() if value.startswith("@") else value
        parsed = json.loads(text)
    except (OSError, ValueError) as error:
        raise ClientError(f"{option}: {error}") from None
    if not isinstance(parsed, dict):
        raise ClientError(f"{option}: expected a JSON object of {what}")
    return parsed


def parse_pruner(value: str | None) -> dict[str, Any] | None:
    """``--pruner``: a kind (``asha``, ``median``, ``none``) or a JSON object of its settings (inline or @file)."""
    if not value:
        return None
    if value.startswith(("{", "@")):
        return parse_object(value, "--pruner", "pruner settings")
    return {"kind": value}


def trials_table(experiment: dict, trials: list[dict]) -> Table:
    """The live view of a search: one row per trial (dicts as the API returns them)."""
    progress = experiment["progress"]
    table = Table(title=f"experiment {experiment['id'][:8]} · {experiment['strategy']} · {experiment['status']} · "
                        f"{progress['completed']}/{progress['max_trials']} trials")
    for column in ("#", "status", "stages", "val acc", "params", "latency ms", "epochs", "seconds"):
        table.add_column(column, justify="left" if column in ("status", "stages") else "right")
    for trial in sorted(trials, key=lambda t: t["number"]):
        stages = " ".join(f"{s['op']}{s['width']}k{s['kernel']}" for s in trial["arch"].get("arch", {})
                          .get("stages", []))
        table.add_row(str(trial["number"]), trial["status"], stages, fixed(trial["val_accuracy"], 3),
                      human_count(trial["params"]), fixed(trial["latency_ms"], 2), str(len(trial["epochs"])),
                      fixed(trial["duration_s"], 1))
    return table


def leaderboard_table(board: dict) -> Table:
    """The leaderboard; a Pareto search's rows also show their Pareto layer."""
    layered = any(row.get("pareto_layer") is not None for row in board["data"])
    table = Table(title="leaderboard (★ = Pareto front over accuracy, params, latency)")
    for column in ("rank", "trial", "id", "val acc", "params", "MFLOPs", "latency ms", *(("layer",) if layered
                                                                                          else ())):
        table.add_column(column, justify="left" if column == "id" else "right")
    for row in board["data"]:
        star = " ★" if row["id"] in board["pareto"] else ""
        table.add_row(str(row["rank"]), f"#{row['number']}{star}", row["id"], fixed(row["val_accuracy"], 4),
                      human_count(row["params"]), fixed(row["flops"] and row["flops"] / 1e6, 1),
                      fixed(row["latency_ms"], 2), *((str(row.get("pareto_layer") or ""),) if layered else ()))
    return table


def summary(experiment: dict) -> str:
    progress, best = experiment["progress"], experiment["best"]
    text = (f"experiment {experiment['id']} {experiment['status']}: {progress['completed']}/{progress['max_trials']}"
            f" trials ({progress['succeeded']} succeeded, {progress['pruned']} pruned, "
            f"{progress['stopped']} stopped, {progress['failed']} failed)")
    if best:
        text += f"; best #{best['number']} val acc {best['val_accuracy']:.4f}"
    screened = experiment.get("screened") or {}
    if screened.get("total"):
        reasons = ", ".join(f"{count} {reason}" for reason, count in screened["by_reason"].items())
        text += f"; {screened['total']} candidates screened out ({reasons})"
    return text + (f" — {experiment['detail']}" if experiment["detail"] else "")


@app.command("create")
@handles_errors
def create(dataset: Annotated[str, typer.Option("--dataset", help="Id of a ready dataset.")],
           strategy: Annotated[ExperimentCreateStrategy | None,
                               typer.Option(help="The search strategy (default: evolution).")] = None,
           max_trials: Annotated[int | None, typer.Option(min=1, help="Trials to run in all (default 100).")] = None,
           epochs: Annotated[int | None, typer.Option(min=1, help="Training epochs per trial (default 12).")] = None,
           max_minutes: Annotated[float | None, typer.Option(help="Time budget of the search.")] = None,
           model_minutes: Annotated[float | None, typer.Option(help="Time budget of the final model.")] = None,
           max_mflops: Annotated[float | None, typer.Option(help="Constraint: MFLOPs per image.")] = None,
           metric: Annotated[str | None, typer.Option(help="accuracy (default) or balanced_accuracy.")] = None,
           concurrency: Annotated[int | None, typer.Option(min=1, help="Trials running at once.")] = None,
           max_params: Annotated[int | None, typer.Option(help="Constraint: at most this many parameters.")] = None,
           max_latency_ms: Annotated[float | None, typer.Option(help="Constraint: CPU latency per image.")] = None,
           space: Annotated[str | None, typer.Option(help="Search-space overrides: JSON, or @file.json.")] = None,
           strategy_settings: Annotated[str | None, typer.Option(
               help="Overrides of the strategy's settings: JSON, or @file.json.")] = None,
           pruner: Annotated[str | None, typer.Option(
               help="Pruner kind (asha, median, none), or its settings as JSON / @file.json.")] = None,
           objective: Annotated[str | None, typer.Option(
               help="The objective as JSON / @file.json, e.g. '{\"mode\": \"pareto\", \"minimize\": "
                    "[\"latency_ms\"]}'; --metric and the constraint options add to it.")] = None,
           seed: Annotated[int | None, typer.Option(min=0)] = None,
           name: Annotated[str | None, typer.Option()] = None,
           auto_model: Annotated[bool, typer.Option("--auto-model/--no-auto-model",
                                                    help="Retrain and export the best trial at the end.")] = True,
           warm_start: Annotated[str | None, typer.Option(
               "--warm-start", metavar="EXP_ID[,EXP_ID...]",
               help="Seed the strategy with these experiments' finished trials (same dataset, or the same classes "
                    "and channels).")] = None,
           url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Start a search and print the experiment's id (the last line of stdout)."""
    def given(*pairs: tuple[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in pairs if value is not None}

    budget = given(("max_trials", max_trials), ("epochs_per_trial", epochs), ("max_minutes", max_minutes),
                   ("model_minutes", model_minutes))
    constraints = given(("max_params", max_params), ("max_latency_ms", max_latency_ms), ("max_mflops", max_mflops))
    asked = parse_object(objective, "--objective", "objective settings")
    body: dict[str, Any] = {"dataset_id": dataset, "auto_model": auto_model, "budget": budget,
                            "objective": {**asked, "constraints": {**(asked.get("constraints") or {}), **constraints},
                                          **given(("metric", metric))},
                            "search_space": parse_object(space, "--space", "search-space overrides"),
                            "strategy_settings": parse_object(strategy_settings, "--strategy-settings",
                                                              "strategy settings")}
    if (pruner_body := parse_pruner(pruner)) is not None:
        body["pruner"] = pruner_body
    body.update(given(("strategy", strategy and strategy.value), ("concurrency", concurrency), ("seed", seed),
                      ("name", name)))
    if warm_start is not None:
        body["warm_start"] = {"experiment_ids": [part.strip() for part in warm_start.split(",") if part.strip()]}
    experiment = call(create_experiment, client=connect(url, api_key), body=ExperimentCreate.from_dict(body))
    budget = experiment.budget.to_dict() if hasattr(experiment.budget, "to_dict") else dict(experiment.budget)
    err_console.print(f"created experiment {experiment.id} ({experiment.strategy}, {budget.get('max_trials')} trials "
                      f"× {budget.get('epochs_per_trial')} epochs); follow it with "
                      f"`nas experiments watch {experiment.id}`")
    if echoed := getattr(experiment, "warm_start", None):  # the generated model, or Unset / None for a cold start
        echoed = echoed.to_dict()
        err_console.print(f"warm start: {echoed['trials_used']} trials of {len(echoed['experiment_ids'])} "
                          f"experiment(s) seed the strategy, {echoed['trials_skipped']} left out "
                          f"{echoed.get('skipped_by_reason') or ''}".rstrip())
    console.print(experiment.id)


@app.command("list")
@handles_errors
def list_(limit: Annotated[int, typer.Option(min=1, max=500)] = 50, offset: Annotated[int, typer.Option(min=0)] = 0,
          url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """List the project's experiments, newest first."""
    page = call(list_experiments, client=connect(url, api_key), limit=limit, offset=offset).to_dict()
    table = Table(title=f"experiments ({page['total']})")
    for column in ("id", "name", "status", "strategy", "trials", "best val acc", "created"):
        table.add_column(column)
    for row in page["data"]:
        progress, best = row["progress"], row["best"]
        table.add_row(row["id"], row["name"], row["status"], row["strategy"],
                      f"{progress['completed']}/{progress['max_trials']}",
                      fixed(best and best["val_accuracy"], 4), row["created_at"][:19])
    console.print(table)


@app.command("show")
@handles_errors
def show(experiment_id: str, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Print one experiment as JSON."""
    console.print_json(json.dumps(call(get_experiment, experiment_id, client=connect(url, api_key)).to_dict()))


@app.command("watch")
@handles_errors
def watch(experiment_id: str,
          interval: Annotated[float, typer.Option(min=0.1, help="Seconds between refreshes.")] = 1.0,
          url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Show a live table of trials until the search ends; exit 0 if it succeeded, 1 otherwise."""
    client = connect(url, api_key)
    with Live(console=console, refresh_per_second=4, auto_refresh=False) as live:
        while True:
            experiment = call(get_experiment, experiment_id, client=client).to_dict()
            trials = call(list_trials, experiment_id, client=client, limit=500).to_dict()["data"]
            live.update(trials_table(experiment, trials), refresh=True)
            if experiment["status"] in TERMINAL:
                break
            time.sleep(interval)
    if experiment["status"] != "succeeded":
        raise ClientError(summary(experiment))
    err_console.print(summary(experiment))


@app.command("leaderboard")
@handles_errors
def leaderboard(experiment_id: str, limit: Annotated[int, typer.Option(min=1, max=500)] = 10,
                url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Trials meeting the constraints, best first; ★ marks the Pareto front."""
    board = call(get_leaderboard, experiment_id, client=connect(url, api_key), limit=limit).to_dict()
    console.print(leaderboard_table(board))


@app.command("cancel")
@handles_errors
def cancel(experiment_id: str, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Stop a search; running trials stop at their next batch."""
    experiment = call(cancel_experiment, experiment_id, client=connect(url, api_key))
    err_console.print(f"experiment {experiment.id} is {experiment.status}")


@app.command("resume")
@handles_errors
def resume(experiment_id: str,
           max_trials: Annotated[int | None, typer.Option(min=1, help="The new trial budget, in all (trials "
                                                          "already run count).")] = None,
           max_minutes: Annotated[float | None, typer.Option(help="The new time budget, in all (minutes already "
                                                             "spent count).")] = None,
           url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Continue a canceled or failed search with the budget left, or extend a succeeded one with a larger
    --max-trials or --max-minutes."""
    body = {key: value for key, value in (("max_trials", max_trials), ("max_minutes", max_minutes))
            if value is not None}
    experiment = call(resume_experiment, experiment_id, client=connect(url, api_key),
                      body=ExperimentResume.from_dict(body))
    err_console.print(f"experiment {experiment.id} is {experiment.status}")


@app.command("stop-trial")
@handles_errors
def stop_trial_(experiment_id: str, number: Annotated[int, typer.Argument(help="The trial's number (#).")],
                url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Stop one trial at its next batch (a pending one never starts); the search goes on."""
    trial = call(stop_trial, experiment_id, number, client=connect(url, api_key))
    state = "stopping" if trial.status == "running" else trial.status
    err_console.print(f"trial #{trial.number} of experiment {experiment_id} is {state}")
