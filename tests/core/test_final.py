"""The final model as a pure function: retrain on train+val, test, export and verify, warm start or not."""

from __future__ import annotations

import dataclasses
import doctest

import onnxruntime
import pytest
import torch

from nas_core import final
from nas_core.builder import build_model
from nas_core.final import build_final_model
from nas_core.spec import ArchSpec, Candidate, StageSpec, TrainSpec
from nas_core.trainer import TrainData, fit_epochs, normalize, step_seconds, train
from tests.core.helpers import CANDIDATE, stripes


@pytest.mark.slow
def test_the_final_model_is_trained_on_from_the_winner_tested_exported_and_verified(splits, tmp_path):
    donor = build_model(CANDIDATE.arch, 1, 2, input_size=12)
    checks = []
    built = build_final_model(CANDIDATE, splits, epochs=3, seed=5, device="cpu", onnx_path=tmp_path / "m.onnx",
                              pt2_path=tmp_path / "m.pt2", initial_state=donor.state_dict(), latency_repeats=3,
                              checkpoint=lambda: checks.append(True), int8_onnx_path=tmp_path / "m.int8.onnx")
    assert built.warm_started and checks == [True, True]  # after training, after exporting and quantizing
    assert not built.validation_held_out and built.kept_epoch is None  # the default: train+val, the last weights
    assert built.report.count == 20 and built.report.accuracy == 1.0  # stripes are easy; the test split is scored
    assert built.onnx_path.exists() and built.pt2_path.exists()
    assert built.onnx_max_abs_diff <= 1e-4 and built.pt2_max_abs_diff <= 1e-4
    assert (built.height, built.width) == (12, 12)
    assert built.params == sum(p.numel() for p in donor.parameters())
    assert built.flops > 0 and built.latency_ms > 0
    # the ONNX file reproduces the reported accuracy on the test split
    session = onnxruntime.InferenceSession(str(built.onnx_path), providers=["CPUExecutionProvider"])
    inputs = normalize(splits.test_x, splits.mean, splits.std).numpy()
    logits = session.run(None, {session.get_inputs()[0].name: inputs})[0]
    assert (logits.argmax(1) == splits.test_y.numpy()).mean() == built.report.accuracy
    # the int8 file of the verified ONNX file, calibrated on the train split, measured next to it on the test split
    int8 = built.int8
    assert int8.path == tmp_path / "m.int8.onnx" and int8.path.exists() and int8.int8 is not None, int8.reason
    assert int8.calibration_images == len(splits.train_x) and int8.max_accuracy_drop == 0.01
    assert int8.fp32.test_accuracy == built.report.accuracy and int8.fp32.size_bytes == built.onnx_path.stat().st_size
    quantized = onnxruntime.InferenceSession(str(int8.path), providers=["CPUExecutionProvider"])
    int8_predicted = quantized.run(None, {"input": inputs})[0].argmax(1)
    assert int8.int8.test_accuracy == (int8_predicted == splits.test_y.numpy()).mean()
    assert int8.agreement == (int8_predicted == logits.argmax(1)).mean()
    assert int8.flagged == (built.report.accuracy - int8.int8.test_accuracy > 0.01)


@pytest.mark.parametrize("faster", [True, False])
def test_the_final_model_reports_the_precision_it_trained_in_and_tests_in_float32(splits, tmp_path, monkeypatch,
                                                                                  faster):
    """The precision is decided by the same probe as a trial's (here forced either way); the figures are float32."""
    import nas_core.trainer

    asked = []
    monkeypatch.setattr(nas_core.trainer, "use_bf16", lambda *args, **kwargs: asked.append(args) or faster)
    built = build_final_model(CANDIDATE, splits, epochs=2, seed=5, device="cpu", onnx_path=tmp_path / "m.onnx",
                              pt2_path=tmp_path / "m.pt2", latency_repeats=3)
    assert built.bf16 is faster and len(asked) == 1  # decided once, for the final model's own network and batch
    assert built.onnx_max_abs_diff <= 1e-4  # the reported figures come from the float32 network the files reproduce


