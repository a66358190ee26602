"""What a candidate costs before it is trained: exact parameters and FLOPs from the spec, predicted seconds per epoch.

- :func:`estimate` follows :func:`nas_core.builder.build_model` layer by layer without building anything
  (microseconds, so a scheduler can screen hundreds of candidates): parameters and FLOPs are exactly what
  :func:`~nas_core.metrics.count_params` and :func:`~nas_core.metrics.count_flops` report (a test checks it on random
  specs), plus the number of activation elements the convolutions write, which is what memory-bound layers
  (depthwise convolutions, BatchNorm, activations) cost.
- :func:`calibrate` times a few training steps of four probe networks on the device at the dataset's input size, each
  in the precision the trainer would pick for it (:func:`nas_core.precision.use_bf16`: on some CPUs bf16
  speeds up most networks and slows some MBConv ones), and fits
  ``seconds per step = per_step + batch * (per_image + a * flops + b * activations)`` (non-negative least squares).
  A device is calibrated once per process and input shape (:func:`throughput_for` caches it).
- :class:`Throughput` predicts the seconds of one epoch: training steps at that rate plus a forward pass over the
  validation split (a third of a training step's work per image).

>>> from nas_core.spec import ArchSpec, StageSpec
>>> arch = ArchSpec(stem_width=8, stages=(StageSpec("conv", 1, 16, 3),))
>>> estimate(arch, in_channels=1, num_classes=10, input_size=16)
ArchCost(params=1442, flops=184640, activations=3072)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from nas_core.builder import LARGE_INPUT_PX, MIN_FEATURE_PX, build_model
from nas_core.precision import autocast, use_bf16
from nas_core.spec import ArchSpec, StageSpec

# Seconds spent per epoch outside the training and validation passes (reports, heartbeats, database writes).
EPOCH_OVERHEAD_S = 0.05


@dataclass(frozen=True, slots=True)
class ArchCost:
    """Per image, forward pass: trainable parameters, FLOPs (a multiply-add counts 2), activation elements."""

    params: int
    flops: int
    activations: int


class _Tally:
    def __init__(self) -> None:
        self.params = self.flops = self.activations = 0

    def conv_bn(self, cin: int, cout: int, kernel: int, height: int, width: int, *, groups: int = 1) -> None:
        """A conv (no bias) + BatchNorm writing a ``cout × height × width`` map."""
        weights = cout * (cin // groups) * kernel * kernel
        self.params += weights + 2 * cout
        self.flops += 2 * weights * height * width
        self.activations += cout * height * width

    def squeeze_excitation(self, channels: int, squeeze: int) -> None:
        self.params += channels * squeeze + squeeze + squeeze * channels + channels
        self.flops += 2 * channels * squeeze * 2


def _halved(size: int) -> int:
    return (size + 1) // 2


def _block(tally: _Tally, stage: StageSpec, cin: int, cout: int, stride: int, height: int, width: int) -> None:
    """One block of ``stage`` (see :mod:`nas_core.ops`) but a strided MBConv; ``height``/``width``: its output size."""
    kernel = stage.kernel
    if stage.op == "conv":
        tally.conv_bn(cin, cout, kernel, height, width)
        if stage.se:
            tally.squeeze_excitation(cout, max(4, cout // 4))
    elif stage.op == "residual":
        tally.conv_bn(cin, cout, kernel, height, width)
        tally.conv_bn(cout, cout, kernel, height, width)
        if stage.se:
            tally.squeeze_excitation(cout, max(4, cout // 4))
        if stride != 1 or cin != cout:
            tally.conv_bn(cin, cout, 1, height, width)
    elif stage.op == "dwsep":
        tally.conv_bn(cin, cin, kernel, height, width, groups=cin)
        if stage.se:
            tally.squeeze_excitation(cin, max(4, cin // 4))
        tally.conv_bn(cin, cout, 1, height, width)
    else:  # mbconv
        hidden = cin * stage.expansion
        if stage.expansion != 1:
            tally.conv_bn(cin, hidden, 1, height, width)
        tally.conv_bn(hidden, hidden, kernel, height, width, groups=hidden)
        if stage.se:
            tally.squeeze_excitation(hidden, max(4, cin // 4))
        tally.conv_bn(hidden, cout, 1, height, width)


def estimate(arch: ArchSpec, *, in_channels: int, num_classes: int, input_size: int | tuple[int, int]) -> ArchCost:
    """Parameters, FLOPs and activation elements of ``build_model(arch, …, input_size=input_size)``, per image."""
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    tally = _Tally()
    if min(height, width) >= LARGE_INPUT_PX:
        height, width = _halved(height), _halved(width)
    tally.conv_bn(in_channels, arch.stem_width, 3, height, width)
    channels = arch.stem_width
    for stage in arch.stages:
        downsample = stage.downsample != "none" and min(_halved(height), _halved(width)) >= MIN_FEATURE_PX
        stride_block = downsample and stage.downsample == "stride"
        if downsample:
            # a strided mbconv expands at the input size: keep it for the first block
            in_height, in_width = height, width
            height, width = _halved(height), _halved(width)
        for index in range(stage.depth):
            stride = 2 if stride_block and index == 0 else 1
            if stride == 2 and stage.op == "mbconv" and stage.expansion != 1:
                hidden = channels * stage.expansion
                tally.conv_bn(channels, hidden, 1, in_height, in_width)
                tally.conv_bn(hidden, hidden, stage.kernel, height, width, groups=hidden)
                if stage.se:
                    tally.squeeze_excitation(hidden, max(4, channels // 4))
                tally.conv_bn(hidden, stage.width, 1, height, width)
            else:
                _block(tally, stage, channels, stage.width, stride if stage.op != "mbconv" else 1, height, width)
            channels = stage.width
    tally.params += channels * num_classes + num_classes
    tally.flops += 2 * channels * num_classes
    return ArchCost(params=tally.params, flops=tally.flops, activations=tally.activations)


# ------------------------------------------------------------------------------------------------ throughput

@dataclass(frozen=True, slots=True)
class Throughput:
    """Fitted training speed of one device at one input shape (seconds; see the module docstring)."""

    device: str
    input_shape: tuple[int, int, int]
    per_step_s: float
    per_image_s: float
    per_flop_s: float
    per_activation_s: float
    # Augmentation policy → seconds per image on top of crops and flips (TrivialAugment / RandAugment run per group
    # of images and can cost as much as a small network's step), and the weight average's cost per parameter.
    augment_s: tuple[tuple[str, float], ...] = ()
    per_param_ema_s: float = 0.0

    def image_seconds(self, cost: ArchCost, *, policy: str = "none") -> float:
        """Training seconds per image: forward and backward, plus the augmentation policy."""
        return (self.per_image_s + self.per_flop_s * cost.flops + self.per_activation_s * cost.activations
                + dict(self.augment_s).get(policy, 0.0))

    def train_step_seconds(self, cost: ArchCost, batch_size: int, *, policy: str = "none",
                           ema: bool = False) -> float:
        ema_s = self.per_param_ema_s * cost.params if ema else 0.0
        return self.per_step_s + ema_s + batch_size * self.image_seconds(cost, policy=policy)

    def epoch_seconds(self, cost: ArchCost, *, steps: int, batch_size: int, val_images: int, policy: str = "none",
                      ema: bool = False) -> float:
        """One epoch: ``steps`` training steps of ``batch_size`` images, then validation of ``val_images``."""
        forward = (self.per_image_s + self.per_flop_s * cost.flops + self.per_activation_s * cost.activations) / 3.0
        return (EPOCH_OVERHEAD_S + steps * self.train_step_seconds(cost, batch_size, policy=policy, ema=ema)
                + val_images * forward)  # a forward pass is about a third of forward + backward

    def to_dict(self) -> dict:
        return {"device": self.device, "input_shape": list(self.input_shape), "per_step_s": self.per_step_s,
                "per_image_s": self.per_image_s, "per_flop_s": self.per_flop_s,
                "per_activation_s": self.per_activation_s, "augment_s": dict(self.augment_s),
                "per_param_ema_s": self.per_param_ema_s}

    @classmethod
    def from_dict(cls, data: Mapping) -> Throughput:
        return cls(device=data["device"], input_shape=tuple(data["input_shape"]), per_step_s=data["per_step_s"],
                   per_image_s=data["per_image_s"], per_flop_s=data["per_flop_s"],
                   per_activation_s=data["per_activation_s"], augment_s=tuple(sorted(data["augment_s"].items())),
                   per_param_ema_s=data["per_param_ema_s"])


def _probe_archs() -> list[ArchSpec]:
    """Networks spanning the space's cost mix: tiny, conv-heavy (FLOP-bound), MBConv (memory-bound), residual."""
    return [
        ArchSpec(stem_width=8, stages=(StageSpec("conv", 1, 16, 3),)),
        ArchSpec(stem_width=32, stages=(StageSpec("conv", 2, 64, 3), StageSpec("conv", 2, 128, 3))),
        ArchSpec(stem_width=16, stages=(StageSpec("mbconv", 2, 24, 5, expansion=6, activation="swish"),
                                        StageSpec("mbconv", 2, 48, 3, expansion=6, se=True))),
        ArchSpec(stem_width=24, stages=(StageSpec("residual", 1, 32, 3, downsample="none"),
                                        StageSpec("dwsep", 2, 64, 3))),
    ]


