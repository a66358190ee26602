"""Multi-fidelity pruning against earlier trials' learning curves, on Optuna's pruners, without hidden state.

Each call rebuilds an in-memory study from the history (every trial's per-epoch validation accuracy), adds the
current trial's curve up to this epoch and asks Optuna's pruner. A trainer callback calls ``should_prune`` once per
epoch and raises :class:`~nas_core.errors.TrialPruned` when it says so.

>>> from nas_core.params import TrialRecord
>>> good = [TrialRecord(number=i, decisions={}, status="succeeded", value=0.9,
...                     intermediate={1: 0.5, 2: 0.7, 3: 0.9}) for i in range(4)]
>>> make_pruner("median", n_startup_trials=2).should_prune(good, number=4, epoch=2, value=0.2)
True

**Pareto searches** (``minimize`` given: the score is maximised and latency, and parameters if asked, minimised;
both are known before a trial trains, so this costs nothing more). A trial is pruned at an epoch only when its score
there is *dominated* by at least ``k`` other trials' scores at the same epoch: each of those scored at least as
much there AND has no higher latency (nor more parameters, when minimised), with at least one of them strictly
better. A trial that is faster than everything better than it always goes on. ``k`` and where it is checked follow
the single-objective rule of the same pruner:

- asha: at rung epochs only (``min_resource * reduction_factor ** (min_early_stopping_rate + r)``), once
  :attr:`Pruner.min_competitors` other trials reached that epoch; with ``n`` trials at the rung (itself included),
  ``k = max(1, n // reduction_factor)`` — the trial goes on while it is in "the top ``1/reduction_factor``" in the
  Pareto sense (fewer than ``n // reduction_factor`` dominate it), as Optuna's rule keeps the top ``n //
  reduction_factor`` values.
- median: from epoch ``n_warmup_epochs`` on, once ``n_startup_trials`` trials succeeded; the trial's best score so
  far against the ``m`` succeeded trials' scores at this epoch, ``k = ceil(m / 2)`` — dominated by half of them is
  "below the median".

Competitors are the other trials of the history with a finite score at that epoch (asha: any status, as live ASHA;
median: succeeded ones); a trial without a figure to minimise cannot dominate.

>>> better = [TrialRecord(number=i, decisions={}, status="succeeded", value=0.9, intermediate={1: 0.5, 2: 0.9},
...                       costs={"latency_ms": 2.0}) for i in range(5)]
>>> asha = make_pruner("asha", reduction_factor=2)
>>> asha.should_prune(better, number=5, epoch=1, value=0.3, costs={"latency_ms": 4.0}, minimize=("latency_ms",))
True
>>> asha.should_prune(better, number=5, epoch=1, value=0.3, costs={"latency_ms": 1.0}, minimize=("latency_ms",))
False
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

from optuna.pruners import BasePruner, MedianPruner, NopPruner, SuccessiveHalvingPruner
from optuna.pruners._successive_halving import _completed_rung_key  # pinned Optuna 5.0.0: rung bookkeeping key
from optuna.trial import FrozenTrial, TrialState, create_trial

from nas_core.options import MAX_TRIALS, PRUNER_KINDS, check_options, check_range, short_repr
from nas_core.params import TrialRecord
from nas_core.ranking import dominates
from nas_core.strategies.base import in_memory_study

PrunerKind = Literal["asha", "median", "none"]
PRUNERS: tuple[str, ...] = PRUNER_KINDS
# Bounds of the settings; more epochs than this would never be reached by a trial anyway.
MAX_EPOCHS = 1000
MAX_REDUCTION_FACTOR = 100
MAX_EARLY_STOPPING_RATE = 30


@dataclass(frozen=True, slots=True)
class Pruner:
    """Stateless pruning decision: ``asha`` (asynchronous successive halving), ``median`` or ``none``.

    asha: a trial reaching rung k (epoch ``min_resource * reduction_factor**k``) goes on only if its accuracy there
    is in the top ``1/reduction_factor`` of every trial that reached that rung, once
    :attr:`min_competitors` other trials have. median: it goes on only if its best
    accuracy so far is at least the median of completed trials at the same epoch, after ``n_startup_trials``
    completed trials and ``n_warmup_epochs`` epochs.
    """

    kind: PrunerKind = "asha"
    min_resource: int = 1
    reduction_factor: int = 3
    min_early_stopping_rate: int = 0
    n_startup_trials: int = 5
    n_warmup_epochs: int = 1

    def __post_init__(self) -> None:
        if self.kind not in PRUNERS:
            raise ValueError(f"unknown pruner {short_repr(self.kind)}; choose one of {list(PRUNERS)}")
        # Upper bounds too: rung epochs grow as reduction_factor ** (min_early_stopping_rate + rung).
        check_range("asha", "min_resource", self.min_resource, 1, MAX_EPOCHS)
        check_range("asha", "reduction_factor", self.reduction_factor, 2, MAX_REDUCTION_FACTOR)
        check_range("asha", "min_early_stopping_rate", self.min_early_stopping_rate, 0, MAX_EARLY_STOPPING_RATE)
        check_range("median", "n_startup_trials", self.n_startup_trials, 0, MAX_TRIALS)
        check_range("median", "n_warmup_epochs", self.n_warmup_epochs, 0, MAX_EPOCHS)

    def should_prune(self, history: Sequence[TrialRecord], *, number: int, epoch: int, value: float,
                     costs: Mapping[str, float] | None = None, minimize: Sequence[str] = ()) -> bool:
        """True when the trial ``number``, scoring ``value`` at ``epoch`` (1-based), should stop now.

        With ``minimize`` (a Pareto search) the rule of the module docstring applies, on the trial's ``costs``.
        """
        if self.kind == "none":
            return False
        if not math.isfinite(value):
            return True  # a diverged run never recovers its accuracy
        if minimize:
            return self._dominated(history, number=number, epoch=epoch, value=value, costs=costs or {},
                                   minimize=minimize)
        if self.kind == "asha" and self._competitors(history, number=number, epoch=epoch) < self.min_competitors:
            return False
        study = in_memory_study(pruner=self._optuna_pruner())
        own_curve: dict[int, float] = {}
        for record in sorted(history, key=lambda r: r.number):
            if record.number == number:
                own_curve = {int(e): float(v) for e, v in record.intermediate.items() if int(e) < epoch}
                continue
            frozen = self._earlier_trial(record)
            if frozen is not None:
                study.add_trial(frozen)
        own_curve[epoch] = float(value)
        # Earlier epochs of this trial already passed their checks; their rungs are recorded as Optuna would have.
        study.add_trial(create_trial(state=TrialState.RUNNING, intermediate_values=own_curve,
                                     system_attrs=self._rungs(own_curve, before=epoch)))
        current = study.get_trials(deepcopy=False)[-1]
        return bool(study.pruner.prune(study, current))

    def _dominated(self, history: Sequence[TrialRecord], *, number: int, epoch: int, value: float,
                   costs: Mapping[str, float], minimize: Sequence[str]) -> bool:
        """The Pareto rule (module docstring): dominated at ``epoch`` by at least k of the competitors there."""
        own_costs = [float(costs.get(name, math.inf)) for name in minimize]
        if self.kind == "asha":
            if not self._is_rung_epoch(epoch):
                return False
            others = [r for r in history if r.number != number and r.status != "screened"]
        else:
            if epoch < self.n_warmup_epochs:
                return False
            others = [r for r in history if r.number != number and r.status == "succeeded"]
            if len(others) < self.n_startup_trials:
                return False
            own = history_curve(history, number, before=epoch)
            value = max([value, *own.values()])  # the best score so far, as Optuna's median rule
        scores = [(float(r.intermediate[epoch]), [float(r.costs.get(name, math.inf)) for name in minimize])
                  for r in others if epoch in r.intermediate and math.isfinite(r.intermediate[epoch])]
        if self.kind == "asha":
            if len(scores) < self.min_competitors:
                return False
            needed = max(1, (len(scores) + 1) // self.reduction_factor)
        else:
            if not scores:
                return False
            needed = (len(scores) + 1) // 2
        dominating = sum(1 for score, other in scores if dominates((-score, *other), (-value, *own_costs)))
        return dominating >= needed

    def _is_rung_epoch(self, epoch: int) -> bool:
        rung = 0
        while (rung_epoch := self.min_resource * self.reduction_factor ** (self.min_early_stopping_rate + rung)) \
                <= epoch:
            if rung_epoch == epoch:
                return True
            rung += 1
        return False

    @property
    def min_competitors(self) -> int:
        """ASHA prunes at a rung only once this many other trials reached it: ``2 * reduction_factor - 1``, the
        fewest with which "the top ``1/reduction_factor``" holds more than the single best. With fewer, Optuna's rule
        keeps only a trial that beats every one before it, and a newcomer (a hand-designed reference even) is cut
        because one earlier trial had a lucky start."""
        return 2 * self.reduction_factor - 1

    @staticmethod
    def _competitors(history: Sequence[TrialRecord], *, number: int, epoch: int) -> int:
        return sum(1 for record in history if record.number != number and record.status != "screened"
                   and any(int(e) >= epoch and math.isfinite(v) for e, v in record.intermediate.items()))

    def _optuna_pruner(self) -> BasePruner:
        if self.kind == "asha":
            return SuccessiveHalvingPruner(min_resource=self.min_resource, reduction_factor=self.reduction_factor,
                                           min_early_stopping_rate=self.min_early_stopping_rate)
        if self.kind == "median":
            return MedianPruner(n_startup_trials=self.n_startup_trials, n_warmup_steps=self.n_warmup_epochs)
        return NopPruner()

    def _earlier_trial(self, record: TrialRecord) -> FrozenTrial | None:
        curve = {int(e): float(v) for e, v in record.intermediate.items() if math.isfinite(v)}
        if not curve:
            return None
        attrs = self._rungs(curve, before=None)
        if record.status == "succeeded" and record.value is not None and math.isfinite(record.value):
            return create_trial(state=TrialState.COMPLETE, value=record.value, intermediate_values=curve,
                                system_attrs=attrs)
        if record.status == "pruned":
            return create_trial(state=TrialState.PRUNED, intermediate_values=curve, system_attrs=attrs)
        if record.status in ("running", "pending"):
            return create_trial(state=TrialState.RUNNING, intermediate_values=curve, system_attrs=attrs)
        # Failed / canceled runs still reached their rungs honestly: they compete there, as in live ASHA.
        return create_trial(state=TrialState.FAIL, intermediate_values=curve, system_attrs=attrs)

    def _rungs(self, curve: Mapping[int, float], *, before: int | None) -> dict[str, float]:
        """ASHA's per-rung records: the value at the first reported epoch at or after each rung's epoch."""
        if self.kind != "asha" or not curve:
            return {}
        epochs = sorted(curve)
        last = epochs[-1] if before is None else before - 1
        attrs: dict[str, float] = {}
        rung = 0
        rate = self.min_early_stopping_rate
        while (rung_epoch := self.min_resource * self.reduction_factor ** (rate + rung)) <= last:
            reached = next((e for e in epochs if rung_epoch <= e <= last), None)
            if reached is None:
                break
            attrs[_completed_rung_key(rung)] = curve[reached]
            rung += 1
        return attrs

    def settings_dict(self) -> dict:
        if self.kind == "asha":
            return {"pruner": "asha", "min_resource": self.min_resource, "reduction_factor": self.reduction_factor,
                    "min_early_stopping_rate": self.min_early_stopping_rate}
        if self.kind == "median":
            return {"pruner": "median", "n_startup_trials": self.n_startup_trials,
                    "n_warmup_epochs": self.n_warmup_epochs}
        return {"pruner": "none"}


def history_curve(history: Sequence[TrialRecord], number: int, *, before: int) -> dict[int, float]:
    """The finite scores of trial ``number``'s curve in ``history`` before epoch ``before``."""
    for record in history:
        if record.number == number:
            return {int(e): float(v) for e, v in record.intermediate.items() if int(e) < before and math.isfinite(v)}
    return {}


