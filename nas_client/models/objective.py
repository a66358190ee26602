from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.constraints import Constraints


T = TypeVar("T", bound="Objective")


@_attrs_define
class Objective:
    """
    Attributes:
        constraints (Constraints | Unset):
    """

    constraints: Constraints | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        constraints: dict[str, Any] | Unset = UNSET
        if not isinstance(self.constraints, Unset):
            constraints = self.constraints.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if constraints is not UNSET:
            field_dict["constraints"] = constraints

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

        objective = cls(
            constraints=constraints,
        )

        return objective
