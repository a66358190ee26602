"""The experiment's trials as the engine sees them: the history a strategy proposes from and a pruner compares with.

Screened-out candidates belong to it too (infeasible points), so strategies learn where not to propose again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.orm import Experiment, Trial
from api.repositories import experiments as repository

# nas_core is imported inside the functions that use it: its pruners load optuna, which the API process (it imports
# this package) never needs.

# Screened-out candidates join the strategy's history after every trial (their numbers start here).
SCREENED_NUMBERS = 1_000_000_000


def trial_value(trial: Trial, metric: str) -> float | None:
    if metric == "balanced_accuracy" and trial.val_balanced_accuracy is not None:
        return trial.val_balanced_accuracy
    return trial.val_accuracy


def latency_factor(latency_ms: float | None, target_ms: float | None) -> float:
    """What a soft latency target multiplies a trial's metric (and its curve) by: MnasNet's ``(latency / target) **
    -0.07`` (:func:`nas_core.ranking.soft_latency_reward`); 1 without a target or a measured latency."""
    from nas_core.ranking import soft_latency_reward

    return 1.0 if target_ms is None else soft_latency_reward(1.0, latency_ms, target_ms)


def experiment_value(trial: Trial, experiment: Experiment) -> float | None:
    """What the search maximises for ``trial``: the experiment's metric, times :func:`latency_factor` when the
    experiment has a soft latency target."""
    value = trial_value(trial, experiment.metric)
    return None if value is None else value * latency_factor(trial.latency_ms, experiment.latency_target_ms)


def trial_costs(trial: Trial) -> dict[str, float]:
    """The figures a Pareto search may minimise, as far as they are known (measured before training)."""
    costs = {"latency_ms": trial.latency_ms, "params": trial.params}
    return {name: float(value) for name, value in costs.items() if value is not None}


def history_records(session: Session, experiment: Experiment, *, exclude: str | None = None,
                    trials: list[Trial] | None = None, epochs: int | None = None) -> list:
    """The experiment's trials as the engine sees them (``TrialRecord``), oldest first, then its screened-out
    candidates (infeasible, so strategies learn where not to propose again).

    A trial's value is the objective's metric; its curve holds rung scores (:func:`nas_core.pruning.rung_score`),
    the figure pruning compares at equal epochs (both times :func:`latency_factor` under a soft latency target); its
    costs are its latency and parameters (what a Pareto search minimises). With ``epochs``, only the trials of that
    length (what a pruner compares a curve with; trials of another length run another schedule). A trial a user
    stopped is, to the engine, a pruned one (a partial curve that did not finish), or a canceled one when it stopped
    before its first epoch (no signal, but its decisions count as seen, so it is not proposed again).
    """
    curves = repository.epochs_by_trial(session, experiment.id)
    records = [trial_record(trial, experiment, curves.get(trial.id, {}))
               for trial in (trials if trials is not None else repository.all_trials(session, experiment.id))
               if trial.id != exclude and (epochs is None or experiment.epochs_of(trial) == epochs)]
    for index, point in enumerate(experiment.screened_points or []):
        records.append(screened_record(index, point["decisions"], point.get("violation", 1.0)))
    return records


def trial_record(trial: Trial, experiment: Experiment, epochs: dict[int, tuple[float, float | None, float]]):
    """One trial as the engine sees it under ``experiment``'s objective (see :func:`history_records`); ``epochs``:
    its curve as :func:`api.repositories.experiments.epochs_by_trial` gives it. A warm start builds its seeds with
    it too, under the new experiment's objective."""
    from nas_core.params import TrialRecord
    from nas_core.pruning import rung_score

    factor = latency_factor(trial.latency_ms, experiment.latency_target_ms)
    curve = {epoch: factor * rung_score(val_accuracy=accuracy, val_balanced_accuracy=balanced, val_loss=loss)
             for epoch, (accuracy, balanced, loss) in epochs.items()}
    value = experiment_value(trial, experiment)
    status = trial.status
    if status == "stopped":
        status = "pruned" if curve else "canceled"
    if status == "pruned" and value is None and curve:
        value = curve[max(curve)]
    return TrialRecord(number=trial.number, decisions=trial.decisions, status=status, value=value,
                       feasible=trial.feasible, intermediate=curve, costs=trial_costs(trial))


def screened_record(index: int, decisions: dict[str, Any], violation: float):
    from nas_core.params import TrialRecord

    return TrialRecord(number=SCREENED_NUMBERS + index, decisions=dict(decisions), status="screened", feasible=False,
                       violation=violation)
