from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="ExperimentResume")


@_attrs_define
class ExperimentResume:
    """A canceled or failed search continues with the budget left; a succeeded one continues only when this raises
    its budget (a larger ``max_trials`` and/or ``max_minutes``).

        Attributes:
            max_minutes (float | None | Unset): The new time budget, in all: the minutes the search has already run count
                against it, so raising 10 to 15 gives it 5 more minutes.
            max_trials (int | None | Unset): The new trial budget, in all (the trials already run count against it): raise
                it to run more trials.
    """

    max_minutes: float | None | Unset = UNSET
    max_trials: int | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        max_minutes: float | None | Unset
        if isinstance(self.max_minutes, Unset):
            max_minutes = UNSET
        else:
            max_minutes = self.max_minutes

        max_trials: int | None | Unset
        if isinstance(self.max_trials, Unset):
            max_trials = UNSET
        else:
            max_trials = self.max_trials

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if max_minutes is not UNSET:
            field_dict["max_minutes"] = max_minutes
        if max_trials is not UNSET:
            field_dict["max_trials"] = max_trials

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)

        def _parse_max_minutes(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        max_minutes = _parse_max_minutes(d.pop("max_minutes", UNSET))

        def _parse_max_trials(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_trials = _parse_max_trials(d.pop("max_trials", UNSET))

        experiment_resume = cls(
            max_minutes=max_minutes,
            max_trials=max_trials,
        )

        return experiment_resume
