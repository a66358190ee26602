from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="RuntimeFigures")


@_attrs_define
class RuntimeFigures:
    """
    Attributes:
        latency_ms_batch_1 (float): onnxruntime on the CPU, one thread, median ms per batch of 1.
        latency_ms_batch_32 (float): The same per batch of 32 images.
        size_bytes (int):
        test_accuracy (float): On the held-out test split, run in onnxruntime.
    """

    latency_ms_batch_1: float
    latency_ms_batch_32: float
    size_bytes: int
    test_accuracy: float
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        latency_ms_batch_1 = self.latency_ms_batch_1

        latency_ms_batch_32 = self.latency_ms_batch_32

        size_bytes = self.size_bytes

        test_accuracy = self.test_accuracy

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "latency_ms_batch_1": latency_ms_batch_1,
                "latency_ms_batch_32": latency_ms_batch_32,
                "size_bytes": size_bytes,
                "test_accuracy": test_accuracy,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        latency_ms_batch_1 = d.pop("latency_ms_batch_1")

        latency_ms_batch_32 = d.pop("latency_ms_batch_32")

        size_bytes = d.pop("size_bytes")

        test_accuracy = d.pop("test_accuracy")

        runtime_figures = cls(
            latency_ms_batch_1=latency_ms_batch_1,
            latency_ms_batch_32=latency_ms_batch_32,
            size_bytes=size_bytes,
            test_accuracy=test_accuracy,
        )

        runtime_figures.additional_properties = d
        return runtime_figures

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
