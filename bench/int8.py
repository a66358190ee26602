"""int8 ONNX next to float32 for one realistic final model, printed side by side.

``python -m bench.int8 [--epochs 12] [--seed 0] [--candidate 1]`` trains the residual network (or another of
:func:`nas_core.space.reference_candidates`) on :func:`bench.budget.build_split`'s ``digits`` (all of the uploaded
part, as a final model trains on train+val), exports its plain graph and its test-time-mirroring graph
(:class:`~nas_core.mirror.MirrorAverage`), quantizes each with :func:`nas_core.quantize.quantize_onnx` with and
without onnxruntime's pre-processing, and prints test accuracy on the held-back images, agreement with float32, size
and single-thread CPU latency at batch 1 and 32. Run it on an otherwise idle core.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from bench.budget import build_split
from nas_core.builder import build_model
from nas_core.data import SplitTensors
from nas_core.export import export_onnx
from nas_core.mirror import MirrorAverage
from nas_core.quantize import calibration_indices, quantize_onnx
from nas_core.space import reference_candidates
from nas_core.trainer import TrainData, normalize, train


def digits_data(seed: int) -> SplitTensors:
    """:func:`bench.budget.build_split`'s ``digits`` (32 px, gray) as a final model receives it: all of the uploaded
    part as train (a final model trains on train+val; val is empty here), the held-back images as test, the mean and
    standard deviation of the train pixels."""
    split = build_split("digits", seed)
    train_x = torch.from_numpy(split.train_x).unsqueeze(1)
    train_y = torch.from_numpy(split.train_y)
    side = train_x.shape[-1]
    return SplitTensors(classes=list(split.classes), channels=1, height=side, width=side,
                        mean=(float(train_x.float().mean() / 255),), std=(float(train_x.float().std() / 255),),
                        train_x=train_x, train_y=train_y, val_x=train_x[:0], val_y=train_y[:0],
                        test_x=torch.from_numpy(split.test_x).unsqueeze(1), test_y=torch.from_numpy(split.test_y))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--candidate", type=int, default=1,
                        help="index into reference_candidates() (1: the residual network)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = digits_data(args.seed)
    train_x, train_y, test_x, test_y = data.train_x, data.train_y, data.test_x, data.test_y
    mean, std, classes = data.mean, data.std, data.classes
    candidate = reference_candidates()[args.candidate][0]
    side = train_x.shape[-1]
    torch.manual_seed(args.seed)
    network = build_model(candidate.arch, 1, len(classes), input_size=(side, side))
    started = time.perf_counter()
    train(network, TrainData(train_x=train_x, train_y=train_y, val_x=train_x[:0], val_y=train_y[:0]),
          epochs=args.epochs, train=candidate.train, mean=mean, std=std, seed=args.seed, device="cpu",
          num_classes=len(classes))
    print(f"digits: {len(train_x)} train / {len(test_x)} test images, {side}x{side}; trained {args.epochs} epochs "
          f"in {time.perf_counter() - started:.0f} s")
    network.eval()
    calibration = normalize(train_x[calibration_indices(len(train_x), seed=args.seed)], mean, std)
    test_inputs = normalize(test_x, mean, std)
    header = (f"{'graph':<8} {'pre-process':<11} {'format':<6} {'test acc':>8} {'agree':>6} {'size KiB':>9} "
              f"{'ms @1':>7} {'ms @32':>8}")
    print(header)
    with tempfile.TemporaryDirectory() as folder:
        for name, graph in (("plain", network), ("mirror", MirrorAverage(network).eval())):
            fp32_path = export_onnx(graph, channels=1, height=side, width=side, path=Path(folder) / f"{name}.onnx")
            for preprocess in (True, False):
                report = quantize_onnx(fp32_path, Path(folder) / f"{name}-{preprocess}.int8.onnx",
                                       calibration_inputs=calibration, test_inputs=test_inputs, test_labels=test_y,
                                       preprocess=preprocess)
                rows = [("fp32", report.fp32, 1.0), ("int8", report.int8, report.agreement)]
                for format, figures, agreement in rows:
                    if figures is None:
                        print(f"{name:<8} {str(preprocess):<11} {format:<6} {report.reason}")
                        continue
                    print(f"{name:<8} {str(preprocess):<11} {format:<6} {figures.test_accuracy:>8.4f} "
                          f"{agreement:>6.3f} {figures.size_bytes / 1024:>9.0f} {figures.latency_ms_batch_1:>7.3f} "
                          f"{figures.latency_ms_batch_32:>8.3f}")


if __name__ == "__main__":
    main()