def make_pruner(kind: str = "asha", **settings) -> Pruner:
    """The pruner ``kind`` (``asha``, ``median``, ``none``) with ``settings`` overriding its defaults.

    Settings usually arrive as JSON: their names and types are checked first (ValueError says what is wrong).
    """
    check_options(f"pruner {kind!r}", Pruner, settings)
    return Pruner(kind=kind, **settings)  # type: ignore[arg-type]


# Weight of the validation loss in rung scores: at most this much is taken off for a loss of 10 or more.
LOSS_TIEBREAK = 0.01


def rung_score(*, val_accuracy: float, val_balanced_accuracy: float | None = None,
               val_loss: float | None = None) -> float:
    """The per-epoch figure pruning compares trials on: one that already ranks after an epoch or two.

    Balanced accuracy (mean per-class recall) rather than accuracy: on imbalanced data an early network that gives
    every image the majority class scores the majority share in accuracy, tying with every other degenerate one,
    and often beating a network that has started to separate the classes. The validation loss (capped at 10) takes
    off up to :data:`LOSS_TIEBREAK`, which orders networks whose predictions are still equal. Without a balanced
    accuracy (epochs recorded before it existed) the accuracy stands in.

    >>> rung_score(val_accuracy=0.9, val_balanced_accuracy=0.5, val_loss=0.3)
    0.4997
    """
    score = val_balanced_accuracy if val_balanced_accuracy is not None and math.isfinite(val_balanced_accuracy) \
        else val_accuracy
    if val_loss is not None:
        score -= LOSS_TIEBREAK * (min(val_loss, 10.0) / 10.0 if math.isfinite(val_loss) else 1.0)
    return score


