"""Cost before training: exact params/FLOPs from the spec, the device calibration, screening, resized inputs."""

import doctest
import math
import random

import pytest
import torch

from nas_core import cost
from nas_core.builder import build_model
from nas_core.cost import Throughput, calibrate, estimate
from nas_core.metrics import count_flops, count_params
from nas_core.params import TrialRecord
from nas_core.pruning import rung_score
from nas_core.resolution import resize_images
from nas_core.screening import DataShape, Limits, describe_infeasible, predict_epoch_seconds, screen
from nas_core.space import default_search_space
from nas_core.spec import ArchSpec, Candidate, StageSpec, TrainSpec
from nas_core.strategies.evolution import EvolutionStrategy
from nas_core.trainer import plan_epochs

SPACE = default_search_space()
SHAPE = DataShape(channels=1, side=16, num_classes=4, train_images=96, val_images=32)


@pytest.mark.parametrize("seed", range(12))
def test_estimate_equals_what_the_built_network_counts(seed):
    rng = random.Random(seed)
    wide = SPACE.with_overrides({"downsample": ["max", "avg", "stride", "none"], "kernel": [3, 5, 7],
                                 "expansion": [1, 3, 6]})
    candidate = wide.decode(wide.param_space.sample(rng), input_side=rng.choice([16, 28, 100]))
    channels, classes = rng.choice([1, 3]), rng.choice([2, 10])
    size = candidate.arch.input_size((rng.choice([16, 28, 100]),) * 2)
    model = build_model(candidate.arch, channels, classes, input_size=size)
    cost = estimate(candidate.arch, in_channels=channels, num_classes=classes, input_size=size)
    assert (cost.params, cost.flops) == (count_params(model), count_flops(model, (channels, *size)))
    assert cost.activations > 0


def test_calibration_fits_a_non_negative_model_that_orders_networks_by_cost():
    speed = calibrate("cpu", (1, 16, 16), steps=2)
    assert min(speed.per_step_s, speed.per_image_s, speed.per_flop_s, speed.per_activation_s) >= 0
    tiny = estimate(ArchSpec(8, (StageSpec("conv", 1, 8, 3),)), in_channels=1, num_classes=4, input_size=16)
    big = estimate(ArchSpec(64, (StageSpec("conv", 3, 128, 5, downsample="none"),) * 2), in_channels=1,
                   num_classes=4, input_size=16)
    assert 0 < speed.train_step_seconds(tiny, 32) < speed.train_step_seconds(big, 32)
    assert Throughput.from_dict(speed.to_dict()) == speed


FIXED = Throughput(device="cpu", input_shape=(1, 16, 16), per_step_s=0.01, per_image_s=1e-4, per_flop_s=1e-9,
                   per_activation_s=0.0)


def _candidate(width: int, **train) -> Candidate:
    return Candidate(ArchSpec(16, (StageSpec("conv", 1, width, 3), StageSpec("conv", 1, width, 3))),
                     TrainSpec(**train))


def test_predicted_epoch_follows_the_trainers_own_plan():
    candidate = _candidate(32)
    plan = plan_epochs(SHAPE.train_images, candidate.train, 5)
    cost = estimate(candidate.arch, in_channels=1, num_classes=4, input_size=16)
    expected = FIXED.epoch_seconds(cost, steps=plan.steps_per_epoch, batch_size=plan.batch_size, val_images=32)
    assert predict_epoch_seconds(candidate, SHAPE, FIXED, epochs=5) == pytest.approx(expected)
    assert predict_epoch_seconds(candidate, SHAPE, FIXED, epochs=5, correction=2.0) == pytest.approx(2 * expected)


def test_screening_reports_the_first_limit_broken_cheapest_first():
    small, large = _candidate(16), _candidate(256)
    assert screen(small, SHAPE, Limits(), epochs=3).passed
    verdict = screen(large, SHAPE, Limits(max_params=10_000, max_mflops=0.001), epochs=3)
    assert verdict.reason == "max_params" and verdict.value == verdict.params > 10_000
    assert verdict.violation(Limits(max_params=10_000)) == pytest.approx(verdict.params / 10_000 - 1)
    assert screen(large, SHAPE, Limits(max_mflops=1.0), epochs=3).reason == "max_mflops"
    slow = screen(large, SHAPE, Limits(max_trial_seconds=0.5), epochs=3, throughput=FIXED)
    assert slow.reason == "max_trial_seconds" and slow.predicted_trial_s > 0.5 and slow.predicted_epoch_s > 0
    fast = screen(small, SHAPE, Limits(max_trial_seconds=1e6, max_latency_ms=1e6), epochs=3, throughput=FIXED)
    assert fast.passed and fast.latency_ms > 0 and fast.predicted_epoch_s < slow.predicted_epoch_s
    assert screen(large, SHAPE, Limits(max_latency_ms=1e-6), epochs=3).reason == "max_latency_ms"


