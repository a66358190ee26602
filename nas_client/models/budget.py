from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="Budget")


@_attrs_define
class Budget:
    """
    Attributes:
        epochs_per_trial (int): Training epochs of each trial (full fidelity).
        max_trials (int): Trials to run in all (pruned and failed ones count, canceled do not).
        max_minutes (float | None | Unset): Stop planning trials after this much search time; running trials stop at
            their next batch.
    """

    epochs_per_trial: int
    max_trials: int
    max_minutes: float | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        epochs_per_trial = self.epochs_per_trial

        max_trials = self.max_trials

        max_minutes: float | None | Unset
        if isinstance(self.max_minutes, Unset):
            max_minutes = UNSET
        else:
            max_minutes = self.max_minutes

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "epochs_per_trial": epochs_per_trial,
                "max_trials": max_trials,
            }
        )
        if max_minutes is not UNSET:
            field_dict["max_minutes"] = max_minutes

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        epochs_per_trial = d.pop("epochs_per_trial")

        max_trials = d.pop("max_trials")

        def _parse_max_minutes(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        max_minutes = _parse_max_minutes(d.pop("max_minutes", UNSET))

        budget = cls(
            epochs_per_trial=epochs_per_trial,
            max_trials=max_trials,
            max_minutes=max_minutes,
        )

        return budget
