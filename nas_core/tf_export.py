"""TensorFlow artifacts: a SavedModel (zipped), a float32 TFLite file and, when asked, an int8 TFLite file,
converted from a verified ONNX file by onnx2tf and each run in its own runtime against the ONNX logits.

Layout: onnx2tf turns the ``[N, C, H, W]`` graph into ``[N, H, W, C]`` (:data:`LAYOUT`); the input is float32,
normalised exactly as the ONNX input, the batch stays dynamic and the output is the logits ``[N, classes]``. The
SavedModel's signature ``serving_default`` takes ``input`` and returns ``output_0``; the TFLite file has one input
and one output.

Verification: the SavedModel is unzipped from the very archive that ships and run with TensorFlow, the TFLite file
with the LiteRT interpreter (``ai_edge_litert``), both on the caller's inputs (the final model's whole test split).
A format passes when every image gets the reference's predicted class and no logit is further than ``atol`` from
it — the bound the ONNX file meets against PyTorch.

The int8 TFLite file (:data:`INT8_FORMAT`) is onnx2tf's post-training integer quantization (``-oiqt``, the
``*_integer_quant.tflite`` output: float32 input and output, int8 weights and activations), made in the same
conversion and calibrated with ``-cind`` on the caller's calibration images — the very images that calibrate the int8
ONNX file (:func:`~nas_core.quantize.calibration_images`), already normalised, so mean 0 and std 1. Like the int8 ONNX
file it is measured, not held to ``atol``: test accuracy and its change against the ONNX file, argmax agreement with
it, size, and the LiteRT interpreter's median milliseconds at batch 1 (one thread) next to the float32 TFLite file's;
one that loses more than ``max_accuracy_drop`` test accuracy is kept but ``flagged``. A failed quantization costs the
other formats nothing: the report names the failure.

The work happens in a child process (``python -m nas_core.tf_export REQUEST``): TensorFlow's memory and thread pools
never enter the caller's process, onnx2tf's ``sys.exit`` on a graph it cannot convert ends only the child, and a
conversion that hangs is killed after ``timeout_s``. TensorFlow and onnx2tf are imported there and only there
(``pip install 'nas-service[tf]'``). Nothing is downloaded. :func:`export_tensorflow` never raises for a failed
conversion or check: the report names the format that failed and why, and no file is left at its path.

>>> _compare(np.array([[1.0, 2.0]]), np.array([[1.0, 2.5]]))
(0.5, 1.0)
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMATS = ("savedmodel", "tflite")  # held to atol against the ONNX logits
INT8_FORMAT = "tflite_int8"  # measured against them (test accuracy, agreement), like the int8 ONNX file
LAYOUT = "NHWC"
ATOL = 1e-4  # largest |logit difference| to the reference, as for ONNX against PyTorch
TIMEOUT_S = 900.0
RUN_CHUNK = 256  # images per TensorFlow / TFLite call: bounds memory on large test splits
PACKAGES = ("tensorflow", "onnx2tf", "tf_keras", "ai_edge_litert", "onnx_graphsurgeon", "sng4onnx", "psutil")
SAVEDMODEL_FOLDER = "saved_model"  # the folder inside the zip: ``tf.saved_model.load("saved_model")``
LATENCY_REPEATS = 50  # timed LiteRT calls at batch 1, after LATENCY_WARMUP untimed ones
LATENCY_WARMUP = 5


@dataclass(frozen=True, slots=True)
class FormatCheck:
    """One TensorFlow format: whether it was written and agrees with the reference, and by how much.

    ``path`` is None when it failed; ``reason`` then says why."""

    format: str
    path: Path | None
    max_abs_diff: float | None
    argmax_agreement: float | None
    images: int
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.path is not None

    def to_dict(self) -> dict:
        """JSON-ready, without the local path."""
        return {"ok": self.ok, "layout": LAYOUT, "max_abs_diff": self.max_abs_diff,
                "argmax_agreement": self.argmax_agreement, "images": self.images, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Int8Check:
    """The int8 TFLite file measured on the test split next to the float32 files; ``path`` is None when it was not
    made, and ``reason`` then says why (for a ``flagged`` file: why it is flagged)."""

    path: Path | None
    images: int
    calibration_images: int
    max_accuracy_drop: float
    test_accuracy: float | None = None
    fp32_test_accuracy: float | None = None  # the ONNX file's, on the same images
    accuracy_change: float | None = None  # int8 minus float32 test accuracy (negative: int8 loses)
    agreement: float | None = None  # fraction of test images with the ONNX file's predicted class
    size_bytes: int | None = None
    fp32_size_bytes: int | None = None  # the float32 TFLite file's
    latency_ms_batch_1: float | None = None  # LiteRT, one thread, median
    fp32_latency_ms_batch_1: float | None = None  # the float32 TFLite file's, timed the same way
    flagged: bool = False
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.path is not None

    def to_dict(self) -> dict:
        """JSON-ready, without the local path."""
        return {"ok": self.ok, "layout": LAYOUT, **{field.name: getattr(self, field.name)
                                                    for field in dataclasses.fields(self) if field.name != "path"}}


@dataclass(frozen=True, slots=True)
class TensorFlowReport:
    """What :func:`export_tensorflow` wrote and measured; ``seconds`` is the wall time of conversion and checks."""

    savedmodel: FormatCheck
    tflite: FormatCheck
    seconds: float
    atol: float
    versions: dict[str, str]
    tflite_int8: Int8Check | None = None  # None: not asked for

    def to_dict(self) -> dict:
        return {"savedmodel": self.savedmodel.to_dict(), "tflite": self.tflite.to_dict(),
                "tflite_int8": self.tflite_int8.to_dict() if self.tflite_int8 is not None else None,
                "seconds": round(self.seconds, 3), "atol": self.atol, "versions": dict(self.versions)}


def missing_packages() -> list[str]:
    """The converter's packages this environment lacks (empty: conversion can run)."""
    return [name for name in PACKAGES if importlib.util.find_spec(name) is None]


