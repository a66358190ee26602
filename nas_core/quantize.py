"""Static post-training int8 quantization of a verified float32 ONNX file, measured side by side with it.

:func:`quantize_onnx` runs onnxruntime's pre-processing first (shape inference and the basic graph optimisations).
The plain network does not need it, but the test-time-mirroring graph (:class:`~nas_core.mirror.MirrorAverage`)
does: its two passes share each convolution's weights, and a shared, quantized weight keeps onnxruntime from folding
the BatchNormalization after it, so half the convolutions stayed float and the int8 file ran barely faster than
float32; pre-processing folds each BatchNormalization into its own copy of the convolution first (the int8 file then
holds the weights twice, still under half the float32 size). Then ``quantize_static`` in QDQ format: per-channel
symmetric int8 weights, uint8 activations whose ranges (min/max) come from calibration images preprocessed exactly
as the float32 input. uint8 activations (U8S8), because onnxruntime's x86 CPU kernels fuse every convolution into
``QLinearConv`` only then: with int8 activations (S8S8) half of them stayed float and int8 was no faster than
float32 (``python -m bench.int8`` prints the figures). Both files then run on the same test images and are timed
with the same settings (:func:`~nas_core.evaluation.onnx_latency_ms`: one thread, batch 1 and :data:`LATENCY_BATCH`).

The report never prefers the int8 file on its own: one that loses more than ``max_accuracy_drop`` test accuracy is
kept but ``flagged`` with the reason. A graph the quantizer cannot handle is no exception either: the report says
why and names no int8 file.

>>> sample = calibration_indices(1000, count=4, seed=0)
>>> sample.tolist() == calibration_indices(1000, count=4, seed=0).tolist(), len(calibration_indices(3, count=4, seed=0))
(True, 3)
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from nas_core.evaluation import onnx_latency_ms
from nas_core.export import INPUT_NAME, OUTPUT_NAME

log = logging.getLogger(__name__)

CALIBRATION_IMAGES = 256  # train images whose activations set the int8 ranges (min/max)
CALIBRATION_BATCH = 32
LATENCY_BATCH = 32  # the second batch size timed, next to batch 1
RUN_CHUNK = 1024  # test images per onnxruntime call: bounds memory on large test splits


@dataclass(frozen=True, slots=True)
class RuntimeFigures:
    """One ONNX file in onnxruntime on the CPU: test accuracy, file size, median milliseconds per run of a batch
    of 1 and of :data:`LATENCY_BATCH` images (one thread)."""

    test_accuracy: float
    size_bytes: int
    latency_ms_batch_1: float
    latency_ms_batch_32: float


@dataclass(frozen=True, slots=True)
class QuantizationReport:
    """What :func:`quantize_onnx` wrote and measured. ``int8`` is None (and ``path`` too) when quantization failed;
    ``reason`` then says why, and for a ``flagged`` file why it is flagged."""

    path: Path | None
    fp32: RuntimeFigures
    int8: RuntimeFigures | None
    accuracy_change: float | None  # int8 minus fp32 test accuracy (negative: int8 loses)
    agreement: float | None  # fraction of test images on which int8 and fp32 predict the same class
    calibration_images: int
    max_accuracy_drop: float
    flagged: bool
    reason: str | None

    def to_dict(self) -> dict:
        """JSON-ready, without the local path."""
        return {field.name: _plain(getattr(self, field.name)) for field in dataclasses.fields(self)
                if field.name != "path"}


def _plain(value):
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def calibration_indices(total: int, *, count: int = CALIBRATION_IMAGES, seed: int) -> Tensor:
    """Indices of at most ``count`` of ``total`` images, a seeded random sample (sorted)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=generator)[:count].sort().values


def calibration_images(data, *, height: int, width: int, seed: int) -> Tensor:
    """The calibration sample of ``data``'s train split (:func:`calibration_indices`), resized to ``height`` x
    ``width`` and normalised exactly as the test images: the int8 ONNX file's and the int8 TFLite file's."""
    from nas_core.resolution import resize_images
    from nas_core.trainer import normalize

    sample = calibration_indices(len(data.train_x), seed=seed)
    images = data.train_x[sample.to(data.train_x.device)].cpu()
    return normalize(resize_images(images, (height, width)), data.mean, data.std)


def is_flagged(*, fp32_accuracy: float, int8_accuracy: float, max_accuracy_drop: float) -> bool:
    """Whether int8 loses more than ``max_accuracy_drop`` test accuracy (a rounding hair is no loss).

    >>> is_flagged(fp32_accuracy=0.95, int8_accuracy=0.94, max_accuracy_drop=0.01)
    False
    >>> is_flagged(fp32_accuracy=0.95, int8_accuracy=0.93, max_accuracy_drop=0.01)
    True
    """
    return fp32_accuracy - int8_accuracy > max_accuracy_drop + 1e-9


