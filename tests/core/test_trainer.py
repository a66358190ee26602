"""Trainer: learns, is seeded, reports per epoch, stops on prune / cancel, plans its batches, averages weights."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from nas_core import trainer
from nas_core.builder import build_model
from nas_core.errors import InvalidSearchSpace, TrialCanceled, TrialPruned
from nas_core.spec import ArchSpec, Candidate, StageSpec, TrainSpec
from nas_core.trainer import (MIN_TRIAL_STEPS, TrainData, augmentation, balanced_accuracy, ema_decay, evaluate,
                              mixing, normalize, plan_epochs, train)

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


@pytest.fixture
def quick(monkeypatch):
    """The bars task learns in a few dozen steps: a lower per-trial step floor keeps these tests fast."""
    monkeypatch.setattr(trainer, "MIN_TRIAL_STEPS", 24)


def fresh_model(seed: int = 0, channels: int = 1, input_size: int | tuple[int, int] = 16):
    torch.manual_seed(seed)
    return build_model(SPEC, channels, 2, input_size=input_size)


def test_normalize_matches_the_documented_formula():
    x = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    expected = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(normalize(x, mean, std), expected, atol=1e-6)


def test_trains_and_reports_every_epoch(quick):
    reports = []
    result = train(fresh_model(), dataset(), epochs=4, train=RECIPE, mean=MEAN, std=STD, seed=0, device="cpu",
                   on_epoch=reports.append)
    assert [r.epoch for r in reports] == [1, 2, 3, 4] and result.epochs == tuple(reports)
    assert reports[-1].train_loss < reports[0].train_loss
    assert result.val_accuracy >= 0.9 and result.best_val_accuracy >= result.val_accuracy
    assert all(r.images_per_s > 0 and r.seconds > 0 for r in reports)


def test_same_seed_same_result_and_caller_rng_untouched(quick):
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


def test_pruning_callback_stops_training_and_propagates(quick):
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
def test_schedules_and_optimizers_run(quick, schedule, optimizer):
    recipe = TrainSpec(lr=0.05 if optimizer == "sgd" else 3e-3, schedule=schedule, optimizer=optimizer,
                       label_smoothing=0.1, augment=0.0, batch_size=33)
    result = train(fresh_model(), dataset(100, 20), epochs=1, train=recipe, mean=MEAN, std=STD, seed=0, device="cpu")
    assert result.epochs[0].train_loss > 0


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_a_time_budget_recounts_the_epochs_and_the_schedule_still_ends_annealed(quick, monkeypatch, schedule):
    """With ``seconds``, the first estimate of epochs is recounted from the measured epochs: a roomy budget runs up
    to ``most``, a spent one stops one epoch later; either way the learning rate ends where a schedule of that many
    epochs would (one-cycle: its floor; cosine: zero), not cut off mid-way."""
    recipe = dataclasses.replace(RECIPE, schedule=schedule)
    rates = []
    step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    roomy = train(fresh_model(), dataset(), epochs=2, train=recipe, mean=MEAN, std=STD, seed=0, device="cpu",
                  seconds=1e6, most=5)
    steps = plan_epochs(192, recipe, 2).steps_per_epoch
    assert len(roomy.epochs) == 5 and len(rates) == 5 * steps
    assert rates[-1] < 0.02 * max(rates)  # annealed at the end of the five epochs, not of the two first planned
    rates.clear()
    spent = train(fresh_model(), dataset(), epochs=6, train=recipe, mean=MEAN, std=STD, seed=0, device="cpu",
                  seconds=0.0, most=6)
    assert len(spent.epochs) == 2 and rates[-1] < 0.1 * max(rates)
    rates.clear()
    fixed = train(fresh_model(), dataset(), epochs=3, train=recipe, mean=MEAN, std=STD, seed=0, device="cpu")
    assert len(fixed.epochs) == 3  # no budget: the epochs asked for


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


# --- batch planning -------------------------------------------------------------------------------------------


def test_auto_batch_gives_a_small_split_enough_steps():
    plan = plan_epochs(100, TrainSpec(batch_size=0), epochs=3)
    assert plan.batch_size & (plan.batch_size - 1) == 0 and 8 <= plan.batch_size <= 128  # a power of two
    assert plan.steps_per_epoch >= 10 and 3 * plan.steps_per_epoch >= MIN_TRIAL_STEPS
    assert plan.images_per_epoch == plan.batch_size * plan.steps_per_epoch
    big = plan_epochs(50_000, TrainSpec(batch_size=0), epochs=10)
    assert (big.batch_size, big.steps_per_epoch) == (128, 391)  # one pass per epoch, the last batch topped up
    assert plan_epochs(5, TrainSpec(batch_size=0), epochs=1).batch_size == 5  # never more than the split


def test_explicit_batch_size_is_honoured_and_capped_at_the_split():
    plan = plan_epochs(1000, TrainSpec(batch_size=50), epochs=20)
    assert (plan.batch_size, plan.steps_per_epoch) == (50, 20)
    assert plan_epochs(30, TrainSpec(batch_size=64), epochs=200).batch_size == 30


def test_learning_rate_scales_from_batch_128():
    assert plan_epochs(1000, TrainSpec(lr=0.01, batch_size=128), 10).lr == pytest.approx(0.01)
    assert plan_epochs(1000, TrainSpec(lr=0.01, batch_size=32), 10).lr == pytest.approx(0.005)  # adamw: sqrt
    sgd = TrainSpec(lr=0.1, batch_size=32, optimizer="sgd")
    assert plan_epochs(1000, sgd, 10).lr == pytest.approx(0.025)  # sgd: linear


def test_train_runs_exactly_the_plan():
    data, recipe, epochs = dataset(100, 16), TrainSpec(batch_size=0, augment=0.0), 2
    plan = plan_epochs(100, recipe, epochs)
    model, batches, polls = fresh_model(), [], []
    model.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]) if module.training else None)
    result = train(model, data, epochs=epochs, train=recipe, mean=MEAN, std=STD, seed=0, device="cpu",
                   should_stop=lambda: polls.append(1) or False)
    assert len(polls) == len(batches) == epochs * plan.steps_per_epoch  # one optimizer step per polled batch
    assert set(batches) == {plan.batch_size}  # every batch is full
    assert result.images_per_s > 0


# --- weight averaging -----------------------------------------------------------------------------------------


def test_ema_decay_follows_the_run_length():
    assert ema_decay(10) is None  # too few steps to average
    assert ema_decay(150) == pytest.approx(1 - 1 / 15)  # horizon: a tenth of the steps
    assert ema_decay(30) == 0.9 and ema_decay(10**6) == 0.999  # clamped


def test_model_ends_with_the_averaged_weights_that_were_validated(quick):
    data = dataset(96, 48)
    raw, averaged = fresh_model(), fresh_model()
    train(raw, data, epochs=2, train=dataclasses.replace(RECIPE, ema=False), mean=MEAN, std=STD, seed=3,
          device="cpu")
    result = train(averaged, data, epochs=2, train=RECIPE, mean=MEAN, std=STD, seed=3, device="cpu")
    # averaging draws no random numbers, so both runs trained the same raw weights; only the average differs
    assert not all(torch.equal(a, b) for a, b in zip(raw.state_dict().values(), averaged.state_dict().values()))
    accuracy, logits = evaluate(averaged, data.val_x, data.val_y, mean=MEAN, std=STD, device="cpu")
    assert accuracy == result.val_accuracy
    assert F.cross_entropy(logits, data.val_y).item() == pytest.approx(result.epochs[-1].val_loss, abs=1e-6)


@pytest.mark.parametrize("ema", [False, True])
def test_keep_best_ends_holding_the_validated_weights_of_the_epoch_it_prefers(quick, ema):
    data = dataset(96, 48)
    model = fresh_model()
    result = train(model, data, epochs=3, train=dataclasses.replace(RECIPE, ema=ema), mean=MEAN, std=STD, seed=3,
                   device="cpu", keep_best=lambda report: -report.epoch)  # the first epoch, whatever it scored
    assert result.kept_epoch == 1 and len(result.epochs) == 3
    _, logits = evaluate(model, data.val_x, data.val_y, mean=MEAN, std=STD, device="cpu")
    kept_loss = F.cross_entropy(logits, data.val_y).item()
    assert kept_loss == pytest.approx(result.epochs[0].val_loss, abs=1e-6)
    assert kept_loss != pytest.approx(result.epochs[-1].val_loss, abs=1e-4)
    # equal keys keep the first of them; without keep_best nothing is kept
    assert train(fresh_model(), data, epochs=2, train=RECIPE, mean=MEAN, std=STD, seed=3, device="cpu",
                 keep_best=lambda report: 0).kept_epoch == 1
    assert train(fresh_model(), data, epochs=1, train=RECIPE, mean=MEAN, std=STD, seed=3,
                 device="cpu").kept_epoch is None


def test_a_tuple_key_keeps_the_pareto_front_of_epochs_for_the_caller_to_choose_from(quick):
    """Keys (epoch parity, epoch number): epoch 5's (1, 5) is at least as good as every earlier epoch's on both
    criteria, and no epoch beats epoch 6's (0, 6) on its number, so the front is epochs 5 and 6; the chooser is given
    those reports and its answer is the kept epoch. A chooser's None keeps none: the model holds the last epoch."""
    data = dataset(96, 48)
    seen = []

    def choose(front):
        seen.append([report.epoch for report in front])
        return front[0].epoch

    result = train(fresh_model(), data, epochs=6, train=RECIPE, mean=MEAN, std=STD, seed=3, device="cpu",
                   keep_best=lambda report: (report.epoch % 2, report.epoch), choose_kept=choose)
    assert seen == [[5, 6]] and result.kept_epoch == 5
    model = fresh_model()
    none = train(model, data, epochs=2, train=RECIPE, mean=MEAN, std=STD, seed=3, device="cpu",
                 keep_best=lambda report: (-report.epoch, 0), choose_kept=lambda front: None)
    assert none.kept_epoch is None
    _, logits = evaluate(model, data.val_x, data.val_y, mean=MEAN, std=STD, device="cpu")
    assert F.cross_entropy(logits, data.val_y).item() == pytest.approx(none.epochs[-1].val_loss, abs=1e-6)


