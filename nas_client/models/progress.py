from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Progress")


@_attrs_define
class Progress:
    """
    Attributes:
        canceled (int):
        completed (int): Finished trials that count against max_trials (succeeded, pruned, stopped, failed).
        failed (int):
        max_trials (int):
        pending (int):
        pruned (int):
        running (int):
        stopped (int): Trials a user stopped (POST .../trials/{number}/stop).
        succeeded (int):
    """

    canceled: int
    completed: int
    failed: int
    max_trials: int
    pending: int
    pruned: int
    running: int
    stopped: int
    succeeded: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        canceled = self.canceled

        completed = self.completed

        failed = self.failed

        max_trials = self.max_trials

        pending = self.pending

        pruned = self.pruned

        running = self.running

        stopped = self.stopped

        succeeded = self.succeeded

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "canceled": canceled,
                "completed": completed,
                "failed": failed,
                "max_trials": max_trials,
                "pending": pending,
                "pruned": pruned,
                "running": running,
                "stopped": stopped,
                "succeeded": succeeded,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        canceled = d.pop("canceled")

        completed = d.pop("completed")

        failed = d.pop("failed")

        max_trials = d.pop("max_trials")

        pending = d.pop("pending")

        pruned = d.pop("pruned")

        running = d.pop("running")

        stopped = d.pop("stopped")

        succeeded = d.pop("succeeded")

        progress = cls(
            canceled=canceled,
            completed=completed,
            failed=failed,
            max_trials=max_trials,
            pending=pending,
            pruned=pruned,
            running=running,
            stopped=stopped,
            succeeded=succeeded,
        )

        progress.additional_properties = d
        return progress

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
