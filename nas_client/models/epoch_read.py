from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="EpochRead")


@_attrs_define
class EpochRead:
    """
    Attributes:
        epoch (int):
        seconds (float):
        train_loss (float):
        val_accuracy (float):
        val_loss (float):
        val_balanced_accuracy (float | None | Unset):
    """

    epoch: int
    seconds: float
    train_loss: float
    val_accuracy: float
    val_loss: float
    val_balanced_accuracy: float | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        epoch = self.epoch

        seconds = self.seconds

        train_loss = self.train_loss

        val_accuracy = self.val_accuracy

        val_loss = self.val_loss

        val_balanced_accuracy: float | None | Unset
        if isinstance(self.val_balanced_accuracy, Unset):
            val_balanced_accuracy = UNSET
        else:
            val_balanced_accuracy = self.val_balanced_accuracy

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "epoch": epoch,
                "seconds": seconds,
                "train_loss": train_loss,
                "val_accuracy": val_accuracy,
                "val_loss": val_loss,
            }
        )
        if val_balanced_accuracy is not UNSET:
            field_dict["val_balanced_accuracy"] = val_balanced_accuracy

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        epoch = d.pop("epoch")

        seconds = d.pop("seconds")

        train_loss = d.pop("train_loss")

        val_accuracy = d.pop("val_accuracy")

        val_loss = d.pop("val_loss")

        def _parse_val_balanced_accuracy(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        val_balanced_accuracy = _parse_val_balanced_accuracy(
            d.pop("val_balanced_accuracy", UNSET)
        )

        epoch_read = cls(
            epoch=epoch,
            seconds=seconds,
            train_loss=train_loss,
            val_accuracy=val_accuracy,
            val_loss=val_loss,
            val_balanced_accuracy=val_balanced_accuracy,
        )

        epoch_read.additional_properties = d
        return epoch_read

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
