"""TensorFlow artifacts: a SavedModel (zipped) and a float32 TFLite file, converted from a verified ONNX file by
onnx2tf and each run in its own runtime against the ONNX logits.

Layout: onnx2tf turns the ``[N, C, H, W]`` graph into ``[N, H, W, C]`` (:data:`LAYOUT`); the input is float32,
normalised exactly as the ONNX input, the batch stays dynamic and the output is the logits ``[N, classes]``. The
SavedModel's signature ``serving_default`` takes ``input`` and returns ``output_0``; the TFLite file has one input
and one output.

Verification: the SavedModel is unzipped from the very archive that ships and run with TensorFlow, the TFLite file
with the LiteRT interpreter (``ai_edge_litert``), both on the caller's inputs (the final model's whole test split).
A format passes when every image gets the reference's predicted class and no logit is further than ``atol`` from
it — the bound the ONNX file meets against PyTorch.

The work happens in a child process (``python -m nas_core.tf_export REQUEST``): TensorFlow's memory and thread pools
never enter the caller's process, onnx2tf's ``sys.exit`` on a graph it cannot convert ends only the child, and a
conversion that hangs is killed after ``timeout_s``. TensorFlow and onnx2tf are imported there and only there
(``pip install 'nas-service[tf]'``). Nothing is downloaded. :func:`export_tensorflow` never raises for a failed
conversion or check: the report names the format that failed and why, and no file is left at its path.

>>> _compare(np.array([[1.0, 2.0]]), np.array([[1.0, 2.5]]))
(0.5, 1.0)
"""

from __future__ import annotations

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

FORMATS = ("savedmodel", "tflite")
LAYOUT = "NHWC"
ATOL = 1e-4  # largest |logit difference| to the reference, as for ONNX against PyTorch
TIMEOUT_S = 900.0
RUN_CHUNK = 256  # images per TensorFlow / TFLite call: bounds memory on large test splits
PACKAGES = ("tensorflow", "onnx2tf", "tf_keras", "ai_edge_litert", "onnx_graphsurgeon", "sng4onnx", "psutil")
SAVEDMODEL_FOLDER = "saved_model"  # the folder inside the zip: ``tf.saved_model.load("saved_model")``


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
class TensorFlowReport:
    """What :func:`export_tensorflow` wrote and measured; ``seconds`` is the wall time of conversion and checks."""

    savedmodel: FormatCheck
    tflite: FormatCheck
    seconds: float
    atol: float
    versions: dict[str, str]

    def to_dict(self) -> dict:
        return {"savedmodel": self.savedmodel.to_dict(), "tflite": self.tflite.to_dict(),
                "seconds": round(self.seconds, 3), "atol": self.atol, "versions": dict(self.versions)}


def missing_packages() -> list[str]:
    """The converter's packages this environment lacks (empty: conversion can run)."""
    return [name for name in PACKAGES if importlib.util.find_spec(name) is None]


