"""Search strategies over a :class:`~nas_core.params.ParamSpace`: ``random``, ``tpe`` and ``evolution``.

All share one interface, ``Strategy.ask(space, history, n, *, seed) -> list[dict]``, and keep no state between
calls (see ``base``). ``make_strategy`` is the only constructor the service needs.

>>> from nas_core.params import Categorical, ParamSpace
>>> space = ParamSpace({"op": Categorical(("conv", "pool", "skip"))})
>>> strategy = make_strategy("evolution", population_size=2)
>>> len(strategy.ask(space, [], 2, seed=7)), strategy.settings_dict()["population_size"]
(2, 2)
"""

from __future__ import annotations

from nas_core.options import STRATEGY_NAMES, check_options
from nas_core.strategies.base import Strategy
from nas_core.strategies.evolution import EvolutionStrategy
from nas_core.strategies.random_search import RandomStrategy
from nas_core.strategies.tpe import TPEStrategy

_REGISTRY: dict[str, type[Strategy]] = {"random": RandomStrategy, "tpe": TPEStrategy,
                                        "evolution": EvolutionStrategy}
STRATEGIES: tuple[str, ...] = tuple(_REGISTRY)
if STRATEGIES != STRATEGY_NAMES:
    raise ImportError(f"the strategy registry {STRATEGIES} and nas_core.options.STRATEGY_NAMES disagree")


def make_strategy(name: str, **settings) -> Strategy:
    """The strategy called ``name`` with ``settings`` overriding its defaults; ValueError names what is wrong.

    Settings usually arrive as JSON, so their names and types are checked before a worker would trip on them.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown strategy {name!r}; choose one of {list(STRATEGIES)}")
    check_options(f"strategy {name!r}", _REGISTRY[name], settings)
    return _REGISTRY[name](**settings)


__all__ = ["STRATEGIES", "EvolutionStrategy", "RandomStrategy", "Strategy", "TPEStrategy", "make_strategy"]
