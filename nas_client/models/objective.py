from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define

from ..models.objective_metric import ObjectiveMetric
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.constraints import Constraints


T = TypeVar("T", bound="Objective")


@_attrs_define
class Objective:
    """
    Attributes:
        constraints (Constraints | Unset):
        metric (ObjectiveMetric | Unset): What the search maximises on the validation split: accuracy, or balanced
            accuracy (mean per-class recall; for imbalanced data where every class matters). Pruning always compares trials
            on balanced accuracy, which ranks early epochs better. Default: ObjectiveMetric.ACCURACY.
    """

    constraints: Constraints | Unset = UNSET
    metric: ObjectiveMetric | Unset = ObjectiveMetric.ACCURACY

    def to_dict(self) -> dict[str, Any]:
        constraints: dict[str, Any] | Unset = UNSET
        if not isinstance(self.constraints, Unset):
            constraints = self.constraints.to_dict()

        metric: str | Unset = UNSET
        if not isinstance(self.metric, Unset):
            metric = self.metric.value

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if constraints is not UNSET:
            field_dict["constraints"] = constraints
        if metric is not UNSET:
            field_dict["metric"] = metric

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.constraints import Constraints

        d = dict(src_dict)
        _constraints = d.pop("constraints", UNSET)
        constraints: Constraints | Unset
        if isinstance(_constraints, Unset):
            constraints = UNSET
        else:
            constraints = Constraints.from_dict(_constraints)

        _metric = d.pop("metric", UNSET)
        metric: ObjectiveMetric | Unset
        if isinstance(_metric, Unset):
            metric = UNSET
        else:
            metric = ObjectiveMetric(_metric)

        objective = cls(
            constraints=constraints,
            metric=metric,
        )

        return objective
