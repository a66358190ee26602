from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.runtime_figures import RuntimeFigures


T = TypeVar("T", bound="Int8Read")


@_attrs_define
class Int8Read:
    """
    Attributes:
        accuracy_change (float | None): int8 minus float32 test accuracy.
        agreement (float | None): Fraction of test images on which int8 and float32 predict the same class.
        calibration_images (int): Train images that set the int8 activation ranges.
        flagged (bool): int8 loses more than max_accuracy_drop: kept, but not a replacement.
        fp32 (RuntimeFigures):
        int8 (None | RuntimeFigures): model.int8.onnx; null when quantization failed.
        max_accuracy_drop (float): The loss past which the int8 file is flagged.
        reason (None | str): Why it is flagged, or why quantization failed.
    """

    accuracy_change: float | None
    agreement: float | None
    calibration_images: int
    flagged: bool
    fp32: RuntimeFigures
    int8: None | RuntimeFigures
    max_accuracy_drop: float
    reason: None | str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.runtime_figures import RuntimeFigures

        accuracy_change: float | None
        accuracy_change = self.accuracy_change

        agreement: float | None
        agreement = self.agreement

        calibration_images = self.calibration_images

        flagged = self.flagged

        fp32 = self.fp32.to_dict()

        int8: dict[str, Any] | None
        if isinstance(self.int8, RuntimeFigures):
            int8 = self.int8.to_dict()
        else:
            int8 = self.int8

        max_accuracy_drop = self.max_accuracy_drop

        reason: None | str
        reason = self.reason

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "accuracy_change": accuracy_change,
                "agreement": agreement,
                "calibration_images": calibration_images,
                "flagged": flagged,
                "fp32": fp32,
                "int8": int8,
                "max_accuracy_drop": max_accuracy_drop,
                "reason": reason,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.runtime_figures import RuntimeFigures

        d = dict(src_dict)

        def _parse_accuracy_change(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        accuracy_change = _parse_accuracy_change(d.pop("accuracy_change"))

        def _parse_agreement(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        agreement = _parse_agreement(d.pop("agreement"))

        calibration_images = d.pop("calibration_images")

        flagged = d.pop("flagged")

        fp32 = RuntimeFigures.from_dict(d.pop("fp32"))

        def _parse_int8(data: object) -> None | RuntimeFigures:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                int8_type_0 = RuntimeFigures.from_dict(data)

                return int8_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | RuntimeFigures, data)

        int8 = _parse_int8(d.pop("int8"))

        max_accuracy_drop = d.pop("max_accuracy_drop")

        def _parse_reason(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        reason = _parse_reason(d.pop("reason"))

        int_8_read = cls(
            accuracy_change=accuracy_change,
            agreement=agreement,
            calibration_images=calibration_images,
            flagged=flagged,
            fp32=fp32,
            int8=int8,
            max_accuracy_drop=max_accuracy_drop,
            reason=reason,
        )

        int_8_read.additional_properties = d
        return int_8_read

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
