"""Multi-objective view of an experiment: Pareto fronts, non-dominated sorting, crowding and hypervolume.

Two conventions: :func:`pareto_front` takes the leaderboard's points ``(id, accuracy ↑, params ↓, latency ↓)``; the
other functions take *cost vectors*, every axis minimised (a maximised metric enters negated), of one to three axes.

>>> pareto_front([("a", 0.90, 1e6, 2.0), ("b", 0.92, 3e6, 2.0), ("c", 0.89, 2e6, 3.0), ("d", 0.90, 1e6, 2.0)])
['a', 'b', 'd']
>>> pareto_layers([(-0.9, 2.0), (-0.8, 1.0), (-0.8, 2.0), (-0.7, 3.0)])
[1, 1, 2, 3]
"""

from __future__ import annotations

import bisect
import itertools
import math
from typing import Collection, Hashable, Mapping, Sequence

ParetoPoint = tuple[Hashable, float, float, float]  # (id, accuracy ↑, params ↓, latency ↓)
Costs = Sequence[float]  # one point, every axis minimised
# MnasNet's soft latency constraint (Tan et al. 2019): reward = accuracy × (latency / target) ** w, with w = -0.07
# on both sides of the target (alpha = beta), so twice the target costs about 5 % of the accuracy.
SOFT_LATENCY_EXPONENT = -0.07


def soft_latency_reward(metric: float, latency_ms: float | None, target_ms: float) -> float:
    """MnasNet's soft-constrained reward ``metric × (latency_ms / target_ms) ** -0.07``: a network at the target
    keeps its metric, a slower one loses a little, a faster one gains a little; an unmeasured latency gains nothing.

    >>> round(soft_latency_reward(0.9, 2.0, 1.0), 4), round(soft_latency_reward(0.9, 0.5, 1.0), 4)
    (0.8574, 0.9447)
    """
    if latency_ms is None or not latency_ms > 0:
        return metric
    return metric * (latency_ms / target_ms) ** SOFT_LATENCY_EXPONENT


def dominates(a: Costs, b: Costs) -> bool:
    """Whether ``a`` is no worse than ``b`` on every (minimised) axis and strictly better on one.

    >>> dominates((1, 2), (1, 3)), dominates((1, 2), (1, 2)), dominates((0, 3), (1, 2))
    (True, False, False)
    """
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def pareto_front(points: Sequence[ParetoPoint]) -> list[Hashable]:
    """Ids of the non-dominated points, in input order (maximise accuracy, minimise params and latency).

    A point is dominated when another is at least as good on all three and strictly better on one; identical
    points do not dominate each other, so duplicates on the front are all kept. O(n log n): a sweep by accuracy
    keeps the 2-D staircase of (params, latency) seen so far (10,000 points in milliseconds; see the tests).
    """
    costs = [(-float(acc), float(params), float(latency)) for _, acc, params, latency in points]
    if not all(map(math.isfinite, itertools.chain.from_iterable(costs))):
        raise ValueError("pareto_front needs finite accuracy, params and latency for every point")
    on_front = _non_dominated(costs)
    return [points[i][0] for i in range(len(points)) if on_front[i]]


def _non_dominated(costs: Sequence[tuple[float, float, float]]) -> list[bool]:
    """Which of these three-axis cost vectors no other one dominates, in O(n log n)."""
    groups: dict[tuple[float, float, float], list[int]] = {}
    for index, cost in enumerate(costs):
        groups.setdefault(cost, []).append(index)
    # Staircase of the points kept so far: second axis ascending, third strictly descending.
    stair_second: list[float] = []
    stair_third: list[float] = []
    on_front = [False] * len(costs)
    # Lexicographic order: only an earlier *different* cost can dominate, and it does exactly when its second and
    # third axes are both no worse; identical costs are one group, decided together.
    for cost in sorted(groups):
        _, second, third = cost
        best_before = bisect.bisect_right(stair_second, second) - 1
        if best_before >= 0 and stair_third[best_before] <= third:
            continue
        for index in groups[cost]:
            on_front[index] = True
        position = bisect.bisect_left(stair_second, second)
        end = position
        while end < len(stair_second) and stair_third[end] >= third:
            end += 1
        stair_second[position:end] = [second]
        stair_third[position:end] = [third]
    return on_front


