from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.tensor_flow_check import TensorFlowCheck
    from ..models.tensor_flow_read_versions import TensorFlowReadVersions
    from ..models.tf_lite_int_8_read import TFLiteInt8Read


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
        tflite_int8 (None | TFLiteInt8Read | Unset): model.int8.tflite (onnx2tf's post-training int8 quantization,
            calibrated like model.int8.onnx), measured next to float32; null for models built before it.
    """

    atol: float
    savedmodel: TensorFlowCheck
    seconds: float
    tflite: TensorFlowCheck
    versions: TensorFlowReadVersions
    tflite_int8: None | TFLiteInt8Read | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.tf_lite_int_8_read import TFLiteInt8Read

        atol = self.atol

        savedmodel = self.savedmodel.to_dict()

        seconds = self.seconds

        tflite = self.tflite.to_dict()

        versions = self.versions.to_dict()

        tflite_int8: dict[str, Any] | None | Unset
        if isinstance(self.tflite_int8, Unset):
            tflite_int8 = UNSET
        elif isinstance(self.tflite_int8, TFLiteInt8Read):
            tflite_int8 = self.tflite_int8.to_dict()
        else:
            tflite_int8 = self.tflite_int8

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
        if tflite_int8 is not UNSET:
            field_dict["tflite_int8"] = tflite_int8

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.tensor_flow_check import TensorFlowCheck
        from ..models.tensor_flow_read_versions import TensorFlowReadVersions
        from ..models.tf_lite_int_8_read import TFLiteInt8Read

        d = dict(src_dict)
        atol = d.pop("atol")

        savedmodel = TensorFlowCheck.from_dict(d.pop("savedmodel"))

        seconds = d.pop("seconds")

        tflite = TensorFlowCheck.from_dict(d.pop("tflite"))

        versions = TensorFlowReadVersions.from_dict(d.pop("versions"))

        def _parse_tflite_int8(data: object) -> None | TFLiteInt8Read | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                tflite_int8_type_0 = TFLiteInt8Read.from_dict(data)

                return tflite_int8_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TFLiteInt8Read | Unset, data)

        tflite_int8 = _parse_tflite_int8(d.pop("tflite_int8", UNSET))

        tensor_flow_read = cls(
            atol=atol,
            savedmodel=savedmodel,
            seconds=seconds,
            tflite=tflite,
            versions=versions,
            tflite_int8=tflite_int8,
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
