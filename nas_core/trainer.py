"""One training function for every trial: uint8 tensors on the device in, a trained model and its curve out.

- Inputs stay uint8 on the device; each batch is gathered, augmented (torchvision.transforms.v2 on tensors, whole
  sub-batches at a time: no per-sample Python work), then normalised exactly as ``preprocessing.json`` tells
  clients: ``(x / 255 - mean) / std`` per channel.
- Batches (:func:`plan_epochs`, the one place that decides, also used to predict a trial's cost): ``batch_size`` 0
  picks the largest power of two giving at least :data:`AUTO_BATCH_STEPS` steps per epoch, within
  :data:`AUTO_BATCH_RANGE`; a positive ``batch_size`` is used as given (capped at the split size). Every batch is
  full: an epoch draws from fresh permutations of the training split, at least one whole pass. When
  ``epochs * steps`` is below :data:`MIN_TRIAL_STEPS`, every epoch runs more steps (several passes) so small
  datasets still get a useful number of updates. ``TrainSpec.lr`` is the peak rate at :data:`REFERENCE_BATCH`
  images and is rescaled to the batch used: ``sqrt(batch / 128)`` for AdamW, ``batch / 128`` for SGD.
- Augmentation of uint8 images, in order: random crop with zero padding of ``round(augment * min(H, W) / 8)`` px
  (4 px on 32 px images at full strength); when ``hflip``, horizontal flips; when ``vflip``, vertical flips and a
  random quarter turn (square images only); ``policy`` ``trivial`` / ``randaugment`` adds ``TrivialAugmentWide`` /
  ``RandAugment``. Then, on the normalised float batch, ``mix`` ``mixup`` / ``cutmix`` blends image pairs and their
  one-hot labels (the loss takes the soft targets, label smoothing included). v2 draws one set of parameters per
  call, so batches are split into groups of :data:`AUGMENT_GROUP` images that each get their own draw. A policy
  may be phased in (``policy_ramp``): each group gets it with a probability that rises over the schedule.
- Schedules step per batch: ``onecycle`` (``torch.optim.lr_scheduler.OneCycleLR``, its own warm-up) or ``cosine``
  (linear warm-up over the first 3% of steps, then cosine to zero). AdamW or Nesterov SGD; no weight decay on
  biases and norms.
- EMA (``TrainSpec.ema``): ``torch.optim.swa_utils.AveragedModel`` averages weights and BatchNorm statistics after
  every step, with a decay (:func:`ema_decay`) whose horizon is :data:`EMA_HORIZON` of the trial's steps, ramped in
  as ``min(decay, (1 + t) / (10 + t))`` so early epochs are not scored on the initial weights. Validation scores the
  average, and when training ends the model passed in holds the averaged weights.
- Validation reports accuracy, loss, balanced accuracy (mean recall over the classes present in the split) and the
  recall of every class (:func:`balanced_accuracy`).
- Seeded: everything random (init of nothing here, permutation, crops, flips, policies, mixing, dropout) draws
  from torch's global RNG inside ``torch.random.fork_rng`` seeded with ``seed``, so the caller's RNG state is left
  untouched.
- channels_last memory format for model and batches on every device: on the CPU (oneDNN) it measured 1.3–1.9×
  faster per training step than NCHW for our blocks (max-pooling alone ~8×). bf16 autocast on CUDA, and on a CPU
  for the networks it measurably speeds up there (:func:`nas_core.precision.use_bf16`: 1.6–2× for plain and
  residual convolutions on a CPU with AVX512-BF16, slower for some MBConv ones); weights, optimizer, average and
  loss stay float32. No host syncs inside an epoch (the loss is summed on the device and read once per epoch).
- Control: ``should_stop()`` is polled before every batch (True → :class:`TrialCanceled`); ``on_epoch(report)``
  runs after each epoch's validation and may raise :class:`TrialPruned` / :class:`TrialCanceled`, which propagate
  unchanged. A non-finite training loss raises :class:`NASError` (the trial failed; retrying will not help).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel
from torchvision.transforms import v2

from nas_core.cost import EPOCH_OVERHEAD_S
from nas_core.errors import NASError, TrialCanceled
from nas_core.precision import autocast, use_bf16
from nas_core.spec import TrainSpec

AUGMENT_GROUP = 16  # images per independently drawn crop/flip/policy/mix
WARMUP_FRACTION = 0.03
REFERENCE_BATCH = 128  # TrainSpec.lr is the peak rate at this batch size
# Auto batch: at least this many steps per epoch (MNIST-500 at equal CPU time: batches 16-64 learned alike) ...
AUTO_BATCH_STEPS = 25
AUTO_BATCH_RANGE = (8, 128)  # ... with a power-of-two batch in this range
# Steps per trial at least (MNIST-500, 3-5 epochs: 20 steps 39% val acc, 150 steps 94%, 300 steps 96% at 2x cost)
MIN_TRIAL_STEPS = 150
EMA_HORIZON = 0.1  # EMA averages over about this fraction of the trial's steps (0.05-0.2 measured alike) ...
EMA_DECAY_RANGE = (0.9, 0.999)  # ... with the per-step decay kept in this range
EMA_MIN_STEPS = 20  # fewer steps than this: no averaging, the raw weights are used
MIXUP_ALPHA = 0.2  # Beta(alpha, alpha) mixing weights: mild blends, as for ImageNet ResNets
CUTMIX_ALPHA = 1.0


@dataclass(frozen=True, slots=True)
class TrainData:
    """uint8 images ``[N, C, H, W]`` and int64 labels ``[N]``, already on the training device."""

    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor


@dataclass(frozen=True, slots=True)
class EpochPlan:
    """What every epoch of :func:`train` does: ``steps_per_epoch`` steps on full batches at peak rate ``lr``."""

    batch_size: int
    steps_per_epoch: int
    lr: float  # TrainSpec.lr rescaled from REFERENCE_BATCH to batch_size

    @property
    def images_per_epoch(self) -> int:
        return self.batch_size * self.steps_per_epoch


@dataclass(frozen=True, slots=True)
class EpochReport:
    epoch: int  # 1-based
    val_accuracy: float
    val_balanced_accuracy: float  # mean recall over the classes present in the validation split
    val_recall: tuple[float, ...]  # per class in index order; NaN for a class absent from the validation split
    val_loss: float
    train_loss: float
    seconds: float  # the whole epoch, validation included
    images_per_s: float  # training images per second of the training phase


@dataclass(frozen=True, slots=True)
class TrainResult:
    epochs: tuple[EpochReport, ...]
    val_accuracy: float  # after the last epoch
    best_val_accuracy: float
    val_balanced_accuracy: float  # after the last epoch
    best_val_balanced_accuracy: float
    seconds: float
    images_per_s: float  # all training images over all training-phase seconds
    kept_epoch: int | None = None  # ``keep_best``: the epoch whose weights the model ends holding
    bf16: bool = False  # the network ran under bf16 autocast (:mod:`nas_core.precision`)


def plan_epochs(count: int, train: TrainSpec, epochs: int) -> EpochPlan:
    """Batch size, optimizer steps per epoch and peak learning rate for ``count`` training images.

    :func:`train` runs exactly this plan, so it also predicts a trial's cost (``images_per_epoch * epochs``).

    >>> plan = plan_epochs(100, TrainSpec(batch_size=0, lr=4e-3), epochs=5)
    >>> plan.batch_size, plan.steps_per_epoch, plan.images_per_epoch, round(plan.lr, 6)
    (8, 30, 240, 0.001)
    """
    if count < 1 or epochs < 1:
        raise ValueError("count and epochs must be >= 1")
    if train.batch_size > 0:
        batch_size = min(train.batch_size, count)
    else:
        low, high = AUTO_BATCH_RANGE
        power_of_two = 1 << max(0, (count // AUTO_BATCH_STEPS).bit_length() - 1)
        batch_size = min(count, high, max(low, power_of_two))
    steps_per_epoch = max(-(-count // batch_size), -(-MIN_TRIAL_STEPS // epochs))
    ratio = batch_size / REFERENCE_BATCH
    # SGD's step is proportional to the rate (linear rule); Adam's normalised step tracks gradient noise (sqrt rule)
    lr = train.lr * (ratio if train.optimizer == "sgd" else math.sqrt(ratio))
    return EpochPlan(batch_size=batch_size, steps_per_epoch=steps_per_epoch, lr=lr)


def fit_epochs(count: int, train: TrainSpec, *, seconds: float, step_s: float, most: int) -> int:
    """The most epochs in ``[1, most]`` whose :func:`plan_epochs` steps take at most ``seconds`` at ``step_s``
    seconds a step (plus :data:`EPOCH_OVERHEAD_S` an epoch): a schedule fitted to a time budget.

    32 steps of 32 images an epoch on 1,000 images:

    >>> fit_epochs(1000, TrainSpec(batch_size=0, lr=4e-3), seconds=60.0, step_s=0.1, most=20)
    18
    >>> fit_epochs(1000, TrainSpec(batch_size=0, lr=4e-3), seconds=1.0, step_s=0.1, most=20)
    1
    """
    for epochs in range(max(1, most), 1, -1):
        plan = plan_epochs(count, train, epochs)
        if epochs * (plan.steps_per_epoch * step_s + EPOCH_OVERHEAD_S) <= seconds:
            return epochs
    return 1


def step_seconds(model: nn.Module, data: TrainData, *, train: TrainSpec, epochs: int, mean: Sequence[float],
                 std: Sequence[float], device: torch.device | str, num_classes: int, probe_epochs: int = 4) -> float:
    """Seconds of one optimizer step of :func:`train` for ``model`` on ``data``, at the batch size the plan for
    ``epochs`` over the whole train split uses, with every augmentation and the EMA of ``train``.

    Timed on a copy of ``model`` (left untouched) over a few short epochs of two batches' worth of images; the
    median of the epochs after the first (which warms up kernels and allocators). Costs a few steps.
    """
    plan = plan_epochs(len(data.train_x), train, epochs)
    spec = dataclasses.replace(train, batch_size=plan.batch_size)
    images = min(len(data.train_x), 2 * plan.batch_size)
    probe = TrainData(data.train_x[:images], data.train_y[:images], data.train_x[:0], data.train_y[:0])
    many = 1000  # the per-trial step floor spreads over many epochs: each probe epoch is one pass
    probe_plan = plan_epochs(images, spec, many)
    reports: list[EpochReport] = []

    def collect(report: EpochReport) -> None:
        reports.append(report)
        if len(reports) == probe_epochs:
            raise _ProbeDone

    try:
        _train(copy.deepcopy(model), probe, epochs=many, train=spec, mean=mean, std=std, seed=0, device=device,
                 num_classes=num_classes, on_epoch=collect)
    except _ProbeDone:
        pass
    seconds = sorted(probe_plan.images_per_epoch / report.images_per_s / probe_plan.steps_per_epoch
                     for report in reports[1:])
    return seconds[len(seconds) // 2]


class _ProbeDone(Exception):
    """Ends :func:`step_seconds`' timing run."""


