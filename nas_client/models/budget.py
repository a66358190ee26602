from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="Budget")


@_attrs_define
class Budget:
    """
    Attributes:
        adaptive_epochs (bool | Unset): With max_minutes: while the trials at the longest length so far have not learned
            (the best balanced accuracy of three finished ones, two once lengthened, is less than halfway from chance to 1),
            the next trials train twice as long, the best two of the shorter ones first, as long as two of them fit the time
            left (at most 8x epochs_per_trial). false keeps every trial at epochs_per_trial. Default: True.
        epochs_per_trial (int | Unset): Training epochs of each trial (full fidelity); pruning stops weak trials
            earlier. With max_minutes and adaptive_epochs, the length the trials start at. Default: 12.
        max_minutes (float | None | Unset): Search time: no trial starts after it and running trials stop at their next
            epoch boundary (kept as pruned). Candidates whose predicted trial time exceeds their fair share of the time left
            are screened out before they start. Counts the time the search has run in all: a resumed search gets what is
            left of it.
        max_trials (int | Unset): Trials to run in all (pruned, stopped and failed ones count, canceled and screened-out
            candidates do not). With max_minutes, time usually ends the search first. Default: 100.
        model_minutes (float | None | Unset): Bound on the final model's retraining time: its epochs are cut to fit
            (estimated from the winner's measured epoch time).
        stop_when_settled (bool | Unset): With max_minutes: once half the minutes are spent and four trials of the
            longest length have finished since the first within one standard error of the leader's balanced accuracy, the
            search ends and its final model gets the unspent minutes (detail: search ended: no trial has gone beyond the
            noise of the leader...). false searches until max_minutes or max_trials. Default: True.
    """

    adaptive_epochs: bool | Unset = True
    epochs_per_trial: int | Unset = 12
    max_minutes: float | None | Unset = UNSET
    max_trials: int | Unset = 100
    model_minutes: float | None | Unset = UNSET
    stop_when_settled: bool | Unset = True

    def to_dict(self) -> dict[str, Any]:
        adaptive_epochs = self.adaptive_epochs

        epochs_per_trial = self.epochs_per_trial

        max_minutes: float | None | Unset
        if isinstance(self.max_minutes, Unset):
            max_minutes = UNSET
        else:
            max_minutes = self.max_minutes

        max_trials = self.max_trials

        model_minutes: float | None | Unset
        if isinstance(self.model_minutes, Unset):
            model_minutes = UNSET
        else:
            model_minutes = self.model_minutes

        stop_when_settled = self.stop_when_settled

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if adaptive_epochs is not UNSET:
            field_dict["adaptive_epochs"] = adaptive_epochs
        if epochs_per_trial is not UNSET:
            field_dict["epochs_per_trial"] = epochs_per_trial
        if max_minutes is not UNSET:
            field_dict["max_minutes"] = max_minutes
        if max_trials is not UNSET:
            field_dict["max_trials"] = max_trials
        if model_minutes is not UNSET:
            field_dict["model_minutes"] = model_minutes
        if stop_when_settled is not UNSET:
            field_dict["stop_when_settled"] = stop_when_settled

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        adaptive_epochs = d.pop("adaptive_epochs", UNSET)

        epochs_per_trial = d.pop("epochs_per_trial", UNSET)

        def _parse_max_minutes(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        max_minutes = _parse_max_minutes(d.pop("max_minutes", UNSET))

        max_trials = d.pop("max_trials", UNSET)

        def _parse_model_minutes(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        model_minutes = _parse_model_minutes(d.pop("model_minutes", UNSET))

        stop_when_settled = d.pop("stop_when_settled", UNSET)

        budget = cls(
            adaptive_epochs=adaptive_epochs,
            epochs_per_trial=epochs_per_trial,
            max_minutes=max_minutes,
            max_trials=max_trials,
            model_minutes=model_minutes,
            stop_when_settled=stop_when_settled,
        )

        return budget