def test_an_ill_fitting_state_is_ignored_and_a_raising_checkpoint_abandons_the_job_before_any_file(
        splits, tmp_path, caplog):
    class Lost(Exception):
        pass

    def lost() -> None:
        raise Lost

    wrong = build_model(ArchSpec(8, (StageSpec("conv", 1, 12, 3),)), 1, 2, input_size=12).state_dict()
    with pytest.raises(Lost):
        build_final_model(CANDIDATE, splits, epochs=1, seed=5, device="cpu", onnx_path=tmp_path / "c.onnx",
                          pt2_path=tmp_path / "c.pt2", initial_state=wrong, checkpoint=lost)
    assert "training from scratch" in caplog.text
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("train_seconds", "max_epochs", "fitted"), [(0.0, 9, 1), (1e6, 9, 9), (1e6, None, 2)])
def test_a_time_budget_refits_the_epochs_to_the_measured_training_step(splits, tmp_path, monkeypatch, train_seconds,
                                                                       max_epochs, fitted):
    class Trained(Exception):
        pass

    asked = []

    def record(network, data, *, epochs, **_):
        asked.append(epochs)
        raise Trained

    monkeypatch.setattr("nas_core.final.train", record)
    with pytest.raises(Trained):
        build_final_model(CANDIDATE, splits, epochs=2, seed=5, device="cpu", onnx_path=tmp_path / "t.onnx",
                          pt2_path=tmp_path / "t.pt2", train_seconds=train_seconds, max_epochs=max_epochs)
    assert asked == [fitted]  # nothing fits: one epoch; all fits: the most allowed (default: the planned epochs)


def test_the_training_step_is_timed_on_a_copy_and_fitted_epochs_grow_with_the_time():
    (x, y), spec = stripes(48, 0), TrainSpec(lr=3e-3, batch_size=0, ema=True)
    model = build_model(CANDIDATE.arch, 1, 2, input_size=12)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    seconds = step_seconds(model, TrainData(x, y, x[:0], y[:0]), train=spec, epochs=5, mean=(0.5,), std=(0.5,),
                           device="cpu", num_classes=2)
    assert seconds > 0
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    fits = [fit_epochs(48, spec, seconds=budget, step_s=0.01, most=50) for budget in (0.0, 1.0, 5.0, 30.0)]
    assert fits == sorted(fits) and fits[0] == 1 and fits[-1] == 50


def test_held_out_selection_trusts_a_lead_only_beyond_the_noise_of_the_validation_split():
    """Among the kept epochs and the winning trial's weights (epoch 0), the lowest validation loss within one
    standard error of the best accuracy: on 192 images, 0.81 against the trial's 0.786 is noise and the trial's
    lower loss wins (None: keep its weights); 0.90 is a lead; without the trial's weights an epoch is chosen."""
    from nas_core.final import _within_noise
    from nas_core.trainer import EpochReport

    def report(epoch: int, accuracy: float, loss: float) -> EpochReport:
        return EpochReport(epoch=epoch, val_accuracy=accuracy, val_balanced_accuracy=0.5, val_recall=(1.0, 0.0),
                           val_loss=loss, train_loss=0.5, seconds=1.0, images_per_s=1.0)

    start = report(0, 0.786, 0.52)
    noisy = [report(12, 0.797, 0.55), report(76, 0.81, 0.61)]
    assert _within_noise("accuracy", start, val_images=192)(noisy) is None
    assert _within_noise("accuracy", start, val_images=192)([*noisy, report(80, 0.90, 0.40)]) == 80
    assert _within_noise("accuracy", None, val_images=192)(noisy) == 12
    assert _within_noise("accuracy", start, val_images=100_000)(noisy) == 76  # many images: 0.81 is a real lead


