"""Multi-objective view of an experiment: the Pareto front over accuracy, parameters and latency.

>>> pareto_front([("a", 0.90, 1e6, 2.0), ("b", 0.92, 3e6, 2.0), ("c", 0.89, 2e6, 3.0), ("d", 0.90, 1e6, 2.0)])
['a', 'b', 'd']
"""

from __future__ import annotations

import bisect
import itertools
import math
from typing import Hashable, Sequence

ParetoPoint = tuple[Hashable, float, float, float]  # (id, accuracy ↑, params ↓, latency_ms ↓)


def pareto_front(points: Sequence[ParetoPoint]) -> list[Hashable]:
    """Ids of the non-dominated points, in input order (maximise accuracy, minimise params and latency).

    A point is dominated when another is at least as good on all three and strictly better on one; identical
    points do not dominate each other, so duplicates on the front are all kept. O(n log n): a sweep by accuracy
    keeps the 2-D staircase of (params, latency) seen so far (10,000 points in milliseconds; see the tests).
    """
    costs = [(-float(acc), float(params), float(latency)) for _, acc, params, latency in points]
    if not all(map(math.isfinite, itertools.chain.from_iterable(costs))):
        raise ValueError("pareto_front needs finite accuracy, params and latency for every point")
    groups: dict[tuple[float, float, float], list[int]] = {}
    for index, cost in enumerate(costs):
        groups.setdefault(cost, []).append(index)
    # Staircase of the points kept so far: params ascending, latency strictly descending.
    stair_params: list[float] = []
    stair_latency: list[float] = []
    on_front = [False] * len(points)
    # Lexicographic order: only an earlier *different* cost can dominate, and it does exactly when its params and
    # latency are both no worse; identical costs are one group, decided together.
    for cost in sorted(groups):
        _, params, latency = cost
        best_before = bisect.bisect_right(stair_params, params) - 1
        if best_before >= 0 and stair_latency[best_before] <= latency:
            continue
        for index in groups[cost]:
            on_front[index] = True
        position = bisect.bisect_left(stair_params, params)
        end = position
        while end < len(stair_params) and stair_latency[end] >= latency:
            end += 1
        stair_params[position:end] = [params]
        stair_latency[position:end] = [latency]
    return [points[i][0] for i in range(len(points)) if on_front[i]]