def test_infeasible_message_names_the_binding_constraint_and_the_best_value():
    message = describe_infeasible({"max_latency_ms": 3.4, "max_params": 2e6}, Limits(max_latency_ms=2.0,
                                                                                     max_params=10), 200)
    assert "max_latency_ms = 2 is binding" in message and "3.4 ms per image" in message and "200 draws" in message
    time_message = describe_infeasible({"max_trial_seconds": 90.0}, Limits(max_trial_seconds=30.0), 40)
    assert "time budget" in time_message and "90 s per trial" in time_message


def test_screened_points_do_not_use_up_the_evolution_start_up():
    space = SPACE.param_space
    rng = random.Random(0)
    screened = [TrialRecord(number=10**9 + i, decisions=space.sample(rng), status="screened", feasible=False)
                for i in range(30)]
    strategy = EvolutionStrategy(startup="random", startup_trials=5)
    # nothing has run yet: all five proposals are start-up draws, whatever was screened out before
    assert len(strategy.ask(space, screened, 5, seed=1, budget=20)) == 5
    assert strategy.startup_count(20) - sum(r.status != "screened" for r in screened) == 5


def test_resize_images_keeps_uint8_and_the_mean():
    images = torch.randint(0, 256, (3, 1, 32, 32), dtype=torch.uint8)
    small = resize_images(images, (16, 16))
    assert small.dtype == torch.uint8 and small.shape == (3, 1, 16, 16)
    assert abs(small.float().mean().item() - images.float().mean().item()) < 2.0
    assert resize_images(images, (32, 32)) is images
    assert resize_images(images[:0], (8, 8)).shape == (0, 1, 8, 8)


def test_rung_score_separates_degenerate_predictions_by_loss():
    # two networks giving every image the majority class: equal accuracy and balanced accuracy, different loss
    confident = rung_score(val_accuracy=0.69, val_balanced_accuracy=0.5, val_loss=0.4)
    confused = rung_score(val_accuracy=0.69, val_balanced_accuracy=0.5, val_loss=2.0)
    learning = rung_score(val_accuracy=0.6, val_balanced_accuracy=0.58, val_loss=0.9)
    assert learning > confident > confused
    assert rung_score(val_accuracy=0.8) == 0.8  # epochs recorded before balanced accuracy existed
    assert math.isfinite(rung_score(val_accuracy=0.5, val_balanced_accuracy=0.5, val_loss=float("nan")))


def test_augmentation_policies_and_weight_averaging_are_charged():
    import dataclasses

    speed = dataclasses.replace(FIXED, augment_s=(("none", 0.0), ("randaugment", 1e-3), ("trivial", 5e-4)),
                                per_param_ema_s=1e-8)
    plain = predict_epoch_seconds(_candidate(32, ema=False), SHAPE, speed, epochs=5)
    plan = plan_epochs(SHAPE.train_images, TrainSpec(), 5)
    randaugment = predict_epoch_seconds(_candidate(32, ema=False, policy="randaugment"), SHAPE, speed, epochs=5)
    assert randaugment - plain == pytest.approx(plan.images_per_epoch * 1e-3)
    averaged = predict_epoch_seconds(_candidate(32, ema=True), SHAPE, speed, epochs=5)
    params = estimate(_candidate(32).arch, in_channels=1, num_classes=4, input_size=16).params
    assert averaged - plain == pytest.approx(plan.steps_per_epoch * params * 1e-8)
    measured = calibrate("cpu", (1, 16, 16), steps=1)
    assert {policy for policy, _ in measured.augment_s} == {"none", "trivial", "randaugment"}
    assert measured.per_param_ema_s > 0


def test_the_module_examples_hold():
    assert doctest.testmod(cost).failed == 0
