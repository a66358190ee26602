"""Multi-fidelity pruning: rebuilt from the history each call, on Optuna's pruners."""

from __future__ import annotations

import re

import pytest

from nas_core.params import TrialRecord
from nas_core.pruning import make_pruner


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