def export_tensorflow(onnx_path: str | Path, *, savedmodel_path: str | Path, tflite_path: str | Path,
                      inputs: np.ndarray, reference_logits: np.ndarray | None = None, atol: float = ATOL,
                      timeout_s: float = TIMEOUT_S, tflite_int8_path: str | Path | None = None,
                      calibration_inputs: np.ndarray | None = None, labels: np.ndarray | None = None,
                      max_accuracy_drop: float = 0.01, latency_repeats: int = LATENCY_REPEATS) -> TensorFlowReport:
    """Convert ``onnx_path`` to a zipped SavedModel at ``savedmodel_path`` and a float32 TFLite file at
    ``tflite_path``, run both on ``inputs`` (float32 ``[N, C, H, W]``, normalised as the ONNX input; transposed to
    :data:`LAYOUT` here) and compare them with ``reference_logits`` (default: the ONNX file's, from onnxruntime).

    ``tflite_int8_path``: where the int8 TFLite file goes (None: none is made), calibrated on ``calibration_inputs``
    (preprocessed as ``inputs``) and measured on ``inputs`` against ``labels`` and the reference logits; one that
    loses more than ``max_accuracy_drop`` test accuracy is kept but flagged.

    Never raises for a conversion or a check that fails; a format that failed has no file at its path.
    """
    started = time.perf_counter()
    savedmodel_path, tflite_path = Path(savedmodel_path), Path(tflite_path)
    paths = {"savedmodel": savedmodel_path, "tflite": tflite_path}
    int8_path = Path(tflite_int8_path) if tflite_int8_path is not None else None
    if int8_path is not None and (calibration_inputs is None or labels is None):
        raise TypeError("tflite_int8_path needs calibration_inputs and labels")
    for path in [*paths.values(), int8_path]:
        if path is not None:
            path.unlink(missing_ok=True)
    images = len(inputs)
    calibration_count = len(calibration_inputs) if calibration_inputs is not None else 0

    def int8_failed(reason: str) -> Int8Check | None:
        return None if int8_path is None else Int8Check(path=None, images=images, reason=reason,
                                                        calibration_images=calibration_count,
                                                        max_accuracy_drop=max_accuracy_drop)

    missing = missing_packages()
    if missing:
        reason = f"not installed: {', '.join(missing)} (the tf extra)"
        return _report(paths, {}, reason_for_all=reason, images=images, started=started, atol=atol, versions={},
                       int8=int8_failed(reason))
    if reference_logits is None:
        try:
            reference_logits = onnx_logits(onnx_path, inputs)
        except Exception as error:  # onnxruntime raises its own types
            reason = f"the ONNX file does not run: {type(error).__name__}: {error}"[:1000]
            return _report(paths, {}, reason_for_all=reason, images=images, started=started, atol=atol,
                           versions={}, int8=int8_failed(reason))
    with tempfile.TemporaryDirectory(prefix="nas-tf-") as tmp:
        folder = Path(tmp)
        _write_nhwc(folder / "inputs.npy", inputs)
        request = {"onnx": str(Path(onnx_path).resolve()), "inputs": str(folder / "inputs.npy"),
                   "savedmodel": str(savedmodel_path.resolve()), "tflite": str(tflite_path.resolve()),
                   "folder": str(folder), "tflite_int8": None, "latency_repeats": latency_repeats}
        if int8_path is not None and calibration_count:
            _write_nhwc(folder / "calibration.npy", calibration_inputs)
            request.update(tflite_int8=str(int8_path.resolve()), calibration=str(folder / "calibration.npy"))
        (folder / "request.json").write_text(json.dumps(request))
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",  # TensorFlow must not take a GPU
                   PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                            os.environ.get("PYTHONPATH")])))
        try:
            done = subprocess.run([sys.executable, "-m", "nas_core.tf_export", str(folder / "request.json")],
                                  cwd=folder, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            reason = f"conversion took longer than {timeout_s:g} s"
            if int8_path is not None:  # the killed child may have copied it (_report removes the others)
                int8_path.unlink(missing_ok=True)
            return _report(paths, {}, reason_for_all=reason, images=images, started=started, atol=atol, versions={},
                           int8=int8_failed(reason))
        result_path = folder / "result.json"
        if not result_path.exists():
            tail = (done.stderr or done.stdout or "").strip().splitlines()[-3:]
            reason = f"the converter process exited with {done.returncode}: {' '.join(tail)[-500:]}"
            if int8_path is not None:
                int8_path.unlink(missing_ok=True)
            return _report(paths, {}, reason_for_all=reason, images=images, started=started, atol=atol,
                           versions={}, int8=int8_failed(reason))
        result = json.loads(result_path.read_text())
        logits = {name: np.load(folder / f"{name}.logits.npy") for name in (*FORMATS, INT8_FORMAT)
                  if (folder / f"{name}.logits.npy").exists()}
        reasons = dict(result.get("errors", {}))
        int8 = None
        if int8_path is not None:
            reason = reasons.get(INT8_FORMAT) or (None if calibration_count else "no calibration images")
            int8 = (int8_failed(reason) if reason else
                    _int8_check(int8_path, logits.get(INT8_FORMAT), reference=reference_logits, labels=labels,
                                calibration_images=calibration_count, max_accuracy_drop=max_accuracy_drop,
                                latency_ms=result.get("latency_ms", {}), fp32_path=tflite_path))
            if not int8.ok:
                int8_path.unlink(missing_ok=True)
        return _report(paths, logits, reasons=reasons, reference=reference_logits, images=images, started=started,
                       atol=atol, versions=result.get("versions", {}), int8=int8)


def onnx_logits(onnx_path: str | Path, inputs: np.ndarray) -> np.ndarray:
    """The ONNX file's logits for float32 ``[N, C, H, W]`` ``inputs`` (onnxruntime, CPU, in chunks)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (input_name,), (output_name,) = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
    chunks = [session.run([output_name], {input_name: np.asarray(inputs[start:start + RUN_CHUNK], np.float32)})[0]
              for start in range(0, len(inputs), RUN_CHUNK)]
    return np.concatenate(chunks) if chunks else np.empty((0, 0), np.float32)


def _write_nhwc(path: Path, inputs: np.ndarray) -> None:
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                      shape=(inputs.shape[0], *inputs.shape[2:], inputs.shape[1]))
    for start in range(0, len(inputs), RUN_CHUNK):  # chunks: a large test split is never copied whole
        array[start:start + RUN_CHUNK] = np.transpose(np.asarray(inputs[start:start + RUN_CHUNK], np.float32),
                                                      (0, 2, 3, 1))
    array.flush()
    del array


def _compare(exported: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    if exported.shape != reference.shape:
        raise ValueError(f"output shape {exported.shape} != reference shape {reference.shape}")
    diff = float(np.abs(exported - reference).max(initial=0.0))
    agreement = float((exported.argmax(1) == reference.argmax(1)).mean()) if len(exported) else 1.0
    return diff, agreement


def _int8_check(path: Path, logits: np.ndarray | None, *, reference: np.ndarray, labels: np.ndarray,
                calibration_images: int, max_accuracy_drop: float, latency_ms: dict, fp32_path: Path) -> Int8Check:
    """The int8 file's figures from its logits on the test split, next to the reference's (the ONNX file's)."""
    from nas_core.quantize import is_flagged  # imported here: torch, which the converter's callers hold anyway

    labels = np.asarray(labels)
    common = {"images": len(labels), "calibration_images": calibration_images,
              "max_accuracy_drop": max_accuracy_drop}
    if logits is None or not path.exists():
        return Int8Check(path=None, reason="the converter wrote no int8 output", **common)
    if logits.shape != reference.shape:
        return Int8Check(path=None, reason=f"int8 output shape {logits.shape} != reference shape {reference.shape}",
                         **common)
    count = max(1, len(labels))
    accuracy = float((logits.argmax(1) == labels).sum()) / count
    fp32_accuracy = float((reference.argmax(1) == labels).sum()) / count
    agreement = _compare(logits, reference)[1]
    flagged = is_flagged(fp32_accuracy=fp32_accuracy, int8_accuracy=accuracy, max_accuracy_drop=max_accuracy_drop)
    reason = (f"int8 test accuracy {accuracy:.4f} is more than {max_accuracy_drop:g} below float32's "
              f"{fp32_accuracy:.4f}" if flagged else None)
    return Int8Check(path=path, test_accuracy=accuracy, fp32_test_accuracy=fp32_accuracy,
                     accuracy_change=accuracy - fp32_accuracy, agreement=agreement, size_bytes=path.stat().st_size,
                     fp32_size_bytes=fp32_path.stat().st_size if fp32_path.exists() else None,
                     latency_ms_batch_1=latency_ms.get(INT8_FORMAT), fp32_latency_ms_batch_1=latency_ms.get("tflite"),
                     flagged=flagged, reason=reason, **common)


def _report(paths: dict[str, Path], logits: dict[str, np.ndarray], *, images: int, started: float, atol: float,
            versions: dict, reasons: dict | None = None, reason_for_all: str | None = None,
            reference: np.ndarray | None = None, int8: Int8Check | None = None) -> TensorFlowReport:
    checks = {}
    for name, path in paths.items():
        diff = agreement = None
        reason = reason_for_all or (reasons or {}).get(name)
        if reason is None and name not in logits:
            reason = "the converter wrote no output for this format"
        if reason is None:
            try:
                diff, agreement = _compare(logits[name], reference)
            except ValueError as error:
                reason = str(error)
            else:
                if not diff <= atol or agreement < 1.0:
                    reason = (f"disagrees with ONNX: max abs diff {diff:.3g} (atol {atol:g}), "
                              f"argmax agreement {agreement:.4f}")
        if reason is not None or not path.exists():
            reason = reason or "no file was written"
            path.unlink(missing_ok=True)
        checks[name] = FormatCheck(format=name, path=None if reason else path, max_abs_diff=diff,
                                   argmax_agreement=agreement, images=images, reason=reason)
    return TensorFlowReport(savedmodel=checks["savedmodel"], tflite=checks["tflite"],
                            seconds=time.perf_counter() - started, atol=atol, versions=versions, tflite_int8=int8)


# ------------------------------------------------------------------------------------------------ the child process

def _no_download() -> np.ndarray:
    raise RuntimeError("onnx2tf asked for sample images from the network; nothing is downloaded")


def _zip_folder(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for file in sorted(folder.rglob("*")):  # sorted: the same model gives the same member order
            if file.is_file() and file.suffix != ".tflite":
                bundle.write(file, f"{SAVEDMODEL_FOLDER}/{file.relative_to(folder).as_posix()}")


def _run_savedmodel(archive: Path, folder: Path, inputs: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    with zipfile.ZipFile(archive) as bundle:  # run what ships, not the converter's folder
        bundle.extractall(folder)
    serve = tf.saved_model.load(str(folder / SAVEDMODEL_FOLDER)).signatures["serving_default"]
    (input_name,) = serve.structured_input_signature[1]
    outputs = [next(iter(serve(**{input_name: tf.constant(inputs[start:start + RUN_CHUNK])}).values())).numpy()
               for start in range(0, len(inputs), RUN_CHUNK)]
    return np.concatenate(outputs) if outputs else np.empty((0, 0), np.float32)


def _tflite_latency_ms(path: Path, image: np.ndarray, *, repeats: int) -> float:
    """Median milliseconds of one LiteRT call on ``image`` (a batch of 1), one thread, after untimed warm-up."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    input_index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(input_index, image.shape)
    interpreter.allocate_tensors()
    timings = []
    for index in range(LATENCY_WARMUP + repeats):
        started = time.perf_counter()
        interpreter.set_tensor(input_index, image)
        interpreter.invoke()
        if index >= LATENCY_WARMUP:
            timings.append((time.perf_counter() - started) * 1000.0)
    return float(np.median(timings))


def _run_tflite(path: Path, inputs: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    input_index = interpreter.get_input_details()[0]["index"]
    outputs = []
    for start in range(0, len(inputs), RUN_CHUNK):
        chunk = np.ascontiguousarray(inputs[start:start + RUN_CHUNK])
        interpreter.resize_tensor_input(input_index, chunk.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(input_index, chunk)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy())
    return np.concatenate(outputs) if outputs else np.empty((0, 0), np.float32)


def _convert(request: dict) -> dict:
    import onnx2tf
    import onnx2tf.onnx2tf as converter

    converter.download_test_image_data = _no_download  # only reached for a static batch; never fetch anyway
    folder = Path(request["folder"])
    versions = {name: importlib.metadata.version(name)
                for name in ("tensorflow", "onnx2tf", "ai-edge-litert", "onnx")}
    result: dict = {"versions": versions, "errors": {}, "latency_ms": {}}
    converted = folder / "converted"
    int8_path = Path(request["tflite_int8"]) if request.get("tflite_int8") else None
    try:
        onnx2tf.convert(input_onnx_file_path=request["onnx"], output_folder_path=str(converted),
                        output_signaturedefs=True, not_use_onnxsim=True, non_verbose=True, verbosity="error",
                        copy_onnx_input_output_names_to_tflite=True,
                        **(_int8_options(request) if int8_path is not None else {}))
    except BaseException as error:  # onnx2tf calls sys.exit on a graph it cannot convert
        reason = f"onnx2tf failed: {type(error).__name__}: {error}"[:1000]
        # int8 comes last: when it fails, the float files are already written (and are checked below as ever)
        if int8_path is None or _float32_tflite(converted) is None or not (converted / "saved_model.pb").exists():
            return {**result, "errors": dict.fromkeys((*FORMATS, INT8_FORMAT), reason)}
        result["errors"][INT8_FORMAT] = f"int8 quantization: {reason}"[:1000]
    inputs = np.load(request["inputs"], mmap_mode="r")
    try:
        _zip_folder(converted, Path(request["savedmodel"]))
        np.save(folder / "savedmodel.logits.npy", _run_savedmodel(Path(request["savedmodel"]), folder / "unzipped",
                                                                  inputs))
    except Exception as error:
        result["errors"]["savedmodel"] = f"{type(error).__name__}: {error}"[:1000]
    try:
        tflite = _float32_tflite(converted)
        if tflite is None:
            raise FileNotFoundError("onnx2tf wrote no float32 .tflite file")
        shutil.copyfile(tflite, request["tflite"])
        np.save(folder / "tflite.logits.npy", _run_tflite(Path(request["tflite"]), inputs))
    except Exception as error:
        result["errors"]["tflite"] = f"{type(error).__name__}: {error}"[:1000]
    if int8_path is not None and INT8_FORMAT not in result["errors"]:
        try:
            _check_int8(converted, int8_path, inputs, request=request, result=result)
        except Exception as error:
            result["errors"][INT8_FORMAT] = f"{type(error).__name__}: {error}"[:1000]
    return result


def _float32_tflite(converted: Path) -> Path | None:
    return next(converted.glob("*_float32.tflite"), None)


def _int8_options(request: dict) -> dict:
    """onnx2tf's integer quantization (``-oiqt``) calibrated on the request's images (``-cind``): already
    normalised, so mean 0 and std 1, in the converted graph's NHWC layout."""
    import onnx

    (input_name,) = [value.name for value in onnx.load(request["onnx"], load_external_data=False).graph.input]
    channels = np.load(request["calibration"], mmap_mode="r").shape[-1]
    mean, std = np.zeros((1, 1, 1, channels), np.float32), np.ones((1, 1, 1, channels), np.float32)
    return {"output_integer_quantized_tflite": True, "quant_type": "per-channel",
            "custom_input_op_name_np_data_path": [[input_name, request["calibration"], mean, std]]}


def _check_int8(converted: Path, int8_path: Path, inputs: np.ndarray, *, request: dict, result: dict) -> None:
    """Ship onnx2tf's ``*_integer_quant.tflite`` (float32 in and out, int8 inside; not the ``full_integer`` file
    with int8 input and output), run it on the test inputs and time it and the float32 file at batch 1."""
    written = [file for file in converted.glob("*_integer_quant.tflite")
               if not file.name.endswith("_full_integer_quant.tflite")]
    if not written:
        raise FileNotFoundError("onnx2tf wrote no integer-quantized .tflite file (its int8 conversion failed)")
    shutil.copyfile(written[0], int8_path)
    np.save(Path(request["folder"]) / f"{INT8_FORMAT}.logits.npy", _run_tflite(int8_path, inputs))
    image = np.ascontiguousarray(inputs[:1])
    if len(image):
        repeats = int(request["latency_repeats"])
        result["latency_ms"][INT8_FORMAT] = _tflite_latency_ms(int8_path, image, repeats=repeats)
        if "tflite" not in result["errors"]:
            result["latency_ms"]["tflite"] = _tflite_latency_ms(Path(request["tflite"]), image, repeats=repeats)


def main(argv: list[str]) -> int:
    """``python -m nas_core.tf_export REQUEST.json``: the child process of :func:`export_tensorflow`."""
    request_path = Path(argv[0])
    request = json.loads(request_path.read_text())
    result = _convert(request)
    (Path(request["folder"]) / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

