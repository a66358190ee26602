"""Multi-objective search: non-dominated sorting, crowding, hypervolume, Pareto strategies and the Pareto pruning
rule, each against a brute-force reference."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import nb201
from nas_core.params import Categorical, ParamSpace, TrialRecord
from nas_core.pruning import make_pruner
from nas_core.ranking import crowding_distances, dominates, hypervolume_2d, pareto_layers
from nas_core.strategies import make_strategy
from nas_core.strategies.base import fits


def _brute_dominates(a, b) -> bool:
    return all(x <= y for x, y in zip(a, b)) and a != b


def _brute_layers(costs) -> list[int]:
    layers = [0] * len(costs)
    remaining = set(range(len(costs)))
    layer = 0
    while remaining:
        layer += 1
        front = {i for i in remaining if not any(_brute_dominates(costs[j], costs[i]) for j in remaining)}
        for i in front:
            layers[i] = layer
        remaining -= front
    return layers


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 3).flatmap(
    lambda width: st.lists(st.tuples(*[st.integers(0, 4)] * width), max_size=40)))
def test_pareto_layers_match_peeling_fronts_by_brute_force(points):
    costs = [tuple(float(c) for c in point) for point in points]
    assert pareto_layers(costs) == _brute_layers(costs)


def test_pareto_layers_take_infinite_costs_and_refuse_nan():
    assert pareto_layers([(0.0, math.inf), (1.0, 1.0), (math.inf, math.inf)]) == [1, 1, 2]
    assert pareto_layers([]) == []
    with pytest.raises(ValueError):
        pareto_layers([(0.0, math.nan)])
    assert dominates((1, 1), (1, 2)) and not dominates((1, 1), (1, 1))


def _brute_crowding(costs) -> list[float]:
    n, distances = len(costs), []
    for i in range(n):
        if n <= 2:
            distances.append(math.inf)
            continue
        total = 0.0
        for axis in range(len(costs[0])):
            order = sorted(range(n), key=lambda k: costs[k][axis])
            position = order.index(i)
            if position in (0, n - 1):
                total = math.inf
                break
            span = costs[order[-1]][axis] - costs[order[0]][axis]
            if span > 0:
                total += (costs[order[position + 1]][axis] - costs[order[position - 1]][axis]) / span
        distances.append(total)
    return distances


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10), st.floats(0, 10)), min_size=1, max_size=25, unique=True))
def test_crowding_distances_match_the_nsga2_definition(points):
    # distinct points on both axes, so the sort order (and which point is an extreme) is unambiguous
    if len({p[0] for p in points}) < len(points) or len({p[1] for p in points}) < len(points):
        return
    assert crowding_distances(points) == pytest.approx(_brute_crowding(points))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), max_size=12))
def test_hypervolume_2d_counts_the_dominated_unit_cells(points):
    reference = (8, 8)
    cells = sum(1 for x, y in itertools.product(range(8), range(8))
                if any(px <= x and py <= y for px, py in points))
    assert hypervolume_2d(points, reference) == cells


def _toy_space() -> ParamSpace:
    return ParamSpace({f"x{i}": Categorical((0, 1, 2, 3)) for i in range(4)})


def _toy_evaluate(decisions: dict) -> tuple[float, float]:
    """Accuracy grows with the sum of the decisions, latency with its square: a real trade-off."""
    total = sum(decisions.values())
    return 0.5 + 0.03 * total + 0.01 * decisions["x0"], 1.0 + 0.1 * total ** 2 - 0.2 * decisions["x3"]


@pytest.mark.parametrize("strategy_name", ["evolution", "tpe"])
def test_pareto_strategies_propose_valid_unseen_candidates(strategy_name):
    space = _toy_space()
    strategy = make_strategy(strategy_name, **({"population_size": 8, "sample_size": 3} if strategy_name ==
                                                 "evolution" else {}))
    history: list[TrialRecord] = []
    for number in range(40):
        proposals = strategy.ask(space, history, 2, seed=3, budget=40, minimize=("latency_ms", "params"))
        assert len(proposals) == 2
        for decisions in proposals:
            record = TrialRecord(number=number, decisions=decisions, status="succeeded")
            assert fits(space, record)
            assert space.key(decisions) not in {space.key(r.decisions) for r in history}
        accuracy, latency = _toy_evaluate(proposals[0])
        history.append(TrialRecord(number=number, decisions=proposals[0], status="succeeded", value=accuracy,
                                   costs={"latency_ms": latency, "params": float(number % 5)}))
        # a running and a pruned record, as the service's history holds them
        history.append(TrialRecord(number=1000 + number, decisions=proposals[1],
                                   status="running" if number % 2 else "pruned", value=None if number % 2 else 0.4,
                                   intermediate={1: 0.4}, costs={"latency_ms": 2.0}))
    again = strategy.ask(space, history[:30], 3, seed=3, budget=40, minimize=("latency_ms",))
    assert again == strategy.ask(space, history[:30], 3, seed=3, budget=40, minimize=("latency_ms",))


def test_pareto_search_finds_more_hypervolume_on_nb201_than_maximising_accuracy_alone():
    seeds = range(2)
    for name in ("evolution", "tpe"):
        single = statistics.fmean(nb201.run_once_pareto(name, (), 40, seed) for seed in seeds)
        pareto = statistics.fmean(nb201.run_once_pareto(name, ("latency_ms",), 40, seed) for seed in seeds)
        assert pareto > single + 0.02, (name, single, pareto)


def _brute_prune(pruner, history, *, number, epoch, value, costs, minimize) -> bool:
    """The documented rule, written out independently of the implementation."""
    own = [costs.get(name, math.inf) for name in minimize]
    if pruner.kind == "asha":
        rungs = {pruner.min_resource * pruner.reduction_factor ** (pruner.min_early_stopping_rate + r)
                 for r in range(12)}
        if epoch not in rungs:
            return False
        pool = [r for r in history if r.number != number and r.status != "screened"]
    else:
        if epoch < pruner.n_warmup_epochs:
            return False
        pool = [r for r in history if r.number != number and r.status == "succeeded"]
        if len(pool) < pruner.n_startup_trials:
            return False
        mine = next((r for r in history if r.number == number), None)
        earlier = [v for e, v in (mine.intermediate.items() if mine else ()) if e < epoch]
        value = max([value, *earlier])
    at_epoch = [r for r in pool if epoch in r.intermediate]
    if pruner.kind == "asha" and len(at_epoch) < 2 * pruner.reduction_factor - 1:
        return False
    if not at_epoch:
        return False
    needed = max(1, (len(at_epoch) + 1) // pruner.reduction_factor) if pruner.kind == "asha" \
        else math.ceil(len(at_epoch) / 2)
    dominating = 0
    for record in at_epoch:
        theirs = [record.costs.get(name, math.inf) for name in minimize]
        if _brute_dominates((-record.intermediate[epoch], *theirs), (-value, *own)):
            dominating += 1
    return dominating >= needed


@pytest.mark.parametrize("kind", ["asha", "median"])
def test_pareto_pruning_matches_the_documented_rule_on_random_histories(kind):
    rng = random.Random(11)
    pruned = kept = 0
    for case in range(1000):
        minimize = rng.choice([("latency_ms",), ("latency_ms", "params"), ("params",)])
        settings_ = {"reduction_factor": rng.choice([2, 3])} if kind == "asha" else \
            {"n_startup_trials": rng.randint(0, 4), "n_warmup_epochs": rng.randint(0, 2)}
        pruner = make_pruner(kind, **settings_)
        history = []
        for number in range(rng.randint(0, 14)):
            epochs = rng.randint(0, 9)
            curve = {e: round(rng.random(), 1) for e in range(1, epochs + 1)}
            figures = {"latency_ms": float(rng.randint(1, 4)), "params": float(rng.randint(1, 4))}
            if rng.random() < 0.1:
                figures.pop("latency_ms")
            history.append(TrialRecord(number=number, decisions={}, intermediate=curve, costs=figures,
                                       status=rng.choice(["succeeded", "pruned", "running", "failed", "screened"])))
        number = len(history) + rng.choice([0, 0, -1]) if history else 0
        epoch = rng.randint(1, 9)
        value = round(rng.random(), 1)
        costs = {"latency_ms": float(rng.randint(1, 4)), "params": float(rng.randint(1, 4))}
        expected = _brute_prune(pruner, history, number=number, epoch=epoch, value=value, costs=costs,
                                minimize=minimize)
        assert pruner.should_prune(history, number=number, epoch=epoch, value=value, costs=costs,
                                   minimize=minimize) == expected, case
        pruned += expected
        kept += not expected
    assert pruned > 20 and kept > 20  # both outcomes were exercised


def test_a_faster_trial_is_not_pruned_by_slower_better_ones_and_a_slower_one_is():
    better = [TrialRecord(number=i, decisions={}, status="succeeded", value=0.9, intermediate={1: 0.8, 2: 0.9},
                          costs={"latency_ms": 3.0}) for i in range(6)]
    asha = make_pruner("asha", reduction_factor=3)
    kwargs = {"number": 9, "epoch": 1, "value": 0.2, "minimize": ("latency_ms",)}
    assert not asha.should_prune(better, costs={"latency_ms": 2.9}, **kwargs)
    assert asha.should_prune(better, costs={"latency_ms": 3.0}, **kwargs)
    # the single-objective rule, for comparison, prunes on the score alone
    assert asha.should_prune(better, number=9, epoch=1, value=0.2)
