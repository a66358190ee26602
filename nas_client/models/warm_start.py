from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="WarmStart")


@_attrs_define
class WarmStart:
    """
    Attributes:
        experiment_ids (list[str]): Experiments of this project whose finished trials (succeeded, and pruned or stopped
            with their partial curves) seed the new search's strategy. Each must have searched the same dataset, or one with
            the same class names (in any order) and image channels. Their architectures are re-encoded in the new search
            space; those outside it are left out. Seeded trials inform tpe and evolution only (random ignores them): they
            are not the new experiment's trials, use none of its max_trials, and pruning never compares against them.
    """

    experiment_ids: list[str]

    def to_dict(self) -> dict[str, Any]:
        experiment_ids = self.experiment_ids

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "experiment_ids": experiment_ids,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        experiment_ids = cast(list[str], d.pop("experiment_ids"))

        warm_start = cls(
            experiment_ids=experiment_ids,
        )

        return warm_start