def ema_decay(total_steps: int) -> float | None:
    """Per-step EMA decay averaging over ~:data:`EMA_HORIZON` of ``total_steps``; None when too few to average.

    >>> ema_decay(150), ema_decay(100_000), ema_decay(10)
    (0.9333333333333333, 0.999, None)
    """
    if total_steps < EMA_MIN_STEPS:
        return None
    low, high = EMA_DECAY_RANGE
    return min(high, max(low, 1.0 - 1.0 / (EMA_HORIZON * total_steps)))


def _channel_stats(values: Sequence[float] | float, device: torch.device | str) -> Tensor:
    return torch.as_tensor(values, dtype=torch.float32, device=device).reshape(1, -1, 1, 1)


def _normalizer(mean: Sequence[float], std: Sequence[float], device: torch.device | str) -> tuple[Tensor, Tensor]:
    """``(shift, scale)`` on ``device`` such that ``addcmul(shift, x, scale)`` is :func:`normalize`'s ``x``: one
    multiply-add instead of four passes, x * (1 / (255 std)) + (-mean / std); built once per loop (each tensor is a
    copy to the device)."""
    mean_t, std_t = _channel_stats(mean, device), _channel_stats(std, device)
    return -mean_t / std_t, 1.0 / (255.0 * std_t)


