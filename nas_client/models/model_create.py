from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="ModelCreate")


@_attrs_define
class ModelCreate:
    """
    Attributes:
        epochs (int | None | Unset): default: a multiple of the search's epochs
        trial_id (None | str | Unset): default: the experiment's leaderboard best; in accuracy mode, of the trials
            within one standard error of its metric on the validation split, the one with the lowest validation loss
    """

    epochs: int | None | Unset = UNSET
    trial_id: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        epochs: int | None | Unset
        if isinstance(self.epochs, Unset):
            epochs = UNSET
        else:
            epochs = self.epochs

        trial_id: None | str | Unset
        if isinstance(self.trial_id, Unset):
            trial_id = UNSET
        else:
            trial_id = self.trial_id

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if epochs is not UNSET:
            field_dict["epochs"] = epochs
        if trial_id is not UNSET:
            field_dict["trial_id"] = trial_id

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)

        def _parse_epochs(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        epochs = _parse_epochs(d.pop("epochs", UNSET))

        def _parse_trial_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        trial_id = _parse_trial_id(d.pop("trial_id", UNSET))

        model_create = cls(
            epochs=epochs,
            trial_id=trial_id,
        )

        return model_create
