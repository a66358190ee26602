"""Model artifacts: ONNX (checked with onnxruntime), a ``torch.export`` program (``.pt2``), ``preprocessing.json``.

ONNX goes through ``torch.onnx.export(..., dynamo=True)`` — the exporter torch ships as its default, built on
``torch.export`` and onnxscript, fully offline — with opset :data:`ONNX_OPSET`, one input ``input`` float32
``[N, C, H, W]`` whose batch dimension is dynamic, and one output ``logits``. Weights are stored inside the file.

>>> preprocessing_dict(classes=["cat", "dog"], channels=3, height=32, width=32, mean=[0.5] * 3, std=[0.25] * 3)["input"]
{'channels': 3, 'height': 32, 'width': 32}
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from nas_core.errors import NASError

ONNX_OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
# the batch is dynamic from 1 up; tracing uses batch 2 so it is not specialised to the 0/1 sizes
_BATCH = torch.export.Dim("batch", min=1, max=65536)


@dataclass(frozen=True, slots=True)
class Parity:
    """How closely an exported model matches PyTorch on the same inputs."""

    max_abs_diff: float
    argmax_agreement: float  # fraction of inputs with the same predicted class


def _frozen_cpu_copy(model: nn.Module) -> nn.Module:
    # export the inference graph (BatchNorm statistics, no dropout) without touching the caller's model
    return copy.deepcopy(model).to("cpu", memory_format=torch.contiguous_format).eval()


def export_onnx(model: nn.Module, *, channels: int, height: int, width: int, path: str | Path) -> Path:
    """Write ``model`` as ONNX to ``path``; input ``input`` ``[N, channels, height, width]``, output ``logits``."""
    path = Path(path)
    example = torch.zeros(2, channels, height, width)
    logging.getLogger("torch.onnx").setLevel(logging.WARNING)
    try:
        program = torch.onnx.export(
            _frozen_cpu_copy(model), (example,), dynamo=True, opset_version=ONNX_OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_shapes=({0: _BATCH},),
            external_data=False, verbose=False)
        program.save(str(path), external_data=False)
    except Exception as exc:  # the exporter raises many types; the service needs one
        raise NASError(f"ONNX export failed: {exc}") from exc
    return path


def verify_onnx(path: str | Path, model: nn.Module, inputs: Tensor, *, atol: float = 1e-4) -> Parity:
    """Run ``inputs`` (float32, normalised) through onnxruntime (CPU) and PyTorch; raise :class:`NASError` if off.

    "Off" means a max absolute logit difference above ``atol`` or any disagreement in the predicted class.
    """
    import onnxruntime  # imported here: only export verification needs it

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = inputs.detach().to("cpu", torch.float32)
    onnx_logits = session.run([OUTPUT_NAME], {INPUT_NAME: inputs.numpy()})[0]
    with torch.no_grad():
        torch_logits = _frozen_cpu_copy(model)(inputs).numpy()
    parity = _compare(onnx_logits, torch_logits)
    if not parity.max_abs_diff <= atol or parity.argmax_agreement < 1.0:
        raise NASError(f"ONNX model disagrees with PyTorch: max abs diff {parity.max_abs_diff:.3g} (atol {atol}), "
                       f"argmax agreement {parity.argmax_agreement:.4f}")
    return parity


def _compare(exported: np.ndarray, reference: np.ndarray) -> Parity:
    if exported.shape != reference.shape:
        raise NASError(f"exported output shape {exported.shape} != PyTorch output shape {reference.shape}")
    return Parity(max_abs_diff=float(np.abs(exported - reference).max(initial=0.0)),
                  argmax_agreement=float((exported.argmax(1) == reference.argmax(1)).mean()) if len(exported) else 1.0)


def export_pt2(model: nn.Module, example: Tensor, path: str | Path) -> Path:
    """Save a ``torch.export`` ExportedProgram (dynamic batch) of ``model`` for ``example``-shaped input."""
    path = Path(path)
    example = example.detach().to("cpu", torch.float32)
    if example.shape[0] < 2:  # trace with batch >= 2 so the batch dimension stays symbolic
        example = example[:1].expand(2, *example.shape[1:]).contiguous()
    try:
        program = torch.export.export(_frozen_cpu_copy(model), (example,), dynamic_shapes=({0: _BATCH},))
        torch.export.save(program, str(path))
    except Exception as exc:
        raise NASError(f"torch.export failed: {exc}") from exc
    return path


def verify_pt2(path: str | Path, model: nn.Module, inputs: Tensor, *, atol: float = 1e-4) -> Parity:
    """Reload the ``.pt2`` file and compare it with ``model`` on ``inputs``; raise :class:`NASError` if off."""
    program = torch.export.load(str(path))
    inputs = inputs.detach().to("cpu", torch.float32)
    with torch.no_grad():
        loaded = program.module()(inputs).numpy()
        reference = _frozen_cpu_copy(model)(inputs).numpy()
    parity = _compare(loaded, reference)
    if not parity.max_abs_diff <= atol or parity.argmax_agreement < 1.0:
        raise NASError(f".pt2 program disagrees with PyTorch: max abs diff {parity.max_abs_diff:.3g}")
    return parity


def preprocessing_dict(*, classes: Sequence[str], channels: int, height: int, width: int, mean: Sequence[float],
                       std: Sequence[float], layouts: Mapping[str, str] | None = None) -> dict:
    """``preprocessing.json``: how a client turns a raw image into the ONNX input.

    Convert to ``color_mode`` ("L" for 1 channel, "RGB" for 3) with Pillow, resize to ``width`` × ``height`` with
    bilinear filtering, divide by ``scale``, subtract ``mean`` and divide by ``std`` per channel, lay out as
    ``[N, C, H, W]`` float32; ``classes[i]`` names logit ``i``. ``layouts`` (when given): the input layout of each
    model format the model has, by format name — the same numbers, ``"NHWC"`` for the TensorFlow formats
    (``[N, H, W, C]``); ``layout`` stays the ONNX file's.

    >>> preprocessing_dict(classes=["a"], channels=1, height=8, width=8, mean=[0.5], std=[0.5],
    ...                    layouts={"onnx": "NCHW", "tflite": "NHWC"})["layouts"]
    {'onnx': 'NCHW', 'tflite': 'NHWC'}
    """
    if channels not in (1, 3):
        raise NASError(f"channels must be 1 or 3, got {channels}")
    if len(mean) != channels or len(std) != channels:
        raise NASError(f"mean and std need {channels} values each, got {len(mean)} and {len(std)}")
    return {
        "classes": list(classes),
        "input": {"channels": channels, "height": height, "width": width},
        "color_mode": "L" if channels == 1 else "RGB",
        "resize": "bilinear",
        "scale": 255.0,
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "layout": "NCHW",
        "dtype": "float32",
    } | ({"layouts": dict(layouts)} if layouts is not None else {})
