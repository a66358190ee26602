from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.search_space_read_decisions import SearchSpaceReadDecisions
    from ..models.search_space_read_dimensions import SearchSpaceReadDimensions
    from ..models.search_space_read_override import SearchSpaceReadOverride
    from ..models.search_space_read_overrides_applied import (
        SearchSpaceReadOverridesApplied,
    )


T = TypeVar("T", bound="SearchSpaceRead")


@_attrs_define
class SearchSpaceRead:
    """The block search space: its dimensions, the flat decisions they decode to, and how to override them.

    Attributes:
        decisions (SearchSpaceReadDecisions): Flat labelled decisions ('stage2/kernel') and their domains: {kind:
            int|float|categorical, …}.
        dimensions (SearchSpaceReadDimensions): Per dimension: description, type, per_stage, the decisions it covers and
            its domain.
        max_stages (int):
        override (SearchSpaceReadOverride): The grammar of ExperimentCreate.search_space.
        overrides_applied (SearchSpaceReadOverridesApplied):
        version (str): Changes whenever decoding a decision would give a different network.
    """

    decisions: SearchSpaceReadDecisions
    dimensions: SearchSpaceReadDimensions
    max_stages: int
    override: SearchSpaceReadOverride
    overrides_applied: SearchSpaceReadOverridesApplied
    version: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        decisions = self.decisions.to_dict()

        dimensions = self.dimensions.to_dict()

        max_stages = self.max_stages

        override = self.override.to_dict()

        overrides_applied = self.overrides_applied.to_dict()

        version = self.version

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "decisions": decisions,
                "dimensions": dimensions,
                "max_stages": max_stages,
                "override": override,
                "overrides_applied": overrides_applied,
                "version": version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.search_space_read_decisions import SearchSpaceReadDecisions
        from ..models.search_space_read_dimensions import SearchSpaceReadDimensions
        from ..models.search_space_read_override import SearchSpaceReadOverride
        from ..models.search_space_read_overrides_applied import (
            SearchSpaceReadOverridesApplied,
        )

        d = dict(src_dict)
        decisions = SearchSpaceReadDecisions.from_dict(d.pop("decisions"))

        dimensions = SearchSpaceReadDimensions.from_dict(d.pop("dimensions"))

        max_stages = d.pop("max_stages")

        override = SearchSpaceReadOverride.from_dict(d.pop("override"))

        overrides_applied = SearchSpaceReadOverridesApplied.from_dict(
            d.pop("overrides_applied")
        )

        version = d.pop("version")

        search_space_read = cls(
            decisions=decisions,
            dimensions=dimensions,
            max_stages=max_stages,
            override=override,
            overrides_applied=overrides_applied,
            version=version,
        )

        search_space_read.additional_properties = d
        return search_space_read

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
