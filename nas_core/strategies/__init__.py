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

import dataclasses
import types
import typing

from nas_core.strategies.base import Strategy
from nas_core.strategies.evolution import EvolutionStrategy
from nas_core.strategies.random_search import RandomStrategy
from nas_core.strategies.tpe import TPEStrategy

_REGISTRY: dict[str, type[Strategy]] = {"random": RandomStrategy, "tpe": TPEStrategy,
                                        "evolution": EvolutionStrategy}
STRATEGIES: tuple[str, ...] = tuple(_REGISTRY)


def make_strategy(name: str, **settings) -> Strategy:
    """The strategy called ``name`` with ``settings`` overriding its defaults; ValueError names what is wrong.

    Settings usually arrive as JSON, so their names and types are checked here, before a worker would trip on them.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown strategy {name!r}; choose one of {list(STRATEGIES)}")
    cls = _REGISTRY[name]
    types = typing.get_type_hints(cls)
    known = [field.name for field in dataclasses.fields(cls)]
    for setting, value in settings.items():
        if setting not in known:
            raise ValueError(f"invalid settings for strategy {name!r}: unknown setting {setting!r}; "
                             f"known: {', '.join(known) or 'none'}")
        if not _has_type(value, types[setting]):
            raise ValueError(f"invalid settings for strategy {name!r}: {setting} must be "
                             f"{_type_name(types[setting])}, not {value!r}")
    return cls(**settings)


def _has_type(value: object, expected: object) -> bool:
    if typing.get_origin(expected) in (typing.Union, types.UnionType):
        return any(_has_type(value, option) for option in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if isinstance(value, bool):  # bool is an int subclass, yet 1 is no answer to a yes/no setting and vice versa
        return expected is bool
    if expected is float:
        return isinstance(value, (int, float))
    return isinstance(value, expected)


def _type_name(expected: object) -> str:
    if typing.get_origin(expected) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(option) for option in typing.get_args(expected))
    return "null" if expected is type(None) else {int: "an integer", float: "a number", bool: "true or false",
                                                  str: "a string"}.get(expected, str(expected))


__all__ = ["STRATEGIES", "EvolutionStrategy", "RandomStrategy", "Strategy", "TPEStrategy", "make_strategy"]
