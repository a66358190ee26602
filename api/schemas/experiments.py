"""Experiment, trial and leaderboard schemas: what the HTTP API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import Text

ExperimentStatus = Literal["queued", "running", "canceling", "canceled", "succeeded", "failed"]
TrialStatus = Literal["pending", "running", "succeeded", "pruned", "failed", "canceled"]


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_trials: int = Field(ge=1, description="Trials to run in all (pruned and failed ones count, canceled do not).")
    epochs_per_trial: int = Field(ge=1, le=1000, description="Training epochs of each trial (full fidelity).")
    max_minutes: float | None = Field(default=None, gt=0, description="Stop planning trials after this much "
                                      "search time; running trials stop at their next batch.")


class Constraints(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_params: int | None = Field(default=None, ge=1)
    max_latency_ms: float | None = Field(default=None, gt=0, description="CPU latency per image, batch 1.")


class Objective(BaseModel):
    model_config = ConfigDict(extra="forbid")

    constraints: Constraints = Field(default_factory=Constraints)


class Pruner(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: Literal["asha", "median", "none"] = Field(default="asha", description="Multi-fidelity pruning of "
                                                    "trials whose curves fall behind earlier ones.")


class ExperimentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: Text
    name: Text | None = Field(default=None, max_length=200)
    strategy: Literal["tpe", "evolution", "random"]
    strategy_settings: dict[str, Any] = Field(default_factory=dict, description="Overrides of the strategy's "
                                              "defaults, e.g. {\"population_size\": 20} for evolution or "
                                              "{\"refine_fraction\": 0} for tpe; an unknown name or a wrong type "
                                              "is a 422 that lists the strategy's settings.")
    budget: Budget
    concurrency: int = Field(default=1, ge=1, description="Trials running at once across all workers.")
    objective: Objective = Field(default_factory=Objective)
    search_space: dict[str, Any] = Field(default_factory=dict, description="Overrides of the default search "
                                         "space; GET /v1/search-space documents the grammar.")
    pruner: Pruner = Field(default_factory=Pruner)
    seed: int | None = Field(default=None, ge=0, lt=2**31)
    auto_model: bool = Field(default=True, description="Retrain and export the best trial when the search ends.")


class ExperimentResume(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_trials: int | None = Field(default=None, ge=1, description="Raise the trial budget before resuming.")
    max_minutes: float | None = Field(default=None, gt=0, description="Raise the time budget before resuming.")


class Progress(BaseModel):
    completed: int = Field(description="Finished trials of any outcome (succeeded, pruned, failed).")
    succeeded: int
    running: int
    pending: int
    failed: int
    pruned: int
    canceled: int
    max_trials: int


class BestTrial(BaseModel):
    trial_id: str
    number: int
    val_accuracy: float
    params: int | None


class ExperimentRead(BaseModel):
    id: str
    name: str
    status: ExperimentStatus
    dataset_id: str | None
    strategy: str
    strategy_settings: dict[str, Any]
    budget: dict[str, Any]
    concurrency: int
    objective: dict[str, Any]
    search_space: dict[str, Any]
    pruner: dict[str, Any]
    seed: int
    auto_model: bool
    progress: Progress
    best: BestTrial | None
    elapsed_s: float
    detail: str | None
    reproducibility: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class ExperimentList(BaseModel):
    data: list[ExperimentRead]
    total: int


class EpochRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    epoch: int
    val_accuracy: float
    val_loss: float
    train_loss: float
    seconds: float


class TrialRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    number: int
    status: TrialStatus
    arch: dict[str, Any] = Field(description="The candidate: {\"arch\": ArchSpec, \"train\": TrainSpec}.")
    arch_hash: str
    decisions: dict[str, Any]
    seed: int
    val_accuracy: float | None
    val_loss: float | None
    params: int | None
    flops: int | None
    latency_ms: float | None
    feasible: bool
    epochs: list[EpochRead]
    duration_s: float | None
    attempts: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class TrialList(BaseModel):
    data: list[TrialRead]
    total: int


class RankedTrial(TrialRead):
    rank: int


class Leaderboard(BaseModel):
    data: list[RankedTrial] = Field(description="Succeeded trials meeting the constraints, best first.")
    pareto: list[str] = Field(description="Trial ids on the Pareto front of (accuracy up, params down, latency "
                                          "down).")
    total: int
