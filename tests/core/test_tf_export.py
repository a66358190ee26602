"""TensorFlow artifacts: SavedModel and TFLite converted from the exported ONNX file agree with it, at 1 and 3
channels, on the block space's ops and on the test-time-mirroring graph; a failed conversion is reported."""

import zipfile

import numpy as np
import onnxruntime
import pytest
import torch

from nas_core.builder import build_model
from nas_core.export import export_onnx
from nas_core.mirror import MirrorAverage
from nas_core.spec import ArchSpec, StageSpec
from nas_core.tf_export import ATOL, LAYOUT, SAVEDMODEL_FOLDER, _report, export_tensorflow, missing_packages

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
    inputs = np.random.default_rng(0).standard_normal((9, channels, SIDE, SIDE)).astype(np.float32)
    reference = _onnx_logits(onnx_path, inputs)

    report = export_tensorflow(onnx_path, savedmodel_path=tmp_path / "model.savedmodel.zip",
                               tflite_path=tmp_path / "model.tflite", inputs=inputs, reference_logits=reference)

    for check in (report.savedmodel, report.tflite):
        assert check.ok, check.reason
        assert check.argmax_agreement == 1.0 and check.max_abs_diff <= ATOL and check.images == 9
        assert check.path.stat().st_size > 0
    with zipfile.ZipFile(report.savedmodel.path) as bundle:
        assert f"{SAVEDMODEL_FOLDER}/saved_model.pb" in bundle.namelist()
    assert report.seconds > 0 and report.versions["onnx2tf"] and report.to_dict()["tflite"]["layout"] == LAYOUT


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
                               inputs=inputs, reference_logits=np.zeros((2, 5), np.float32), timeout_s=120)

    assert not report.savedmodel.ok and not report.tflite.ok
    assert report.savedmodel.reason and report.tflite.reason
    assert report.to_dict()["savedmodel"]["ok"] is False
    assert not (tmp_path / "b.zip").exists() and not (tmp_path / "b.tflite").exists()


def test_without_the_converter_installed_both_formats_are_reported_missing(tmp_path, monkeypatch):
    monkeypatch.setattr("nas_core.tf_export.missing_packages", lambda: ["tensorflow", "onnx2tf"])
    report = export_tensorflow(tmp_path / "model.onnx", savedmodel_path=tmp_path / "c.zip",
                               tflite_path=tmp_path / "c.tflite", inputs=np.zeros((1, 3, 4, 4), np.float32),
                               reference_logits=np.zeros((1, 2), np.float32))
    assert report.savedmodel.reason == report.tflite.reason == "not installed: tensorflow, onnx2tf (the tf extra)"
    assert report.savedmodel.path is None and report.tflite.path is None
