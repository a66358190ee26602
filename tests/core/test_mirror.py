"""Mirror symmetry measured on the data, and test-time mirroring in the exported graph."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

import nas_core.final
from nas_core.builder import build_model
from nas_core.final import build_final_model
from nas_core.metrics import count_flops
from nas_core.mirror import (MirrorAverage, MirrorScores, looks_mirror_symmetric, mirror_helps, mirror_scores)
from nas_core.space import default_search_space
from nas_core.trainer import normalize
from tests.core.helpers import CANDIDATE


class LeftHalf(nn.Module):
    """Class 0 when the left half is brighter: a mirrored image gets the other class."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        width = x.shape[-1]
        difference = x[..., : width // 2].mean((1, 2, 3)) - x[..., width // 2:].mean((1, 2, 3))
        return torch.stack([difference, -difference], dim=1)


def halves(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(count) % 2
    images = torch.zeros(count, 1, 8, 8, dtype=torch.uint8)
    images[labels == 0, :, :, :4] = 255
    images[labels == 1, :, :, 4:] = 255
    return images, labels


def test_symmetry_is_judged_by_the_most_accurate_network_clearly_above_chance():
    assert looks_mirror_symmetric([(0.95, 0.30)], chance=0.1) is False  # digits
    assert looks_mirror_symmetric([(0.70, 0.66)], chance=0.2) is True  # 0.46 of 0.50 above chance kept
    assert looks_mirror_symmetric([(0.70, 0.58)], chance=0.2) is False  # 0.38 < 0.8 × 0.50
    assert looks_mirror_symmetric([(0.25, 0.25)], chance=0.2) is None  # no evidence near chance
    # nor early in training, whatever the mirror keeps: under a quarter of the way from chance to 1
    assert looks_mirror_symmetric([(0.24, 0.213)], chance=0.1) is None  # scenes: 0.81 kept at 0.16 of the way
    assert looks_mirror_symmetric([(0.32, 0.32)], chance=0.1) is None
    assert looks_mirror_symmetric([(0.33, 0.33)], chance=0.1) is True
    assert looks_mirror_symmetric([(0.62, 0.62)], chance=0.5) is None  # two classes: a quarter of 0.5 above chance
    assert looks_mirror_symmetric([(0.63, 0.63)], chance=0.5) is True
    assert looks_mirror_symmetric([], chance=0.5) is None
    # the best network decides, not a lucky weak one
    assert looks_mirror_symmetric([(0.40, 0.40), (0.90, 0.20)], chance=0.1) is False


def scores(**values: float) -> MirrorScores:
    base = dict(accuracy=0.8, mirrored_accuracy=0.78, balanced_accuracy=0.8, mirrored_balanced_accuracy=0.78,
                upside_down_balanced_accuracy=0.3, averaged_accuracy=0.8, loss=0.6, averaged_loss=0.5)
    return MirrorScores(**{**base, **values})


def test_mirroring_helps_only_when_it_lowers_the_loss_without_losing_accuracy():
    assert mirror_helps(scores())
    assert not mirror_helps(scores(averaged_accuracy=0.79))
    assert not mirror_helps(scores(averaged_accuracy=0.82, averaged_loss=0.6))
    assert not mirror_helps(None)


def test_scores_of_a_direction_dependent_network():
    images, labels = halves(10)
    measured = mirror_scores(LeftHalf(), images, labels, mean=(0.5,), std=(0.5,), device="cpu")
    assert measured.accuracy == measured.balanced_accuracy == 1.0
    assert measured.mirrored_accuracy == measured.mirrored_balanced_accuracy == 0.0
    assert measured.upside_down_balanced_accuracy == 1.0  # left stays left upside down: orientation-free for it
    assert measured.averaged_loss == pytest.approx(np.log(2))  # both views cancel: no evidence either way
    assert not mirror_helps(measured)
    assert not looks_mirror_symmetric([(measured.balanced_accuracy, measured.mirrored_balanced_accuracy)], chance=0.5)


def test_a_network_answering_the_commonest_class_is_no_evidence_of_symmetry():
    """Imbalanced data: nine of ten images of class 0 and a network that always says 0 keeps its 0.9 accuracy in
    the mirror; its balanced accuracy is chance, so it says nothing."""
    images, labels = halves(10)
    labels = torch.tensor([0] * 9 + [1])

    class Constant(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[1.0, 0.0]]).expand(len(x), 2)

    measured = mirror_scores(Constant(), images, labels, mean=(0.5,), std=(0.5,), device="cpu")
    assert measured.accuracy == measured.mirrored_accuracy == pytest.approx(0.9)
    assert measured.balanced_accuracy == 0.5
    assert looks_mirror_symmetric([(measured.balanced_accuracy, measured.mirrored_balanced_accuracy)],
                                  chance=0.5) is None
    assert mirror_scores(LeftHalf(), images[:0], labels[:0], mean=(0.5,), std=(0.5,), device="cpu") is None


def test_the_mirror_average_is_mirror_invariant_and_averages_both_views():
    torch.manual_seed(0)
    network = build_model(CANDIDATE.arch, 1, 2, input_size=12).eval()
    x = torch.randn(3, 1, 12, 12)
    with torch.no_grad():
        averaged = MirrorAverage(network)(x)
        torch.testing.assert_close(averaged, (network(x) + network(x.flip(-1))) / 2)
        torch.testing.assert_close(MirrorAverage(network)(x.flip(-1)), averaged)


def test_references_train_with_flips_once_the_data_is_found_symmetric():
    space = default_search_space()
    plain, flipped = space.reference_points(), space.reference_points(mirror_symmetric=True)
    assert len(plain) == len(flipped) > 0
    assert not any(point["train/hflip"] for point in plain) and all(point["train/hflip"] for point in flipped)
    assert [{**point, "train/hflip": False} for point in flipped] == plain
    turned = space.reference_points(orientation_free=True)
    assert all(point["train/vflip"] for point in turned) and not any(point["train/vflip"] for point in plain)
    assert [{**point, "train/vflip": False} for point in turned] == plain
    no_flips = space.with_overrides({"train/hflip": [False], "train/vflip": [False]})
    assert no_flips.reference_points(mirror_symmetric=True, orientation_free=True) == no_flips.reference_points()


@pytest.mark.slow
@pytest.mark.parametrize("limit, mirrored", [(None, True), (1e-6, False)])
def test_the_final_model_exports_test_time_mirroring_unless_the_latency_limit_forbids_it(
        splits, tmp_path, monkeypatch, limit, mirrored):
    monkeypatch.setattr(nas_core.final, "mirror_helps", lambda scores: scores is not None)
    donor = build_model(CANDIDATE.arch, 1, 2, input_size=12)
    built = build_final_model(CANDIDATE, splits, epochs=1, seed=5, device="cpu", onnx_path=tmp_path / "m.onnx",
                              pt2_path=tmp_path / "m.pt2", initial_state=donor.state_dict(), latency_repeats=3,
                              max_latency_ms=limit)
    assert built.mirror is not None and built.test_time_mirror is mirrored
    plain_flops = count_flops(donor, (1, 12, 12))
    assert built.flops == (2 * plain_flops if mirrored else plain_flops)
    session = onnxruntime.InferenceSession(str(built.onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    inputs = normalize(splits.test_x, splits.mean, splits.std)
    logits = session.run(None, {name: inputs.numpy()})[0]
    assert (logits.argmax(1) == splits.test_y.numpy()).mean() == built.report.accuracy
    if mirrored:  # the file itself averages both views
        np.testing.assert_allclose(session.run(None, {name: inputs.flip(-1).numpy()})[0], logits, atol=1e-5)


@pytest.mark.slow
def test_no_mirroring_without_the_winners_weights_or_when_not_allowed(splits, tmp_path):
    built = build_final_model(CANDIDATE, splits, epochs=1, seed=5, device="cpu", onnx_path=tmp_path / "m.onnx",
                              pt2_path=tmp_path / "m.pt2", latency_repeats=3)
    assert built.mirror is None and not built.test_time_mirror
    donor = build_model(CANDIDATE.arch, 1, 2, input_size=12)
    built = build_final_model(CANDIDATE, splits, epochs=1, seed=5, device="cpu", onnx_path=tmp_path / "n.onnx",
                              pt2_path=tmp_path / "n.pt2", initial_state=donor.state_dict(), latency_repeats=3,
                              allow_mirror=False, allow_flip=False)
    assert built.mirror is None and not built.test_time_mirror


def test_the_final_model_sees_mirror_symmetry_in_either_test():
    shows = nas_core.final._shows_mirror_symmetry

    def winner(balanced: float, mirrored: float, averaged_loss: float = 0.7) -> MirrorScores:
        return scores(accuracy=balanced, balanced_accuracy=balanced, mirrored_balanced_accuracy=mirrored,
                      averaged_accuracy=balanced, loss=0.6, averaged_loss=averaged_loss)

    assert shows(winner(0.70, 0.66), num_classes=5)  # the mirrored images keep their classes
    assert shows(winner(0.45, 0.30, averaged_loss=0.5), num_classes=10)  # averaging both views helps
    assert not shows(winner(0.95, 0.30), num_classes=10)  # digits
    assert not shows(winner(0.15, 0.15), num_classes=10)  # too close to chance to say
    assert not shows(None, num_classes=10)


@pytest.mark.slow
def test_the_final_model_adds_flips_on_the_winners_evidence_where_the_space_allows(
        splits, tmp_path, monkeypatch):
    donor = build_model(CANDIDATE.arch, 1, 2, input_size=12).state_dict()
    common = dict(epochs=1, seed=5, device="cpu", initial_state=donor, latency_repeats=3, allow_mirror=False)
    monkeypatch.setattr(nas_core.final, "_shows_mirror_symmetry", lambda mirror, num_classes: mirror is not None)
    built = build_final_model(CANDIDATE, splits, onnx_path=tmp_path / "a.onnx", pt2_path=tmp_path / "a.pt2",
                              **common)
    assert not CANDIDATE.train.hflip
    assert built.flips_added and built.candidate.train.hflip and not built.test_time_mirror
    assert built.candidate.arch == CANDIDATE.arch
    kept = build_final_model(CANDIDATE, splits, onnx_path=tmp_path / "b.onnx", pt2_path=tmp_path / "b.pt2",
                             allow_flip=False, **common)
    assert not kept.flips_added and kept.candidate == CANDIDATE
    monkeypatch.setattr(nas_core.final, "_shows_mirror_symmetry", lambda mirror, num_classes: False)
    plain = build_final_model(CANDIDATE, splits, onnx_path=tmp_path / "c.onnx", pt2_path=tmp_path / "c.pt2",
                              **common)
    assert not plain.flips_added and plain.candidate == CANDIDATE
