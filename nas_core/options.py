"""Checks of the settings a caller passes to an engine component (a strategy, a pruner) as JSON-like values.

The components are frozen dataclasses; their fields' annotations say what each setting takes. A wrong name or type
is reported before the component exists, with a message a user of the HTTP API can act on, instead of surfacing
later in a worker (a float where a slice index or Optuna wants an integer). Each component also bounds its numbers
(``check_range`` in ``__post_init__``): a setting's loop runs while the scheduler holds the experiment's lock, so an
unbounded one would be a way to stall every worker.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping

# The most trials one search can plan: the upper bound of every trial-count setting (start-up trials, ...).
MAX_TRIALS = 1_000_000
# The names the strategy and pruner registries answer to (nas_core.strategies, nas_core.pruning), here where reading
# them loads neither Optuna nor torch: the API's request schemas take their Literals from these.
STRATEGY_NAMES: tuple[str, ...] = ("random", "tpe", "evolution")
PRUNER_KINDS: tuple[str, ...] = ("asha", "median", "none")
# What a multi-objective search (objective mode "pareto") may minimise next to its metric: figures every trial has
# before it trains (CPU latency per image at batch 1, parameters).
MINIMIZABLE: tuple[str, ...] = ("latency_ms", "params")


def check_range(owner: str, name: str, value: float, low: float, high: float) -> None:
    """Raise ValueError naming ``name`` unless ``low <= value <= high`` (NaN never is).

    >>> check_range("evolution", "max_retries", 600_000, 0, 1000)
    Traceback (most recent call last):
    ValueError: evolution needs max_retries >= 0 and <= 1000, not 600000
    """
    if not low <= value <= high:
        raise ValueError(f"{owner} needs {name} >= {low} and <= {high}, not {short_repr(value)}")


def check_options(owner: str, cls: type, options: Mapping[str, Any]) -> None:
    """Raise ValueError naming ``owner`` when an option is not a field of ``cls`` or not of the field's type."""
    hints = typing.get_type_hints(cls)
    known = [field.name for field in dataclasses.fields(cls)]
    for name, value in options.items():
        if name not in known:
            raise ValueError(f"invalid settings for {owner}: unknown setting {short_repr(name)}; "
                             f"known: {', '.join(known) or 'none'}")
        if not _has_type(value, hints[name]):
            raise ValueError(f"invalid settings for {owner}: {name} must be {_type_name(hints[name])}, "
                             f"not {short_repr(value)}")


def _has_type(value: object, expected: Any) -> bool:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(value, option) for option in typing.get_args(expected))
    if origin is typing.Literal:
        return any(value == choice and type(value) is type(choice) for choice in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if isinstance(value, bool):  # bool is an int subclass, yet 1 is no answer to a yes/no setting and vice versa
        return expected is bool
    if expected is float:
        return isinstance(value, (int, float))
    return isinstance(value, expected)


def short_repr(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: an error message must not echo a huge input back."""
    if isinstance(value, int) and value.bit_length() > 256:  # Python refuses repr past 4300 digits
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _type_name(expected: Any) -> str:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(option) for option in typing.get_args(expected))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(expected))
    if expected is type(None):
        return "null"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(expected, str(expected))


__all__ = ["MAX_TRIALS", "check_options", "check_range", "short_repr"]
