"""Multi-fidelity pruning: rebuilt from the history each call, on Optuna's pruners."""

from __future__ import annotations

import re

import pytest

from nas_core.params import TrialRecord
from nas_core.pruning import adaptive_min_resource, make_pruner, separation_epoch


def _finished(count: int, *, epochs: int = 9) -> list[TrialRecord]:
    """Earlier trials learning steadily to about 0.9, with a little spread between them."""
    records = []
    for number in range(count):
        curve = {epoch: round(0.4 + 0.5 * epoch / epochs - 0.01 * number, 4) for epoch in range(1, epochs + 1)}
        records.append(TrialRecord(number=number, decisions={}, status="succeeded", value=curve[epochs],
                                   intermediate=curve))
    return records


@pytest.mark.parametrize("kind", ["asha", "median"])
def test_prunes_a_clearly_bad_curve_and_keeps_a_good_one(kind):
    history = _finished(6)
    pruner = make_pruner(kind)
    assert pruner.should_prune(history, number=6, epoch=3, value=0.12)
    assert not pruner.should_prune(history, number=6, epoch=3, value=0.62)
    assert pruner.should_prune(history, number=6, epoch=3, value=float("nan"))


def test_none_never_prunes():
    assert not make_pruner("none").should_prune(_finished(6), number=6, epoch=3, value=0.0)


def test_asha_checks_only_at_rungs_and_remembers_the_passed_ones():
    history = _finished(6)
    pruner = make_pruner("asha", min_resource=1, reduction_factor=3)  # rungs at epochs 1, 3, 9
    running = TrialRecord(number=6, decisions={}, status="running", intermediate={1: 0.5})
    # Epoch 2 is between rungs: rung 0 (epoch 1) was passed already, so even a poor value goes on.
    assert not pruner.should_prune(history + [running], number=6, epoch=2, value=0.2)
    # At the next rung the same poor value is compared with everyone's epoch-3 accuracy.
    assert pruner.should_prune(history + [running], number=6, epoch=3, value=0.2)


def test_asha_counts_pruned_and_running_trials_at_their_rungs():
    # Only pruned and running competitors exist, all strong at epoch 1: a weak newcomer is cut there.
    strong = [TrialRecord(number=n, decisions={}, status="pruned" if n % 2 else "running",
                          value=None, intermediate={1: 0.8 + 0.01 * n}) for n in range(6)]
    pruner = make_pruner("asha")
    assert pruner.should_prune(strong, number=6, epoch=1, value=0.3)
    assert not pruner.should_prune(strong, number=6, epoch=1, value=0.9)


def test_median_waits_for_startup_trials_and_warmup():
    pruner = make_pruner("median", n_startup_trials=5, n_warmup_epochs=2)
    assert not pruner.should_prune(_finished(3), number=3, epoch=4, value=0.0)  # too few completed trials
    assert not pruner.should_prune(_finished(6), number=6, epoch=1, value=0.0)  # still warming up
    assert pruner.should_prune(_finished(6), number=6, epoch=4, value=0.0)


