"""Warm start: seed a new experiment's strategy with the finished trials of earlier experiments of its project.

At creation the source trials are checked, re-encoded in the new search space and stored on the experiment as a
snapshot of history records (``Experiment.warm_start``), valued under the *new* experiment's objective; the
scheduler puts them before the experiment's own trials each time it asks the strategy. The snapshot keeps the seed
what it was at creation: a source that is resumed later, or deleted, does not change it.

Eligibility: a source is an experiment of the same project (another project's id is a 404, as everywhere) that
searched the same dataset, the same data uploaded again (same sha256), or a dataset with the same class names (in
any order: the order only fixes each class's logit index) and the same number of image channels (the network's
first layer); anything else is a 409 ``warm-start-incompatible`` naming the difference. Its succeeded trials seed
the strategy, and so do its pruned ones and those a user stopped after an epoch (a partial curve); failed,
canceled, pending and running ones do not. A source's own seeds are not passed on (name its sources as well).

Seeded records are marked ``seeded`` and numbered below zero (oldest first, by when they finished): they inform the
strategy only — no budget, progress, trial list or leaderboard counts them, and pruning never compares against them
(:func:`api.services.search.history.history_records` does not include them).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.orm import Session

from api.errors import Conflict, NotFound, ValidationFailed
from api.orm import Dataset, Experiment, Project, Trial
from api.repositories import datasets as dataset_repository
from api.repositories import experiments as repository
from api.schemas.experiments import MAX_WARM_START_TRIALS, WarmStart
from api.services.search.history import trial_record

# Finished source trials that can seed a strategy (a stopped one only with a curve: see trial_record).
SEED_STATUSES = ("succeeded", "pruned", "stopped")
OUTSIDE_SPACE = "outside_search_space"
OVER_LIMIT = "over_limit"


def snapshot(*, session: Session, project: Project, dataset: Dataset, space, experiment: Experiment,
             data: WarmStart) -> dict[str, Any]:
    """Check the sources of a warm start and return what the experiment stores: the echo (``experiment_ids``,
    ``trials_used``, ``trials_skipped``, ``skipped_by_reason``) and the seeded ``records`` (JSON).

    ``experiment`` is the new, unsaved experiment (its objective and constraints value the seeds); ``space`` its
    search space. 422 for an id named twice, 404 for an id this project does not have, 409 for an incompatible
    dataset."""
    ids = list(data.experiment_ids)
    for index, experiment_id in enumerate(ids):
        if experiment_id in ids[:index]:
            raise ValidationFailed.field(f"body.warm_start.experiment_ids[{index}]",
                                         f"experiment {experiment_id} is named twice")
    candidates: list[tuple[tuple, dict[str, Any]]] = []
    skipped = {OUTSIDE_SPACE: 0, OVER_LIMIT: 0}
    for experiment_id in ids:
        source = repository.get_for_project(session, project_id=project.id, experiment_id=experiment_id)
        if source is None:
            raise NotFound(f"warm-start experiment {experiment_id}")
        source_side = _check_dataset(session, source, dataset)
        curves = repository.epochs_by_trial(session, source.id)
        for trial in repository.all_trials(session, source.id):
            if trial.status not in SEED_STATUSES:
                continue
            record = trial_record(trial, experiment, curves.get(trial.id, {}))
            if record.status not in ("succeeded", "pruned") or record.value is None:
                continue  # stopped before its first epoch: no signal
            decisions = _encoded(space, trial, source_side)
            if decisions is None:
                skipped[OUTSIDE_SPACE] += 1
                continue
            feasible, violation = _feasibility(trial, experiment.constraints or {})
            finished = trial.finished_at or trial.created_at
            candidates.append(((finished.isoformat() if finished else "", source.id, trial.number), {
                "experiment_id": source.id, "trial_number": trial.number, "decisions": decisions,
                "status": record.status, "value": record.value, "feasible": feasible, "violation": violation,
                "costs": dict(record.costs),
                # strategies read a curve of pruned trials only (TPE's pruned state); JSON keys are strings
                **({"intermediate": {str(epoch): v for epoch, v in record.intermediate.items()}}
                   if record.status == "pruned" else {})}))
    candidates.sort(key=lambda item: item[0])
    skipped[OVER_LIMIT] = max(0, len(candidates) - MAX_WARM_START_TRIALS)
    records = [record for _, record in candidates[skipped[OVER_LIMIT]:]]
    return {"experiment_ids": ids, "trials_used": len(records), "trials_skipped": sum(skipped.values()),
            "skipped_by_reason": {reason: count for reason, count in skipped.items() if count},
            "records": records}


def reproducibility(warm_start: dict[str, Any]) -> dict[str, Any]:
    """What the experiment's reproducibility record says of its warm start: the sources, each seed's origin (in the
    order the strategy sees them, numbered -N..-1) and the sha256 of the seeded records (canonical JSON), which pins
    the seed exactly."""
    canonical = json.dumps(warm_start["records"], sort_keys=True, separators=(",", ":"))
    return {"experiment_ids": list(warm_start["experiment_ids"]), "trials_used": warm_start["trials_used"],
            "seeds": seed_origins(warm_start), "records_sha256": hashlib.sha256(canonical.encode()).hexdigest()}


def read(experiment: Experiment) -> dict[str, Any] | None:
    """The warm start as the experiment's read model echoes it (the seeds' origins, not their records); None for a
    cold start."""
    stored = experiment.warm_start
    if not stored:
        return None
    echo = {key: stored[key] for key in ("experiment_ids", "trials_used", "trials_skipped", "skipped_by_reason")}
    return {**echo, "seeds": seed_origins(stored)}


def seed_origins(warm_start: dict[str, Any]) -> list[dict[str, Any]]:
    """Where each seed comes from, ``{"experiment_id", "trial_number"}``, oldest first: the record the strategy
    sees as number ``index - len(seeds)``.

    >>> seed_origins({"records": [{"experiment_id": "e1", "trial_number": 4, "decisions": {}}]})
    [{'experiment_id': 'e1', 'trial_number': 4}]
    """
    return [{"experiment_id": record["experiment_id"], "trial_number": record["trial_number"]}
            for record in warm_start.get("records") or []]


def seeded_records(experiment: Experiment) -> list:
    """The experiment's seeds as ``TrialRecord``s marked ``seeded``, numbered -N..-1 oldest first; empty for a cold
    start. The scheduler puts them before the experiment's own trials."""
    from nas_core.params import TrialRecord

    stored = (experiment.warm_start or {}).get("records") or []
    return [TrialRecord(number=index - len(stored), decisions=dict(record["decisions"]), status=record["status"],
                        value=record["value"], feasible=record["feasible"], violation=record["violation"],
                        intermediate={int(epoch): v for epoch, v in (record.get("intermediate") or {}).items()},
                        costs=dict(record["costs"]), seeded=True)
            for index, record in enumerate(stored)]