# A finished curve "separates" at the first epoch where it has covered this share of its final gain over chance.
SEPARATION_SHARE = 0.5
# A finished curve that ends less than this above chance never separated: its last epoch is where it would have.
MIN_SEPARATION_GAIN = 0.02


def separation_epoch(history: Sequence[TrialRecord], *, chance: float) -> int | None:
    """The epoch at which learning curves separate from chance on this data: for each finished (``succeeded``)
    trial's curve of rung scores, the first epoch at which it had covered :data:`SEPARATION_SHARE` of its final gain
    over ``chance``; the median over those trials (the upper one of an even count). None before any trial finished.

    Easy data separates after an epoch or two; a cluttered photo task may still score at chance after a third of
    its epochs, and there a rung compares noise: every trial that meets a lucky competitor is pruned.

    >>> fast = TrialRecord(number=1, decisions={}, status="succeeded", value=0.9,
    ...                    intermediate={1: 0.6, 2: 0.8, 3: 0.9, 4: 0.9})
    >>> slow = TrialRecord(number=2, decisions={}, status="succeeded", value=0.5,
    ...                    intermediate={1: 0.11, 2: 0.12, 3: 0.2, 4: 0.4, 5: 0.5})
    >>> separation_epoch([fast], chance=0.1), separation_epoch([fast, slow], chance=0.1)
    (1, 4)
    """
    epochs: list[int] = []
    for record in history:
        curve = {int(e): float(v) for e, v in record.intermediate.items() if math.isfinite(v)}
        if record.status != "succeeded" or not curve:
            continue
        ordered = sorted(curve)
        gain = curve[ordered[-1]] - chance
        if gain < MIN_SEPARATION_GAIN:
            epochs.append(ordered[-1])
            continue
        target = chance + SEPARATION_SHARE * gain
        epochs.append(next(e for e in ordered if curve[e] >= target))
    if not epochs:
        return None
    epochs.sort()
    return epochs[len(epochs) // 2]


def adaptive_min_resource(history: Sequence[TrialRecord], *, epochs: int, chance: float) -> int | None:
    """ASHA's first rung when the user did not set one: a sixth of the trial's ``epochs`` (at least 1), later when
    this search's finished curves separate from ``chance`` later (:func:`separation_epoch`). None means no rung
    fits before the last epoch yet (no trial has finished, or curves separate only at the end): do not prune.

    >>> adaptive_min_resource([], epochs=12, chance=0.5) is None
    True
    """
    separated = separation_epoch(history, chance=chance)
    if separated is None:
        return None
    first = max(1, epochs // 6, separated)
    return first if first < epochs else None