def _time_steps(arch: ArchSpec, shape: tuple[int, int, int], batch_size: int, device: torch.device,
                steps: int) -> float:
    """Seconds of a training step (forward, backward, AdamW) of ``arch`` on random data."""
    channels, height, width = shape
    model = build_model(arch, channels, 10, input_size=(height, width)).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch_size, channels, height, width, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,), device=device)
    bf16 = use_bf16(model, shape, batch_size, device)  # the precision the trainer will pick for such a network
    timings = []
    for index in range(steps + 1):  # the first step warms up allocators and kernels
        start = time.perf_counter()
        with autocast(device, bf16):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _synchronize(device)
        if index:
            timings.append(time.perf_counter() - start)
    return float(min(timings))  # the least disturbed step: other processes only ever add time


def _nonnegative_fit(rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Least squares with every coefficient >= 0 (active set: drop the most negative until none is left)."""
    active = list(range(rows.shape[1]))
    coefficients = np.zeros(rows.shape[1])
    while active:
        solution, *_ = np.linalg.lstsq(rows[:, active], targets, rcond=None)
        if (solution >= 0).all():
            coefficients[active] = solution
            break
        active.pop(int(np.argmin(solution)))
    return coefficients


def calibrate(device: torch.device | str, input_shape: tuple[int, int, int], *, steps: int = 4) -> Throughput:
    """Time the probe networks on ``device`` at ``input_shape`` (C, H, W) and fit a :class:`Throughput`."""
    device = torch.device(device)
    shape = tuple(int(v) for v in input_shape)
    rows, targets = [], []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        for index, arch in enumerate(_probe_archs()):
            cost = estimate(arch, in_channels=shape[0], num_classes=10, input_size=(shape[1], shape[2]))
            # the tiny probe at two batch sizes separates the per-step cost from the per-image cost
            for batch_size in ((4, 32) if index == 0 else (16,)):
                seconds = _time_steps(arch, shape, batch_size, device, steps)
                rows.append([1.0, batch_size, batch_size * cost.flops, batch_size * cost.activations])
                targets.append(seconds)
    matrix, vector = np.asarray(rows), np.asarray(targets)
    # Relative errors matter (a 10 ms and a 1 s step alike): weight each probe by 1 / its time; columns are scaled
    # to comparable magnitudes (FLOPs are ~1e9, step counts ~1) for the solver.
    weights = 1.0 / np.maximum(vector, 1e-6)
    scale = np.abs(matrix).max(axis=0)
    coefficients = _nonnegative_fit(matrix * weights[:, None] / scale, vector * weights) / scale
    per_step, per_image, per_flop, per_activation = (float(c) for c in coefficients)
    if per_flop == 0.0 and per_activation == 0.0:  # a degenerate fit (timer noise): charge FLOPs at the probes' rate
        per_flop = float(vector.sum() / matrix[:, 2].sum())
    # What the trainer does around the network (gathering, crops, normalising, the schedule, bookkeeping), timed on
    # the real training loop with the tiny probe at two batch sizes: a fixed cost per step plus one per image.
    small, large = (_time_trainer(shape, device, batch_size) for batch_size in (8, 32))
    overhead_per_image = max(0.0, (large - small) / 24)
    per_step += max(0.0, small - 8 * overhead_per_image)
    per_image += overhead_per_image
    return Throughput(device=str(device), input_shape=shape, per_step_s=per_step, per_image_s=per_image,
                      per_flop_s=per_flop, per_activation_s=per_activation, augment_s=_time_policies(shape, device),
                      per_param_ema_s=_time_ema(shape, device))


def _time_trainer(shape: tuple[int, int, int], device: torch.device, batch_size: int) -> float:
    """Seconds per step of :func:`nas_core.trainer.train` with the tiny probe (its network costs next to nothing)."""
    from nas_core.spec import TrainSpec
    from nas_core.trainer import TrainData, step_seconds

    images = 2 * batch_size
    x = torch.randint(0, 256, (images, *shape), dtype=torch.uint8, device=device)
    y = torch.arange(images, device=device) % 2
    model = build_model(_probe_archs()[0], shape[0], 2, input_size=(shape[1], shape[2]))
    return step_seconds(model, TrainData(x, y, x[:0], y[:0]), train=TrainSpec(batch_size=batch_size, augment=0.5,
                                                                               ema=False),
                        epochs=100, mean=(0.5,) * shape[0], std=(0.25,) * shape[0], device=device, num_classes=2)


def _synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs it asynchronously), so a timer measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_policies(shape: tuple[int, int, int], device: torch.device, images: int = 64) -> tuple[tuple[str, float],
                                                                                                  ...]:
    """Seconds per image of each augmentation policy, beyond the crops and flips every recipe has."""
    from nas_core.spec import POLICY_NAMES, TrainSpec
    from nas_core.trainer import _augment, augmentation

    batch = torch.randint(0, 256, (images, *shape), dtype=torch.uint8, device=device)
    base = None
    timings = {}
    for policy in POLICY_NAMES:
        transform = augmentation(TrainSpec(augment=0.5, policy=policy), shape[1], shape[2])
        best = float("inf")
        for _ in range(3):
            _synchronize(device)
            start = time.perf_counter()
            _augment(batch, transform)
            _synchronize(device)  # v2 transforms on a CUDA batch only launch kernels
            best = min(best, time.perf_counter() - start)
        timings[policy] = best / images
        base = timings[policy] if policy == "none" else base
    return tuple(sorted((policy, max(0.0, value - (base or 0.0))) for policy, value in timings.items()))


def _time_ema(shape: tuple[int, int, int], device: torch.device) -> float:
    """Seconds per parameter of one weight-average update (a pass over weights and BatchNorm statistics)."""
    from torch.optim.swa_utils import AveragedModel

    from nas_core.trainer import _update_ema

    model = build_model(_probe_archs()[1], shape[0], 10, input_size=(shape[1], shape[2])).to(device)
    average = AveragedModel(model, use_buffers=True)
    _update_ema(average, model, 0.99, 0)
    best = float("inf")
    for update in range(1, 6):
        start = time.perf_counter()
        _update_ema(average, model, 0.99, update)  # the trainer's update
        _synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best / sum(p.numel() for p in model.parameters())


_calibrated: dict[tuple[str, tuple[int, int, int]], Throughput] = {}
_calibration_lock = threading.Lock()


def throughput_for(device: torch.device | str, input_shape: tuple[int, int, int]) -> Throughput:
    """This process's calibration of ``device`` at ``input_shape``, measured on first use."""
    key = (str(torch.device(device)), tuple(int(v) for v in input_shape))
    with _calibration_lock:
        if key not in _calibrated:
            threads = torch.get_num_threads()
            try:
                _calibrated[key] = calibrate(device, key[1])
            finally:
                torch.set_num_threads(threads)
        return _calibrated[key]
