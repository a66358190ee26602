"""What every strategy shares: the ask interface, seeded randomness derived from the history, and de-duplication.

A strategy is a pure function of ``(space, history, n, seed, settings, minimize)``: it keeps nothing between calls,
so any worker can continue any experiment after a crash with the history rebuilt from the database. A warm start's
seeded records (trials of earlier searches, ``TrialRecord.seeded``) are history like any other to ``tpe`` and
``evolution``: they shape the model and the population, are not proposed again, and count as the earlier part of
one longer search when phases are placed in the budget (:func:`planned_trials`); ``random`` ignores them. ``minimize``
names the figures a multi-objective search minimises next to the maximised ``value`` (``latency_ms``, ``params``:
each record's ``costs``); empty, the search maximises ``value`` alone.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from abc import ABC, abstractmethod
from typing import Any, Mapping, Sequence

import optuna
from optuna.storages import InMemoryStorage

from nas_core.params import Categorical, FloatParam, IntParam, ParamSpace, TrialRecord
from nas_core.ranking import crowding_distances, pareto_layers

# Enumerating the unseen points of a finite space is the last resort once random draws keep colliding.
_ENUMERATION_LIMIT = 200_000


class _DropStudyCreatedMessage(logging.Filter):
    """A study is rebuilt on every call; Optuna's INFO line for each would flood every worker's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("A new study created in memory")


logging.getLogger("optuna.storages._in_memory").addFilter(_DropStudyCreatedMessage())


def in_memory_study(*, minimize: Sequence[str] = (), **kwargs: Any) -> optuna.Study:
    """A fresh Optuna study in memory that maximises the value, and minimises each of ``minimize`` after it (a
    multi-objective study when there are any); its name is fixed so results are reproducible."""
    if minimize:
        return optuna.create_study(storage=InMemoryStorage(), directions=["maximize", *["minimize"] * len(minimize)],
                                   study_name="nas", **kwargs)
    return optuna.create_study(storage=InMemoryStorage(), direction="maximize", study_name="nas", **kwargs)


class Strategy(ABC):
    """Proposes new points of a :class:`ParamSpace` from the trial history."""

    name: str = ""

    @abstractmethod
    def ask(self, space: ParamSpace, history: Sequence[TrialRecord], n: int, *, seed: int,
            budget: int | None = None, minimize: Sequence[str] = ()) -> list[dict]:
        """Return ``n`` valid decision dicts (every label set), distinct from each other and from ``history``.

        Fewer than ``n`` come back only when the space has no unseen point left. ``budget`` is the number of trials
        the search will run in all, when known: strategies that work in phases (a start-up, a final refinement)
        place them within it; without it they fall back to fixed trial counts. ``minimize``: the records' costs to
        minimise next to their value (a Pareto search); empty, the value alone is maximised.
        """

    @abstractmethod
    def settings_dict(self) -> dict:
        """The effective settings, JSON-serialisable, recorded with the experiment for reproducibility."""


def derive_rng(name: str, seed: int, history: Sequence[TrialRecord], n: int) -> random.Random:
    """A RNG that is a pure function of its inputs; str seeds hash with SHA-512, so it is stable across processes."""
    return random.Random(f"{name}:{seed}:{len(history)}:{n}")


def planned_trials(budget: int | None, history: Sequence[TrialRecord]) -> int | None:
    """The length of the whole search a strategy places its phases in: the experiment's own ``budget`` plus the
    seeded records of a warm start (the earlier search it continues), None when the budget is unknown.

    >>> planned_trials(50, [TrialRecord(number=-1, decisions={}, status="succeeded", value=0.9, seeded=True)])
    51
    """
    return None if budget is None else budget + sum(1 for record in history if record.seeded)


def is_finished(record: TrialRecord) -> bool:
    """A trial that produced an objective value (full or, when pruned, lower fidelity)."""
    return record.status in ("succeeded", "pruned") and record.value is not None and math.isfinite(record.value)


def objective_costs(record: TrialRecord, minimize: Sequence[str]) -> tuple[float, ...]:
    """A finished record as a cost vector, every axis minimised: its value negated, then each of ``minimize`` from
    its ``costs`` (a missing figure is infinitely bad)."""
    value = record.value if record.value is not None and math.isfinite(record.value) else -math.inf
    return (-value, *(float(record.costs.get(name, math.inf)) for name in minimize))


def pareto_keys(records: Sequence[TrialRecord], minimize: Sequence[str]) -> dict[int, tuple[int, float]]:
    """NSGA-II's order of ``records`` by number: (Pareto layer, crowding distance within the layer); the better
    record has the lower layer, then the larger distance (it keeps the front spread)."""
    costs = [objective_costs(record, minimize) for record in records]
    layers = pareto_layers(costs)
    keys: dict[int, tuple[int, float]] = {}
    for layer in set(layers):
        members = [index for index, value in enumerate(layers) if value == layer]
        for index, distance in zip(members, crowding_distances([costs[i] for i in members])):
            keys[records[index].number] = (layer, distance)
    return keys


