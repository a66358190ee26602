"""Experiment, trial and leaderboard schemas: what the HTTP API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api import statuses
from api.schemas.common import MAX_BUDGET_MINUTES, MAX_LATENCY_MS, MAX_PARAMS, MAX_TRIALS, Text
from nas_core.options import MINIMIZABLE, PRUNER_KINDS, STRATEGY_NAMES

# Request bodies are strict: JSON true is no 1, "2" is no 2 and 1.0 is no seed (an integer still is a number), and
# NaN / Infinity are refused. Every number is bounded above, so whatever is stored can be rendered again.
STRICT_REQUEST = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

# Names the API accepts and returns, derived from the service's status vocabularies and the engine's registries.
ExperimentStatus = Literal[statuses.values(statuses.ExperimentStatus)]
TrialStatus = Literal[statuses.values(statuses.TrialStatus)]
StrategyName = Literal[STRATEGY_NAMES]  # the registries' names, read without importing Optuna
PrunerKind = Literal[PRUNER_KINDS]
ObjectiveMode = Literal["accuracy", "pareto"]
Minimizable = Literal[MINIMIZABLE]  # what a Pareto search may minimise next to its metric


class Budget(BaseModel):
    model_config = STRICT_REQUEST

    max_trials: int = Field(default=100, ge=1, description="Trials to run in all (pruned, stopped and failed ones "
                            "count, canceled and screened-out candidates do not). With max_minutes, time usually "
                            "ends the search first.", le=MAX_TRIALS)
    epochs_per_trial: int = Field(default=12, ge=1, le=1000, description="Training epochs of each trial (full "
                                  "fidelity); pruning stops weak trials earlier. With max_minutes and "
                                  "adaptive_epochs, the length the trials start at.")
    adaptive_epochs: bool = Field(default=True, description="With max_minutes: while the trials at the longest "
                                  "length so far have not learned (the best balanced accuracy of three finished "
                                  "ones, two once lengthened, is less than halfway from chance to 1), the next "
                                  "trials train twice as long, the best two of the shorter ones first, as long as "
                                  "two of them fit the time left (at most 8x epochs_per_trial). false keeps every "
                                  "trial at epochs_per_trial.")
    stop_when_settled: bool = Field(default=True, description="With max_minutes: once half the minutes are spent "
                                    "and four trials of the longest length have finished since the first within "
                                    "one standard error of the leader's balanced accuracy, the search ends and its "
                                    "final model gets the unspent minutes (detail: search ended: no trial has gone "
                                    "beyond the noise of the leader...). false searches until max_minutes or "
                                    "max_trials.")
    max_minutes: float | None = Field(default=None, gt=0, description="Search time: no trial starts after it and "
                                      "running trials stop at their next epoch boundary (kept as pruned). "
                                      "Candidates whose predicted trial time exceeds their fair share of the time "
                                      "left are screened out before they start. Counts the time the search has "
                                      "run in all: a resumed search gets what is left of it.",
                                      le=MAX_BUDGET_MINUTES)
    model_minutes: float | None = Field(default=None, gt=0, description="Bound on the final model's retraining "
                                        "time: its epochs are cut to fit (estimated from the winner's measured "
                                        "epoch time).", le=MAX_BUDGET_MINUTES)


class Constraints(BaseModel):
    model_config = STRICT_REQUEST

    max_params: int | None = Field(default=None, ge=1, le=MAX_PARAMS)
    max_latency_ms: float | None = Field(default=None, gt=0, description="CPU latency per image, batch 1.",
                                          le=MAX_LATENCY_MS)
    max_mflops: float | None = Field(default=None, gt=0, description="Forward-pass cost per image, in millions "
                                     "of floating-point operations (a multiply-add counts 2).", le=1e9)


class Objective(BaseModel):
    model_config = STRICT_REQUEST

    metric: Literal["accuracy", "balanced_accuracy"] = Field(
        default="accuracy", description="What the search maximises on the validation split: accuracy, or balanced "
        "accuracy (mean per-class recall; for imbalanced data where every class matters). Pruning always compares "
        "trials on balanced accuracy, which ranks early epochs better.")
    constraints: Constraints = Field(default_factory=Constraints)
    mode: ObjectiveMode = Field(
        default="accuracy", description="accuracy: maximise the metric alone (constraints are hard limits). pareto: "
        "maximise the metric and minimise each of `minimize` at once; strategies, pruning, the leaderboard's order "
        "(by Pareto layer, then the metric) and the final model's trial (the best metric of the first layer) follow "
        "the Pareto front. Constraints apply in both modes.")
    minimize: list[Minimizable] | None = Field(
        default=None, min_length=1, max_length=len(MINIMIZABLE), description="With mode pareto: what to minimise "
        "next to the metric — latency_ms (CPU latency per image, batch 1) and/or params; default [\"latency_ms\"]. "
        "Not allowed with mode accuracy.")
    latency_target_ms: float | None = Field(
        default=None, gt=0, le=MAX_LATENCY_MS, description="With mode accuracy: a soft latency target (MnasNet's "
        "reward). The search, pruning, the leaderboard's order and the final model's trial then maximise metric × "
        "(latency_ms / latency_target_ms) ** -0.07 instead of the metric: twice the target costs about 5 % of the "
        "metric, half of it gains about 5 %. Not allowed with mode pareto (which minimises latency itself).")
    latency_batch: int | None = Field(
        default=None, ge=2, le=1024, description="Also measure each trial's latency at this batch size (per image, "
        "the median; the trial's latency_batch_ms). Only recorded: constraints, targets and Pareto ranks use "
        "latency_ms (batch 1).")


class Pruner(BaseModel):
    # The other settings are checked by name, type and range against the pruner kind (nas_core.pruning).
    model_config = ConfigDict(extra="allow", strict=True)

    kind: PrunerKind = Field(default="asha", description="Multi-fidelity pruning of trials whose curves fall "
                             "behind earlier ones.")


# Source experiments a warm start may name at once, and seeded trials kept (the newest): the strategy rebuilds its
# model from every seed on each proposal, under the experiment's lock.
MAX_WARM_START_EXPERIMENTS = 10
MAX_WARM_START_TRIALS = 1000


class WarmStart(BaseModel):
    model_config = STRICT_REQUEST

    experiment_ids: list[Text] = Field(
        min_length=1, max_length=MAX_WARM_START_EXPERIMENTS, description="Experiments of this project whose "
        "finished trials (succeeded, and pruned or stopped with their partial curves) seed the new search's "
        "strategy. Each must have searched the same dataset, or one with the same class names (in any order) and "
        "image channels. Their architectures are re-encoded in the new search space; those outside it are left "
        "out. Seeded trials inform tpe and evolution only (random ignores them): they are not the new "
        "experiment's trials, use none of its max_trials, and pruning never compares against them.")


class WarmStartSeed(BaseModel):
    experiment_id: str = Field(description="The source experiment.")
    trial_number: int = Field(description="The source trial's number in that experiment.")


class WarmStartRead(BaseModel):
    experiment_ids: list[str] = Field(description="The source experiments, as asked.")
    trials_used: int = Field(description="Source trials seeding the strategy.")
    trials_skipped: int = Field(description="Finished source trials left out (see skipped_by_reason).")
    skipped_by_reason: dict[str, int] = Field(
        default_factory=dict, description="outside_search_space: a decision the new search space does not offer (or "
        f"an architecture it cannot express); over_limit: older than the newest {MAX_WARM_START_TRIALS} seeds.")
    seeds: list[WarmStartSeed] = Field(default_factory=list, description="Where each seed comes from, oldest "
                                       "first (also in reproducibility.warm_start.seeds).")


# Other latency devices an experiment's reproducibility record names past its first (one per kind of worker).
MAX_OTHER_LATENCY_DEVICES = 8


class LatencyDeviceIdentity(BaseModel):
    cpu_model: str = Field(description="The CPU's model name (/proc/cpuinfo on Linux).")
    logical_cpus: int | None = Field(default=None, description="Logical CPUs of the machine.")
    threads: int = Field(description="onnxruntime intra-op threads of the measurement (NAS_LATENCY_THREADS).")
    runtime: str = Field(description="The runtime and execution provider that ran the graph.")
    onnxruntime: str | None = Field(default=None, description="onnxruntime's version.")


class LatencyDevice(LatencyDeviceIdentity):
    """What the experiment's trials' latencies were measured on: the device of the first trial that measured."""

    mixed: bool = Field(default=False, description="Whether some trials were measured on another CPU model, thread "
                        "count or runtime version (listed in other_devices): their latencies are not comparable.")
    other_devices: list[LatencyDeviceIdentity] = Field(default_factory=list, description="The other devices trials "
                                                       "were measured on, in the order first seen (at most 8 are "
                                                       "named).")


class ExperimentCreate(BaseModel):
    model_config = STRICT_REQUEST

    dataset_id: Text
    name: Text | None = Field(default=None, max_length=200)
    strategy: StrategyName = "evolution"
    strategy_settings: dict[str, Any] = Field(default_factory=dict, description="Overrides of the strategy's "
                                              "defaults, e.g. {\"population_size\": 20} for evolution or "
                                              "{\"refine_fraction\": 0} for tpe; an unknown name or a wrong type "
                                              "is a 422 that lists the strategy's settings.")
    budget: Budget = Field(default_factory=Budget)
    concurrency: int = Field(default=1, ge=1, description="Trials running at once across all workers.",
                             le=MAX_TRIALS)
    objective: Objective = Field(default_factory=Objective)
    search_space: dict[str, Any] = Field(default_factory=dict, description="Overrides of the default search "
                                         "space; GET /v1/search-space documents the grammar.")
    pruner: Pruner = Field(default_factory=Pruner)
    seed: int | None = Field(default=None, ge=0, lt=2**31)
    auto_model: bool = Field(default=True, description="Retrain and export the best trial when the search ends.")
    warm_start: WarmStart | None = Field(default=None, description="Seed the strategy with earlier experiments' "
                                         "finished trials.")


class ExperimentResume(BaseModel):
    """A canceled or failed search continues with the budget left; a succeeded one continues only when this raises
    its budget (a larger ``max_trials`` and/or ``max_minutes``)."""

    model_config = STRICT_REQUEST

    max_trials: int | None = Field(default=None, ge=1, le=MAX_TRIALS, description="The new trial budget, in all "
                                   "(the trials already run count against it): raise it to run more trials.")
    max_minutes: float | None = Field(default=None, gt=0, le=MAX_BUDGET_MINUTES, description="The new time "
                                      "budget, in all: the minutes the search has already run count against it, so "
                                      "raising 10 to 15 gives it 5 more minutes.")


class Progress(BaseModel):
    completed: int = Field(description="Finished trials that count against max_trials (succeeded, pruned, "
                           "stopped, failed).")
    succeeded: int
    running: int
    pending: int
    failed: int
    pruned: int
    stopped: int = Field(description="Trials a user stopped (POST .../trials/{number}/stop).")
    canceled: int
    max_trials: int


class Screened(BaseModel):
    total: int = Field(default=0, description="Candidates screened out before they became trials (they do not use "
                       "max_trials).")
    by_reason: dict[str, int] = Field(default_factory=dict, description="How many by the limit they broke: "
                                      "max_params, max_mflops, max_latency_ms, or max_trial_seconds (predicted "
                                      "trial time above its share of the time budget).")
    smallest: dict[str, float] = Field(default_factory=dict, description="The smallest value seen among the "
                                       "candidates screened out for each limit.")


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
    screened: Screened
    best: BestTrial | None
    elapsed_s: float
    detail: str | None
    reproducibility: dict[str, Any]
    latency_device: LatencyDevice | None = Field(default=None, description="The CPU and runtime the trials' "
                                                 "latencies were measured on (reproducibility.latency_device and "
                                                 "latency_devices_other, typed); null until a trial has measured.")
    warm_start: WarmStartRead | None = Field(default=None, description="The warm start asked for at creation and "
                                             "how many source trials seed the strategy; null for a cold start.")
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
    val_balanced_accuracy: float | None = None
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
    val_balanced_accuracy: float | None = Field(default=None, description="Mean per-class recall on the "
                                                "validation split.")
    val_recall: list[float | None] | None = Field(default=None, description="Recall of each class on the "
                                                  "validation split (dataset class order; null for a class "
                                                  "absent from it).")
    val_loss: float | None
    val_mirrored_balanced_accuracy: float | None = Field(
        default=None, description="Balanced accuracy of the trained network on the validation images mirrored left "
        "to right: close to val_balanced_accuracy for a network trained without flips, a quarter of the way from "
        "chance to 1 or more, means the data set is mirror-symmetric (the reference networks not yet tried then "
        "train with flips).")
    val_upside_down_balanced_accuracy: float | None = Field(
        default=None, description="Balanced accuracy on the validation images flipped top to bottom: close to "
        "val_balanced_accuracy for a network trained without vertical flips means the images are orientation-free "
        "(the reference networks not yet tried then train with vertical flips and quarter turns).")
    planned_epochs: int | None = Field(default=None, description="Epochs this trial trains for in full: the "
                                       "budget's epochs_per_trial, or a multiple of it once a time-bound search "
                                       "has lengthened its trials because none had learned (budget.adaptive_epochs)."
                                       " null on trials stored before trial lengths varied.")
    reference_design: bool | None = Field(default=None, description="Whether the trial trains one of the search "
                                          "space's hand-designed reference networks with its recipe (tried first; "
                                          "when no trial has learned, the final model's default trial is chosen "
                                          "among them).")
    started_from_trial: int | None = Field(default=None, description="The number of the trial whose weights this "
                                           "one started from: a trial promoted to a longer length (the leader or "
                                           "lowest-loss trial of the shorter one) trains on from its shorter run "
                                           "where the search kept those weights; null: from random weights.")
    predicted_epoch_s: float | None = Field(default=None, description="Seconds per epoch predicted before "
                                            "training (device calibration and the candidate's FLOPs).")
    measured_epoch_s: float | None = Field(default=None, description="Measured seconds per epoch (median).")
    bf16: bool | None = Field(default=None, description="Whether the network trained under bf16 autocast: on CUDA "
                              "GPUs of compute capability 8.0 and later; on a CPU where a timed probe of the network "
                              "found it faster (weights and loss stay float32). Decided once, before training; null "
                              "before that.")
    params: int | None
    flops: int | None
    latency_ms: float | None = Field(description="Per image at batch 1: the median of onnxruntime CPU runs of the "
                                     "exported network (the figure constraints, targets and Pareto ranks use).")
    latency_p90_ms: float | None = Field(default=None, description="The 90th percentile of the same runs.")
    latency_batch_ms: float | None = Field(default=None, description="Per image at the objective's latency_batch: "
                                           "the median of onnxruntime CPU runs at that batch (null without one).")
    feasible: bool
    epochs: list[EpochRead]
    duration_s: float | None
    attempts: int
    error: str | None
    stop_requested_at: datetime | None = Field(default=None, description="When a stop of this trial was asked "
                                               "for (it ends stopped at its next batch, unless it ended first).")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class TrialList(BaseModel):
    data: list[TrialRead]
    total: int


class RankedTrial(TrialRead):
    rank: int
    pareto_layer: int | None = Field(default=None, description="In a Pareto search (objective mode pareto): the "
                                     "trial's layer of the non-dominated sorting over the metric and the minimised "
                                     "figures (1 = on the front); the leaderboard is ordered by it, then by the "
                                     "metric. null in accuracy mode.")


class Leaderboard(BaseModel):
    data: list[RankedTrial] = Field(description="Succeeded trials meeting the constraints, best first (in a "
                                    "Pareto search: by Pareto layer, then by the metric).")
    pareto: list[str] = Field(description="Trial ids on the Pareto front of (the experiment's metric up, params "
                                          "down, latency down).")
    total: int