def test_ema_is_skipped_when_a_run_is_too_short(monkeypatch):
    monkeypatch.setattr(trainer, "MIN_TRIAL_STEPS", 0)
    data = dataset(32, 16)
    result = train(fresh_model(), data, epochs=1, train=RECIPE, mean=MEAN, std=STD, seed=0, device="cpu")
    assert len(result.epochs) == 1 and math.isfinite(result.epochs[0].train_loss)


# --- augmentation ---------------------------------------------------------------------------------------------


def coloured(data: TrainData) -> TrainData:
    """The bars task in colour: each channel a different tint of the grey image."""
    tint = torch.tensor([1.0, 0.7, 0.4]).view(1, 3, 1, 1)
    to_rgb = lambda x: (x.float() * tint).to(torch.uint8)  # noqa: E731
    return TrainData(to_rgb(data.train_x), data.train_y, to_rgb(data.val_x), data.val_y)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("option", [{"vflip": True}, {"policy": "trivial"}, {"policy": "randaugment"},
                                    {"mix": "mixup"}, {"mix": "cutmix"}])
def test_every_augmentation_trains_on_grey_and_colour_images(monkeypatch, option, channels):
    monkeypatch.setattr(trainer, "MIN_TRIAL_STEPS", 8)  # a few steps prove it runs
    data = dataset(40, 16) if channels == 1 else coloured(dataset(40, 16))
    recipe = TrainSpec(batch_size=0, label_smoothing=0.1, hflip=True, **option)
    result = train(fresh_model(channels=channels), data, epochs=2, train=recipe, mean=[0.5] * channels,
                   std=[0.25] * channels, seed=0, device="cpu")
    assert all(math.isfinite(r.train_loss) and r.train_loss > 0 for r in result.epochs)


