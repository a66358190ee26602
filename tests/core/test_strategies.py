"""Strategies: valid, distinct, deterministic proposals from a history, with conditional spaces and running trials."""

from __future__ import annotations

import random
import re
import statistics

import pytest
from optuna.trial import TrialState

from nas_core.params import Categorical, Condition, FloatParam, IntParam, ParamSpace, TrialRecord
from nas_core.strategies import STRATEGIES, EvolutionStrategy, TPEStrategy, make_strategy
from nas_core.strategies.evolution import mutate
from nas_core.strategies.tpe import to_frozen_trial

FLAT = ParamSpace({f"op{i}": Categorical(("a", "b", "c", "d")) for i in range(4)})
CONDITIONAL = ParamSpace({
    "num_stages": IntParam(2, 4),
    "stage1/kernel": Categorical((3, 5, 7)),
    "stage3/kernel": Categorical((3, 5, 7), condition=Condition("num_stages", 3)),
    "stage4/kernel": Categorical((3, 5, 7), condition=Condition("num_stages", 4)),
    "lr": FloatParam(1e-4, 1e-1, log=True),
})


def _history(space: ParamSpace, count: int, *, running: int = 0, seed: int = 0) -> list[TrialRecord]:
    rng = random.Random(seed)
    records = []
    for number in range(count + running):
        decisions = space.sample(rng)
        if number < count:
            records.append(TrialRecord(number=number, decisions=decisions, status="succeeded", value=rng.random()))
        else:
            records.append(TrialRecord(number=number, decisions=decisions, status="running"))
    return records


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.parametrize("space", [FLAT, CONDITIONAL], ids=["flat", "conditional"])
def test_proposals_are_valid_complete_and_new(name, space):
    history = _history(space, 14, running=3)
    proposals = make_strategy(name).ask(space, history, 6, seed=3)
    assert len(proposals) == 6
    keys = [space.key(p) for p in proposals]
    assert len(set(keys)) == 6
    assert not set(keys) & {space.key(r.decisions) for r in history}  # running trials included
    for proposal in proposals:
        assert space.validate(proposal) == proposal
        assert set(proposal) == set(space.labels())  # inactive labels are filled too


@pytest.mark.parametrize("name", STRATEGIES)
def test_deterministic_for_a_seed_and_different_across_seeds(name):
    history = _history(CONDITIONAL, 25, running=2)
    strategy = make_strategy(name)
    first = strategy.ask(CONDITIONAL, history, 4, seed=11)
    assert first == make_strategy(name).ask(CONDITIONAL, list(history), 4, seed=11)
    assert first != strategy.ask(CONDITIONAL, history, 4, seed=12)
    # A longer history changes the derived RNG, so the next ask does not replay the previous one.
    grown = history + [TrialRecord(number=100, decisions=first[0], status="running")]
    assert first[1:] != strategy.ask(CONDITIONAL, grown, 4, seed=11)[:3]


@pytest.mark.parametrize("name", STRATEGIES)
def test_inactive_decisions_do_not_make_a_point_new(name):
    space = ParamSpace({"n": IntParam(1, 2), "a": Categorical(("x", "y"), condition=Condition("n", 2))})
    history = [TrialRecord(number=0, decisions={"n": 1, "a": "x"}, status="succeeded", value=0.5)]
    proposals = make_strategy(name).ask(space, history, 5, seed=0)
    # {"n": 1, "a": "y"} is the same architecture as trial 0; only the two n=2 points are new, then it is exhausted.
    assert sorted((p["n"], p["a"]) for p in proposals) == [(2, "x"), (2, "y")]
    exhausted = history + [TrialRecord(number=i + 1, decisions=p, status="succeeded", value=0.1)
                           for i, p in enumerate(proposals)]
    assert make_strategy(name).ask(space, exhausted, 1, seed=0) == []