def pareto_layers(costs: Sequence[Costs]) -> list[int]:
    """Non-dominated sorting: the layer of each point, 1 for the Pareto front, 2 for the front of what is left once
    layer 1 is removed, and so on. Identical points share a layer; infinite costs are allowed (a missing figure is
    the worst), NaN is not.

    Equivalently a point's layer is one more than the highest layer of the points that dominate it. Two axes take
    one sweep (O(n log n)); three peel one front at a time (O(layers · n log n)).
    """
    vectors = [tuple(float(c) for c in cost) for cost in costs]
    if not vectors:
        return []
    width = len(vectors[0])
    if not 1 <= width <= 3 or any(len(v) != width for v in vectors):
        raise ValueError("pareto_layers needs cost vectors of one to three axes, all of the same length")
    if any(math.isnan(c) for v in vectors for c in v):
        raise ValueError("pareto_layers needs numbers, not NaN")
    if width < 3:
        return _layers_2d([(v[0], v[1] if width == 2 else 0.0) for v in vectors])
    layers = [0] * len(vectors)
    remaining = list(range(len(vectors)))
    layer = 0
    while remaining:
        layer += 1
        mask = _non_dominated([vectors[i] for i in remaining])
        for index, on_front in zip(remaining, mask):
            if on_front:
                layers[index] = layer
        remaining = [index for index, on_front in zip(remaining, mask) if not on_front]
    return layers


def _layers_2d(vectors: Sequence[tuple[float, float]]) -> list[int]:
    groups: dict[tuple[float, float], list[int]] = {}
    for index, vector in enumerate(vectors):
        groups.setdefault(vector, []).append(index)
    # In lexicographic order every earlier distinct point with a second axis no worse dominates this one; the
    # smallest second axis of each layer so far is non-decreasing by layer, so the layer is a binary search.
    smallest: list[float] = []
    layers = [0] * len(vectors)
    for vector in sorted(groups):
        layer = bisect.bisect_right(smallest, vector[1])
        if layer == len(smallest):
            smallest.append(vector[1])
        else:
            smallest[layer] = vector[1]
        for index in groups[vector]:
            layers[index] = layer + 1
    return layers


def crowding_distances(costs: Sequence[Costs]) -> list[float]:
    """NSGA-II's crowding distance of each point of one layer: the sum over axes of the gap between its two
    neighbours along that axis, divided by the axis's range; the extremes of every axis get infinity. A larger
    distance is a lonelier point, which a tie between equal layers should favour (it keeps the front spread).

    >>> crowding_distances([(0, 3), (1, 1), (2, 0)])
    [inf, 2.0, inf]
    """
    count = len(costs)
    distances = [0.0] * count
    if count <= 2:
        return [math.inf] * count
    for axis in range(len(costs[0])):
        order = sorted(range(count), key=lambda i: costs[i][axis])
        low, high = costs[order[0]][axis], costs[order[-1]][axis]
        distances[order[0]] = distances[order[-1]] = math.inf
        span = high - low
        if not (math.isfinite(span) and span > 0):
            continue  # one value on this axis (or an infinite one): it separates nothing
        for before, index, after in zip(order, order[1:], order[2:]):
            gap = costs[after][axis] - costs[before][axis]
            distances[index] += gap / span if math.isfinite(gap) else math.inf
    return distances