@pytest.mark.parametrize("channels", [1, 3])
def test_policies_and_quarter_turns_keep_uint8_images(channels):
    x = torch.randint(0, 256, (16, channels, 12, 12), dtype=torch.uint8)
    for policy in ("trivial", "randaugment"):
        out = augmentation(TrainSpec(augment=0.0, policy=policy), 12, 12)(x)
        assert out.shape == x.shape and out.dtype == torch.uint8
    turns = augmentation(TrainSpec(augment=0.0, vflip=True), 12, 12)
    image = x[:1]
    symmetries = [torch.rot90(flipped, k, (-2, -1)) for flipped in (image, image.flip(-2)) for k in range(4)]
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):  # quarter turns and flips are exact: every output is one of the 8 symmetries
        out = turns(image)
        seen.add(next(i for i, symmetry in enumerate(symmetries) if torch.equal(out, symmetry)))
    assert len(seen) == 8


def test_quarter_turns_are_skipped_for_non_square_images(quick):
    names = lambda transform: [type(t).__name__ for t in transform.transforms]  # noqa: E731
    assert names(augmentation(TrainSpec(augment=0.0, vflip=True), 16, 16)) == ["RandomVerticalFlip", "RandomChoice"]
    assert names(augmentation(TrainSpec(augment=0.0, vflip=True), 16, 20)) == ["RandomVerticalFlip"]
    wide = dataset(24, 8)
    pad = lambda x: F.pad(x, (2, 2))  # noqa: E731  16 x 20 images
    wide = TrainData(pad(wide.train_x), wide.train_y, pad(wide.val_x), wide.val_y)
    result = train(fresh_model(input_size=(16, 20)), wide, epochs=1, train=TrainSpec(vflip=True, policy="trivial"),
                   mean=MEAN, std=STD, seed=0, device="cpu")
    assert math.isfinite(result.epochs[0].train_loss)


