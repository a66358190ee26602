"""Decision spaces as data: what strategies search over.

A :class:`ParamSpace` is an ordered mapping of labels (``"stage2/kernel"``) to parameter domains. A point in it is a
plain ``dict[str, value]`` of *decisions* (JSON-serialisable). Strategies only ever see this module's types, so they
work the same on the block search space (``nas_core.space``) and on tabular benchmarks such as NAS-Bench-201.

>>> space = ParamSpace({"depth": IntParam(1, 4), "op": Categorical(("conv", "mbconv")),
...                     "lr": FloatParam(1e-4, 1e-1, log=True)})
>>> space.validate({"depth": 2, "op": "conv", "lr": 0.01})
{'depth': 2, 'op': 'conv', 'lr': 0.01}
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from nas_core.errors import InvalidSearchSpace

Value = int | float | str | bool


@dataclass(frozen=True, slots=True)
class Condition:
    """The parameter matters only when ``decisions[label] >= at_least``.

    E.g. ``stage5/*`` needs ``num_stages >= 5``.
    """

    label: str
    at_least: int

    def holds(self, decisions: Mapping[str, Any]) -> bool:
        return decisions.get(self.label) is not None and decisions[self.label] >= self.at_least


@dataclass(frozen=True, slots=True)
class Categorical:
    choices: tuple[Value, ...]
    condition: Condition | None = None
    kind: Literal["categorical"] = "categorical"

    def __post_init__(self) -> None:
        if not self.choices:
            raise InvalidSearchSpace("a categorical parameter needs at least one choice")
        if len(set(self.choices)) != len(self.choices):
            raise InvalidSearchSpace(f"duplicate choices in {list(self.choices)}")

    def contains(self, value: Any) -> bool:
        return any(value == c and type(value) is type(c) for c in self.choices) or (
            # JSON turns tuples into lists and 1.0 into 1; accept numerically equal numbers
            isinstance(value, (int, float)) and not isinstance(value, bool)
            and any(isinstance(c, (int, float)) and not isinstance(c, bool) and value == c for c in self.choices)
        )

    def sample(self, rng: random.Random) -> Value:
        return rng.choice(self.choices)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "choices": list(self.choices), **_condition_dict(self.condition)}


@dataclass(frozen=True, slots=True)
class IntParam:
    low: int
    high: int
    step: int = 1
    condition: Condition | None = None
    kind: Literal["int"] = "int"

    def __post_init__(self) -> None:
        if self.low > self.high or self.step < 1:
            raise InvalidSearchSpace(f"int range [{self.low}, {self.high}] step {self.step} is empty")

    def contains(self, value: Any) -> bool:
        return (isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high
                and (value - self.low) % self.step == 0)

    def sample(self, rng: random.Random) -> int:
        return self.low + self.step * rng.randrange((self.high - self.low) // self.step + 1)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "low": self.low, "high": self.high, "step": self.step,
                **_condition_dict(self.condition)}


@dataclass(frozen=True, slots=True)
class FloatParam:
    low: float
    high: float
    log: bool = False
    condition: Condition | None = None
    kind: Literal["float"] = "float"

    def __post_init__(self) -> None:
        if not (self.low <= self.high) or (self.log and self.low <= 0):
            raise InvalidSearchSpace(f"float range [{self.low}, {self.high}] (log={self.log}) is invalid")

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high

    def sample(self, rng: random.Random) -> float:
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "low": self.low, "high": self.high, "log": self.log,
                **_condition_dict(self.condition)}


Param = Categorical | IntParam | FloatParam


def _condition_dict(condition: Condition | None) -> dict:
    return {} if condition is None else {"condition": {"label": condition.label, "at_least": condition.at_least}}


@dataclass(frozen=True, slots=True)
class ParamSpace:
    """An ordered set of labelled parameters. Immutable; ``params`` keeps insertion order."""

    params: Mapping[str, Param]

    def __post_init__(self) -> None:
        for label, param in self.params.items():
            if param.condition is not None and param.condition.label not in self.params:
                raise InvalidSearchSpace(f"{label}: condition refers to unknown parameter {param.condition.label!r}")

    def labels(self) -> list[str]:
        return list(self.params)

    def active_labels(self, decisions: Mapping[str, Any]) -> list[str]:
        """Labels whose condition holds for these decisions (inactive ones do not change the architecture)."""
        return [label for label, p in self.params.items() if p.condition is None or p.condition.holds(decisions)]

    def sample(self, rng: random.Random) -> dict[str, Value]:
        """One uniformly random point; every label gets a value, active or not, so mutation can switch it on."""
        return {label: param.sample(rng) for label, param in self.params.items()}

    def validate(self, decisions: Mapping[str, Any]) -> dict[str, Value]:
        """Check a full set of decisions; raise :class:`InvalidSearchSpace` naming every bad label."""
        errors = []
        for label in decisions:
            if label not in self.params:
                errors.append({"field": label, "error": "unknown decision"})
        for label, param in self.params.items():
            if label not in decisions:
                errors.append({"field": label, "error": "missing decision"})
            elif not param.contains(decisions[label]):
                errors.append({"field": label, "error": f"{decisions[label]!r} is outside {param.to_dict()}"})
        if errors:
            raise InvalidSearchSpace("decisions do not fit the search space", errors=errors)
        return dict(decisions)

    def key(self, decisions: Mapping[str, Any]) -> str:
        """Canonical identity of a point: only active decisions count, so equal architectures get equal keys."""
        return json.dumps({label: decisions[label] for label in self.active_labels(decisions)},
                          sort_keys=True, separators=(",", ":"))

    def to_dict(self) -> dict:
        return {label: param.to_dict() for label, param in self.params.items()}


TrialStatus = Literal["pending", "running", "succeeded", "pruned", "stopped", "failed", "canceled", "screened"]


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """One past or running trial as a strategy sees it (rebuilt from the DB each time; read-only).

    ``value`` is the objective to maximise (validation accuracy) for finished trials, ``None`` otherwise;
    ``feasible`` is False when the trial broke a constraint (it then never counts as a good parent).
    ``intermediate`` maps epoch (1-based) to validation accuracy, for multi-fidelity pruning. ``costs`` holds the
    figures a multi-objective search minimises next to ``value`` (``latency_ms``, ``params``), known before training.
    ``seeded`` marks a trial of an earlier search that warm-starts this one: evidence for the strategy, never one of
    the experiment's own trials (it numbers below zero, before them; the service counts no budget or pruning on it).
    """

    number: int
    decisions: Mapping[str, Any]
    status: TrialStatus
    value: float | None = None
    feasible: bool = True
    intermediate: Mapping[int, float] = field(default_factory=dict)
    # For an infeasible point: how far it broke its constraint (value / limit - 1), so strategies that model the
    # feasible region (TPE) prefer the near misses; 1.0 when unknown.
    violation: float = 1.0
    costs: Mapping[str, float] = field(default_factory=dict)
    seeded: bool = False