def export_tensorflow(onnx_path: str | Path, *, savedmodel_path: str | Path, tflite_path: str | Path,
                      inputs: np.ndarray, reference_logits: np.ndarray | None = None, atol: float = ATOL,
                      timeout_s: float = TIMEOUT_S) -> TensorFlowReport:
    """Convert ``onnx_path`` to a zipped SavedModel at ``savedmodel_path`` and a float32 TFLite file at
    ``tflite_path``, run both on ``inputs`` (float32 ``[N, C, H, W]``, normalised as the ONNX input; transposed to
    :data:`LAYOUT` here) and compare them with ``reference_logits`` (default: the ONNX file's, from onnxruntime).

    Never raises for a conversion or a check that fails; a format that failed has no file at its path.
    """
    started = time.perf_counter()
    savedmodel_path, tflite_path = Path(savedmodel_path), Path(tflite_path)
    paths = {"savedmodel": savedmodel_path, "tflite": tflite_path}
    for path in paths.values():
        path.unlink(missing_ok=True)
    images = len(inputs)
    missing = missing_packages()
    if missing:
        reason = f"not installed: {', '.join(missing)} (the tf extra)"
        return _report(paths, {}, reason_for_all=reason, images=images, started=started, atol=atol, versions={})
    if reference_logits is None:
        try:
            reference_logits = onnx_logits(onnx_path, inputs)
        except Exception as error:  # onnxruntime raises its own types
            reason = f"the ONNX file does not run: {type(error).__name__}: {error}"[:1000]
            return _report(paths, {}, reason_for_all=reason, images=images, started=started, atol=atol,
                           versions={})
    with tempfile.TemporaryDirectory(prefix="nas-tf-") as tmp:
        folder = Path(tmp)
        _write_nhwc(folder / "inputs.npy", inputs)
        request = {"onnx": str(Path(onnx_path).resolve()), "inputs": str(folder / "inputs.npy"),
                   "savedmodel": str(savedmodel_path.resolve()), "tflite": str(tflite_path.resolve()),
                   "folder": str(folder)}
        (folder / "request.json").write_text(json.dumps(request))
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",  # TensorFlow must not take a GPU
                   PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                            os.environ.get("PYTHONPATH")])))
        try:
            done = subprocess.run([sys.executable, "-m", "nas_core.tf_export", str(folder / "request.json")],
                                  cwd=folder, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return _report(paths, {}, reason_for_all=f"conversion took longer than {timeout_s:g} s", images=images,
                           started=started, atol=atol, versions={})
        result_path = folder / "result.json"
        if not result_path.exists():
            tail = (done.stderr or done.stdout or "").strip().splitlines()[-3:]
            reason = f"the converter process exited with {done.returncode}: {' '.join(tail)[-500:]}"
            return _report(paths, {}, reason_for_all=reason, images=images, started=started, atol=atol,
                           versions={})
        result = json.loads(result_path.read_text())
        logits = {name: np.load(folder / f"{name}.logits.npy") for name in FORMATS
                  if (folder / f"{name}.logits.npy").exists()}
        reasons = dict(result.get("errors", {}))
        return _report(paths, logits, reasons=reasons, reference=reference_logits, images=images, started=started,
                       atol=atol, versions=result.get("versions", {}))


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


def _report(paths: dict[str, Path], logits: dict[str, np.ndarray], *, images: int, started: float, atol: float,
            versions: dict, reasons: dict | None = None, reason_for_all: str | None = None,
            reference: np.ndarray | None = None) -> TensorFlowReport:
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
                            seconds=time.perf_counter() - started, atol=atol, versions=versions)


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
    result: dict = {"versions": versions, "errors": {}}
    converted = folder / "converted"
    try:
        onnx2tf.convert(input_onnx_file_path=request["onnx"], output_folder_path=str(converted),
                        output_signaturedefs=True, not_use_onnxsim=True, non_verbose=True, verbosity="error",
                        copy_onnx_input_output_names_to_tflite=True)
    except BaseException as error:  # onnx2tf calls sys.exit on a graph it cannot convert
        reason = f"onnx2tf failed: {type(error).__name__}: {error}"[:1000]
        return {**result, "errors": dict.fromkeys(FORMATS, reason)}
    inputs = np.load(request["inputs"], mmap_mode="r")
    try:
        _zip_folder(converted, Path(request["savedmodel"]))
        np.save(folder / "savedmodel.logits.npy", _run_savedmodel(Path(request["savedmodel"]), folder / "unzipped",
                                                                  inputs))
    except Exception as error:
        result["errors"]["savedmodel"] = f"{type(error).__name__}: {error}"[:1000]
    try:
        tflite = next(converted.glob("*_float32.tflite"), None)
        if tflite is None:
            raise FileNotFoundError("onnx2tf wrote no float32 .tflite file")
        shutil.copyfile(tflite, request["tflite"])
        np.save(folder / "tflite.logits.npy", _run_tflite(Path(request["tflite"]), inputs))
    except Exception as error:
        result["errors"]["tflite"] = f"{type(error).__name__}: {error}"[:1000]
    return result


def main(argv: list[str]) -> int:
    """``python -m nas_core.tf_export REQUEST.json``: the child process of :func:`export_tensorflow`."""
    request_path = Path(argv[0])
    request = json.loads(request_path.read_text())
    result = _convert(request)
    (Path(request["folder"]) / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

