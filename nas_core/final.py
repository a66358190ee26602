"""The final model of a search: retrain the winner on train+val, test it on the held-out split, export and verify.

Test-time mirroring: before retraining, the winning trial's weights (trained on train only) are scored on the
validation images as they are and with the logits of each image and its mirror image averaged
(:mod:`nas_core.mirror`). When averaging lowers the validation loss without losing accuracy, the exported graph
averages both views (:class:`~nas_core.mirror.MirrorAverage`: twice the inference FLOPs), unless that breaks the
latency limit, in which case the plain network is exported.

:func:`build_final_model` is the whole job as a pure function (tensors and a candidate in; files in a folder and
their report out). Where the data comes from, where the files go and who may still write the result is the
caller's business (the models service: object store, leases, heartbeats).

Testing runs in float32 on the CPU, the computation the exported files are compared against, so the ONNX file
reproduces the reported accuracy exactly (not a bf16 GPU variant of it). Every test image is run through the ONNX
file (same argmax, logits within ``atol``); the ``torch.export`` program is checked on the first chunk.

Flips found late: a search that never trained with flips may still have evidence, in the winning trial's own
weights, that the data set is mirror-symmetric — averaging each validation image with its mirror image helps
(:func:`~nas_core.mirror.mirror_helps`) or the mirrored images keep the balanced accuracy
(:func:`~nas_core.mirror.looks_mirror_symmetric`). A short search on hard data often stops before its probes
reach the trials (the mirror rule needs a network well above chance), so the final model, which trains longest,
adds random horizontal flips on that evidence (``allow_flip``: the user's space allows them). Digits and text fail
both tests (a mirrored 3 is no 3), so they keep training without.

Held-out validation (``hold_out_validation``): when the search's trials never learned the data (no balanced
accuracy went a tenth of the way from chance to 1, :func:`nas_core.fidelity.hold_out_validation`), a long
schedule on train+val with no split left to check it may fit noise and end below the majority rate. Such a final
model trains on the train split only, is validated after every epoch, and ends holding the weights that the
search's own rule for picking a trial picks among its epochs and the winning trial's own weights
(:func:`nas_core.ranking.pick_within_noise`: the lowest validation loss within one standard error of the best
metric): it hands back the best network it can show, not the last one, and not the luckiest of many noisy epochs
either.

A larger side for a long schedule (``max_side``): a time budget that buys a final model many more epochs than its
winner trained spends them at a larger input side instead (:func:`raised_side`), as a hand-written network trained
longer would at full resolution. On ``bench.budget``'s ``scenes`` (seed 0, 425 s from scratch on train+val, one
core) the plain reference network scored 0.858 on held-back images at its searched 48 px (137 epochs), 0.904 at
72 px (59 epochs) and 0.877 at 96 px (33 epochs); the pooled plain network 0.827 at 72 px (188 epochs) and 0.854 at
96 px (104 epochs). The raised network trains from the seed's weights: at the searched side, 188 epochs from the
winner's weights and from scratch scored alike (0.833 and 0.827).

Stronger augmentation for a long schedule (``allow_policy``): a search's trials train a dozen to a few dozen epochs,
where augmentation beyond crops and flips slows learning, so its winners come with no augmentation policy. A final
model whose time budget fits :data:`STRONG_AUGMENT_EPOCHS` epochs or more adds TrivialAugment (``policy``
``trivial``) to that recipe (:func:`augmentation_policy`) and fits its epochs again with the policy's cost. Trained
from scratch on train+val and scored on ``bench.budget``'s held-back images, the ``scenes`` (seed 0) winner at 96 px
scored 0.827 at 60 epochs and 0.842 at 120 without it, 0.877 and 0.885 with it (0.875 after 262 epochs without); the
``photos-small`` (seed 1) winner at 128 px 0.817, 0.858 and 0.875 at 60, 120 and 240 epochs without it, 0.783, 0.875
and 0.875 with it (120 images: one is 0.8 points); the ``mnist500`` (seed 0) winner at 28 px 0.981 without it and
0.983 with it at 200 epochs: digits survive its rotations. The policy is phased in over the first
:data:`POLICY_RAMP` of the schedule (``policy_ramp`` of :func:`nas_core.trainer.train`: each group of images gets it
with a probability rising from 0 to 1), so the network learns the plain images' classes before their harder
variants, as progressive training schedules its regularisation. In five paired runs of the 3-minute final models
of ``scenes`` seed 0 and ``photos-small`` seed 0 (64-72 epochs at 88-96 px, one core, same seed each pair) the ramp
scored 0.0 to +3.3 points above the policy from the first step on the held-back images (+1.4 on average).

Last, the verified ONNX file is quantized to int8 (:mod:`nas_core.quantize`, calibrated on a seeded sample of the
train split) and both files are measured side by side on the test split; a failed quantization is reported, not
raised.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nas_core.builder import build_model
from nas_core.data import SplitTensors
from nas_core.evaluation import ClassificationReport, classification_report, onnx_latency_ms
from nas_core.export import export_onnx, export_pt2, verify_onnx, verify_pt2
from nas_core.metrics import count_flops, count_params
from nas_core.mirror import MirrorAverage, MirrorScores, looks_mirror_symmetric, mirror_helps, mirror_scores
from nas_core.quantize import QuantizationReport, calibration_images, quantize_onnx
from nas_core.ranking import pick_within_noise
from nas_core.resolution import resize_images
from nas_core.spec import Candidate, TrainSpec
from nas_core.trainer import (EpochReport, TrainData, fit_epochs, normalize, step_seconds, train,
                              validation_scores)

log = logging.getLogger(__name__)

VERIFY_CHUNK = 1024  # test images per onnxruntime/PyTorch comparison: bounds memory on large test splits
# A time-budgeted final model with time for more epochs than this at its winner's side trains at a larger side, where
# about this many fit (module docstring): on scenes 59 epochs at 72 px beat 137 at 48 and 33 at 96.
RESOLUTION_EPOCHS = 60
SIDE_STEP = 8  # a raised side is a multiple of this
# A final model of at least this many epochs trains with STRONG_AUGMENT_POLICY where its winner used no policy
# (module docstring): on scenes 60 epochs with TrivialAugment beat 262 without.
STRONG_AUGMENT_EPOCHS = 60
STRONG_AUGMENT_POLICY = "trivial"
# ... phased in over this fraction of the schedule (nas_core.trainer.train's policy_ramp; module docstring): in five
# paired runs of 64-72 epochs it scored +1.4 points on average over the policy from the first step.
POLICY_RAMP = 0.5


@dataclass(frozen=True, slots=True)
class FinalModel:
    """What :func:`build_final_model` wrote and measured."""

    report: ClassificationReport  # on the test split, from the float32 CPU network the files reproduce
    params: int
    flops: int
    latency_ms: float  # onnxruntime CPU, batch 1, median
    height: int  # the input side the network was trained and exported at
    width: int
    onnx_path: Path
    pt2_path: Path
    onnx_max_abs_diff: float
    pt2_max_abs_diff: float
    warm_started: bool  # trained on from ``initial_state`` rather than from the seed's random weights
    test_time_mirror: bool  # the exported graph averages the logits of the image and its mirror image
    mirror: MirrorScores | None  # the winning trial's weights on the validation split: the evidence for the above
    int8: QuantizationReport | None = None  # the int8 file and its figures next to float32's; None: not asked for
    epochs: int = 0  # trained: the asked-for number, or what fitted ``train_seconds``
    candidate: Candidate | None = None  # what was trained: the winner's, with flips where they were added
    flips_added: bool = False  # trained with horizontal flips the winning trial did not use (module docstring)
    network: nn.Module | None = None  # the exported float32 CPU module (eval mode) the files reproduce
    validation_held_out: bool = False  # trained on train only, validated per epoch (module docstring)
    kept_epoch: int | None = None  # with it: the epoch whose weights were kept; 0: the winning trial's own
    raised_from: int | None = None  # the winner's input side, where the time budget raised it (:func:`raised_side`)
    policy_added: str | None = None  # the augmentation policy added for a long schedule (:func:`augmentation_policy`)
    bf16: bool = False  # trained under bf16 autocast (:func:`nas_core.precision.use_bf16`); tested in float32


def build_final_model(candidate: Candidate, data: SplitTensors, *, epochs: int, seed: int, device: torch.device | str,
                      onnx_path: Path, pt2_path: Path, initial_state: dict | None = None, latency_repeats: int = 50,
                      max_latency_ms: float | None = None, allow_mirror: bool = True,
                      should_stop: Callable[[], bool] | None = None,
                      checkpoint: Callable[[], None] | None = None, int8_onnx_path: Path | None = None,
                      int8_max_accuracy_drop: float = 0.01, train_seconds: float | None = None,
                      max_epochs: int | None = None, allow_flip: bool = True, hold_out_validation: bool = False,
                      metric: str = "accuracy", max_side: int | None = None,
                      allow_policy: bool = True) -> FinalModel:
    """Train ``candidate`` for ``epochs`` on train+val (the search already used val to choose; only the test split
    stays unseen), test it, export it to ``onnx_path`` and (``torch.export``) ``pt2_path`` and verify both.

    ``initial_state``: the winning trial's weights, trained on from where the search left off (an incompatible
    state is logged and ignored: training starts from the seed's weights). ``should_stop`` ends training early
    (the trainer raises ``TrialCanceled``); ``checkpoint`` is called between the stages and may raise to abandon
    the job. ``allow_mirror`` False never exports test-time mirroring; ``max_latency_ms`` bounds the exported
    graph's latency where mirroring would double it (see the module docstring). ``int8_onnx_path``: where the
    int8 quantization of the verified ONNX file goes (None: none is made); one whose test accuracy is more than
    ``int8_max_accuracy_drop`` below float32's is kept but flagged in the report.

    ``train_seconds``: a time budget for the epochs. A short timed probe of the training step on this device
    (:func:`~nas_core.trainer.step_seconds`) refits ``epochs`` to the most that fit, within ``[1, max_epochs]``
    (default ``epochs``): predictions made from a trial's epochs miss the larger batch and the absent validation
    pass of retraining, and another device may be faster or slower. The trainer then recounts the epochs from the
    measured ones as it goes (:func:`~nas_core.trainer.recount_epochs`), so the schedule ends near the budget where
    the probe was off.

    ``allow_flip``: the final model may add horizontal flips where the winner's weights show the data
    mirror-symmetric (see the module docstring); False keeps the winner's recipe as it is.

    ``max_side``: with ``train_seconds``, the largest input side the final model may train at when the budget buys
    more than :data:`RESOLUTION_EPOCHS` epochs at the winner's side (:func:`raised_side`; it then trains from the
    seed's weights). None, or a held-out validation, keeps the winner's side.

    ``allow_policy``: with ``train_seconds``, a budget that fits :data:`STRONG_AUGMENT_EPOCHS` epochs or more adds
    TrivialAugment where the winner trained with no augmentation policy (:func:`augmentation_policy`), phased in over
    the first :data:`POLICY_RAMP` of the schedule, and the epochs are fitted again with its cost; not with a
    held-out validation. False, or asked-for epochs (whose announced time the policy's cost would overrun), keep the
    winner's recipe as it is.

    ``hold_out_validation``: train on the train split only and keep, of its epochs and the winner's weights, the
    lowest validation loss within the noise of the best ``metric`` (``accuracy`` or ``balanced_accuracy``) on the
    validation split (module docstring).
    """
    checkpoint = checkpoint or (lambda: None)
    num_classes = len(data.classes)
    height, width = candidate.arch.input_size((data.height, data.width))
    network = _seeded_network(candidate, data, num_classes, seed=seed, size=(height, width))
    warm_started = _warm_start(network, initial_state)
    val_x = resize_images(data.val_x, (height, width))
    mirror = None
    if (allow_mirror or allow_flip) and warm_started:  # only weights that never saw the val images can judge there
        network.to(device, memory_format=torch.channels_last)
        mirror = mirror_scores(network, val_x, data.val_y, mean=data.mean, std=data.std, device=device)
    flips_added = allow_flip and not candidate.train.hflip and _shows_mirror_symmetry(mirror, num_classes)
    winner = candidate
    if flips_added:
        log.info("final model: the winner's weights show the data mirror-symmetric; training with flips")
        candidate = dataclasses.replace(candidate, train=dataclasses.replace(candidate.train, hflip=True))
    held_out = hold_out_validation and len(data.val_y) > 0
    if held_out:
        train_data = TrainData(train_x=resize_images(data.train_x, (height, width)), train_y=data.train_y,
                               val_x=val_x, val_y=data.val_y)
    else:
        train_data = _train_and_val(data, (height, width), val_x=val_x)
    key = _selection_key(metric)
    start = (_validation_report(network, val_x, data, device=device, num_classes=num_classes)
             if held_out and warm_started else None)
    seconds_left, most, raised_from, policy_added = None, max_epochs or epochs, None, None
    if train_seconds is not None:
        started, planned = time.perf_counter(), epochs

        def fit(network: nn.Module, train_data: TrainData, epochs: int) -> tuple[float, int]:
            """The step time of ``network`` probed at a plan of ``epochs`` and the epochs that fit what is left of
            ``train_seconds``."""
            step_s = step_seconds(network, train_data, train=candidate.train, epochs=epochs, mean=data.mean,
                                  std=data.std, device=device, num_classes=num_classes)
            return step_s, fit_epochs(len(train_data.train_x), candidate.train, step_s=step_s,
                                      seconds=train_seconds - (time.perf_counter() - started), most=most)

        step_s, epochs = fit(network, train_data, epochs)
        side = raised_side(height, epochs=epochs, max_side=max_side) if not held_out and height == width else height
        if side > height:
            log.info("final model: %d epochs fit at %d px; training at %d px from the seed's weights", epochs,
                     height, side)
            raised_from, height, width, warm_started = height, side, side, False
            candidate = dataclasses.replace(candidate, arch=dataclasses.replace(candidate.arch, resolution=side))
            network = _seeded_network(candidate, data, num_classes, seed=seed, size=(height, width))
            train_data = _train_and_val(data, (height, width))
            step_s, epochs = fit(network, train_data, epochs)
        policy_added = augmentation_policy(candidate.train, epochs=epochs) if allow_policy and not held_out else None
        if policy_added:  # the policy's own cost per image counts against the budget too
            log.info("final model: %d epochs; training with the %r augmentation policy", epochs, policy_added)
            candidate = dataclasses.replace(candidate, train=dataclasses.replace(candidate.train, policy=policy_added))
            step_s, epochs = fit(network, train_data, epochs)
        seconds_left = train_seconds - (time.perf_counter() - started)
        log.info("final model: %.4f s a step; %d epochs fit %.0f s (planned %d)", step_s, epochs, train_seconds,
                 planned)
    result = train(network, train_data, epochs=epochs, train=candidate.train, mean=data.mean, std=data.std,
                   seed=seed, device=device, num_classes=num_classes, should_stop=should_stop,
                   keep_best=key if held_out else None, seconds=seconds_left, most=most,
                   choose_kept=_within_noise(metric, start, val_images=len(data.val_y)),
                   policy_ramp=POLICY_RAMP if policy_added else 0.0)
    if len(result.epochs) != epochs:
        log.info("final model: %d epochs fitted the measured epoch time (the probe's estimate: %d)",
                 len(result.epochs), epochs)
        epochs = len(result.epochs)
    kept_epoch = result.kept_epoch
    if held_out and kept_epoch is None:
        log.info("final model: no epoch beat the winning trial's weights on the validation split; keeping them")
        network.load_state_dict(initial_state)
        kept_epoch, candidate, flips_added, policy_added = 0, winner, False, None
    checkpoint()

    network = network.to("cpu", memory_format=torch.contiguous_format).eval()
    test_time_mirror = allow_mirror and mirror_helps(mirror)
    exported: nn.Module = MirrorAverage(network).eval() if test_time_mirror else network
    onnx_path = export_onnx(exported, channels=data.channels, height=height, width=width, path=onnx_path)
    latency_ms = onnx_latency_ms(onnx_path, channels=data.channels, height=height, width=width,
                                 repeats=latency_repeats)
    if test_time_mirror and max_latency_ms is not None and latency_ms > max_latency_ms:
        log.info("test-time mirroring takes %.2f ms > %.2f ms: the plain network is exported", latency_ms,
                 max_latency_ms)
        test_time_mirror, exported = False, network
        onnx_path = export_onnx(exported, channels=data.channels, height=height, width=width, path=onnx_path)
        latency_ms = onnx_latency_ms(onnx_path, channels=data.channels, height=height, width=width,
                                     repeats=latency_repeats)

    test_inputs = normalize(resize_images(data.test_x.cpu(), (height, width)), data.mean, data.std)
    with torch.no_grad():
        logits = torch.cat([exported(chunk) for chunk in test_inputs.split(VERIFY_CHUNK)]) if len(test_inputs) \
            else torch.empty(0, num_classes)
    report = classification_report(data.test_y.cpu(), logits.argmax(1), classes=data.classes)
    onnx_diff = 0.0
    for chunk in test_inputs.split(VERIFY_CHUNK):  # every test image: same argmax, logits within 1e-4
        onnx_diff = max(onnx_diff, verify_onnx(onnx_path, exported, chunk, atol=1e-4).max_abs_diff)
    example = test_inputs[:2] if len(test_inputs) else torch.zeros(2, data.channels, height, width)
    pt2_path = export_pt2(exported, example, pt2_path)
    pt2_diff = verify_pt2(pt2_path, exported, test_inputs[:VERIFY_CHUNK], atol=1e-4).max_abs_diff
    int8 = None
    if int8_onnx_path is not None:
        calibration = calibration_images(data, height=height, width=width, seed=seed)
        int8 = quantize_onnx(onnx_path, int8_onnx_path, calibration_inputs=calibration, test_inputs=test_inputs,
                             test_labels=data.test_y.cpu(), max_accuracy_drop=int8_max_accuracy_drop,
                             latency_repeats=latency_repeats, fp32_logits=logits.numpy(),
                             fp32_latency_ms=latency_ms)
    checkpoint()
    return FinalModel(report=report, params=count_params(exported),
                      flops=count_flops(exported, (data.channels, height, width)), latency_ms=latency_ms,
                      height=height, width=width, onnx_path=onnx_path, pt2_path=pt2_path,
                      onnx_max_abs_diff=onnx_diff, pt2_max_abs_diff=pt2_diff, warm_started=warm_started,
                      test_time_mirror=test_time_mirror, mirror=mirror, int8=int8, epochs=epochs,
                      network=exported, candidate=candidate, flips_added=flips_added,
                      validation_held_out=held_out, kept_epoch=kept_epoch if held_out else None,
                      raised_from=raised_from, policy_added=policy_added, bf16=result.bf16)


def raised_side(side: int, *, epochs: int, max_side: int | None) -> int:
    """The input side a time-budgeted final model trains at, given the ``epochs`` its budget fits at its winner's
    ``side``: that side while they are at most :data:`RESOLUTION_EPOCHS`; otherwise the side at which about that many
    fit (a step costs about the side squared), down to a multiple of :data:`SIDE_STEP`, at most ``max_side`` (None:
    never raised) and never below ``side``.

    >>> raised_side(48, epochs=137, max_side=96), raised_side(48, epochs=60, max_side=96)
    (72, 48)
    >>> raised_side(64, epochs=270, max_side=128), raised_side(64, epochs=270, max_side=None)
    (128, 64)
    """
    if max_side is None or epochs <= RESOLUTION_EPOCHS or side >= max_side:
        return side
    wanted = side * math.sqrt(epochs / RESOLUTION_EPOCHS)
    return max(side, min(max_side, int(wanted // SIDE_STEP) * SIDE_STEP))


def augmentation_policy(train: TrainSpec, *, epochs: int) -> str | None:
    """The augmentation policy a final model of ``epochs`` adds to its winner's recipe ``train``:
    :data:`STRONG_AUGMENT_POLICY` for a schedule of :data:`STRONG_AUGMENT_EPOCHS` epochs or more where the winner
    trained with none; None keeps the recipe (a winner with a policy of its own keeps that one).

    >>> augmentation_policy(TrainSpec(), epochs=60), augmentation_policy(TrainSpec(), epochs=59)
    ('trivial', None)
    >>> augmentation_policy(TrainSpec(policy="randaugment"), epochs=200) is None
    True
    """
    if train.policy != "none" or epochs < STRONG_AUGMENT_EPOCHS:
        return None
    return STRONG_AUGMENT_POLICY


def _seeded_network(candidate: Candidate, data: SplitTensors, num_classes: int, *, seed: int,
                    size: tuple[int, int]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the initial weights are part of what the seed reproduces
        return build_model(candidate.arch, data.channels, num_classes, input_size=size)


def _train_and_val(data: SplitTensors, size: tuple[int, int], *, val_x: torch.Tensor | None = None) -> TrainData:
    """Train and val images at ``size`` as one training split, with nothing to validate on (``val_x``: the val
    images already at ``size``)."""
    train_x = torch.cat([resize_images(data.train_x, size), val_x if val_x is not None else
                         resize_images(data.val_x, size)])
    return TrainData(train_x=train_x, train_y=torch.cat([data.train_y, data.val_y]), val_x=train_x[:0],
                     val_y=data.val_y[:0])


def _selection_key(metric: str) -> Callable[[EpochReport], tuple[float, float]]:
    """Held-out selection's criteria: the larger ``metric`` on the validation split, the lower loss."""
    if metric not in ("accuracy", "balanced_accuracy"):
        raise ValueError(f"unknown metric {metric!r}")
    return lambda report: (getattr(report, f"val_{metric}"), -report.val_loss)


def _within_noise(metric: str, start: EpochReport | None, *, val_images: int
                  ) -> Callable[[list[EpochReport]], int | None]:
    """Held-out selection among the kept epochs and the winning trial's weights (``start``, epoch 0; None: there are
    none): the lowest validation loss among those whose ``metric`` is within one standard error of the best
    (:func:`nas_core.ranking.pick_within_noise`, the rule that picks the search's trial). The best of many noisy
    epochs overstates itself: on ``large-gray``, where nothing learned, the epoch with the best validation accuracy
    of 86 (weights that now and then named the rare class) scored below the majority rate on held-back images.
    None when the winning trial's weights win."""
    def choose(front: list[EpochReport]) -> int | None:
        rows = sorted([*front, *([start] if start is not None else [])],
                      key=lambda report: (-getattr(report, f"val_{metric}"), report.val_loss, report.epoch))
        picked = pick_within_noise([(report.epoch, getattr(report, f"val_{metric}"), report.val_loss)
                                    for report in rows], val_images=val_images)
        return picked or None
    return choose


def _validation_report(network: nn.Module, val_x: torch.Tensor, data: SplitTensors, *, device: torch.device | str,
                       num_classes: int) -> EpochReport:
    """The validation figures of ``network`` as they stand, in an epoch report's shape (epoch 0, no training)."""
    network.to(device, memory_format=torch.channels_last)
    accuracy, loss, balanced, recall = validation_scores(network, val_x, data.val_y, mean=data.mean, std=data.std,
                                                         device=device, num_classes=num_classes)
    return EpochReport(epoch=0, val_accuracy=accuracy, val_balanced_accuracy=balanced, val_recall=recall,
                       val_loss=loss, train_loss=float("nan"), seconds=0.0, images_per_s=0.0)


def _shows_mirror_symmetry(mirror: MirrorScores | None, num_classes: int) -> bool:
    """The winner's validation scores say a mirrored image keeps its class: either test of the module docstring."""
    if mirror is None:
        return False
    return mirror_helps(mirror) or bool(looks_mirror_symmetric(
        [(mirror.balanced_accuracy, mirror.mirrored_balanced_accuracy)], chance=1.0 / max(1, num_classes)))


def _warm_start(network: torch.nn.Module, state: dict | None) -> bool:
    if state is None:
        return False
    try:
        network.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError) as error:  # an incompatible file: start from the seed's weights
        log.warning("the winning trial's weights do not fit its network (%s); training from scratch", error)
        return False
    return True
