"""TensorFlow artifacts: SavedModel and TFLite converted from the exported ONNX file agree with it, at 1 and 3
channels, on the block space's ops and on the test-time-mirroring graph; the int8 TFLite file of the same conversion
runs in LiteRT and is measured; a failed conversion or quantization is reported."""

import zipfile

import numpy as np
import onnxruntime
import pytest
import torch

from nas_core.builder import build_model
from nas_core.export import export_onnx
from nas_core.mirror import MirrorAverage
from nas_core.spec import ArchSpec, StageSpec
from nas_core.tf_export import (ATOL, LAYOUT, SAVEDMODEL_FOLDER, _int8_check, _report, export_tensorflow,
                                 missing_packages)

needs_tf = pytest.mark.skipif(bool(missing_packages()), reason="the tf extra is not installed")

SIDE = 12
# Every op of the space, squeeze-excitation, every downsampling and activation, in two small networks.
SPECS = {
    "conv-se-dwsep": ArchSpec(6, (StageSpec("conv", 1, 8, 3, se=True, downsample="max"),
                                  StageSpec("dwsep", 1, 12, 5, activation="leaky_relu", downsample="avg"))),
    "mbconv-residual": ArchSpec(6, (StageSpec("mbconv", 2, 8, 3, expansion=3, activation="swish", se=True,
                                              downsample="stride"),
                                    StageSpec("residual", 1, 12, 3, se=True, downsample="none"))),
}


def _network(spec: ArchSpec, channels: int, *, mirror: bool) -> torch.nn.Module:
    torch.manual_seed(channels)
    network = build_model(spec, channels, 5, input_size=SIDE)
    for module in network.modules():  # BatchNorm statistics away from the identity, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    network.eval()
    return MirrorAverage(network).eval() if mirror else network


def _onnx_logits(path, inputs: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": inputs})[0]


@needs_tf
@pytest.mark.slow  # TensorFlow starts in the converter process: seconds each
@pytest.mark.parametrize(("name", "channels", "mirror"), [("conv-se-dwsep", 1, False), ("mbconv-residual", 3, True)])
def test_savedmodel_and_tflite_agree_with_onnx(tmp_path, name, channels, mirror):
    model = _network(SPECS[name], channels, mirror=mirror)
    onnx_path = export_onnx(model, channels=channels, height=SIDE, width=SIDE, path=tmp_path / "model.onnx")
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((9, channels, SIDE, SIDE)).astype(np.float32)
    calibration = rng.standard_normal((16, channels, SIDE, SIDE)).astype(np.float32)
    reference = _onnx_logits(onnx_path, inputs)
    labels = reference.argmax(1)  # float32 gets every image right: any int8 loss shows in accuracy_change

    report = export_tensorflow(onnx_path, savedmodel_path=tmp_path / "model.savedmodel.zip",
                               tflite_path=tmp_path / "model.tflite", inputs=inputs, reference_logits=reference,
                               tflite_int8_path=tmp_path / "model.int8.tflite", calibration_inputs=calibration,
                               labels=labels, latency_repeats=3)

    for check in (report.savedmodel, report.tflite):
        assert check.ok, check.reason
        assert check.argmax_agreement == 1.0 and check.max_abs_diff <= ATOL and check.images == 9
        assert check.path.stat().st_size > 0
    with zipfile.ZipFile(report.savedmodel.path) as bundle:
        assert f"{SAVEDMODEL_FOLDER}/saved_model.pb" in bundle.namelist()
    assert report.seconds > 0 and report.versions["onnx2tf"] and report.to_dict()["tflite"]["layout"] == LAYOUT
    # the int8 file: reloads in LiteRT with float32 input and output at any batch, int8 inside; its figures reported
    from ai_edge_litert.interpreter import Interpreter

    int8 = report.tflite_int8
    assert int8.ok and int8.path.stat().st_size == int8.size_bytes, int8.reason
    assert (int8.images, int8.calibration_images, int8.fp32_test_accuracy) == (9, 16, 1.0)
    assert int8.accuracy_change == pytest.approx(int8.test_accuracy - 1.0) and 0 <= int8.agreement <= 1
    assert int8.fp32_size_bytes == report.tflite.path.stat().st_size
    assert int8.latency_ms_batch_1 > 0 and int8.fp32_latency_ms_batch_1 > 0
    assert int8.flagged == (int8.test_accuracy < 1.0 - 0.01) and (int8.reason is None) != int8.flagged
    assert report.to_dict()["tflite_int8"]["layout"] == LAYOUT and report.to_dict()["tflite_int8"]["ok"]
    interpreter = Interpreter(model_path=str(int8.path))
    assert interpreter.get_input_details()[0]["dtype"] == interpreter.get_output_details()[0]["dtype"] == np.float32
    assert any(tensor["dtype"] == np.int8 for tensor in interpreter.get_tensor_details())
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, (2, SIDE, SIDE, channels))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, np.ascontiguousarray(inputs[:2].transpose(0, 2, 3, 1)))
    interpreter.invoke()
    assert interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).shape == (2, 5)