def test_settings_are_recorded_and_validated():
    assert set(STRATEGIES) == {"random", "tpe", "evolution"}
    assert make_strategy("evolution", population_size=7).settings_dict()["population_size"] == 7
    assert make_strategy("tpe").settings_dict()["optuna"] == "5.0.0"
    with pytest.raises(ValueError, match="unknown strategy"):
        make_strategy("grid")
    with pytest.raises(ValueError, match="invalid settings"):
        make_strategy("random", population_size=3)
    evolution = make_strategy("evolution").settings_dict()
    assert (evolution["startup"], evolution["startup_fraction"], evolution["startup_trials"]) == ("tpe", 0.5, None)
    assert make_strategy("tpe").settings_dict()["refine_fraction"] == 0.25
    for name, settings, message in [("evolution", {"startup": "grid"}, "startup must be one of"),
                                    ("evolution", {"startup_fraction": 1.0}, "startup_fraction"),
                                    ("evolution", {"startup_trials": -1}, "startup_trials"),
                                    ("tpe", {"refine_fraction": 1.0}, "refine_fraction"),
                                    ("tpe", {"refine_fraction": -0.1}, "refine_fraction"),
                                    ("tpe", {"n_ei_candidates": 0}, "n_ei_candidates >= 1"),
                                    ("tpe", {"gamma": 1.5}, "gamma"),
                                    ("tpe", {"prior_weight": 0}, "prior_weight"),
                                    ("evolution", {"max_retries": -1}, "max_retries"),
                                    # Settings arrive as JSON: names and types are checked before any worker runs.
                                    ("evolution", {"populaton_size": 9}, "unknown setting 'populaton_size'; known: "
                                                                         "population_size, sample_size"),
                                    ("evolution", {"population_size": 2.5}, "population_size must be an integer"),
                                    ("evolution", {"population_size": "9"}, "population_size must be an integer"),
                                    ("tpe", {"local_after": True}, "local_after must be an integer or null"),
                                    ("tpe", {"multivariate": 1}, "multivariate must be true or false"),
                                    ("evolution", {"startup": 3}, "startup must be a string"),
                                    ("random", {"seed": 1}, "unknown setting 'seed'; known: none")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            make_strategy(name, **settings)
    # Integers are numbers; null is accepted where a setting is optional.
    assert make_strategy("tpe", refine_fraction=0, gamma=1, local_after=None).settings_dict()["gamma"] == 1


@pytest.mark.parametrize("name, setting, value", [
    ("evolution", "max_retries", 600_000), ("evolution", "population_size", 10**6), ("evolution", "sample_size", 10**6),
    ("evolution", "startup_trials", 10**30), ("tpe", "max_retries", 10**6), ("tpe", "n_ei_candidates", 10**6),
    ("tpe", "n_startup_trials", 10**30), ("tpe", "local_after", 10**30), ("tpe", "prior_weight", float("inf")),
    ("tpe", "prior_weight", float("nan")), ("evolution", "startup_fraction", float("nan"))])
def test_every_numeric_setting_has_an_upper_bound_and_the_error_names_it(name, setting, value):
    # Proposals are made under the experiment's row lock: a huge retry count or population would hold it for ages.
    with pytest.raises(ValueError, match=setting):
        make_strategy(name, **{setting: value})


def test_a_huge_value_is_not_echoed_whole():
    with pytest.raises(ValueError) as raised:
        make_strategy("evolution", population_size="x" * 100_000)
    assert len(str(raised.value)) < 300
    with pytest.raises(ValueError) as raised:
        make_strategy("evolution", max_retries=1 << 100_000)
    assert len(str(raised.value)) < 300


def _one_active_change(space, parent, child):
    changed = [label for label in space.active_labels(parent) if parent[label] != child[label]]
    return changed


def test_evolution_mutates_one_active_decision_of_the_tournament_winner():
    space = CONDITIONAL
    history = _history(space, 30)
    # Tournament over the whole population: the winner is the best of the 10 most recent finished trials.
    strategy = EvolutionStrategy(population_size=10, sample_size=10)
    winner = max(history[-10:], key=lambda r: r.value)
    for seed in range(5):
        for child in strategy.ask(space, history, 3, seed=seed):
            changed = _one_active_change(space, winner.decisions, child)
            assert len(changed) == 1
            inactive = set(space.labels()) - set(space.active_labels(winner.decisions)) - set(changed)
            assert all(child[label] == winner.decisions[label] for label in inactive)


def test_evolution_ages_out_old_trials_and_skips_infeasible_parents():
    space = FLAT
    rng = random.Random(1)
    points = []
    while len(points) < 7:
        point = space.sample(rng)
        if space.key(point) not in {space.key(p) for p in points}:
            points.append(point)
    history = [TrialRecord(number=0, decisions=points[0], status="succeeded", value=0.99),  # too old to count
               TrialRecord(number=1, decisions=points[1], status="succeeded", value=0.95, feasible=False)]
    history += [TrialRecord(number=i, decisions=points[i], status="succeeded", value=0.1 * i) for i in range(2, 6)]
    strategy = EvolutionStrategy(population_size=5, sample_size=5)
    for child in strategy.ask(space, history, 4, seed=0):
        assert len(_one_active_change(space, points[5], child)) == 1  # best feasible of the last five


@pytest.mark.parametrize("space", [FLAT, CONDITIONAL], ids=["flat", "conditional"])
def test_evolution_starts_up_with_tpe_for_its_share_of_the_budget_then_mutates(space):
    history = _history(space, 18)
    strategy = EvolutionStrategy(population_size=18, sample_size=18)  # tournament = whole population
    assert strategy.startup_count(40) == 20 and strategy.startup_count(None) == 18
    # 18 trials of a 40-trial budget: two more start-up proposals, exactly what TPE alone proposes, then evolution.
    proposals = strategy.ask(space, history, 5, seed=4, budget=40)
    assert proposals[:2] == TPEStrategy(refine_fraction=0.0).ask(space, history, 2, seed=4)
    winner = max(history, key=lambda r: r.value)
    assert all(len(_one_active_change(space, winner.decisions, child)) == 1 for child in proposals[2:])
    keys = {space.key(p) for p in proposals}
    assert len(keys) == 5 and not keys & {space.key(r.decisions) for r in history}
    # Without a budget the start-up is one population; an explicit count overrides both.
    assert all(len(_one_active_change(space, winner.decisions, child)) == 1
               for child in strategy.ask(space, history, 3, seed=4))
    explicit = EvolutionStrategy(population_size=18, sample_size=18, startup_trials=25)
    assert explicit.ask(space, history, 3, seed=4, budget=30) == TPEStrategy(refine_fraction=0.0).ask(
        space, history, 3, seed=4)


def test_evolution_random_startup_draws_uniformly_until_the_population_is_seeded():
    strategy = EvolutionStrategy(population_size=6, sample_size=6, startup="random")
    assert strategy.startup_count(100) == strategy.startup_count(None) == 6  # one population, whatever the budget
    history = _history(FLAT, 4)
    proposals = strategy.ask(FLAT, history, 4, seed=1, budget=100)
    winner = max(history, key=lambda r: r.value)
    # Two random draws complete the start-up; the other two mutate the best of the four finished trials.
    assert all(len(_one_active_change(FLAT, winner.decisions, child)) == 1 for child in proposals[2:])
    assert proposals[:2] != TPEStrategy(refine_fraction=0.0).ask(FLAT, history, 2, seed=1)
    assert len({FLAT.key(p) for p in proposals}) == 4


def test_mutate_changes_exactly_one_active_label_or_nothing_when_impossible():
    rng = random.Random(0)
    parent = {"num_stages": 2, "stage1/kernel": 3, "stage3/kernel": 5, "stage4/kernel": 7, "lr": 0.01}
    for _ in range(50):
        child = mutate(CONDITIONAL, parent, rng)
        changed = [label for label in CONDITIONAL.labels() if child[label] != parent[label]]
        assert len(changed) == 1 and changed[0] in CONDITIONAL.active_labels(parent)
    assert mutate(ParamSpace({"only": Categorical(("x",))}), {"only": "x"}, rng) is None


def test_tpe_maps_history_onto_optuna_states():
    space = FLAT
    point = {label: "a" for label in space.labels()}
    def frozen(**kwargs):
        return to_frozen_trial(space, TrialRecord(number=0, decisions=point, **kwargs), placeholder_value=0.0)
    assert frozen(status="succeeded", value=0.8).state == TrialState.COMPLETE
    assert frozen(status="running").state == TrialState.RUNNING  # the constant liar sees in-flight trials
    assert frozen(status="pending").state == TrialState.RUNNING
    pruned = frozen(status="pruned", value=0.3, intermediate={1: 0.2, 2: 0.3})
    assert pruned.state == TrialState.PRUNED and pruned.intermediate_values == {1: 0.2, 2: 0.3}
    infeasible = frozen(status="failed", feasible=False)
    assert infeasible.state == TrialState.COMPLETE and infeasible.constraints["nas_feasible"] > 0
    assert frozen(status="failed") is None and frozen(status="canceled") is None


def test_tpe_keeps_parallel_proposals_apart_with_running_trials():
    history = _history(FLAT, 20)
    running = make_strategy("tpe").ask(FLAT, history, 4, seed=5)
    in_flight = history + [TrialRecord(number=20 + i, decisions=p, status="running") for i, p in enumerate(running)]
    following = make_strategy("tpe").ask(FLAT, in_flight, 4, seed=5)
    assert not {FLAT.key(p) for p in following} & {FLAT.key(p) for p in running}


def _synthetic_best(name: str, seed: int, evals: int) -> float:
    """Best value found on a separable objective: each decision has a better and a worse choice."""
    space = ParamSpace({f"op{i}": Categorical(("a", "b", "c", "d", "e")) for i in range(5)}
                       | {"x": FloatParam(0.0, 1.0)})
    weights = {"a": 0.0, "b": 0.1, "c": 0.3, "d": 0.6, "e": 1.0}
    strategy, history = make_strategy(name), []
    for number in range(evals):
        (point,) = strategy.ask(space, history, 1, seed=seed)
        value = sum(weights[point[f"op{i}"]] for i in range(5)) - 2 * (point["x"] - 0.7) ** 2
        history.append(TrialRecord(number=number, decisions=point, status="succeeded", value=value))
    return max(r.value for r in history)


def test_tpe_and_evolution_beat_random_on_a_synthetic_objective():
    seeds, evals = range(4), 40
    random_best = statistics.fmean(_synthetic_best("random", s, evals) for s in seeds)
    for name in ("tpe", "evolution"):
        assert statistics.fmean(_synthetic_best(name, s, evals) for s in seeds) > random_best + 0.2, name


def _local_history(space: ParamSpace, count: int, seed: int = 0) -> tuple[list[TrialRecord], dict]:
    """``count`` succeeded trials, one pruned and one infeasible trial valued above all, and the best succeeded one."""
    history = _history(space, count, seed=seed)
    best = max(history, key=lambda r: r.value)
    others = [p for p in (space.sample(random.Random(seed + i)) for i in range(100, 110))
              if space.key(p) not in {space.key(r.decisions) for r in history}][:2]
    history += [TrialRecord(number=count, decisions=others[0], status="pruned", value=2.0, intermediate={1: 2.0}),
                TrialRecord(number=count + 1, decisions=others[1], status="succeeded", value=3.0, feasible=False)]
    return history, best.decisions


@pytest.mark.parametrize("space", [FLAT, CONDITIONAL], ids=["flat", "conditional"])
def test_tpe_refines_the_best_succeeded_feasible_trial_after_local_after(space):
    history, best = _local_history(space, 20)
    strategy = make_strategy("tpe", local_after=20)
    proposals = strategy.ask(space, history, 4, seed=2)
    assert proposals == make_strategy("tpe", local_after=20).ask(space, list(history), 4, seed=2)
    assert len({space.key(p) for p in proposals}) == 4
    assert not {space.key(p) for p in proposals} & {space.key(r.decisions) for r in history}
    for proposal in proposals:
        assert space.validate(proposal) == proposal
        assert len(_one_active_change(space, best, proposal)) == 1
        assert space.key(proposal) != space.key(best)  # a change of an active decision, not of an inactive one


def test_tpe_before_local_after_is_not_confined_to_the_incumbents_neighbourhood():
    history, best = _local_history(FLAT, 20)  # 22 finished trials: one short of local_after=23
    flags = [len(_one_active_change(FLAT, best, p)) == 1
             for seed in range(3) for p in make_strategy("tpe", local_after=23).ask(FLAT, history, 8, seed=seed)]
    assert not all(flags)


def test_tpe_falls_back_to_tpe_when_the_incumbents_neighbourhood_is_exhausted():
    space = FLAT
    best = {label: "a" for label in space.labels()}
    neighbours = [best | {label: choice} for label in space.labels() for choice in ("b", "c", "d")]
    history = [TrialRecord(number=0, decisions=best, status="succeeded", value=1.0)]
    history += [TrialRecord(number=i + 1, decisions=p, status="succeeded", value=0.5) for i, p in enumerate(neighbours)]
    proposals = make_strategy("tpe", local_after=5).ask(space, history, 3, seed=0)
    assert len({space.key(p) for p in proposals}) == 3
    assert not {space.key(p) for p in proposals} & {space.key(r.decisions) for r in history}
    with pytest.raises(ValueError, match="local_after"):
        make_strategy("tpe", local_after=0)


def test_tpe_refines_the_last_fraction_of_a_known_budget():
    history, best = _local_history(FLAT, 20)  # 22 finished trials
    tpe = make_strategy("tpe")
    assert tpe.refine_after(28) == 21 and tpe.refine_after(None) is None
    assert make_strategy("tpe", refine_fraction=0.0).refine_after(28) is None
    assert make_strategy("tpe", local_after=40).refine_after(28) == 40  # an explicit count wins
    refining = tpe.ask(FLAT, history, 4, seed=2, budget=28)  # the last quarter of 28 begins after 21
    assert all(len(_one_active_change(FLAT, best, p)) == 1 for p in refining)
    flags = [len(_one_active_change(FLAT, best, p)) == 1
             for seed in range(3) for budget in (40, None)
             for p in tpe.ask(FLAT, history, 8, seed=seed, budget=budget)]
    assert not all(flags)  # early in a 40-trial budget, or with none known, TPE proposes freely
