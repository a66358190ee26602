from __future__ import annotations

from collections.abc import Mapping
from typing import (
    Any,
    Literal,
    Self,
    TypeVar,
    cast,
)

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="TensorFlowCheck")


@_attrs_define
class TensorFlowCheck:
    """
    Attributes:
        argmax_agreement (float | None): Fraction of test images with model.onnx's predicted class.
        images (int):
        layout (Literal['NHWC']): Input [N, H, W, C], normalised as preprocessing.json says.
        max_abs_diff (float | None): Largest |logit difference| to model.onnx on the test split.
        ok (bool): The file was made and agrees with model.onnx on the test split.
        reason (None | str): Why the format was not made (conversion failed, disagreement, or the converter is not
            installed).
    """

    argmax_agreement: float | None
    images: int
    layout: Literal["NHWC"]
    max_abs_diff: float | None
    ok: bool
    reason: None | str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        argmax_agreement: float | None
        argmax_agreement = self.argmax_agreement

        images = self.images

        layout = self.layout

        max_abs_diff: float | None
        max_abs_diff = self.max_abs_diff

        ok = self.ok

        reason: None | str
        reason = self.reason

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "argmax_agreement": argmax_agreement,
                "images": images,
                "layout": layout,
                "max_abs_diff": max_abs_diff,
                "ok": ok,
                "reason": reason,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)

        def _parse_argmax_agreement(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        argmax_agreement = _parse_argmax_agreement(d.pop("argmax_agreement"))

        images = d.pop("images")

        layout = cast(Literal["NHWC"], d.pop("layout"))
        if layout != "NHWC":
            raise ValueError(f"layout must match const 'NHWC', got '{layout}'")

        def _parse_max_abs_diff(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        max_abs_diff = _parse_max_abs_diff(d.pop("max_abs_diff"))

        ok = d.pop("ok")

        def _parse_reason(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        reason = _parse_reason(d.pop("reason"))

        tensor_flow_check = cls(
            argmax_agreement=argmax_agreement,
            images=images,
            layout=layout,
            max_abs_diff=max_abs_diff,
            ok=ok,
            reason=reason,
        )

        tensor_flow_check.additional_properties = d
        return tensor_flow_check

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
