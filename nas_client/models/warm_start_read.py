from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.warm_start_read_skipped_by_reason import WarmStartReadSkippedByReason
    from ..models.warm_start_seed import WarmStartSeed


T = TypeVar("T", bound="WarmStartRead")


@_attrs_define
class WarmStartRead:
    """
    Attributes:
        experiment_ids (list[str]): The source experiments, as asked.
        trials_skipped (int): Finished source trials left out (see skipped_by_reason).
        trials_used (int): Source trials seeding the strategy.
        seeds (list[WarmStartSeed] | Unset): Where each seed comes from, oldest first (also in
            reproducibility.warm_start.seeds).
        skipped_by_reason (WarmStartReadSkippedByReason | Unset): outside_search_space: a decision the new search space
            does not offer (or an architecture it cannot express); over_limit: older than the newest 1000 seeds.
    """

    experiment_ids: list[str]
    trials_skipped: int
    trials_used: int
    seeds: list[WarmStartSeed] | Unset = UNSET
    skipped_by_reason: WarmStartReadSkippedByReason | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        experiment_ids = self.experiment_ids

        trials_skipped = self.trials_skipped

        trials_used = self.trials_used

        seeds: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.seeds, Unset):
            seeds = []
            for seeds_item_data in self.seeds:
                seeds_item = seeds_item_data.to_dict()
                seeds.append(seeds_item)

        skipped_by_reason: dict[str, Any] | Unset = UNSET
        if not isinstance(self.skipped_by_reason, Unset):
            skipped_by_reason = self.skipped_by_reason.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "experiment_ids": experiment_ids,
                "trials_skipped": trials_skipped,
                "trials_used": trials_used,
            }
        )
        if seeds is not UNSET:
            field_dict["seeds"] = seeds
        if skipped_by_reason is not UNSET:
            field_dict["skipped_by_reason"] = skipped_by_reason

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.warm_start_read_skipped_by_reason import (
            WarmStartReadSkippedByReason,
        )
        from ..models.warm_start_seed import WarmStartSeed

        d = dict(src_dict)
        experiment_ids = cast(list[str], d.pop("experiment_ids"))

        trials_skipped = d.pop("trials_skipped")

        trials_used = d.pop("trials_used")

        _seeds = d.pop("seeds", UNSET)
        seeds: list[WarmStartSeed] | Unset = UNSET
        if _seeds is not UNSET:
            seeds = []
            for seeds_item_data in _seeds:
                seeds_item = WarmStartSeed.from_dict(seeds_item_data)

                seeds.append(seeds_item)

        _skipped_by_reason = d.pop("skipped_by_reason", UNSET)
        skipped_by_reason: WarmStartReadSkippedByReason | Unset
        if isinstance(_skipped_by_reason, Unset):
            skipped_by_reason = UNSET
        else:
            skipped_by_reason = WarmStartReadSkippedByReason.from_dict(
                _skipped_by_reason
            )

        warm_start_read = cls(
            experiment_ids=experiment_ids,
            trials_skipped=trials_skipped,
            trials_used=trials_used,
            seeds=seeds,
            skipped_by_reason=skipped_by_reason,
        )

        warm_start_read.additional_properties = d
        return warm_start_read

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
