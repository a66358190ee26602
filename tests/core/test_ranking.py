"""The Pareto front over (accuracy ↑, params ↓, latency ↓)."""

from __future__ import annotations

import doctest
import random
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from nas_core import ranking
from nas_core.ranking import pareto_front


def test_the_documented_examples_hold():
    """pick_within_noise's rules (the noise band, ``among``, ranks before loss) are its examples."""
    assert doctest.testmod(ranking).failed == 0


def _brute_force_front(points):
    def dominates(q, p):
        no_worse = q[1] >= p[1] and q[2] <= p[2] and q[3] <= p[3]
        return no_worse and (q[1] > p[1] or q[2] < p[2] or q[3] < p[3])
    return [p[0] for p in points if not any(dominates(q, p) for q in points)]


def test_pareto_front_ties_and_duplicates():
    points = [
        ("best-acc", 0.95, 5e6, 9.0),
        ("small", 0.80, 1e5, 1.0),
        ("twin-a", 0.90, 1e6, 3.0),
        ("twin-b", 0.90, 1e6, 3.0),    # identical to twin-a: neither dominates, both stay
        ("slower", 0.90, 1e6, 3.5),    # equal on two, worse on one: dominated
        ("dup-bad-a", 0.70, 2e6, 5.0),  # dominated, and so is its duplicate
        ("dup-bad-b", 0.70, 2e6, 5.0),
        ("fast-big", 0.85, 9e6, 0.5),
    ]
    assert pareto_front(points) == ["best-acc", "small", "twin-a", "twin-b", "fast-big"]
    assert pareto_front([]) == []
    assert pareto_front([(7, 0.5, 1.0, 1.0)]) == [7]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)), max_size=40))
def test_pareto_front_matches_brute_force(values):
    points = [(i, float(acc), float(params), float(lat)) for i, (acc, params, lat) in enumerate(values)]
    assert pareto_front(points) == _brute_force_front(points)


def test_pareto_front_of_10k_points_is_fast_even_when_all_are_on_it():
    rng = random.Random(0)
    scattered = [(i, rng.random(), rng.random(), rng.random()) for i in range(10_000)]
    # More accurate means bigger and slower: every point is on the front (the worst case).
    trade_off = [(i, a, 10 * a, a) for i, a in enumerate(rng.random() for _ in range(10_000))]
    for points in (scattered, trade_off):
        started = time.perf_counter()
        front = pareto_front(points)
        assert time.perf_counter() - started < 1.0
        assert front
    assert len(pareto_front(trade_off)) == 10_000
    sample = scattered[:300]
    assert pareto_front(sample) == _brute_force_front(sample)
