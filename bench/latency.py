"""How noisy a trial's latency is: one network measured again and again, next to the spread across candidates.

``python -m bench.latency [--candidates 20] [--same 10] [--side 32] [--channels 3] [--seed 0]`` draws candidates
from the default search space at ``--side`` px, builds each (untrained: weights do not change the time), exports it
as a final model is (:func:`nas_core.export.export_onnx`) and times that graph with onnxruntime (CPU, batch 1, one
intra-op thread, p50 and p90 of :data:`~nas_core.metrics.LATENCY_REPEATS` runs). The first candidate's graph is then
timed ``--same`` more times, each in a fresh session: the coefficient of variation of those p50s is the noise of one
measurement. Also printed: the seconds the export and the timing take, the in-memory graph's figure that trials and
screening time (:func:`~nas_core.metrics.probe_onnx_latency_ms`) and PyTorch's own, each over the final graph's.
Run it on an otherwise idle core.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time

import torch

from nas_core.builder import build_model
from nas_core.evaluation import onnx_latency
from nas_core.export import export_onnx
from nas_core.metrics import LATENCY_REPEATS, LATENCY_WARMUP, measure_latency_ms, probe_onnx_latency_ms
from nas_core.space import default_search_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--same", type=int, default=10)
    parser.add_argument("--side", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    space, rng = default_search_space(), random.Random(args.seed)
    rows, same = [], []
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as folder:
        for number in range(args.candidates):
            candidate = space.decode(space.param_space.sample(rng), input_side=args.side)
            height, width = candidate.arch.input_size((args.side, args.side))
            model = build_model(candidate.arch, args.channels, args.classes, input_size=(height, width))
            start = time.perf_counter()
            probe_ms = probe_onnx_latency_ms(model, (args.channels, height, width), repeats=5, warmup=1,
                                             threads=args.threads)
            probe_s = time.perf_counter() - start
            torch_ms = measure_latency_ms(model, (args.channels, height, width), repeats=5, warmup=1)
            path = f"{folder}/{number}.onnx"
            start = time.perf_counter()
            export_onnx(model, channels=args.channels, height=height, width=width, path=path)
            export_s = time.perf_counter() - start
            shape = {"channels": args.channels, "height": height, "width": width}
            start = time.perf_counter()
            stats = onnx_latency(path, **shape, repeats=LATENCY_REPEATS, warmup=LATENCY_WARMUP, threads=args.threads)
            time_s = time.perf_counter() - start
            rows.append({"side": height, "p50_ms": stats.p50_ms, "p90_ms": stats.p90_ms, "probe_ms": probe_ms,
                         "torch_ms": torch_ms, "probe_s": probe_s, "export_s": export_s, "time_s": time_s})
            print(f"#{number:2d} {height}px p50 {stats.p50_ms:7.3f} ms  p90 {stats.p90_ms:7.3f} ms  "
                  f"probe {probe_ms:7.3f} ms  PyTorch {torch_ms:7.3f} ms  export {export_s:5.2f} s  "
                  f"timing {time_s:5.2f} s")
            if number == 0:
                same_shape, same_path = shape, path
        for _ in range(args.same):
            same.append(onnx_latency(same_path, **same_shape, repeats=LATENCY_REPEATS, warmup=LATENCY_WARMUP,
                                     threads=args.threads).p50_ms)
    cv_same = 100.0 * statistics.stdev(same) / statistics.mean(same) if len(same) > 1 else 0.0
    p50s = [row["p50_ms"] for row in rows]
    ratios = [row["probe_ms"] / row["p50_ms"] for row in rows]
    torch_ratios = [row["torch_ms"] / row["p50_ms"] for row in rows]
    gaps = [100.0 * (row["p90_ms"] / row["p50_ms"] - 1.0) for row in rows]
    summary = {"candidates": len(rows), "same_runs": len(same), "cv_same_pct": round(cv_same, 2),
               "spread_p50_ms": [round(min(p50s), 3), round(max(p50s), 3)],
               "p90_over_p50_pct_median": round(statistics.median(gaps), 1),
               "probe_over_onnxruntime": [round(min(ratios), 2), round(statistics.median(ratios), 2),
                                          round(max(ratios), 2)],
               "pytorch_over_onnxruntime": [round(min(torch_ratios), 2), round(statistics.median(torch_ratios), 2),
                                            round(max(torch_ratios), 2)],
               "probe_s_median": round(statistics.median(row["probe_s"] for row in rows), 3),
               "export_s_median": round(statistics.median(row["export_s"] for row in rows), 3),
               "timing_s_median": round(statistics.median(row["time_s"] for row in rows), 3)}
    print(f"latency candidates={len(rows)} cv_same_pct={cv_same:.2f} "
          f"spread_p50_ms={min(p50s):.3f}..{max(p50s):.3f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