def test_stateless_and_validated():
    history = _finished(6)
    pruner = make_pruner("asha")
    answers = {pruner.should_prune(history, number=6, epoch=3, value=0.55) for _ in range(3)}
    assert len(answers) == 1
    assert pruner.settings_dict() == {"pruner": "asha", "min_resource": 1, "reduction_factor": 3,
                                      "min_early_stopping_rate": 0}
    with pytest.raises(ValueError, match="unknown pruner"):
        make_pruner("hyperband")
    with pytest.raises(ValueError, match="invalid settings"):
        make_pruner("asha", eta=3)
    # Settings arrive as JSON: a wrong type is refused up front, not inside Optuna in the middle of a trial.
    for kind, settings, message in [("asha", {"min_resource": 1.5}, "min_resource must be an integer, not 1.5"),
                                    ("asha", {"reduction_factor": True}, "reduction_factor must be an integer"),
                                    ("median", {"n_startup_trials": "5"}, "n_startup_trials must be an integer"),
                                    ("median", {"n_warmup_epochs": -1}, "n_warmup_epochs >= 0"),
                                    ("asha", {"eta": 3}, "unknown setting 'eta'; known: kind, min_resource"),
                                    # Bounded above too: rungs grow as reduction_factor ** min_early_stopping_rate.
                                    ("asha", {"min_early_stopping_rate": 10**9}, "min_early_stopping_rate >= 0"),
                                    ("asha", {"reduction_factor": 10**9}, "reduction_factor >= 2 and <= 100"),
                                    ("asha", {"min_resource": 10**30}, "min_resource >= 1 and <= 1000"),
                                    ("median", {"n_startup_trials": 10**30}, "n_startup_trials"),
                                    ("median", {"n_warmup_epochs": 10**9}, "n_warmup_epochs >= 0 and <= 1000")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            make_pruner(kind, **settings)


def _curve(number: int, values: list[float], status: str = "succeeded") -> TrialRecord:
    curve = {epoch: value for epoch, value in enumerate(values, start=1)}
    return TrialRecord(number=number, decisions={}, status=status, value=values[-1], intermediate=curve)


def test_the_first_rung_waits_until_curves_separate_from_chance():
    # Ten classes: chance is 0.1. This curve stays at chance for five epochs of twelve, then learns.
    late = _curve(1, [0.11, 0.12, 0.11, 0.13, 0.15, 0.2, 0.26, 0.3, 0.33, 0.35, 0.36, 0.37])
    assert separation_epoch([late], chance=0.1) == 7  # first epoch at or above 0.1 + 0.5 * 0.27
    assert adaptive_min_resource([late], epochs=12, chance=0.1) == 7
    # Easy data separates at once: the first rung stays at a sixth of the epochs.
    early = _curve(2, [0.8, 0.9, 0.95, 0.96, 0.97, 0.97, 0.98, 0.98, 0.98, 0.98, 0.98, 0.98])
    assert adaptive_min_resource([early], epochs=12, chance=0.1) == 2
    # The median over finished trials; pruned and running curves do not count, they never reached the end.
    later = _curve(3, [0.1] * 8 + [0.2, 0.3, 0.4, 0.5])
    assert separation_epoch([early, late, later, _curve(4, [0.1] * 3, "pruned")], chance=0.1) == 7
    assert separation_epoch([early, late, _curve(3, [0.5] * 12)], chance=0.1) == 1


def test_no_rung_before_a_trial_finished_or_when_curves_never_separate():
    assert adaptive_min_resource([], epochs=12, chance=0.5) is None
    assert adaptive_min_resource([_curve(1, [0.5, 0.6], "running")], epochs=12, chance=0.5) is None
    flat = _curve(1, [0.1] * 11 + [0.11])  # never separated: its last epoch, which leaves no rung before the end
    assert separation_epoch([flat], chance=0.1) == 12
    assert adaptive_min_resource([flat], epochs=12, chance=0.1) is None


def test_a_late_first_rung_keeps_a_slow_starter_that_an_early_rung_would_cut():
    # The finished trial leapt ahead at epoch 2 by luck of its start; the newcomer is still at chance there.
    leaders = [_curve(n, [0.1, 0.16 + 0.01 * n, 0.2, 0.25, 0.3, 0.34, 0.38, 0.4, 0.42, 0.44, 0.45, 0.46])
               for n in range(1, 6)]
    newcomer_at_2 = 0.11
    assert make_pruner("asha", min_resource=2).should_prune(leaders, number=6, epoch=2, value=newcomer_at_2)
    first = adaptive_min_resource(leaders, epochs=12, chance=0.1)
    assert first == 5
    assert not make_pruner("asha", min_resource=first).should_prune(leaders, number=6, epoch=2,
                                                                    value=newcomer_at_2)


def test_asha_prunes_at_a_rung_only_once_enough_trials_reached_it():
    pruner = make_pruner("asha", min_resource=2, reduction_factor=3)
    assert pruner.min_competitors == 5
    strong = [_curve(n, [0.5, 0.8, 0.85, 0.9]) for n in range(1, 7)]
    # One lucky earlier trial is no reason to cut a newcomer, nor are four: "the top third" of five is the best.
    assert not pruner.should_prune(strong[:1], number=7, epoch=2, value=0.3)
    assert not pruner.should_prune(strong[:4], number=7, epoch=2, value=0.3)
    # Five trials that reached epoch 2 make a rung that ranks; ones that stopped before it (or were screened) don't.
    assert pruner.should_prune(strong[:5], number=7, epoch=2, value=0.3)
    short = [_curve(n, [0.5], "pruned") for n in range(10, 20)]
    assert not pruner.should_prune(strong[:4] + short, number=7, epoch=2, value=0.3)
    assert not pruner.should_prune(strong[:5], number=7, epoch=2, value=0.85)