def test_mixing_makes_soft_targets():
    assert mixing(TrainSpec(), 3) is None
    x, y = torch.randn(8, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    for mix in ("mixup", "cutmix"):
        images, targets = mixing(TrainSpec(mix=mix), 3)(x, y)
        assert images.shape == x.shape and targets.shape == (8, 3)
        assert torch.allclose(targets.sum(1), torch.ones(8))


# --- balanced accuracy ----------------------------------------------------------------------------------------


def test_balanced_accuracy_by_hand():
    # 8 images of class 0, 2 of class 1, none of class 2; one class-0 image is called 2, one class-1 image 0
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    preds = torch.tensor([0, 0, 0, 0, 0, 0, 0, 2, 1, 0])
    balanced, recall = balanced_accuracy(preds, labels, 3)
    assert recall[:2] == (7 / 8, 1 / 2) and math.isnan(recall[2])  # class 2 is absent: no recall
    assert balanced == pytest.approx((7 / 8 + 1 / 2) / 2)  # plain accuracy would be 0.8
    assert balanced_accuracy(F.one_hot(preds, 3).float(), labels, 3) == (balanced, recall)  # logits work too
    with pytest.raises(ValueError):
        balanced_accuracy(preds, labels, 1)


def test_reports_balanced_accuracy_and_recall_per_class(quick):
    data = dataset(64, 32)
    result = train(fresh_model(), data, epochs=2, train=RECIPE, mean=MEAN, std=STD, seed=0, device="cpu",
                   num_classes=3)
    last = result.epochs[-1]
    assert len(last.val_recall) == 3 and math.isnan(last.val_recall[2])
    assert last.val_balanced_accuracy == pytest.approx(sum(last.val_recall[:2]) / 2)
    assert result.val_balanced_accuracy == last.val_balanced_accuracy
    assert result.best_val_balanced_accuracy == max(r.val_balanced_accuracy for r in result.epochs)
    inferred = train(fresh_model(), data, epochs=1, train=RECIPE, mean=MEAN, std=STD, seed=0, device="cpu")
    assert len(inferred.epochs[0].val_recall) == 2  # max label + 1


# --- stored recipes -------------------------------------------------------------------------------------------

OLD_RECIPE = {"lr": 0.003, "weight_decay": 0.0005, "label_smoothing": 0.0, "augment": 0.5, "hflip": False,
              "schedule": "onecycle", "optimizer": "adamw", "batch_size": 128}  # stored before ema, vflip, ...


def test_recipes_stored_without_the_new_fields_still_load():
    recipe = TrainSpec.from_dict(OLD_RECIPE)
    assert recipe == TrainSpec(batch_size=128)  # the new fields take their defaults
    assert (recipe.ema, recipe.vflip, recipe.policy, recipe.mix) == (True, False, "none", "none")
    assert set(recipe.to_dict()) == set(OLD_RECIPE) | {"ema", "vflip", "policy", "mix"}
    candidate = Candidate.from_dict({"arch": SPEC.to_dict(), "train": OLD_RECIPE})
    assert candidate.hash() == Candidate.from_dict(candidate.to_dict()).hash()
    with pytest.raises(InvalidSearchSpace) as caught:
        TrainSpec.from_dict({**OLD_RECIPE, "swa": True})
    assert [e["field"] for e in caught.value.errors] == ["swa"]
    without_lr = {key: value for key, value in OLD_RECIPE.items() if key != "lr"}
    with pytest.raises(InvalidSearchSpace, match="lr: missing field"):
        TrainSpec.from_dict(without_lr)


@pytest.mark.parametrize("recipe", [RECIPE, dataclasses.replace(RECIPE, mix="cutmix", policy="trivial",
                                                                schedule="onecycle")])
def test_a_run_resumed_from_a_checkpoint_ends_exactly_like_an_uninterrupted_one(quick, recipe):
    import io

    data = dataset(96, 48)
    whole = fresh_model()
    expected = train(whole, data, epochs=4, train=recipe, mean=MEAN, std=STD, seed=5, device="cpu")
    saved = {}

    def keep(epoch, snapshot):
        if epoch == 2:
            buffer = io.BytesIO()
            torch.save(snapshot(), buffer)  # through bytes, as the service stores it
            saved["state"] = buffer.getvalue()
            raise KeyboardInterrupt  # the worker dies right after its checkpoint

    with pytest.raises(KeyboardInterrupt):
        train(fresh_model(), data, epochs=4, train=recipe, mean=MEAN, std=STD, seed=5, device="cpu",
              on_checkpoint=keep)
    state = torch.load(io.BytesIO(saved["state"]), weights_only=True)
    assert state["epoch"] == 2 and len(state["reports"]) == 2
    seen = []
    resumed = fresh_model(seed=9)  # other initial weights: everything comes from the checkpoint
    result = train(resumed, data, epochs=4, train=recipe, mean=MEAN, std=STD, seed=5, device="cpu", resume=state,
                   on_epoch=lambda report: seen.append(report.epoch))
    assert seen == [3, 4] and [r.epoch for r in result.epochs] == [1, 2, 3, 4]
    assert [r.val_accuracy for r in result.epochs] == [r.val_accuracy for r in expected.epochs]
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))