def _check_dataset(session: Session, source: Experiment, dataset: Dataset) -> int:
    """409 unless ``source`` searched ``dataset``, the same data, or a compatible dataset; returns the side its
    images were stored at (what its trials' ``input_scale`` scaled)."""
    if source.dataset_id == dataset.id or (source.reproducibility or {}).get("dataset_sha256") == dataset.sha256:
        return int(dataset.image["height"])
    source_dataset = dataset_repository.get(session, source.dataset_id) if source.dataset_id else None
    if source_dataset is None:
        raise Conflict("warm-start-incompatible", f"experiment {source.id} searched a dataset that was deleted and "
                       f"held other data than dataset {dataset.id}: its classes cannot be compared")
    differences = []
    source_classes = {entry["name"] for entry in source_dataset.classes or []}
    classes = {entry["name"] for entry in dataset.classes or []}
    if source_classes != classes:
        differences.append(f"classes only in {source_dataset.id}: {sorted(source_classes - classes)}, only in "
                           f"{dataset.id}: {sorted(classes - source_classes)}")
    source_channels, channels = int(source_dataset.image["channels"]), int(dataset.image["channels"])
    if source_channels != channels:
        differences.append(f"{source_channels} image channels in {source_dataset.id}, {channels} in {dataset.id}")
    if differences:
        raise Conflict("warm-start-incompatible", f"experiment {source.id} searched dataset {source_dataset.id}, "
                       f"which does not match dataset {dataset.id}: {'; '.join(differences)}")
    return int(source_dataset.image["height"])


def _encoded(space, trial: Trial, source_side: int) -> dict[str, Any] | None:
    """The trial's candidate as decisions of ``space``, or None when the space cannot express it exactly (a choice
    it does not offer, a value out of its range, or a candidate stored before a change of the spec)."""
    from nas_core.errors import InvalidSearchSpace
    from nas_core.spec import Candidate

    try:
        candidate = Candidate.from_dict(trial.arch)
        side = source_side if candidate.arch.resolution is not None else None
        decisions = space.encode(candidate, input_side=side)
        # encode keeps the largest input scale when none matches: decoding back tells an exact encoding
        if space.decode(decisions, input_side=side).hash() != candidate.hash():
            return None
    except (InvalidSearchSpace, KeyError, TypeError, ValueError):
        return None
    return decisions


def _feasibility(trial: Trial, constraints: dict[str, Any]) -> tuple[bool, float]:
    """Whether the trial's measured figures meet the *new* experiment's constraints, and how far past the worst
    limit it is (value / limit - 1; what strategies steer the infeasible region by)."""
    figures = {"max_params": trial.params, "max_mflops": None if trial.flops is None else trial.flops / 1e6,
               "max_latency_ms": trial.latency_ms}
    violation = 0.0
    for name, value in figures.items():
        limit = constraints.get(name)
        if limit is not None and value is not None and value > limit:
            violation = max(violation, value / limit - 1.0, 1e-6)
    return (True, 1.0) if violation == 0.0 else (False, violation)