class _Calibration:
    """``quantize_static``'s data reader: the calibration images in batches of :data:`CALIBRATION_BATCH`."""

    def __init__(self, inputs: np.ndarray) -> None:
        self._batches = iter(np.array_split(inputs, max(1, -(-len(inputs) // CALIBRATION_BATCH))))

    def get_next(self) -> dict | None:
        batch = next(self._batches, None)
        return None if batch is None or not len(batch) else {INPUT_NAME: batch}


def quantize_onnx(fp32_path: str | Path, int8_path: str | Path, *, calibration_inputs: Tensor, test_inputs: Tensor,
                  test_labels: Tensor, max_accuracy_drop: float = 0.01, latency_repeats: int = 50,
                  preprocess: bool = True, fp32_logits: np.ndarray | None = None,
                  fp32_latency_ms: float | None = None) -> QuantizationReport:
    """Quantize ``fp32_path`` to ``int8_path`` and measure both on ``test_inputs`` (float32 ``[N, C, H, W]``,
    normalised as the model's input) and ``test_labels``.

    ``calibration_inputs``: train images preprocessed the same way (see :func:`calibration_indices`).
    ``preprocess`` False skips onnxruntime's pre-processing (for comparison only). Never raises for a graph the
    quantizer cannot handle: the report carries the reason and no file is left at ``int8_path``.

    ``fp32_logits`` (the float32 file's logits on ``test_inputs``) and ``fp32_latency_ms`` (its batch-1 latency),
    when the caller has them already, are used instead of running and timing the float32 file again: the final model
    has verified its file on every test image and timed it, and the report then shows the same figures.
    """
    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    channels, height, width = test_inputs.shape[1:]
    labels = test_labels.detach().cpu().numpy()

    def figures(path: Path, logits: np.ndarray, batch_1_ms: float | None = None) -> RuntimeFigures:
        accuracy = float((logits.argmax(1) == labels).mean()) if len(labels) else 0.0
        # A batch of 32 runs 32 images per repeat: a fifth of the repeats keeps its median as steady, for less time.
        latency = {batch: onnx_latency_ms(path, channels=channels, height=height, width=width, batch=batch,
                                          repeats=latency_repeats if batch == 1 else max(5, latency_repeats // 5))
                   for batch in (1, LATENCY_BATCH) if batch != 1 or batch_1_ms is None}
        latency.setdefault(1, batch_1_ms)
        return RuntimeFigures(test_accuracy=accuracy, size_bytes=path.stat().st_size,
                              latency_ms_batch_1=latency[1], latency_ms_batch_32=latency[LATENCY_BATCH])

    if fp32_logits is None:
        fp32_logits = _run(fp32_path, test_inputs)
    fp32 = figures(fp32_path, fp32_logits, fp32_latency_ms)
    calibration = calibration_inputs.detach().to("cpu", torch.float32).numpy()
    try:
        _quantize(fp32_path, int8_path, calibration, preprocess=preprocess)
        int8_logits = _run(int8_path, test_inputs)
        int8 = figures(int8_path, int8_logits)
    except Exception as error:  # the quantizer raises many types; a model without int8 is still a model
        int8_path.unlink(missing_ok=True)
        reason = f"int8 quantization failed: {type(error).__name__}: {str(error)[:500]}"
        log.warning("%s", reason)
        return QuantizationReport(path=None, fp32=fp32, int8=None, accuracy_change=None, agreement=None,
                                  calibration_images=len(calibration), max_accuracy_drop=max_accuracy_drop,
                                  flagged=False, reason=reason)
    agreement = float((int8_logits.argmax(1) == fp32_logits.argmax(1)).mean()) if len(labels) else 1.0
    flagged = is_flagged(fp32_accuracy=fp32.test_accuracy, int8_accuracy=int8.test_accuracy,
                         max_accuracy_drop=max_accuracy_drop)
    reason = (f"int8 test accuracy {int8.test_accuracy:.4f} is more than {max_accuracy_drop:g} below float32's "
              f"{fp32.test_accuracy:.4f}" if flagged else None)
    return QuantizationReport(path=int8_path, fp32=fp32, int8=int8,
                              accuracy_change=int8.test_accuracy - fp32.test_accuracy, agreement=agreement,
                              calibration_images=len(calibration), max_accuracy_drop=max_accuracy_drop,
                              flagged=flagged, reason=reason)


def _quantize(fp32_path: Path, int8_path: Path, calibration: np.ndarray, *, preprocess: bool) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not len(calibration):
        raise ValueError("no calibration images")
    with tempfile.TemporaryDirectory(prefix="nas-quantize-") as folder:
        source = fp32_path
        if preprocess:
            source = Path(folder) / "preprocessed.onnx"
            quant_pre_process(str(fp32_path), str(source))
        quantize_static(str(source), str(int8_path), _Calibration(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)


def _run(path: Path, inputs: Tensor) -> np.ndarray:
    import onnxruntime  # imported here: only artifact checks need it

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = inputs.detach().to("cpu", torch.float32)
    chunks = [session.run([OUTPUT_NAME], {INPUT_NAME: chunk.numpy()})[0] for chunk in inputs.split(RUN_CHUNK)]
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
