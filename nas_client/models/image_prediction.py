from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.predicted_class import PredictedClass


T = TypeVar("T", bound="ImagePrediction")


@_attrs_define
class ImagePrediction:
    """
    Attributes:
        filename (None | str): The image part's file name, as sent.
        top (list[PredictedClass]): The top_k most probable classes, most probable first.
    """

    filename: None | str
    top: list[PredictedClass]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        filename: None | str
        filename = self.filename

        top = []
        for top_item_data in self.top:
            top_item = top_item_data.to_dict()
            top.append(top_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "filename": filename,
                "top": top,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.predicted_class import PredictedClass

        d = dict(src_dict)

        def _parse_filename(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        filename = _parse_filename(d.pop("filename"))

        top = []
        _top = d.pop("top")
        for top_item_data in _top:
            top_item = PredictedClass.from_dict(top_item_data)

            top.append(top_item)

        image_prediction = cls(
            filename=filename,
            top=top,
        )

        image_prediction.additional_properties = d
        return image_prediction

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