def normalize(x_uint8: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """``(x / 255 - mean) / std`` per channel, as float32 (the exact preprocessing clients are told to do)."""
    shift, scale = _normalizer(mean, std, x_uint8.device)
    return torch.addcmul(shift, x_uint8.float(), scale)


def augmentation(train: TrainSpec, height: int, width: int) -> v2.Transform | None:
    """The v2 transform applied to each group of uint8 images, or None when ``train`` asks for none."""
    padding = round(train.augment * min(height, width) / 8)
    transforms: list[v2.Transform] = []
    if padding > 0:
        transforms.append(v2.RandomCrop((height, width), padding=padding))
    if train.hflip:
        transforms.append(v2.RandomHorizontalFlip())
    if train.vflip:
        transforms.append(v2.RandomVerticalFlip())
        if height == width:  # a quarter turn of a non-square image changes its shape
            transforms.append(v2.RandomChoice([v2.RandomRotation((angle, angle)) for angle in (0, 90, 180, 270)]))
    if train.policy == "trivial":
        transforms.append(v2.TrivialAugmentWide())
    elif train.policy == "randaugment":
        transforms.append(v2.RandAugment())
    return v2.Compose(transforms) if transforms else None


def mixing(train: TrainSpec, num_classes: int) -> v2.Transform | None:
    """The v2 MixUp / CutMix applied to each group of ``(float images, labels)``, or None for ``mix="none"``."""
    if train.mix == "mixup":
        return v2.MixUp(alpha=MIXUP_ALPHA, num_classes=num_classes)
    if train.mix == "cutmix":
        return v2.CutMix(alpha=CUTMIX_ALPHA, num_classes=num_classes)
    return None


def _augment(x: Tensor, transform: v2.Transform | None, *, plain: v2.Transform | None = None,
             share: float = 1.0) -> Tensor:
    """``x`` augmented a group of :data:`AUGMENT_GROUP` images at a time; with ``share`` below 1 each group draws
    whether it gets ``transform`` (with that probability) or ``plain`` (the same without the policy)."""
    groups = x.split(AUGMENT_GROUP)
    if share < 1.0:
        chosen = [transform if float(torch.rand(())) < share else plain for _ in groups]
        return torch.cat([group if each is None else each(group) for group, each in zip(groups, chosen)])
    if transform is None:
        return x
    return torch.cat([transform(group) for group in groups])


def _mix(x: Tensor, y: Tensor, mixer: v2.Transform | None) -> tuple[Tensor, Tensor]:
    if mixer is None:
        return x, y
    pairs = [mixer(images, labels) for images, labels in zip(x.split(AUGMENT_GROUP), y.split(AUGMENT_GROUP))]
    return torch.cat([images for images, _ in pairs]), torch.cat([labels for _, labels in pairs])


def balanced_accuracy(logits_or_preds: Tensor, labels: Tensor, num_classes: int) -> tuple[float, tuple[float, ...]]:
    """Mean recall over the classes present in ``labels``, and every class's recall (NaN for an absent class).

    ``logits_or_preds`` is ``[N, classes]`` logits or ``[N]`` predicted class indices. With no labels: 0.0.

    >>> balanced_accuracy(torch.tensor([0, 0, 0, 0, 1]), torch.tensor([0, 0, 0, 1, 1]), 3)
    (0.75, (1.0, 0.5, nan))
    """
    preds = logits_or_preds.argmax(1) if logits_or_preds.ndim == 2 else logits_or_preds
    labels = labels.to(preds.device)
    totals = torch.bincount(labels, minlength=num_classes)
    if totals.numel() > num_classes:
        raise ValueError(f"a label is >= num_classes ({num_classes})")
    hits = torch.bincount(labels[preds == labels], minlength=num_classes)
    hit_counts, total_counts = torch.stack([hits, totals]).tolist()
    recall = tuple(hit / total if total else math.nan for hit, total in zip(hit_counts, total_counts))
    present = [value for value in recall if not math.isnan(value)]
    return (sum(present) / len(present) if present else 0.0), recall


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim > 1 else no_decay).append(param)  # biases and norm scales: no decay
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, train: TrainSpec, *, lr: float) -> torch.optim.Optimizer:
    """AdamW or Nesterov SGD at peak rate ``lr`` (:attr:`EpochPlan.lr`), without decay on biases and norms."""
    groups = _param_groups(model, train.weight_decay)
    if train.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=lr)


