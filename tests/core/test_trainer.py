"""Trainer: learns, is seeded, reports per epoch, and stops on prune / cancel."""

import pytest
import torch

from nas_core.builder import build_model
from nas_core.errors import TrialCanceled, TrialPruned
from nas_core.spec import ArchSpec, StageSpec, TrainSpec
from nas_core.trainer import TrainData, augmentation, evaluate, normalize, train

MEAN, STD = [0.5], [0.25]
SPEC = ArchSpec(8, (StageSpec("conv", 1, 8, 3), StageSpec("residual", 1, 16, 3, downsample="stride")))
RECIPE = TrainSpec(lr=1e-2, augment=0.5, hflip=True, batch_size=32)


def bars(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A learnable task: class 0 has a bright horizontal bar, class 1 a vertical one, in noise, at random places."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 60, (count, 1, 16, 16), generator=generator, dtype=torch.uint8)
    y = torch.randint(0, 2, (count,), generator=generator)
    where = torch.randint(2, 14, (count,), generator=generator)
    for i in range(count):
        if y[i] == 0:
            x[i, 0, where[i], 2:14] = 250
        else:
            x[i, 0, 2:14, where[i]] = 250
    return x, y


def dataset(train_count: int = 192, val_count: int = 64) -> TrainData:
    train_x, train_y = bars(train_count, 0)
    val_x, val_y = bars(val_count, 1)
    return TrainData(train_x, train_y, val_x, val_y)


def fresh_model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(SPEC, 1, 2, input_size=16)


def test_normalize_matches_the_documented_formula():
    x = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    expected = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(normalize(x, mean, std), expected, atol=1e-6)


def test_trains_and_reports_every_epoch():
    reports = []
    result = train(fresh_model(), dataset(), epochs=4, train=RECIPE, mean=MEAN, std=STD, seed=0, device="cpu",
                   on_epoch=reports.append)
    assert [r.epoch for r in reports] == [1, 2, 3, 4] and result.epochs == tuple(reports)
    assert reports[-1].train_loss < reports[0].train_loss
    assert result.val_accuracy >= 0.9 and result.best_val_accuracy >= result.val_accuracy
    assert all(r.images_per_s > 0 and r.seconds > 0 for r in reports)


def test_same_seed_same_result_and_caller_rng_untouched():
    rng_state = torch.random.get_rng_state()
    runs = []
    for _ in range(2):
        model = fresh_model()
        result = train(model, dataset(96, 32), epochs=2, train=RECIPE, mean=MEAN, std=STD, seed=7, device="cpu")
        runs.append((result.epochs[-1].train_loss, [p.detach().clone() for p in model.parameters()]))
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    other = train(fresh_model(), dataset(96, 32), epochs=2, train=RECIPE, mean=MEAN, std=STD, seed=8, device="cpu")
    assert other.epochs[-1].train_loss != runs[0][0]


def test_pruning_callback_stops_training_and_propagates():
    seen = []

    def prune_after_first(report):
        seen.append(report.epoch)
        raise TrialPruned(f"pruned at epoch {report.epoch}")

    with pytest.raises(TrialPruned, match="pruned at epoch 1"):
        train(fresh_model(), dataset(64, 16), epochs=5, train=RECIPE, mean=MEAN, std=STD, seed=0, device="cpu",
              on_epoch=prune_after_first)
    assert seen == [1]


def test_should_stop_cancels_between_batches():
    polls = []

    def stop_on_third_poll():
        polls.append(1)
        return len(polls) >= 3

    with pytest.raises(TrialCanceled):
        train(fresh_model(), dataset(320, 16), epochs=3, train=RECIPE, mean=MEAN, std=STD, seed=0, device="cpu",
              should_stop=stop_on_third_poll, on_epoch=lambda report: pytest.fail("no epoch may finish"))
    assert len(polls) == 3  # polled per batch: cancel lands within one batch


@pytest.mark.parametrize(("schedule", "optimizer"), [("cosine", "sgd"), ("onecycle", "adamw")])
def test_schedules_and_optimizers_run(schedule, optimizer):
    recipe = TrainSpec(lr=0.05 if optimizer == "sgd" else 3e-3, schedule=schedule, optimizer=optimizer,
                       label_smoothing=0.1, augment=0.0, batch_size=33)
    result = train(fresh_model(), dataset(100, 20), epochs=1, train=recipe, mean=MEAN, std=STD, seed=0, device="cpu")
    assert result.epochs[0].train_loss > 0


def test_augmentation_follows_the_recipe():
    assert augmentation(TrainSpec(augment=0.0, hflip=False), 32, 32) is None
    transform = augmentation(TrainSpec(augment=1.0, hflip=True), 32, 32)
    names = [type(t).__name__ for t in transform.transforms]
    assert names == ["RandomCrop", "RandomHorizontalFlip"]
    assert transform.transforms[0].padding == [4, 4, 4, 4]
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    torch.manual_seed(0)
    out = transform(x)
    assert out.shape == x.shape and out.dtype == torch.uint8 and not torch.equal(out, x)


def test_evaluate_returns_accuracy_and_logits():
    data = dataset(32, 40)
    accuracy, logits = evaluate(fresh_model(), data.val_x, data.val_y, mean=MEAN, std=STD, device="cpu",
                                batch_size=16)
    assert logits.shape == (40, 2) and logits.dtype == torch.float32
    assert accuracy == pytest.approx((logits.argmax(1) == data.val_y).float().mean().item())