def hypervolume_2d(costs: Sequence[Costs], reference: Costs) -> float:
    """The area dominated by two-axis cost vectors and bounded by ``reference`` (both axes minimised); points not
    better than the reference on both axes add nothing.

    >>> hypervolume_2d([(1, 2), (2, 1)], (3, 3))
    3.0
    """
    inside = sorted((float(a), float(b)) for a, b in costs if a < reference[0] and b < reference[1])
    area, ceiling = 0.0, float(reference[1])
    for first, second in inside:
        if second < ceiling:
            area += (reference[0] - first) * (ceiling - second)
            ceiling = second
    return area


def noise_floor(best: float, *, val_images: int) -> float:
    """``best`` less one standard error of it: a score counted on ``val_images`` validation images (binomial,
    Agresti–Coull adjusted, so that a perfect score still has one). Scores at or above it are within the noise of
    ``best``.

    >>> round(noise_floor(0.9, val_images=100), 3), round(noise_floor(1.0, val_images=80), 3)
    (0.869, 0.983)
    """
    adjusted = (best * val_images + 2) / (val_images + 4)
    return best - math.sqrt(adjusted * (1 - adjusted) / (val_images + 4))


def pick_within_noise(ranked: Sequence[tuple[Hashable, float, float | None]], *, val_images: int,
                      among: Collection[Hashable] | None = None) -> Hashable:
    """The trial a final model retrains, from ``ranked`` ``(id, metric, val_loss)`` rows in the leaderboard's
    order (best metric first): the leader, unless others lie within the noise of its metric.

    A metric counted on a few validation images cannot tell trials apart by less than its standard error: 72 images
    at 40% right have an error of about 6 points. A short search on hard data often ends with every trial near
    chance, where the leader by accuracy is a draw; the validation loss, continuous in every prediction, still
    tells a network that has started to learn from one that has not. So, in the spirit of the one-standard-error
    rule of model selection (Breiman et al., 1984): the trials whose metric is at least the leader's less one
    standard error of it (binomial on ``val_images``, Agresti–Coull adjusted, so that a perfect score still has one)
    are compared by validation loss, and the lowest wins; trials without a loss are not compared. Without
    validation images or rows, the leader (or None). With ``among``, only those rows compete, when any of them is
    ranked (a search whose trials have all stayed near chance trusts its hand-designed references over a draw); an
    ``among`` that maps ids to a rank (lower first) compares the contenders by rank before loss: near chance, a
    short trial's loss says little about what a long schedule makes of a network, and the references' order of
    preference was measured on long schedules (:func:`nas_core.space.reference_candidates`).

    >>> rows = [("a", 0.403, 1.57), ("b", 0.389, 1.44), ("c", 0.375, 1.52), ("d", 0.250, 1.30)]
    >>> pick_within_noise(rows, val_images=72)  # a, b and c are one draw; d is clearly worse
    'b'
    >>> pick_within_noise(rows, val_images=10_000)  # on many images 0.403 is a real lead
    'a'
    >>> pick_within_noise([("a", 1.0, 0.30), ("b", 0.9875, 0.12), ("c", 0.95, 0.05)], val_images=80)
    'b'
    >>> pick_within_noise([("a", 0.9, None), ("b", 0.89, 0.1)], val_images=50)
    'a'
    >>> pick_within_noise(rows, val_images=72, among={"c", "d"}), pick_within_noise(rows, val_images=72, among={"x"})
    ('c', 'b')
    >>> pick_within_noise(rows, val_images=72, among={"a": 1, "c": 0, "d": 2})  # d is clearly worse: c by rank
    'c'
    """
    if among is not None:
        ranked = [row for row in ranked if row[0] in among] or ranked
    if not ranked:
        return None
    leader, best, leader_loss = ranked[0]
    if val_images <= 0 or leader_loss is None:
        return leader
    band = noise_floor(best, val_images=val_images)
    rank = (lambda trial: among.get(trial, len(among))) if isinstance(among, Mapping) else (lambda _: 0)
    contenders = [(rank(trial), loss, index) for index, (trial, metric, loss) in enumerate(ranked)
                  if metric is not None and metric >= band and loss is not None and math.isfinite(loss)]
    return ranked[min(contenders)[2]][0] if contenders else leader
