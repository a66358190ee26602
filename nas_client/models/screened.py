from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.screened_by_reason import ScreenedByReason
    from ..models.screened_smallest import ScreenedSmallest


T = TypeVar("T", bound="Screened")


@_attrs_define
class Screened:
    """
    Attributes:
        by_reason (ScreenedByReason | Unset): How many by the limit they broke: max_params, max_mflops, max_latency_ms,
            or max_trial_seconds (predicted trial time above its share of the time budget).
        smallest (ScreenedSmallest | Unset): The smallest value seen among the candidates screened out for each limit.
        total (int | Unset): Candidates screened out before they became trials (they do not use max_trials). Default: 0.
    """

    by_reason: ScreenedByReason | Unset = UNSET
    smallest: ScreenedSmallest | Unset = UNSET
    total: int | Unset = 0
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        by_reason: dict[str, Any] | Unset = UNSET
        if not isinstance(self.by_reason, Unset):
            by_reason = self.by_reason.to_dict()

        smallest: dict[str, Any] | Unset = UNSET
        if not isinstance(self.smallest, Unset):
            smallest = self.smallest.to_dict()

        total = self.total

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if by_reason is not UNSET:
            field_dict["by_reason"] = by_reason
        if smallest is not UNSET:
            field_dict["smallest"] = smallest
        if total is not UNSET:
            field_dict["total"] = total

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.screened_by_reason import ScreenedByReason
        from ..models.screened_smallest import ScreenedSmallest

        d = dict(src_dict)
        _by_reason = d.pop("by_reason", UNSET)
        by_reason: ScreenedByReason | Unset
        if isinstance(_by_reason, Unset):
            by_reason = UNSET
        else:
            by_reason = ScreenedByReason.from_dict(_by_reason)

        _smallest = d.pop("smallest", UNSET)
        smallest: ScreenedSmallest | Unset
        if isinstance(_smallest, Unset):
            smallest = UNSET
        else:
            smallest = ScreenedSmallest.from_dict(_smallest)

        total = d.pop("total", UNSET)

        screened = cls(
            by_reason=by_reason,
            smallest=smallest,
            total=total,
        )

        screened.additional_properties = d
        return screened

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
