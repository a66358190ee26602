"""Strategies given a warm start's seeded records: evolution breeds from them, TPE models them, random ignores them,
and none proposes a seeded point again."""

from __future__ import annotations

import random

from nas_core.params import Categorical, ParamSpace, TrialRecord
from nas_core.strategies import make_strategy
from nas_core.strategies.base import planned_trials
from nas_core.strategies.tpe import TPEStrategy

SPACE = ParamSpace({f"op{edge}": Categorical(("a", "b", "c", "d", "e")) for edge in range(5)})


def _score(decisions: dict) -> float:
    """A smooth landscape: each "e" is worth a tenth."""
    return sum(value == "e" for value in decisions.values()) / 10


def _seeds(count: int, seed: int = 0) -> list[TrialRecord]:
    rng, found = random.Random(seed), {}
    while len(found) < count:
        decisions = SPACE.sample(rng)
        found.setdefault(SPACE.key(decisions), decisions)
    return [TrialRecord(number=index - count, decisions=decisions, status="succeeded", value=_score(decisions),
                        seeded=True) for index, decisions in enumerate(found.values())]


def _distance(a: dict, b: dict) -> int:
    return sum(a[label] != b[label] for label in SPACE.labels())


def test_evolution_breeds_from_the_seeds_once_they_fill_its_start_up():
    seeds = _seeds(30)
    proposals = make_strategy("evolution").ask(SPACE, seeds, 8, seed=1, budget=10)
    # 30 seeds + a budget of 10: a start-up of 20 is already filled, so every child mutates one seeded parent
    assert all(min(_distance(child, seed.decisions) for seed in seeds) == 1 for child in proposals)
    cold = make_strategy("evolution").ask(SPACE, [], 8, seed=1, budget=10)
    assert proposals != cold


def test_the_tpe_study_holds_the_seeds_and_its_proposals_follow_them():
    seeds = _seeds(40)
    study = TPEStrategy()._rebuild_study(SPACE, seeds, sampler_seed=0)
    assert len(study.trials) == 40
    assert sorted(trial.value for trial in study.trials) == sorted(record.value for record in seeds)
    warm = TPEStrategy(refine_fraction=0.0).ask(SPACE, seeds, 8, seed=1, budget=20)
    cold = TPEStrategy(refine_fraction=0.0).ask(SPACE, [], 8, seed=1, budget=20)
    assert sum(map(_score, warm)) > sum(map(_score, cold))  # the seeds showed where the "e"s pay


def test_a_pruned_seed_enters_tpe_with_its_partial_curve():
    pruned = TrialRecord(number=-1, decisions=SPACE.sample(random.Random(4)), status="pruned", value=0.2,
                         intermediate={1: 0.1, 2: 0.2}, seeded=True)
    (trial,) = TPEStrategy()._rebuild_study(SPACE, [pruned], sampler_seed=0).trials
    assert trial.state.name == "PRUNED" and trial.intermediate_values == {1: 0.1, 2: 0.2}


def test_no_strategy_proposes_a_seeded_point_again():
    seeds = _seeds(3000)  # most of the 3,125 points
    seen = {SPACE.key(record.decisions) for record in seeds}
    for name in ("evolution", "tpe"):
        proposals = make_strategy(name).ask(SPACE, seeds, 10, seed=2, budget=20)
        assert len(proposals) == 10 and not {SPACE.key(p) for p in proposals} & seen


def test_random_search_ignores_the_seeds():
    seeds = _seeds(20)
    own = [TrialRecord(number=1, decisions=SPACE.sample(random.Random(9)), status="succeeded", value=0.1)]
    assert make_strategy("random").ask(SPACE, seeds + own, 6, seed=3) == make_strategy("random").ask(SPACE, own, 6,
                                                                                                       seed=3)


def test_phases_count_the_seeds_as_the_earlier_part_of_the_search():
    seeds = _seeds(30)
    own = [TrialRecord(number=1, decisions=SPACE.sample(random.Random(5)), status="succeeded", value=0.1)]
    assert planned_trials(10, seeds + own) == 40 and planned_trials(10, own) == 10
    assert planned_trials(None, seeds) is None
    # TPE refines the incumbent over the last quarter of the planned 40: the 31 finished records are past 30
    tpe = TPEStrategy()
    incumbent = max(seeds + own, key=lambda record: (record.value, record.number))  # ties: the newer, as TPE
    proposals = tpe.ask(SPACE, seeds + own, 4, seed=0, budget=10)
    assert all(_distance(proposal, incumbent.decisions) == 1 for proposal in proposals)
    assert tpe._incumbents(SPACE, own, 10, ()) == []  # a cold search of 10 has not begun refining after one trial
