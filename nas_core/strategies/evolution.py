"""Regularized (aging) evolution, Real et al. 2019, recomputed from the trial history on every ask.

The population is the ``population_size`` most recently *finished* trials (aging: old ones drop out however good
they were, which keeps a lucky noisy evaluation from ruling forever); a parent is the best feasible member of a
uniform tournament of ``sample_size``; its child changes exactly one active decision.

The start-up population comes from TPE by default rather than uniform draws: one-decision mutations climb well but
cannot leave a basin, and a random start-up lands in a poor one (a local optimum far from the best region) in about
one search in six on NAS-Bench-201; TPE's start-up lands there in one in twenty.

A Pareto search (``minimize`` given: maximise the value, minimise latency and/or parameters) keeps everything but
the tournament's winner: the population's feasible members are sorted into Pareto layers (non-dominated sorting over
value and the minimised costs), and a tournament goes to the lowest layer, then to the largest NSGA-II crowding
distance within it (the lonelier point keeps the front spread), then to the newer trial. The TPE start-up is then
multi-objective too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from nas_core.options import MAX_TRIALS, check_range, short_repr
from nas_core.params import ParamSpace, TrialRecord
from nas_core.strategies.base import (SeenKeys, Strategy, derive_rng, fits, is_finished, mutate, pareto_keys,
                                      planned_trials, random_fill)
from nas_core.strategies.tpe import TPEStrategy


STARTUPS = ("tpe", "random")
MAX_POPULATION = 1000  # population and tournament sizes
MAX_RETRIES = 1000  # tournaments + mutations per proposal


@dataclass(frozen=True, slots=True)
class EvolutionStrategy(Strategy):
    """Aging evolution after a start-up of ``startup_trials`` proposals drawn by ``startup`` ("tpe" or "random").

    ``startup_trials`` None: for a TPE start-up ``startup_fraction`` of the search's budget when it is known, else
    ``population_size``; a random start-up is one population (classic aging evolution).
    Defaults are the best of the NAS-Bench-201 sweep at 100 evaluations (``python -m bench.nb201``): a TPE start-up
    of half the budget, then P=25, S=10 — 91.491 (seeds 0..199) and 91.485 (200..399), against 91.440 and 91.446
    for the best random start-up (P=15, S=12, start-up P).
    """

    population_size: int = 25
    sample_size: int = 10
    startup: str = "tpe"
    startup_fraction: float = 0.5
    startup_trials: int | None = None
    # Tournaments + mutations tried per proposal before falling back to a random unseen point.
    max_retries: int = 50

    name = "evolution"

    def __post_init__(self) -> None:
        # Upper bounds too: ask() runs under the experiment's lock, and its loops grow with these settings.
        check_range(self.name, "population_size", self.population_size, 1, MAX_POPULATION)
        check_range(self.name, "sample_size", self.sample_size, 1, MAX_POPULATION)
        check_range(self.name, "max_retries", self.max_retries, 0, MAX_RETRIES)
        if self.startup not in STARTUPS:
            raise ValueError(f"startup must be one of {list(STARTUPS)}, not {short_repr(self.startup)}")
        if not 0.0 <= self.startup_fraction < 1.0:
            raise ValueError("startup_fraction must be in [0, 1)")
        if self.startup_trials is not None:
            check_range(self.name, "startup_trials", self.startup_trials, 0, MAX_TRIALS)

    def startup_count(self, budget: int | None) -> int:
        """How many proposals (running ones included) come from the start-up before evolution begins."""
        if self.startup_trials is not None:
            return self.startup_trials
        if budget is None or self.startup == "random":
            return self.population_size  # classic aging evolution: one random population
        return round(self.startup_fraction * budget)

    def ask(self, space: ParamSpace, history: Sequence[TrialRecord], n: int, *, seed: int,
            budget: int | None = None, minimize: Sequence[str] = ()) -> list[dict]:
        rng = derive_rng(self.name, seed, history, n)
        seen = SeenKeys(space, history)
        finished = sorted((r for r in history if is_finished(r)), key=lambda r: r.number)
        population = [r for r in finished[-self.population_size:] if fits(space, r)]
        # screened-out candidates (never trained) do not use up the start-up
        proposed = sum(1 for r in history if r.status != "screened")
        # a warm start's seeded records are the earlier part of the search: they fill (part of) the start-up
        startup_left = max(0, min(n, self.startup_count(planned_trials(budget, history)) - proposed))
        proposals: list[dict] = []
        if self.startup == "tpe" and startup_left:
            proposals = TPEStrategy(refine_fraction=0.0).ask(space, history, startup_left, seed=seed,
                                                             minimize=minimize)
            for proposal in proposals:
                seen.add_if_new(proposal)
        fitness = self._fitness(population, minimize)
        for index in range(len(proposals), n):
            child = None
            # A random start-up (or what TPE could not fill) draws uniformly; after it, children of tournaments.
            if index >= startup_left:
                child = self._evolve(space, population, fitness, rng, seen)
            if child is None:
                child = next(iter(random_fill(space, rng, seen, 1)), None)
            if child is None:
                break  # the space is exhausted
            proposals.append(child)
        return proposals

    @staticmethod
    def _fitness(population: list[TrialRecord], minimize: Sequence[str]) -> dict[int, tuple]:
        """What a tournament maximises, by trial number: the value alone, or in a Pareto search (lower layer,
        larger crowding distance) over the population's feasible members. Ties go to the newer trial: under noise
        the fresher evaluation is the better bet for aging evolution."""
        feasible = [r for r in population if r.feasible]
        if not minimize:
            return {r.number: (r.value, r.number) for r in feasible}
        return {number: (-layer, distance, number)
                for number, (layer, distance) in pareto_keys(feasible, minimize).items()}

    def _evolve(self, space: ParamSpace, population: list[TrialRecord], fitness: dict[int, tuple],
                rng: random.Random, seen: SeenKeys) -> dict | None:
        for _ in range(self.max_retries):
            tournament = rng.sample(population, min(self.sample_size, len(population)))
            candidates = [r for r in tournament if r.feasible]
            if not candidates:
                continue
            parent = max(candidates, key=lambda r: fitness[r.number])
            child = mutate(space, parent.decisions, rng)
            if child is not None and seen.add_if_new(child):
                return child
        return None

    def settings_dict(self) -> dict:
        return {"strategy": self.name, "population_size": self.population_size, "sample_size": self.sample_size,
                "startup": self.startup, "startup_fraction": self.startup_fraction,
                "startup_trials": self.startup_trials, "max_retries": self.max_retries}


__all__ = ["STARTUPS", "EvolutionStrategy", "mutate"]