class SeenKeys:
    """Keys of every point in the history plus the ones proposed so far in this call."""

    def __init__(self, space: ParamSpace, history: Sequence[TrialRecord]) -> None:
        self.space = space
        self.keys: set[str] = set()
        for record in history:
            key = safe_key(space, record.decisions)
            if key is not None:
                self.keys.add(key)

    def add_if_new(self, decisions: Mapping[str, Any]) -> bool:
        key = self.space.key(decisions)
        if key in self.keys:
            return False
        self.keys.add(key)
        return True


def safe_key(space: ParamSpace, decisions: Mapping[str, Any]) -> str | None:
    """``space.key`` for a record that may predate a change of the space (then it cannot collide: None)."""
    try:
        return space.key(decisions)
    except (KeyError, TypeError):
        return None


def random_fill(space: ParamSpace, rng: random.Random, seen: SeenKeys, count: int, *, max_tries: int = 200
                ) -> list[dict]:
    """Up to ``count`` uniformly random new points; falls back to enumerating a small finite space's unseen points."""
    proposals: list[dict] = []
    tries = 0
    while len(proposals) < count and tries < max_tries * count:
        tries += 1
        candidate = space.sample(rng)
        if seen.add_if_new(candidate):
            proposals.append(candidate)
    if len(proposals) < count:
        proposals.extend(_enumerate_unseen(space, rng, seen, count - len(proposals)))
    return proposals


def _enumerate_unseen(space: ParamSpace, rng: random.Random, seen: SeenKeys, count: int) -> list[dict]:
    domains = [_finite_domain(param) for param in space.params.values()]
    if any(domain is None for domain in domains) or math.prod(len(d) for d in domains) > _ENUMERATION_LIMIT:
        return []  # a continuous or huge space is not exhausted in practice: random draws were just unlucky
    unseen: dict[str, dict] = {}
    for values in itertools.product(*domains):
        decisions = dict(zip(space.labels(), values))
        key = space.key(decisions)
        if key not in seen.keys and key not in unseen:
            unseen[key] = decisions
    chosen = rng.sample(sorted(unseen), min(count, len(unseen)))
    for key in chosen:
        seen.keys.add(key)
    return [unseen[key] for key in chosen]


def _finite_domain(param: Categorical | IntParam | FloatParam) -> list | None:
    if isinstance(param, Categorical):
        return list(param.choices)
    if isinstance(param, IntParam):
        return list(range(param.low, param.high + 1, param.step))
    return [param.low] if param.low == param.high else None


def suggestion_order(space: ParamSpace) -> list[str]:
    """Labels ordered so that every condition's label comes before the labels it switches on."""
    ordered: list[str] = []
    pending = space.labels()
    while pending:
        ready = [label for label in pending
                 if space.params[label].condition is None or space.params[label].condition.label in ordered]
        if not ready:  # a cycle of conditions: keep declaration order rather than loop forever
            ready = pending[:1]
        ordered.extend(ready)
        pending = [label for label in pending if label not in ready]
    return ordered


def fits(space: ParamSpace, record: TrialRecord) -> bool:
    """Whether a record's decisions fit the space: a record made under an older version of the space may not."""
    return all(label in record.decisions and param.contains(record.decisions[label])
               for label, param in space.params.items())


def mutate(space: ParamSpace, parent: dict[str, Any], rng: random.Random) -> dict | None:
    """A copy of ``parent`` with exactly one active decision changed; None when no decision can change."""
    mutable = [label for label in space.active_labels(parent) if _has_alternative(space.params[label])]
    if not mutable:
        return None
    label = rng.choice(mutable)
    child = {label_: parent[label_] for label_ in space.labels()}
    child[label] = _other_value(space.params[label], parent[label], rng)
    return child


def _has_alternative(param: Categorical | IntParam | FloatParam) -> bool:
    if isinstance(param, Categorical):
        return len(param.choices) > 1
    return param.high > param.low


def _other_value(param: Categorical | IntParam | FloatParam, current: Any, rng: random.Random) -> Any:
    if isinstance(param, Categorical):
        return rng.choice([c for c in param.choices if c != current])
    if isinstance(param, IntParam):
        values = [v for v in range(param.low, param.high + 1, param.step) if v != current]
        return rng.choice(values)
    while True:  # a continuous draw equals the current value with probability zero; loop for the exact case
        value = param.sample(rng)
        if value != current:
            return value
