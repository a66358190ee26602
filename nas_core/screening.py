"""Screening: decide whether a candidate may become a trial, before anything is trained.

A candidate is checked against the user's constraints and the time it may take, cheapest check first:

1. parameters and FLOPs, computed exactly from the spec (:func:`nas_core.cost.estimate`, microseconds);
2. predicted trial seconds: the device's calibrated :class:`~nas_core.cost.Throughput` times the trainer's own plan
   (:func:`nas_core.trainer.plan_epochs`: batch size and steps per epoch), times ``epochs``;
3. CPU latency at batch 1, probed on the built network only when ``max_latency_ms`` is asked for and the cheaper
   checks passed: :func:`nas_core.metrics.probe_onnx_latency_ms` (the ONNX graph exported in memory and timed by
   onnxruntime, about 0.1 s) is what the trial then measures and records with more runs
   (:func:`nas_core.metrics.measure_onnx_latency`); the trial checks the limit again on its own figure.

The first limit a candidate breaks is its ``reason``; ``value`` is the candidate's figure for that limit, so a
search that finds nothing feasible can say which constraint binds and how close the best candidate came.

>>> from nas_core.spec import ArchSpec, Candidate, StageSpec, TrainSpec
>>> candidate = Candidate(ArchSpec(16, (StageSpec("conv", 1, 32, 3),)), TrainSpec())
>>> shape = DataShape(channels=1, side=16, num_classes=10, train_images=500, val_images=100)
>>> screen(candidate, shape, Limits(max_params=1000), epochs=5).reason
'max_params'
"""

from __future__ import annotations

from dataclasses import dataclass

from nas_core.cost import ArchCost, Throughput, estimate
from nas_core.spec import Candidate
from nas_core.trainer import plan_epochs

REASONS = ("max_params", "max_mflops", "max_latency_ms", "max_trial_seconds")
# What each reason's value is measured in, for messages.
UNITS = {"max_params": "parameters", "max_mflops": "MFLOPs", "max_latency_ms": "ms per image",
         "max_trial_seconds": "s per trial (predicted)"}
# Builds, constraint checks and data preparation a trial pays once besides its epochs.
TRIAL_SETUP_S = 1.0


@dataclass(frozen=True, slots=True)
class DataShape:
    """What screening needs to know of the dataset."""

    channels: int
    side: int  # stored side in pixels (images are square)
    num_classes: int
    train_images: int
    val_images: int


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits a candidate must fit; None means no limit."""

    max_params: int | None = None
    max_mflops: float | None = None
    max_latency_ms: float | None = None
    max_trial_seconds: float | None = None
    latency_threads: int = 1  # onnxruntime intra-op threads of the latency probe, as the trial measures


@dataclass(frozen=True, slots=True)
class Screened:
    """The verdict: ``reason`` None means the candidate may run; otherwise the limit it broke and its figure."""

    reason: str | None
    value: float | None
    params: int
    flops: int
    latency_ms: float | None = None
    predicted_epoch_s: float | None = None
    predicted_trial_s: float | None = None

    @property
    def passed(self) -> bool:
        return self.reason is None

    def violation(self, limits: Limits) -> float:
        """How far past its limit the candidate is (value / limit - 1; 0 when it passed): strategies steer by it."""
        if self.reason is None or self.value is None:
            return 0.0
        return max(1e-6, self.value / getattr(limits, self.reason) - 1.0)


def input_size(candidate: Candidate, shape: DataShape) -> tuple[int, int]:
    return candidate.arch.input_size((shape.side, shape.side))


def cost_of(candidate: Candidate, shape: DataShape) -> ArchCost:
    return estimate(candidate.arch, in_channels=shape.channels, num_classes=shape.num_classes,
                    input_size=input_size(candidate, shape))


def predict_epoch_seconds(candidate: Candidate, shape: DataShape, throughput: Throughput, *, epochs: int,
                          correction: float = 1.0) -> float:
    """Seconds of one epoch of ``candidate`` as the trainer will run it, on the calibrated device.

    ``correction`` scales the device's figure by what this search measured so far (measured / predicted).
    """
    plan = plan_epochs(shape.train_images, candidate.train, epochs)
    cost = cost_of(candidate, shape)
    return correction * throughput.epoch_seconds(cost, steps=plan.steps_per_epoch, batch_size=plan.batch_size,
                                                 val_images=shape.val_images, policy=candidate.train.policy,
                                                 ema=candidate.train.ema)


def screen(candidate: Candidate, shape: DataShape, limits: Limits, *, epochs: int,
           throughput: Throughput | None = None, correction: float = 1.0, latency_repeats: int = 5) -> Screened:
    """Check ``candidate`` against ``limits``, cheapest first (see the module docstring)."""
    cost = cost_of(candidate, shape)
    figures = {"params": cost.params, "flops": cost.flops}
    if limits.max_params is not None and cost.params > limits.max_params:
        return Screened("max_params", float(cost.params), **figures)
    mflops = cost.flops / 1e6
    if limits.max_mflops is not None and mflops > limits.max_mflops:
        return Screened("max_mflops", mflops, **figures)
    epoch_s = trial_s = None
    if throughput is not None:
        epoch_s = predict_epoch_seconds(candidate, shape, throughput, epochs=epochs, correction=correction)
        trial_s = TRIAL_SETUP_S + epochs * epoch_s
        figures.update(predicted_epoch_s=epoch_s, predicted_trial_s=trial_s)
        if limits.max_trial_seconds is not None and trial_s > limits.max_trial_seconds:
            return Screened("max_trial_seconds", trial_s, **figures)
    if limits.max_latency_ms is not None:
        from nas_core.builder import build_model
        from nas_core.metrics import probe_onnx_latency_ms

        size = input_size(candidate, shape)
        model = build_model(candidate.arch, shape.channels, shape.num_classes, input_size=size)
        latency = probe_onnx_latency_ms(model, (shape.channels, *size), threads=limits.latency_threads,
                                        repeats=latency_repeats, warmup=1)
        figures["latency_ms"] = latency
        if latency > limits.max_latency_ms:
            return Screened("max_latency_ms", latency, **figures)
    return Screened(None, None, **figures)


def describe_infeasible(smallest: dict[str, float], limits: Limits, draws: int) -> str:
    """Why nothing was feasible: the binding constraint (the one most candidates broke) and the best value seen.

    ``smallest`` maps each reason to the smallest value seen among candidates screened out for it, in the order of
    how often it was the reason (most frequent first).
    """
    if not smallest:
        return f"no candidate passed screening in {draws} draws"
    reason, value = next(iter(smallest.items()))
    limit = getattr(limits, reason)
    if reason == "max_trial_seconds":
        return (f"no candidate fits the time budget in {draws} draws: the cheapest was predicted to take "
                f"{value:.4g} s per trial and the time left allows {limit:.4g} s. Raise max_minutes, lower "
                f"epochs_per_trial or narrow the search space towards smaller networks")
    return (f"no feasible candidate in {draws} draws: {reason} = {limit:g} is binding; the smallest value seen was "
            f"{value:.4g} {UNITS[reason]}. Relax the constraint or narrow the search space towards smaller "
            f"networks (fewer stages, narrower widths, a smaller input_scale)")
