"""Checks of the settings a caller passes to an engine component (a strategy, a pruner) as JSON-like values.

The components are frozen dataclasses; their fields' annotations say what each setting takes. A wrong name or type
is reported before the component exists, with a message a user of the HTTP API can act on, instead of surfacing
later in a worker (a float where a slice index or Optuna wants an integer).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping


def check_options(owner: str, cls: type, options: Mapping[str, Any]) -> None:
    """Raise ValueError naming ``owner`` when an option is not a field of ``cls`` or not of the field's type."""
    hints = typing.get_type_hints(cls)
    known = [field.name for field in dataclasses.fields(cls)]
    for name, value in options.items():
        if name not in known:
            raise ValueError(f"invalid settings for {owner}: unknown setting {name!r}; "
                             f"known: {', '.join(known) or 'none'}")
        if not _has_type(value, hints[name]):
            raise ValueError(f"invalid settings for {owner}: {name} must be {_type_name(hints[name])}, not {value!r}")


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


def _type_name(expected: Any) -> str:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(option) for option in typing.get_args(expected))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(expected))
    if expected is type(None):
        return "null"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(expected, str(expected))


__all__ = ["check_options"]
