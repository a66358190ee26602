from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="BestTrial")


@_attrs_define
class BestTrial:
    """
    Attributes:
        number (int):
        params (int | None):
        trial_id (str):
        val_accuracy (float):
    """

    number: int
    params: int | None
    trial_id: str
    val_accuracy: float
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        number = self.number

        params: int | None
        params = self.params

        trial_id = self.trial_id

        val_accuracy = self.val_accuracy

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "number": number,
                "params": params,
                "trial_id": trial_id,
                "val_accuracy": val_accuracy,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        number = d.pop("number")

        def _parse_params(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        params = _parse_params(d.pop("params"))

        trial_id = d.pop("trial_id")

        val_accuracy = d.pop("val_accuracy")

        best_trial = cls(
            number=number,
            params=params,
            trial_id=trial_id,
            val_accuracy=val_accuracy,
        )

        best_trial.additional_properties = d
        return best_trial

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