@needs_tf
@pytest.mark.slow
def test_a_failed_int8_quantization_is_named_and_costs_the_float_formats_nothing(tmp_path):
    model = _network(SPECS["conv-se-dwsep"], 1, mirror=False)
    onnx_path = export_onnx(model, channels=1, height=SIDE, width=SIDE, path=tmp_path / "model.onnx")
    inputs = np.random.default_rng(0).standard_normal((4, 1, SIDE, SIDE)).astype(np.float32)
    wrong = np.zeros((4, 3, SIDE + 1, SIDE), np.float32)  # calibration images of another shape: int8 cannot calibrate

    report = export_tensorflow(onnx_path, savedmodel_path=tmp_path / "a.zip", tflite_path=tmp_path / "a.tflite",
                               inputs=inputs, tflite_int8_path=tmp_path / "a.int8.tflite", calibration_inputs=wrong,
                               labels=np.zeros(4, np.int64))

    assert report.savedmodel.ok and report.tflite.ok, (report.savedmodel.reason, report.tflite.reason)
    assert not report.tflite_int8.ok and not (tmp_path / "a.int8.tflite").exists()
    assert report.tflite_int8.reason and report.tflite_int8.test_accuracy is None
    assert report.to_dict()["tflite_int8"]["reason"] == report.tflite_int8.reason


def test_an_int8_file_that_loses_accuracy_is_kept_but_flagged(tmp_path):
    """The figures the parent takes from the int8 file's logits (no conversion needed to check them)."""
    int8_path, fp32_path = tmp_path / "a.int8.tflite", tmp_path / "a.tflite"
    int8_path.write_bytes(b"int8")
    fp32_path.write_bytes(b"float32!")
    reference = np.array([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0], [0.0, 2.0]], np.float32)
    labels = np.array([0, 1, 0, 0])  # float32 gets 3 of 4 right
    int8_logits = reference.copy()
    int8_logits[1] = [1.0, 0.0]  # one more wrong: 2 of 4
    figures = {"calibration_images": 8, "max_accuracy_drop": 0.01, "fp32_path": fp32_path,
               "latency_ms": {"tflite_int8": 0.5, "tflite": 0.8}}

    kept = _int8_check(int8_path, reference.copy(), reference=reference, labels=labels, **figures)
    flagged = _int8_check(int8_path, int8_logits, reference=reference, labels=labels, **figures)
    wrong_shape = _int8_check(int8_path, int8_logits[:, :1], reference=reference, labels=labels, **figures)

    assert kept.ok and not kept.flagged and kept.reason is None and kept.agreement == 1.0
    assert (kept.size_bytes, kept.fp32_size_bytes, kept.latency_ms_batch_1, kept.fp32_latency_ms_batch_1) == \
        (4, 8, 0.5, 0.8)
    assert flagged.ok and flagged.flagged and flagged.path == int8_path
    assert (flagged.test_accuracy, flagged.fp32_test_accuracy, flagged.agreement) == (0.5, 0.75, 0.75)
    assert flagged.accuracy_change == pytest.approx(-0.25)
    assert flagged.reason == "int8 test accuracy 0.5000 is more than 0.01 below float32's 0.7500"
    assert not wrong_shape.ok and wrong_shape.reason.startswith("int8 output shape (4, 1)")


def test_disagreement_drops_the_format_and_says_why(tmp_path):
    """The comparison the parent makes of the converter's outputs (no conversion needed to check it)."""
    paths = {"savedmodel": tmp_path / "a.zip", "tflite": tmp_path / "a.tflite"}
    for path in paths.values():
        path.write_bytes(b"converted")
    reference = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0]], np.float32)
    logits = {"savedmodel": reference + 5e-5, "tflite": reference + np.array([[0, 1.5, 0], [0, 0, 0]], np.float32)}

    report = _report(paths, logits, reference=reference, images=2, started=0.0, atol=ATOL, versions={})

    assert report.savedmodel.ok and report.savedmodel.max_abs_diff == pytest.approx(5e-5, rel=1e-2)
    assert not report.tflite.ok and report.tflite.path is None and not paths["tflite"].exists()
    assert report.tflite.argmax_agreement == 0.5 and report.tflite.max_abs_diff == pytest.approx(1.5)
    assert report.tflite.reason.startswith("disagrees with ONNX: max abs diff 1.5")


@needs_tf
@pytest.mark.slow
def test_a_file_the_converter_cannot_read_is_reported_not_raised(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    inputs = np.zeros((2, 1, SIDE, SIDE), np.float32)

    report = export_tensorflow(broken, savedmodel_path=tmp_path / "b.zip", tflite_path=tmp_path / "b.tflite",
                               inputs=inputs, reference_logits=np.zeros((2, 5), np.float32), timeout_s=120,
                               tflite_int8_path=tmp_path / "b.int8.tflite", calibration_inputs=inputs,
                               labels=np.zeros(2, np.int64))

    assert not report.savedmodel.ok and not report.tflite.ok and not report.tflite_int8.ok
    assert report.savedmodel.reason and report.tflite.reason and report.tflite_int8.reason
    assert not (tmp_path / "b.int8.tflite").exists()
    assert report.to_dict()["savedmodel"]["ok"] is False
    assert not (tmp_path / "b.zip").exists() and not (tmp_path / "b.tflite").exists()


def test_without_the_converter_installed_both_formats_are_reported_missing(tmp_path, monkeypatch):
    monkeypatch.setattr("nas_core.tf_export.missing_packages", lambda: ["tensorflow", "onnx2tf"])
    report = export_tensorflow(tmp_path / "model.onnx", savedmodel_path=tmp_path / "c.zip",
                               tflite_path=tmp_path / "c.tflite", inputs=np.zeros((1, 3, 4, 4), np.float32),
                               reference_logits=np.zeros((1, 2), np.float32), tflite_int8_path=tmp_path / "c.int8",
                               calibration_inputs=np.zeros((1, 3, 4, 4), np.float32), labels=np.zeros(1, np.int64))
    assert report.savedmodel.reason == report.tflite.reason == report.tflite_int8.reason == \
        "not installed: tensorflow, onnx2tf (the tf extra)"
    assert report.savedmodel.path is None and report.tflite.path is None and report.tflite_int8.path is None