def make_scheduler(optimizer: torch.optim.Optimizer, train: TrainSpec, total_steps: int, *,
                   lr: float, last_step: int = 0) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step schedule peaking at ``lr``: one-cycle, or linear warm-up then cosine to zero. ``last_step``: the
    steps ``optimizer`` has already taken under a schedule of ``lr`` (one of another length); the new schedule
    continues from there."""
    if train.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(total_steps, 2),
                                                   last_epoch=last_step - 1)
    warmup = max(1, round(WARMUP_FRACTION * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total_steps - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor, last_epoch=last_step - 1)


def recount_epochs(epoch_seconds: Sequence[float], *, epoch: int, seconds: float, elapsed: float, most: int) -> int:
    """The epochs of a time-budgeted run after ``epoch`` of them took ``elapsed`` of its ``seconds``: ``epoch`` plus
    as many more as the median of ``epoch_seconds`` (this run's measured epochs) fits in the time left, at least one
    (a schedule ends annealed, never cut short) and at most ``most`` in all.

    >>> recount_epochs([2.0, 1.0, 1.1], epoch=3, seconds=20.0, elapsed=4.1, most=100)
    17
    >>> recount_epochs([2.0], epoch=1, seconds=3.0, elapsed=2.0, most=100), recount_epochs([1.0], epoch=1,
    ...     seconds=60.0, elapsed=1.0, most=8)
    (2, 8)
    """
    ordered = sorted(epoch_seconds)
    per_epoch = max(ordered[len(ordered) // 2], 1e-9)
    more = int(max(0.0, seconds - elapsed) / per_epoch)
    return max(epoch + 1, min(most, epoch + more))


@torch.no_grad()
def _update_ema(ema: AveragedModel, model: nn.Module, decay: float, update: int) -> None:
    """``AveragedModel.update_parameters`` with an EMA of ``decay`` (weights and buffers), the same arithmetic
    without its per-step copies of the step counter to the device: on CUDA each is a host sync, two per step."""
    decay = min(decay, (1 + update) / (10 + update))  # the ramp: early averages are not the initial weights'
    averaged = [tensor.detach() for tensor in (*ema.module.parameters(), *ema.module.buffers())]
    current = [tensor.detach() for tensor in (*model.parameters(), *model.buffers())]
    if int(ema.n_averaged) == 0:  # the counter stays on the CPU (AveragedModel's default): reading it never syncs
        for old, new in zip(averaged, current, strict=True):
            old.copy_(new)
    else:
        floats = [(old, new) for old, new in zip(averaged, current, strict=True) if old.is_floating_point()]
        torch._foreach_lerp_([old for old, _ in floats], [new for _, new in floats], 1 - decay)
        for old, new in zip(averaged, current, strict=True):
            if not old.is_floating_point():  # BatchNorm's batch counters, as the EMA function treats them
                old.copy_(old * decay + new * (1 - decay))
    ema.n_averaged += 1


def _layout(x: Tensor) -> Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def _epoch_order(count: int, plan: EpochPlan, device: torch.device) -> Tensor:
    # full batches only: an epoch longer than the split continues into fresh permutations
    passes = -(-plan.images_per_epoch // count)
    return torch.cat([torch.randperm(count, device=device) for _ in range(passes)])


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, *, mean: Sequence[float], std: Sequence[float],
             device: torch.device | str, batch_size: int = 512, bf16: bool | None = None) -> tuple[float, Tensor]:
    """Accuracy and float32 logits ``[N, classes]`` of ``model`` (left in eval mode) on uint8 images ``x``;
    ``bf16``: under bf16 autocast (None: on CUDA only)."""
    device = torch.device(device)
    model.eval()
    outputs = []
    shift, scale = _normalizer(mean, std, device)
    with autocast(device, device.type == "cuda" if bf16 is None else bf16):
        for start in range(0, x.shape[0], batch_size):
            batch = _layout(torch.addcmul(shift, x[start:start + batch_size].to(device).float(), scale))
            outputs.append(model(batch).float())
    logits = torch.cat(outputs) if outputs else torch.empty(0, device=device)
    if y.numel() == 0:
        return 0.0, logits
    accuracy = (logits.argmax(1) == y.to(device)).float().mean().item()
    return accuracy, logits


def validation_scores(model: nn.Module, x: Tensor, y: Tensor, *, mean: Sequence[float], std: Sequence[float],
                      device: torch.device | str, num_classes: int, batch_size: int = 512, bf16: bool | None = None
                      ) -> tuple[float, float, float, tuple[float, ...]]:
    """Accuracy, cross-entropy loss (NaN without images), balanced accuracy and per-class recall of ``model`` on
    uint8 images ``x``: what an epoch reports of its validation."""
    accuracy, logits = evaluate(model, x, y, mean=mean, std=std, device=device, batch_size=batch_size, bf16=bf16)
    y = y.to(logits.device)
    loss = F.cross_entropy(logits, y).item() if y.numel() else float("nan")
    balanced, recall = balanced_accuracy(logits, y, num_classes)
    return accuracy, loss, balanced, recall


def train(model: nn.Module, data: TrainData, *, epochs: int, train: TrainSpec, mean: Sequence[float],
          std: Sequence[float], seed: int, device: torch.device | str, num_classes: int | None = None,
          on_epoch: Callable[[EpochReport], None] | None = None,
          should_stop: Callable[[], bool] | None = None,
          on_checkpoint: Callable[[int, Callable[[], dict]], None] | None = None,
          resume: dict | None = None, keep_best: Callable[[EpochReport], Any] | None = None,
          choose_kept: Callable[[list[EpochReport]], int | None] | None = None,
          seconds: float | None = None, most: int | None = None, policy_ramp: float = 0.0,
          bf16: bool | None = None) -> TrainResult:
    """Train ``model`` in place for ``epochs`` epochs; see the module docstring for what happens and when.

    ``num_classes`` (default: the largest label in either split, plus one) sizes the per-class recall and the
    mixed targets. With EMA on, ``model`` ends holding the averaged weights that were validated.

    Checkpoints: after each epoch that ``on_epoch`` let pass, ``on_checkpoint(epoch, snapshot)`` may call
    ``snapshot()`` for everything a later run needs to continue exactly there (weights, optimizer, schedule,
    average, RNG state, the reports so far; tensors on the CPU). ``resume=`` such a snapshot continues from the
    epoch after it, with the same data order and augmentations as an uninterrupted run.

    ``keep_best``: a sort key of an epoch's report (larger is better); the model ends holding the validated weights
    (the average's, with EMA on) of the epoch with the largest key, the first of equals, rather than the last
    epoch's — early stopping without stopping, for a run whose schedule may overfit its data. The best is chosen
    among the epochs of this call (not carried in checkpoints). A tuple key is several criteria: the weights of every
    epoch on their Pareto front are kept (no other epoch is at least as good on each), and ``choose_kept``, given
    those epochs' reports (in epoch order), returns the epoch to end with, or None for none of them (the model then
    holds the last epoch's weights and ``kept_epoch`` is None: the caller restores its own); by default the largest
    key.

    ``seconds``: a wall-time budget for this call. ``epochs`` is then a first estimate: after each epoch but the last,
    the epochs are recounted as the most that the median measured epoch (validation included) fits in the time left,
    within ``[epoch + 1, most]`` (default ``epochs``), and the schedule is stretched or shrunk to the new count from
    the step it has reached (:func:`recount_epochs`). A timing probe made before training misses what the whole epoch
    costs (the validation pass, a busier or quieter machine); the schedule still ends, annealed, near the budget.

    ``policy_ramp``: the augmentation policy (``train.policy``) is phased in over this fraction of the schedule:
    each group of images gets it with a probability that rises linearly from 0 at the first step to 1 at that point
    (0: every group from the start), so a network learns the plain images' classes before the policy's harder ones.

    ``bf16``: run the network under bf16 autocast; None decides by device and network
    (:func:`nas_core.precision.use_bf16`). A resumed run keeps the precision its snapshot was trained in.
    """
    device = torch.device(device)
    if epochs < 1:
        raise ValueError("epochs must be >= 1")
    count, _, height, width = data.train_x.shape
    plan = plan_epochs(count, train, epochs)
    total_steps = epochs * plan.steps_per_epoch
    if num_classes is None:
        num_classes = int(torch.cat([data.train_y, data.val_y]).max().item()) + 1
    transform, mixer = augmentation(train, height, width), mixing(train, num_classes)
    ramped = policy_ramp > 0 and train.policy != "none"
    plain = augmentation(dataclasses.replace(train, policy="none"), height, width) if ramped else None
    model.to(device, memory_format=torch.channels_last)
    if resume is not None:  # snapshots from before the CPU could choose bf16 trained in float32 there
        bf16 = bool(resume.get("bf16", device.type == "cuda"))
    elif bf16 is None:
        bf16 = use_bf16(model, (data.train_x.shape[1], height, width), plan.batch_size, device)
    shift, scale = _normalizer(mean, std, device)
    decay = ema_decay(total_steps) if train.ema else None
    # the average's step counter stays on the CPU (AveragedModel's default), so updating it never syncs the device
    ema = (AveragedModel(model, use_buffers=True)  # updated by _update_ema, not by its own averaging function
           if decay is not None else None)
    scored = ema.module if ema is not None else model

    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        optimizer = make_optimizer(model, train, lr=plan.lr)
        scheduler = make_scheduler(optimizer, train, total_steps, lr=plan.lr)
        reports: list[EpochReport] = []
        first_epoch = 1
        if resume is not None:
            first_epoch = _restore(resume, model=model, optimizer=optimizer, scheduler=scheduler, ema=ema,
                                   device=device, reports=reports)

        def snapshot() -> dict:
            return _snapshot(reports, model=model, optimizer=optimizer, scheduler=scheduler, ema=ema, device=device,
                             bf16=bf16)

        train_seconds = 0.0
        front: list[tuple[tuple, EpochReport, dict]] = []  # keep_best: (key, report, weights) on the Pareto front
        started = time.perf_counter()
        epoch = first_epoch - 1
        while epoch < epochs:
            epoch += 1
            epoch_start = time.perf_counter()
            model.train()
            order = _epoch_order(count, plan, device)
            loss_sum = torch.zeros((), device=device)
            for step in range(plan.steps_per_epoch):
                if should_stop is not None and should_stop():
                    raise TrialCanceled("training canceled")
                index = order[step * plan.batch_size:(step + 1) * plan.batch_size]
                share = (min(1.0, ((epoch - 1) * plan.steps_per_epoch + step) / (policy_ramp * epochs
                                                                               * plan.steps_per_epoch))
                         if ramped else 1.0)
                images = _augment(data.train_x[index], transform, plain=plain, share=share)
                inputs, targets = _mix(torch.addcmul(shift, images.float(), scale), data.train_y[index], mixer)
                with autocast(device, bf16):
                    logits = model(_layout(inputs))
                # float32 loss: mixed (soft) targets are float32 and must meet logits of the same type
                loss = F.cross_entropy(logits.float(), targets, label_smoothing=train.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                if ema is not None:
                    _update_ema(ema, model, decay, (epoch - 1) * plan.steps_per_epoch + step)
                loss_sum += loss.detach()
            train_loss = loss_sum.item() / plan.steps_per_epoch  # the one host sync of the epoch
            epoch_train_seconds = time.perf_counter() - epoch_start
            train_seconds += epoch_train_seconds
            if not math.isfinite(train_loss):
                raise NASError(f"training diverged at epoch {epoch}: loss is {train_loss}")
            val_accuracy, val_loss, val_balanced, val_recall = validation_scores(
                scored, data.val_x, data.val_y, mean=mean, std=std, device=device, num_classes=num_classes,
                batch_size=max(plan.batch_size, 256), bf16=bf16)
            report = EpochReport(epoch=epoch, val_accuracy=val_accuracy, val_balanced_accuracy=val_balanced,
                                 val_recall=val_recall, val_loss=val_loss, train_loss=train_loss,
                                 seconds=time.perf_counter() - epoch_start,
                                 images_per_s=plan.images_per_epoch / max(epoch_train_seconds, 1e-9))
            reports.append(report)
            if keep_best is not None:
                front = _onto_front(front, keep_best(report), report, scored)
            if on_epoch is not None:
                on_epoch(report)  # TrialPruned / TrialCanceled propagate as raised
            if seconds is not None and epoch < epochs:
                recounted = recount_epochs([r.seconds for r in reports], epoch=epoch, seconds=seconds,
                                           elapsed=time.perf_counter() - started, most=most or epochs)
                if recounted != epochs:
                    epochs = recounted
                    scheduler = make_scheduler(optimizer, train, epochs * plan.steps_per_epoch, lr=plan.lr,
                                               last_step=epoch * plan.steps_per_epoch)
            if on_checkpoint is not None and epoch < epochs:
                on_checkpoint(epoch, snapshot)
    kept_epoch = None
    if front:
        kept_epoch = (choose_kept([report for _, report, _ in front]) if choose_kept is not None
                      else max(front, key=lambda item: item[0])[1].epoch)  # max keeps the first of equals
        if kept_epoch is not None:
            scored.load_state_dict(next(weights for _, report, weights in front if report.epoch == kept_epoch))
    if ema is not None:
        model.load_state_dict(ema.module.state_dict())  # the exported model is the one that was validated
    return TrainResult(epochs=tuple(reports), val_accuracy=reports[-1].val_accuracy,
                       best_val_accuracy=max(r.val_accuracy for r in reports),
                       val_balanced_accuracy=reports[-1].val_balanced_accuracy,
                       best_val_balanced_accuracy=max(r.val_balanced_accuracy for r in reports),
                       seconds=time.perf_counter() - started,
                       images_per_s=plan.images_per_epoch * max(1, epoch - first_epoch + 1)
                       / max(train_seconds, 1e-9), kept_epoch=kept_epoch, bf16=bf16)


def _onto_front(front: list[tuple[tuple, EpochReport, dict]], key: Any, report: EpochReport, scored: nn.Module
                ) -> list[tuple[tuple, EpochReport, dict]]:
    """``front`` with this epoch added (a copy of ``scored``'s weights) unless an earlier epoch is at least as good
    on every criterion of ``key`` (a scalar is one), less the epochs it now beats on every criterion."""
    key = tuple(key) if isinstance(key, tuple) else (key,)
    if any(all(old >= new for old, new in zip(kept, key)) for kept, _, _ in front):
        return front
    weights = {name: value.detach().clone() for name, value in scored.state_dict().items()}
    return [item for item in front if not all(new >= old for new, old in zip(key, item[0]))] + [(key, report, weights)]


_train = train  # for the functions above whose ``train`` argument is the TrainSpec

def _cpu(value):
    """A state dict with every tensor on the CPU (checkpoints are stored and loaded anywhere)."""
    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu(item) for item in value)
    return value


def _snapshot(reports: list[EpochReport], *, model: nn.Module, optimizer, scheduler, ema, device, bf16: bool) -> dict:
    state = {"epoch": reports[-1].epoch, "model": _cpu(model.state_dict()), "optimizer": _cpu(optimizer.state_dict()),
             "scheduler": scheduler.state_dict(), "ema": _cpu(ema.state_dict()) if ema is not None else None,
             "rng": torch.get_rng_state(), "reports": [dataclasses.asdict(report) for report in reports],
             "bf16": bf16}
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def _restore(state: dict, *, model: nn.Module, optimizer, scheduler, ema, device, reports: list) -> int:
    """Load a :func:`_snapshot` into the live objects; returns the first epoch still to run."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if ema is not None and state.get("ema") is not None:
        ema.load_state_dict(state["ema"])
    torch.set_rng_state(state["rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    reports.extend(EpochReport(**{**report, "val_recall": tuple(report["val_recall"])})
                   for report in state["reports"])
    return int(state["epoch"]) + 1
