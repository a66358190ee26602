"""int8 quantization of a trained network's ONNX file: smaller, runs, measured from real runs, failures reported."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from nas_core.builder import build_model
from nas_core.export import export_onnx
from nas_core.mirror import MirrorAverage
from nas_core.quantize import calibration_indices, is_flagged, quantize_onnx
from nas_core.spec import ArchSpec, StageSpec, TrainSpec
from nas_core.trainer import TrainData, normalize, train
from tests.core.helpers import stripes

MEAN, STD = (0.5,), (0.5,)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A network with ~40k weights (enough for int8 to pay for its scales), trained a few steps, as ONNX."""
    (train_x, train_y), (test_x, test_y) = stripes(64, 0), stripes(40, 1)
    arch = ArchSpec(8, (StageSpec("conv", 1, 16, 3), StageSpec("residual", 1, 48, 3)))
    torch.manual_seed(0)
    network = build_model(arch, 1, 2, input_size=12)
    train(network, TrainData(train_x=train_x, train_y=train_y, val_x=train_x[:0], val_y=train_y[:0]), epochs=3,
          train=TrainSpec(lr=3e-3, batch_size=16, ema=False, augment=0.0), mean=MEAN, std=STD, seed=0,
          device="cpu", num_classes=2)
    network.eval()
    folder = tmp_path_factory.mktemp("quantize")
    fp32 = export_onnx(network, channels=1, height=12, width=12, path=folder / "model.onnx")
    calibration = normalize(train_x[calibration_indices(len(train_x), count=32, seed=0)], MEAN, STD)
    return network, fp32, calibration, normalize(test_x, MEAN, STD), test_y


def run(path, inputs: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": inputs.numpy()})[0]


def test_the_int8_file_is_smaller_runs_and_its_figures_come_from_real_runs(trained, tmp_path):
    _, fp32, calibration, test_inputs, test_y = trained
    report = quantize_onnx(fp32, tmp_path / "model.int8.onnx", calibration_inputs=calibration,
                           test_inputs=test_inputs, test_labels=test_y, latency_repeats=3)
    assert report.path == tmp_path / "model.int8.onnx" and report.path.exists() and report.reason is None
    graph = onnx.load(str(report.path)).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in graph.node}  # QDQ format
    assert any(tensor.data_type == onnx.TensorProto.INT8 and len(tensor.dims) == 4 for tensor in graph.initializer)
    assert report.int8.size_bytes == report.path.stat().st_size < report.fp32.size_bytes == fp32.stat().st_size
    assert report.int8.size_bytes < 0.5 * report.fp32.size_bytes

    fp32_predicted, int8_predicted = run(fp32, test_inputs).argmax(1), run(report.path, test_inputs).argmax(1)
    labels = test_y.numpy()
    assert report.fp32.test_accuracy == float((fp32_predicted == labels).mean()) > 0.9  # the stripes were learned
    assert report.int8.test_accuracy == float((int8_predicted == labels).mean())
    assert report.agreement == float((int8_predicted == fp32_predicted).mean())
    assert report.accuracy_change == report.int8.test_accuracy - report.fp32.test_accuracy
    assert report.calibration_images == 32 and not report.flagged
    for figures in (report.fp32, report.int8):  # measured, not ordered: on a busy machine either can come out slower
        assert all(0 < ms < 1e4 for ms in (figures.latency_ms_batch_1, figures.latency_ms_batch_32))
    assert report.to_dict()["int8"]["size_bytes"] == report.int8.size_bytes and "path" not in report.to_dict()


def test_the_mirror_averaging_graph_quantizes_too(trained, tmp_path):
    network, _, calibration, test_inputs, test_y = trained
    fp32 = export_onnx(MirrorAverage(network).eval(), channels=1, height=12, width=12, path=tmp_path / "m.onnx")
    report = quantize_onnx(fp32, tmp_path / "m.int8.onnx", calibration_inputs=calibration, test_inputs=test_inputs,
                           test_labels=test_y, latency_repeats=3)
    assert report.int8 is not None and report.path.exists(), report.reason
    assert report.int8.size_bytes < report.fp32.size_bytes
    assert report.agreement == float((run(report.path, test_inputs).argmax(1) ==
                                      run(fp32, test_inputs).argmax(1)).mean())


def test_a_failed_quantization_is_reported_with_its_reason_and_leaves_no_file(trained, tmp_path):
    _, fp32, calibration, test_inputs, test_y = trained
    three_channels = calibration.expand(-1, 3, -1, -1).contiguous()  # the graph takes one channel: calibration fails
    report = quantize_onnx(fp32, tmp_path / "bad.int8.onnx", calibration_inputs=three_channels,
                           test_inputs=test_inputs, test_labels=test_y, latency_repeats=3)
    assert report.path is None and report.int8 is None and report.agreement is None
    assert report.reason.startswith("int8 quantization failed:") and not report.flagged
    assert not (tmp_path / "bad.int8.onnx").exists()
    assert report.fp32.size_bytes == fp32.stat().st_size and report.fp32.test_accuracy > 0.9


def test_an_int8_file_that_loses_accuracy_is_kept_but_flagged(trained, tmp_path):
    _, fp32, calibration, test_inputs, test_y = trained
    # Calibrated on images a thousandth as bright: every activation range is far too narrow and saturates.
    report = quantize_onnx(fp32, tmp_path / "dim.int8.onnx", calibration_inputs=calibration * 1e-3,
                           test_inputs=test_inputs, test_labels=test_y, latency_repeats=3)
    assert report.path.exists() and report.int8 is not None
    assert report.accuracy_change < -0.01 and report.flagged
    assert "more than 0.01 below float32's" in report.reason
    lenient = quantize_onnx(fp32, tmp_path / "dim2.int8.onnx", calibration_inputs=calibration * 1e-3,
                            test_inputs=test_inputs, test_labels=test_y, latency_repeats=3, max_accuracy_drop=1.0)
    assert not lenient.flagged and lenient.reason is None


def test_the_flag_rule_and_the_calibration_sample():
    assert not is_flagged(fp32_accuracy=0.90, int8_accuracy=0.89, max_accuracy_drop=0.01)  # exactly the limit
    assert is_flagged(fp32_accuracy=0.90, int8_accuracy=0.8899, max_accuracy_drop=0.01)
    assert not is_flagged(fp32_accuracy=0.90, int8_accuracy=0.95, max_accuracy_drop=0.0)  # a gain is no loss
    sample = calibration_indices(1000, seed=3)
    assert len(sample) == 256 and len(set(sample.tolist())) == 256 and sample.tolist() == sorted(sample.tolist())
    assert sample.tolist() == calibration_indices(1000, seed=3).tolist() != calibration_indices(1000, seed=4).tolist()
