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

T = TypeVar("T", bound="TFLiteInt8Read")


@_attrs_define
class TFLiteInt8Read:
    """
    Attributes:
        accuracy_change (float | None): int8 minus float32 test accuracy.
        agreement (float | None): Fraction of test images on which it predicts model.onnx's class.
        calibration_images (int): Train images that set the int8 ranges: those of the onnx_int8 file.
        flagged (bool): int8 loses more than max_accuracy_drop: kept, but not a replacement.
        fp32_latency_ms_batch_1 (float | None): model.tflite's, timed the same way.
        fp32_size_bytes (int | None): model.tflite's size.
        fp32_test_accuracy (float | None): model.onnx's on the same images.
        images (int): Test images it ran on (the whole test split).
        latency_ms_batch_1 (float | None): LiteRT on the CPU, one thread, median ms per batch of 1.
        layout (Literal['NHWC']): Input [N, H, W, C], float32, normalised as preprocessing.json says; the output is
            float32 logits.
        max_accuracy_drop (float): The loss past which the file is flagged.
        ok (bool): The file was made (a flagged file is made too).
        reason (None | str): Why it is flagged, or why it was not made.
        size_bytes (int | None):
        test_accuracy (float | None): On the test split, run with the LiteRT interpreter.
    """

    accuracy_change: float | None
    agreement: float | None
    calibration_images: int
    flagged: bool
    fp32_latency_ms_batch_1: float | None
    fp32_size_bytes: int | None
    fp32_test_accuracy: float | None
    images: int
    latency_ms_batch_1: float | None
    layout: Literal["NHWC"]
    max_accuracy_drop: float
    ok: bool
    reason: None | str
    size_bytes: int | None
    test_accuracy: float | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        accuracy_change: float | None
        accuracy_change = self.accuracy_change

        agreement: float | None
        agreement = self.agreement

        calibration_images = self.calibration_images

        flagged = self.flagged

        fp32_latency_ms_batch_1: float | None
        fp32_latency_ms_batch_1 = self.fp32_latency_ms_batch_1

        fp32_size_bytes: int | None
        fp32_size_bytes = self.fp32_size_bytes

        fp32_test_accuracy: float | None
        fp32_test_accuracy = self.fp32_test_accuracy

        images = self.images

        latency_ms_batch_1: float | None
        latency_ms_batch_1 = self.latency_ms_batch_1

        layout = self.layout

        max_accuracy_drop = self.max_accuracy_drop

        ok = self.ok

        reason: None | str
        reason = self.reason

        size_bytes: int | None
        size_bytes = self.size_bytes

        test_accuracy: float | None
        test_accuracy = self.test_accuracy

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "accuracy_change": accuracy_change,
                "agreement": agreement,
                "calibration_images": calibration_images,
                "flagged": flagged,
                "fp32_latency_ms_batch_1": fp32_latency_ms_batch_1,
                "fp32_size_bytes": fp32_size_bytes,
                "fp32_test_accuracy": fp32_test_accuracy,
                "images": images,
                "latency_ms_batch_1": latency_ms_batch_1,
                "layout": layout,
                "max_accuracy_drop": max_accuracy_drop,
                "ok": ok,
                "reason": reason,
                "size_bytes": size_bytes,
                "test_accuracy": test_accuracy,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
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

        def _parse_fp32_latency_ms_batch_1(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        fp32_latency_ms_batch_1 = _parse_fp32_latency_ms_batch_1(
            d.pop("fp32_latency_ms_batch_1")
        )

        def _parse_fp32_size_bytes(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        fp32_size_bytes = _parse_fp32_size_bytes(d.pop("fp32_size_bytes"))

        def _parse_fp32_test_accuracy(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        fp32_test_accuracy = _parse_fp32_test_accuracy(d.pop("fp32_test_accuracy"))

        images = d.pop("images")

        def _parse_latency_ms_batch_1(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        latency_ms_batch_1 = _parse_latency_ms_batch_1(d.pop("latency_ms_batch_1"))

        layout = cast(Literal["NHWC"], d.pop("layout"))
        if layout != "NHWC":
            raise ValueError(f"layout must match const 'NHWC', got '{layout}'")

        max_accuracy_drop = d.pop("max_accuracy_drop")

        ok = d.pop("ok")

        def _parse_reason(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        reason = _parse_reason(d.pop("reason"))

        def _parse_size_bytes(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        size_bytes = _parse_size_bytes(d.pop("size_bytes"))

        def _parse_test_accuracy(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        test_accuracy = _parse_test_accuracy(d.pop("test_accuracy"))

        tf_lite_int_8_read = cls(
            accuracy_change=accuracy_change,
            agreement=agreement,
            calibration_images=calibration_images,
            flagged=flagged,
            fp32_latency_ms_batch_1=fp32_latency_ms_batch_1,
            fp32_size_bytes=fp32_size_bytes,
            fp32_test_accuracy=fp32_test_accuracy,
            images=images,
            latency_ms_batch_1=latency_ms_batch_1,
            layout=layout,
            max_accuracy_drop=max_accuracy_drop,
            ok=ok,
            reason=reason,
            size_bytes=size_bytes,
            test_accuracy=test_accuracy,
        )

        tf_lite_int_8_read.additional_properties = d
        return tf_lite_int_8_read

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
