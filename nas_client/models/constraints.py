from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="Constraints")


@_attrs_define
class Constraints:
    """
    Attributes:
        max_latency_ms (float | None | Unset): CPU latency per image, batch 1.
        max_mflops (float | None | Unset): Forward-pass cost per image, in millions of floating-point operations (a
            multiply-add counts 2).
        max_params (int | None | Unset):
    """

    max_latency_ms: float | None | Unset = UNSET
    max_mflops: float | None | Unset = UNSET
    max_params: int | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        max_latency_ms: float | None | Unset
        if isinstance(self.max_latency_ms, Unset):
            max_latency_ms = UNSET
        else:
            max_latency_ms = self.max_latency_ms

        max_mflops: float | None | Unset
        if isinstance(self.max_mflops, Unset):
            max_mflops = UNSET
        else:
            max_mflops = self.max_mflops

        max_params: int | None | Unset
        if isinstance(self.max_params, Unset):
            max_params = UNSET
        else:
            max_params = self.max_params

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if max_latency_ms is not UNSET:
            field_dict["max_latency_ms"] = max_latency_ms
        if max_mflops is not UNSET:
            field_dict["max_mflops"] = max_mflops
        if max_params is not UNSET:
            field_dict["max_params"] = max_params

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)

        def _parse_max_latency_ms(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        max_latency_ms = _parse_max_latency_ms(d.pop("max_latency_ms", UNSET))

        def _parse_max_mflops(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        max_mflops = _parse_max_mflops(d.pop("max_mflops", UNSET))

        def _parse_max_params(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_params = _parse_max_params(d.pop("max_params", UNSET))

        constraints = cls(
            max_latency_ms=max_latency_ms,
            max_mflops=max_mflops,
            max_params=max_params,
        )

        return constraints
