"""Do zero-cost proxies rank candidates as training does? Proxies of untrained networks against trained accuracy.

Draws ``--candidates`` random candidates of the default space (as ``bench.pruning`` does), scores each untrained
network with every proxy of :mod:`nas_core.proxies` on one minibatch of training images, then trains the same
network (same seed, same initial weights) for ``--epochs`` epochs with the product's trainer and recipe. Printed:
how well each score orders the final validation accuracy — Spearman ρ, Kendall τ, and the top-10% hit rate (how
many of the truly best tenth are in the score's best tenth) — for the proxies and for the baselines that cost
nothing at all, parameter count and FLOPs (:func:`nas_core.cost.estimate`), and the milliseconds each proxy took.
A proxy earns a place in the search only where it orders candidates better than the parameter count does.

Data (no download):

- ``digits``: scikit-learn's 1,797 8×8 digits at their own side, 0..16 scaled to 0..255, 20% for validation
  (stratified, seeded); tiny networks train in seconds;
- ``mnist500``, ``mnist5k``: ``bench.budget``'s splits: 500 or 4,000 MNIST training images, validated on the
  1,000 images that bench holds back.

The minibatch is ``--batch`` training images (a seeded draw, normalised as the trainer normalises them) at the
candidate's input side, capped at half the input's values per image (C·H·W): with more images than that, the
correlation matrix of ``jacob_cov`` is singular whatever the network.

    python -m bench.proxies --data digits --candidates 80 --epochs 3
    python -m bench.proxies --data mnist500 --candidates 30 --epochs 4
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from bench.pruning import at_side, channel_stats, random_candidates
from nas_core import proxies
from nas_core.builder import build_model
from nas_core.cost import estimate
from nas_core.trainer import TrainData, normalize, train

BASELINES = ("params", "flops")
TOP_FRACTION = 0.1


def dataset(name: str, seed: int) -> tuple[TrainData, int]:
    """(train/val tensors, number of classes) for ``name``."""
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        images = np.clip(np.rint(digits.images * 255 / 16), 0, 255).astype(np.uint8)[:, None]
        train_x, val_x, train_y, val_y = train_test_split(images, digits.target, test_size=0.2,
                                                          stratify=digits.target, random_state=seed)
    else:
        from bench.budget import build_split

        split = build_split(name, seed)
        train_x, val_x, train_y, val_y = split.train_x[:, None], split.test_x[:, None], split.train_y, split.test_y
    tensors = [torch.as_tensor(np.ascontiguousarray(a)) for a in (train_x, train_y, val_x, val_y)]
    return TrainData(tensors[0], tensors[1].long(), tensors[2], tensors[3].long()), 10


def minibatch(data: TrainData, *, size: int, seed: int, mean, std) -> torch.Tensor:
    """``size`` training images drawn with ``seed``, normalised as the trainer does (the global RNG is not used)."""
    order = torch.randperm(len(data.train_x), generator=torch.Generator().manual_seed(seed))
    return normalize(data.train_x[order[:size]], mean, std)


def measure(data: TrainData, classes: int, *, candidates: int, epochs: int, seed: int, batch: int) -> list[dict]:
    """Per candidate: its proxies untrained, their milliseconds, its cost, and its validation accuracy trained."""
    channels = data.train_x.shape[1]
    mean, std = channel_stats(data)
    runs = []
    for number, (candidate, size) in enumerate(random_candidates(data, count=candidates, seed=seed), start=1):
        at_size = at_side(data, size)
        images = minibatch(at_size, size=min(batch, channels * size[0] * size[1] // 2), seed=seed, mean=mean,
                           std=std)
        torch.manual_seed(seed + number)  # as bench.pruning: the same initial weights are scored, then trained
        model = build_model(candidate.arch, channels, classes, input_size=size)
        cost = estimate(candidate.arch, in_channels=channels, num_classes=classes, input_size=size)
        run = {"number": number, "side": size[0], "params": cost.params, "flops": cost.flops}
        for name, proxy in proxies.PROXIES.items():
            started = time.perf_counter()
            run[name] = proxy(model, images)
            run[f"{name}_ms"] = 1000 * (time.perf_counter() - started)
        result = train(model, at_size, epochs=epochs, train=candidate.train, mean=mean, std=std, seed=seed + number,
                       device="cpu", num_classes=classes)
        run["val_accuracy"], run["train_seconds"] = result.val_accuracy, result.seconds
        runs.append(run)
        print(f"candidate {number:3d} at {size[0]} px: {cost.params:9,d} params, val acc {result.val_accuracy:.3f} "
              f"in {result.seconds:.1f} s; " + " ".join(f"{name} {run[name]:.4g}" for name in proxies.PROXIES),
              flush=True)
    return runs


def top_hits(scores: list[float], truth: list[float], *, fraction: float = TOP_FRACTION) -> tuple[int, int]:
    """(how many of the ``fraction`` best by ``truth`` are among the ``fraction`` best by ``scores``, that count)."""
    count = max(1, round(fraction * len(truth)))
    best_true = set(sorted(range(len(truth)), key=lambda i: -truth[i])[:count])
    best_scored = set(sorted(range(len(scores)), key=lambda i: -scores[i])[:count])
    return len(best_true & best_scored), count


def agreement(runs: list[dict]) -> dict[str, dict]:
    """Spearman ρ, Kendall τ and top-10% hits of each score against the final validation accuracy."""
    from scipy.stats import kendalltau, spearmanr

    truth = [run["val_accuracy"] for run in runs]
    table = {}
    for name in (*proxies.PROXIES, *BASELINES):
        scores = [run[name] for run in runs]
        hits, count = top_hits(scores, truth)
        table[name] = {"rho": float(spearmanr(scores, truth).statistic),
                       "tau": float(kendalltau(scores, truth).statistic), "top_hits": hits, "top_count": count,
                       "ms": float(np.mean([run[f"{name}_ms"] for run in runs])) if name in proxies.PROXIES else 0.0}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=("digits", "mnist500", "mnist5k"), default="digits")
    parser.add_argument("--candidates", type=int, default=80)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=64, help="minibatch images the proxies see")
    args = parser.parse_args()
    data, classes = dataset(args.data, args.seed)
    runs = measure(data, classes, candidates=args.candidates, epochs=args.epochs, seed=args.seed, batch=args.batch)
    table = agreement(runs)
    accuracies = [run["val_accuracy"] for run in runs]
    print(f"\n{len(runs)} candidates, {args.epochs} epochs: val accuracy {min(accuracies):.3f}..{max(accuracies):.3f} "
          f"(median {float(np.median(accuracies)):.3f}); training took {sum(r['train_seconds'] for r in runs):.0f} s")
    print(f"{'score':10s} {'ρ':>6s} {'τ':>6s} {'top-10%':>8s} {'ms':>7s}")
    for name, row in table.items():
        print(f"{name:10s} {row['rho']:+6.2f} {row['tau']:+6.2f} {row['top_hits']:>4d}/{row['top_count']:<3d} "
              f"{row['ms']:7.1f}")
    print(f"proxies data={args.data} candidates={len(runs)} epochs={args.epochs} "
          + " ".join(f"rho_{name}={row['rho']:.3f}" for name, row in table.items()))
    finite = [{key: value if not isinstance(value, float) or math.isfinite(value) else None
               for key, value in run.items()} for run in runs]  # JSON has no infinities
    print(json.dumps({"data": args.data, "candidates": len(runs), "epochs": args.epochs, "seed": args.seed,
                      "agreement": table, "runs": finite}))


if __name__ == "__main__":
    main()