def test_with_validation_held_out_the_final_model_hands_back_no_worse_than_the_winner_on_val(splits, tmp_path):
    """No trial learned: the final model trains on train only and keeps, of its epochs and the winner's own
    weights, the lowest val loss within the noise of the best val accuracy."""
    torch.manual_seed(0)
    winner = build_model(CANDIDATE.arch, 1, 2, input_size=12)
    train(winner, TrainData(splits.train_x, splits.train_y, splits.val_x, splits.val_y), epochs=3,
          train=CANDIDATE.train, mean=splits.mean, std=splits.std, seed=1, device="cpu")
    common = dict(seed=5, device="cpu", onnx_path=tmp_path / "m.onnx", pt2_path=tmp_path / "m.pt2",
                  latency_repeats=3, hold_out_validation=True, allow_mirror=False)
    # Heavy label smoothing flattens the logits: accuracy stays, the val loss rises, so the winner's weights win.
    smoothing = Candidate(CANDIDATE.arch, dataclasses.replace(CANDIDATE.train, label_smoothing=0.5))
    kept = build_final_model(smoothing, splits, epochs=2, initial_state=winner.state_dict(), **common)
    assert kept.validation_held_out and kept.kept_epoch == 0 and kept.epochs == 2
    assert all(torch.equal(a, b) for a, b in zip(kept.network.state_dict().values(), winner.state_dict().values()))
    # The plain recipe improves on the winner's val loss: its best epoch is kept.
    improved = build_final_model(CANDIDATE, splits, epochs=2, initial_state=winner.state_dict(), **common)
    assert improved.validation_held_out and improved.kept_epoch in (1, 2) and improved.report.accuracy == 1.0


def _stored_at(splits, side: int):
    """The stripes stored at ``side`` px (the fixture's are 12 px)."""
    from nas_core.resolution import resize_images

    return dataclasses.replace(splits, height=side, width=side, **{
        name: resize_images(getattr(splits, name), (side, side)) for name in ("train_x", "val_x", "test_x")})


@pytest.mark.parametrize(("max_side", "held_out", "trained_side"), [(24, False, 16), (None, False, 8), (24, True, 8),
                                                                      (12, False, 12)])
def test_a_budget_of_far_more_epochs_than_the_winner_trained_buys_a_larger_side_instead(
        splits, tmp_path, monkeypatch, max_side, held_out, trained_side):
    """300 epochs fit at the winner's 8 px: at 16 px about a quarter of them do, still more than RESOLUTION_EPOCHS,
    so the network trains there from the seed's weights (on train+val); without a limit, with validation held out,
    or up to the limit only, the side stays or stops there."""
    from nas_core.final import RESOLUTION_EPOCHS

    class Trained(Exception):
        pass

    seen = []

    def record(network, data, *, epochs, **_):
        seen.append((tuple(data.train_x.shape), epochs, next(network.parameters()).detach().clone()))
        raise Trained

    monkeypatch.setattr("nas_core.final.train", record)
    small = Candidate(dataclasses.replace(CANDIDATE.arch, resolution=8), CANDIDATE.train)
    donor = build_model(small.arch, 1, 2, input_size=8).state_dict()
    with pytest.raises(Trained):
        build_final_model(small, _stored_at(splits, 24), epochs=2, seed=5, device="cpu", initial_state=donor,
                          onnx_path=tmp_path / "r.onnx", pt2_path=tmp_path / "r.pt2", train_seconds=1e6,
                          max_epochs=300, max_side=max_side, hold_out_validation=held_out, allow_mirror=False,
                          allow_flip=False)
    [(shape, epochs, first_weight)] = seen
    images = len(splits.train_x) + (0 if held_out else len(splits.val_x))
    assert shape == (images, 1, trained_side, trained_side) and epochs == 300 > RESOLUTION_EPOCHS
    warm = torch.equal(first_weight, next(iter(donor.values())))
    assert warm == (trained_side == 8)  # raised: the seed's weights, not the winner's at another side


