"""Every model format of one final model, each in its own runtime, printed side by side.

``python -m bench.artifacts [--epochs 12] [--seed 0] [--candidate 1]`` builds a final model the way the model job
does — :func:`nas_core.final.build_final_model` (train on all of the uploaded part, ONNX, ``torch.export`` program,
int8 ONNX) and :func:`nas_core.tf_export.export_tensorflow` (SavedModel, TFLite, int8 TFLite calibrated on the int8
ONNX file's images) — from the residual network (or another) of :func:`nas_core.space.reference_candidates` on
:func:`bench.int8.digits_data` (scikit-learn's digits at 32 px), then runs every file on the held-back test images:
onnxruntime for ``onnx`` and ``onnx_int8``, the ``torch.export`` program for ``pt2``, TensorFlow for the SavedModel
unzipped from ``model.savedmodel.zip``, the LiteRT interpreter for ``tflite`` and ``tflite_int8`` (NHWC input for
the last three). It prints each format's size, test accuracy, argmax agreement with and max abs logit difference to
the PyTorch module the files were exported from, and the median CPU milliseconds per call at batch 1 and at batch 32
(real test images, inputs already in the format's layout). Every runtime gets one thread
(``torch.set_num_threads(1)``, onnxruntime's intra/inter-op threads, TensorFlow's intra/inter-op parallelism,
LiteRT's ``num_threads``); run it on an otherwise idle core (``taskset -c 1``). The last line sums it up:
``artifacts formats=… <format>_acc=… <format>_ms_b1=…``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from api.services.models.artifacts import ARTIFACT_FILES, ARTIFACT_LAYOUTS
from bench.int8 import digits_data
from nas_core.final import build_final_model
from nas_core.quantize import LATENCY_BATCH, calibration_images
from nas_core.resolution import resize_images
from nas_core.space import reference_candidates
from nas_core.tf_export import SAVEDMODEL_FOLDER, export_tensorflow
from nas_core.trainer import normalize

FORMATS = ("onnx", "onnx_int8", "pt2", "savedmodel", "tflite", "tflite_int8")
RUNTIMES = {"onnx": "onnxruntime", "onnx_int8": "onnxruntime", "pt2": "torch.export", "savedmodel": "tensorflow",
            "tflite": "litert", "tflite_int8": "litert"}
REPEATS = 50  # timed calls at batch 1; a fifth of them (at least 5) at batch 32, as nas_core.quantize times
WARMUP = 5
Predict = Callable[[np.ndarray], np.ndarray]


def median_ms(predict: Predict, inputs: np.ndarray, *, repeats: int) -> float:
    """Median milliseconds of one ``predict(inputs)`` call after :data:`WARMUP` untimed ones."""
    timings = []
    for index in range(WARMUP + repeats):
        started = time.perf_counter()
        predict(inputs)
        if index >= WARMUP:
            timings.append((time.perf_counter() - started) * 1000.0)
    return float(statistics.median(timings))


def onnx_runner(path: Path) -> Predict:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return lambda inputs: session.run(None, {input_name: inputs})[0]


def pt2_runner(path: Path) -> Predict:
    program = torch.export.load(str(path)).module()

    def predict(inputs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return program(torch.from_numpy(inputs)).numpy()
    return predict


def savedmodel_runner(archive: Path, folder: Path) -> Predict:
    import tensorflow as tf

    with zipfile.ZipFile(archive) as bundle:  # run what ships
        bundle.extractall(folder)
    serve = tf.saved_model.load(str(folder / SAVEDMODEL_FOLDER)).signatures["serving_default"]
    (input_name,) = serve.structured_input_signature[1]
    return lambda inputs: next(iter(serve(**{input_name: tf.constant(inputs)}).values())).numpy()


def tflite_runner(path: Path) -> Predict:
    from ai_edge_litert.interpreter import Interpreter

    interpreters: dict[tuple, Interpreter] = {}  # one per input shape: resizing is not part of a call

    def predict(inputs: np.ndarray) -> np.ndarray:
        interpreter = interpreters.get(inputs.shape)
        if interpreter is None:
            interpreter = interpreters[inputs.shape] = Interpreter(model_path=str(path), num_threads=1)
            interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], inputs.shape)
            interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], inputs)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()
    return predict


def one_thread_everywhere() -> None:
    """One thread in every runtime (onnxruntime and LiteRT are given theirs where their sessions are made)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow's first import: no start-up chatter
    import tensorflow as tf

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.set_visible_devices([], "GPU")  # the CPU figures only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--candidate", type=int, default=1,
                        help="index into reference_candidates() (1: the residual network)")
    args = parser.parse_args()
    one_thread_everywhere()
    data = digits_data(args.seed)
    candidate = reference_candidates()[args.candidate][0]
    with tempfile.TemporaryDirectory(prefix="bench-artifacts-") as tmp:
        folder = Path(tmp)
        paths = {format: folder / ARTIFACT_FILES[format].filename for format in FORMATS}
        started = time.perf_counter()
        built = build_final_model(candidate, data, epochs=args.epochs, seed=args.seed, device="cpu",
                                  onnx_path=paths["onnx"], pt2_path=paths["pt2"], int8_onnx_path=paths["onnx_int8"])
        built_s = time.perf_counter() - started
        inputs = normalize(resize_images(data.test_x, (built.height, built.width)), data.mean, data.std)
        started = time.perf_counter()
        calibration = calibration_images(data, height=built.height, width=built.width, seed=args.seed)
        report = export_tensorflow(built.onnx_path, savedmodel_path=paths["savedmodel"],
                                   tflite_path=paths["tflite"], inputs=inputs.numpy(),
                                   tflite_int8_path=paths["tflite_int8"], calibration_inputs=calibration.numpy(),
                                   labels=data.test_y.numpy())
        print(f"digits: {len(data.train_x)} train / {len(data.test_x)} test images at {built.height}x{built.width}; "
              f"{built.epochs} epochs, export and int8 in {built_s:.0f} s, TensorFlow formats in "
              f"{time.perf_counter() - started:.0f} s; one thread per runtime")
        with torch.no_grad():
            reference = built.network(inputs).numpy()
        labels = data.test_y.numpy()
        layouts = {"NCHW": np.ascontiguousarray(inputs.numpy()),
                   "NHWC": np.ascontiguousarray(inputs.numpy().transpose(0, 2, 3, 1))}
        runners = {"onnx": lambda: onnx_runner(paths["onnx"]), "onnx_int8": lambda: onnx_runner(paths["onnx_int8"]),
                   "pt2": lambda: pt2_runner(paths["pt2"]),
                   "savedmodel": lambda: savedmodel_runner(paths["savedmodel"], folder / "unzipped"),
                   "tflite": lambda: tflite_runner(paths["tflite"]),
                   "tflite_int8": lambda: tflite_runner(paths["tflite_int8"])}
        print(f"{'format':<11} {'runtime':<13} {'bytes':>9} {'test acc':>8} {'agree':>6} {'max diff':>9} "
              f"{'ms @1':>7} {'ms @' + str(LATENCY_BATCH):>7}")
        figures = {}
        reasons = {"onnx_int8": built.int8.reason, "savedmodel": report.savedmodel.reason,
                   "tflite": report.tflite.reason, "tflite_int8": report.tflite_int8.reason}
        for format in FORMATS:
            if not paths[format].exists():
                print(f"{format:<11} not made: {reasons.get(format)}")
                continue
            predict, images = runners[format](), layouts[ARTIFACT_LAYOUTS[format]]
            logits = np.concatenate([predict(images[start:start + LATENCY_BATCH])
                                     for start in range(0, len(images), LATENCY_BATCH)])
            accuracy = float((logits.argmax(1) == labels).mean())
            agreement = float((logits.argmax(1) == reference.argmax(1)).mean())
            diff = float(np.abs(logits - reference).max())
            ms_1 = median_ms(predict, images[:1], repeats=REPEATS)
            ms_32 = median_ms(predict, images[:LATENCY_BATCH], repeats=max(5, REPEATS // 5))
            figures[format] = (accuracy, ms_1)
            print(f"{format:<11} {RUNTIMES[format]:<13} {paths[format].stat().st_size:>9} {accuracy:>8.4f} "
                  f"{agreement:>6.3f} {diff:>9.2e} {ms_1:>7.3f} {ms_32:>7.2f}")
    summary = " ".join(f"{format}_acc={accuracy:.4f} {format}_ms_b1={ms_1:.3f}"
                       for format, (accuracy, ms_1) in figures.items())
    print(f"artifacts formats={','.join(figures)} {summary}")


if __name__ == "__main__":
    main()
