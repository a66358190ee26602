from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.tensor_flow_check import TensorFlowCheck
    from ..models.tensor_flow_read_versions import TensorFlowReadVersions


T = TypeVar("T", bound="TensorFlowRead")


@_attrs_define
class TensorFlowRead:
    """
    Attributes:
        atol (float): The largest logit difference a format may show and still be made.
        savedmodel (TensorFlowCheck):
        seconds (float): Wall time of conversion and checks.
        tflite (TensorFlowCheck):
        versions (TensorFlowReadVersions):
    """

    atol: float
    savedmodel: TensorFlowCheck
    seconds: float
    tflite: TensorFlowCheck
    versions: TensorFlowReadVersions
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        atol = self.atol

        savedmodel = self.savedmodel.to_dict()

        seconds = self.seconds

        tflite = self.tflite.to_dict()

        versions = self.versions.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "atol": atol,
                "savedmodel": savedmodel,
                "seconds": seconds,
                "tflite": tflite,
                "versions": versions,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.tensor_flow_check import TensorFlowCheck
        from ..models.tensor_flow_read_versions import TensorFlowReadVersions

        d = dict(src_dict)
        atol = d.pop("atol")

        savedmodel = TensorFlowCheck.from_dict(d.pop("savedmodel"))

        seconds = d.pop("seconds")

        tflite = TensorFlowCheck.from_dict(d.pop("tflite"))

        versions = TensorFlowReadVersions.from_dict(d.pop("versions"))

        tensor_flow_read = cls(
            atol=atol,
            savedmodel=savedmodel,
            seconds=seconds,
            tflite=tflite,
            versions=versions,
        )

        tensor_flow_read.additional_properties = d
        return tensor_flow_read

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
