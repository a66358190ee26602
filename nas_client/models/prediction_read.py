from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.image_prediction import ImagePrediction


T = TypeVar("T", bound="PredictionRead")


@_attrs_define
class PredictionRead:
    """
    Attributes:
        data (list[ImagePrediction]): One entry per image, in the order they were sent.
        latency_ms (float): Milliseconds spent in onnxruntime on the request's batch (one CPU thread); decoding and
            preprocessing are not counted.
    """

    data: list[ImagePrediction]
    latency_ms: float
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = []
        for data_item_data in self.data:
            data_item = data_item_data.to_dict()
            data.append(data_item)

        latency_ms = self.latency_ms

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "data": data,
                "latency_ms": latency_ms,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.image_prediction import ImagePrediction

        d = dict(src_dict)
        data = []
        _data = d.pop("data")
        for data_item_data in _data:
            data_item = ImagePrediction.from_dict(data_item_data)

            data.append(data_item)

        latency_ms = d.pop("latency_ms")

        prediction_read = cls(
            data=data,
            latency_ms=latency_ms,
        )

        prediction_read.additional_properties = d
        return prediction_read

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