def test_a_raised_side_is_what_the_exported_files_and_the_model_report_state(splits, tmp_path, monkeypatch):
    monkeypatch.setattr("nas_core.final.fit_epochs", lambda *args, most, **kwargs: most)  # the budget buys 300
    small = Candidate(dataclasses.replace(CANDIDATE.arch, resolution=8), CANDIDATE.train)
    built = build_final_model(small, _stored_at(splits, 24), epochs=2, seed=5, device="cpu",
                              onnx_path=tmp_path / "r.onnx", pt2_path=tmp_path / "r.pt2", train_seconds=0.5,
                              max_epochs=300, max_side=24, latency_repeats=3)
    assert (built.height, built.width, built.raised_from) == (16, 16, 8) and not built.warm_started
    assert built.candidate.arch.resolution == 16 and 1 <= built.epochs < 300  # the trainer recounted on the clock
    session = onnxruntime.InferenceSession(str(built.onnx_path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [1, 16, 16]
    assert built.flops > 0 and built.report.count == len(splits.test_y)


@pytest.mark.parametrize(("epochs", "allow_policy", "held_out", "budget", "policy"), [
    (60, True, False, True, "trivial"), (59, True, False, True, "none"), (60, False, False, True, "none"),
    (60, True, True, True, "none"), (60, True, False, False, "none")])
def test_a_long_final_schedule_adds_trivial_augment_where_the_winner_trained_with_no_policy(
        splits, tmp_path, monkeypatch, epochs, allow_policy, held_out, budget, policy):
    """A time budget that fits STRONG_AUGMENT_EPOCHS epochs or more adds TrivialAugment to a winner's recipe without a
    policy, unless the space rules it out, the validation split is held out (nothing learned: the search's recipe
    stays) or the epochs were asked for (their announced time would not hold)."""
    from nas_core.final import STRONG_AUGMENT_EPOCHS

    class Trained(Exception):
        pass

    seen = []

    def record(network, data, *, epochs, train, **_):
        seen.append((epochs, train.policy))
        raise Trained

    monkeypatch.setattr("nas_core.final.train", record)
    monkeypatch.setattr("nas_core.final.fit_epochs", lambda *args, **kwargs: epochs)  # what the budget fits
    assert CANDIDATE.train.policy == "none" and STRONG_AUGMENT_EPOCHS == 60
    with pytest.raises(Trained):
        build_final_model(CANDIDATE, splits, epochs=epochs, seed=5, device="cpu", onnx_path=tmp_path / "p.onnx",
                          pt2_path=tmp_path / "p.pt2", allow_policy=allow_policy, hold_out_validation=held_out,
                          allow_mirror=False, allow_flip=False, train_seconds=1e6 if budget else None)
    assert seen == [(epochs, policy)]


def test_an_added_policy_is_timed_into_the_budget_and_reported(splits, tmp_path, monkeypatch):
    """With a time budget the step is probed again with the policy (it costs time per image), the refitted epochs
    train with the added policy phased in, and the model reports the policy and trains the recipe it names; a winner
    with a policy keeps it, from the first step."""
    from nas_core import trainer

    probed, ramps = [], []

    def probe(network, data, *, train, **kwargs):
        probed.append(train.policy)
        return trainer.step_seconds(network, data, train=train, **kwargs)

    def training(*args, policy_ramp, **kwargs):
        ramps.append(policy_ramp)
        return trainer.train(*args, policy_ramp=policy_ramp, **kwargs)

    monkeypatch.setattr("nas_core.final.step_seconds", probe)
    monkeypatch.setattr("nas_core.final.train", training)
    monkeypatch.setattr("nas_core.final.fit_epochs", lambda *args, most, **kwargs: most)
    built = build_final_model(CANDIDATE, splits, epochs=2, seed=5, device="cpu", onnx_path=tmp_path / "a.onnx",
                              pt2_path=tmp_path / "a.pt2", train_seconds=0.5, max_epochs=80, latency_repeats=3)
    assert probed == ["none", "trivial"] and ramps == [final.POLICY_RAMP]
    assert built.policy_added == "trivial" and built.candidate.train.policy == "trivial" and built.epochs >= 1
    own = Candidate(CANDIDATE.arch, dataclasses.replace(CANDIDATE.train, policy="randaugment"))
    probed.clear()
    built = build_final_model(own, splits, epochs=2, seed=5, device="cpu", onnx_path=tmp_path / "b.onnx",
                              pt2_path=tmp_path / "b.pt2", train_seconds=0.5, max_epochs=80, latency_repeats=3)
    assert probed == ["randaugment"] and built.policy_added is None and ramps[1:] == [0.0]
    assert built.candidate.train.policy == "randaugment"


def test_the_documented_examples_hold():
    """raised_side's rule (kept up to RESOLUTION_EPOCHS, then where about that many fit, capped) is its examples."""
    assert doctest.testmod(final).failed == 0
