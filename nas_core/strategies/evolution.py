"""Regularized (aging) evolution, Real et al. 2019, recomputed from the trial history on every ask.

The population is the ``population_size`` most recently *finished* trials (aging: old ones drop out however good
they were, which keeps a lucky noisy evaluation from ruling forever); a parent is the best feasible member of a
uniform tournament of ``sample_size``; its child changes exactly one active decision.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

from nas_core.params import Categorical, FloatParam, IntParam, ParamSpace, TrialRecord
from nas_core.strategies.base import SeenKeys, Strategy, derive_rng, is_finished, random_fill


@dataclass(frozen=True, slots=True)
class EvolutionStrategy(Strategy):
    """Aging evolution; the first ``population_size`` proposals of an experiment are random.

    Defaults are the best of the NAS-Bench-201 sweep at 100 evaluations (``python -m bench.nb201``).
    """

    population_size: int = 15
    sample_size: int = 12
    # Tournaments + mutations tried per proposal before falling back to a random unseen point.
    max_retries: int = 50

    name = "evolution"

    def __post_init__(self) -> None:
        if self.population_size < 1 or not 1 <= self.sample_size:
            raise ValueError("evolution needs population_size >= 1 and sample_size >= 1")

    def ask(self, space: ParamSpace, history: Sequence[TrialRecord], n: int, *, seed: int) -> list[dict]:
        rng = derive_rng(self.name, seed, history, n)
        seen = SeenKeys(space, history)
        finished = sorted((r for r in history if is_finished(r)), key=lambda r: r.number)
        population = [r for r in finished[-self.population_size:] if _fits(space, r)]
        proposals: list[dict] = []
        for index in range(n):
            child = None
            # Until P trials exist the population is still being seeded at random (running ones included).
            if len(history) + index >= self.population_size:
                child = self._evolve(space, population, rng, seen)
            if child is None:
                child = next(iter(random_fill(space, rng, seen, 1)), None)
            if child is None:
                break  # the space is exhausted
            proposals.append(child)
        return proposals

    def _evolve(self, space: ParamSpace, population: list[TrialRecord], rng: random.Random, seen: SeenKeys
                ) -> dict | None:
        for _ in range(self.max_retries):
            tournament = rng.sample(population, min(self.sample_size, len(population)))
            candidates = [r for r in tournament if r.feasible]
            if not candidates:
                continue
            # Ties go to the newer trial: under noise the fresher evaluation is the better bet for aging evolution.
            parent = max(candidates, key=lambda r: (r.value, r.number))
            child = mutate(space, parent.decisions, rng)
            if child is not None and seen.add_if_new(child):
                return child
        return None

    def settings_dict(self) -> dict:
        return {"strategy": self.name, "population_size": self.population_size, "sample_size": self.sample_size,
                "max_retries": self.max_retries}


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


def _fits(space: ParamSpace, record: TrialRecord) -> bool:
    """Only records whose decisions still fit the space can be parents (an old space version may differ)."""
    return all(label in record.decisions and param.contains(record.decisions[label])
               for label, param in space.params.items())


__all__ = ["EvolutionStrategy", "mutate"]
