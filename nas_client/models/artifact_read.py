from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.artifact_read_format import ArtifactReadFormat

T = TypeVar("T", bound="ArtifactRead")


@_attrs_define
class ArtifactRead:
    """
    Attributes:
        format_ (ArtifactReadFormat):
        sha256 (str):
        size (int):
    """

    format_: ArtifactReadFormat
    sha256: str
    size: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        format_ = self.format_.value

        sha256 = self.sha256

        size = self.size

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "format": format_,
                "sha256": sha256,
                "size": size,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        format_ = ArtifactReadFormat(d.pop("format"))

        sha256 = d.pop("sha256")

        size = d.pop("size")

        artifact_read = cls(
            format_=format_,
            sha256=sha256,
            size=size,
        )

        artifact_read.additional_properties = d
        return artifact_read

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