def test_a_ramped_policy_is_phased_in_over_its_share_of_the_schedule(quick, monkeypatch):
    """``policy_ramp`` 0.5: each group of images gets the policy with a probability that rises linearly from 0 at
    the first step to 1 halfway through the schedule, and stays 1; the others get the recipe without it."""
    shares, plains = [], []
    original = trainer._augment

    def recording(x, transform, *, plain=None, share=1.0):
        shares.append(share)
        plains.append(plain)
        return original(x, transform, plain=plain, share=share)

    monkeypatch.setattr(trainer, "_augment", recording)
    recipe = dataclasses.replace(RECIPE, policy="trivial")
    train(fresh_model(), dataset(64, 16), epochs=4, train=recipe, mean=MEAN, std=STD, seed=0, device="cpu",
          policy_ramp=0.5)
    steps = len(shares)  # 24: the quick step floor over four epochs
    assert shares[0] == 0.0 and shares == sorted(shares)
    assert shares[steps // 4] == pytest.approx(0.5)
    assert shares[steps // 2:] == [1.0] * (steps - steps // 2)
    assert all(plain is not None for plain in plains)  # the crops and flips, without the policy
    shares.clear()
    plains.clear()  # no policy, nothing to phase in
    train(fresh_model(), dataset(64, 16), epochs=4, train=RECIPE, mean=MEAN, std=STD, seed=0, device="cpu",
          policy_ramp=0.5)
    assert shares == [1.0] * steps and plains == [None] * steps


def test_a_group_draws_the_policy_with_its_share():
    policy, plain = (lambda group: group + 1), (lambda group: group)
    x = torch.zeros(1600, 1, 2, 2, dtype=torch.uint8)  # 100 groups
    torch.manual_seed(0)
    assert int(trainer._augment(x, policy, plain=plain, share=0.0).sum()) == 0
    assert int(trainer._augment(x, policy, plain=plain, share=1.0).sum()) == x.numel()
    groups = trainer._augment(x, policy, plain=plain, share=0.5).view(100, -1)
    assert bool((groups == groups[:, :1]).all())  # a whole group gets the same treatment
    assert 35 <= int(groups[:, 0].sum()) <= 65


def test_the_weight_average_update_is_torchs_ema_to_the_bit_without_moving_its_counter():
    """The trainer's EMA update is ``AveragedModel.update_parameters`` with ``get_ema_multi_avg_fn`` (weights and
    BatchNorm buffers, the first update a copy, the decay ramp), written so its step counter never goes to the
    device; on the CPU both give the same bits, and the counter stays where AveragedModel put it."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    arch = ArchSpec(stem_width=4, stages=(StageSpec("conv", 1, 8, 3),))
    model = build_model(arch, 1, 2, input_size=8).train()
    ours = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    torchs = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    generator = torch.Generator().manual_seed(0)
    for update in range(4):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn(parameter.shape, generator=generator))
        model(torch.randn(4, 1, 8, 8, generator=generator))  # moves the BatchNorm statistics and counters
        trainer._update_ema(ours, model, 0.9, update)
        torchs.multi_avg_fn = get_ema_multi_avg_fn(min(0.9, (1 + update) / (10 + update)))
        torchs.update_parameters(model)
        for name, tensor in torchs.state_dict().items():
            assert torch.equal(ours.state_dict()[name], tensor), (update, name)
    assert int(ours.n_averaged) == 4 and ours.n_averaged.device.type == "cpu"
    assert not torch.equal(ours.module.stem[0].weight, model.stem[0].weight)  # an average, not a copy
