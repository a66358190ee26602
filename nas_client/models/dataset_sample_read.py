from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="DatasetSampleRead")


@_attrs_define
class DatasetSampleRead:
    """One thumbnail of a ready dataset, at the stored resolution (grayscale datasets stay one-channel PNGs).

    Attributes:
        class_ (str): The image's class name.
        index (int): The image's position in the dataset's train split.
        png (str): The image as a base64-encoded PNG.
    """

    class_: str
    index: int
    png: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        class_ = self.class_

        index = self.index

        png = self.png

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "class": class_,
                "index": index,
                "png": png,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        class_ = d.pop("class")

        index = d.pop("index")

        png = d.pop("png")

        dataset_sample_read = cls(
            class_=class_,
            index=index,
            png=png,
        )

        dataset_sample_read.additional_properties = d
        return dataset_sample_read

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
