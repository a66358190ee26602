from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.trial_read_status import TrialReadStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.epoch_read import EpochRead
    from ..models.trial_read_arch import TrialReadArch
    from ..models.trial_read_decisions import TrialReadDecisions


T = TypeVar("T", bound="TrialRead")


@_attrs_define
class TrialRead:
    """
    Attributes:
        arch (TrialReadArch): The candidate: {"arch": ArchSpec, "train": TrainSpec}.
        arch_hash (str):
        attempts (int):
        created_at (datetime.datetime):
        decisions (TrialReadDecisions):
        duration_s (float | None):
        epochs (list[EpochRead]):
        error (None | str):
        feasible (bool):
        finished_at (datetime.datetime | None):
        flops (int | None):
        id (str):
        latency_ms (float | None): Per image at batch 1: the median of onnxruntime CPU runs of the exported network (the
            figure constraints, targets and Pareto ranks use).
        number (int):
        params (int | None):
        seed (int):
        started_at (datetime.datetime | None):
        status (TrialReadStatus):
        val_accuracy (float | None):
        val_loss (float | None):
        bf16 (bool | None | Unset): Whether the network trained under bf16 autocast: on CUDA GPUs of compute capability
            8.0 and later; on a CPU where a timed probe of the network found it faster (weights and loss stay float32).
            Decided once, before training; null before that.
        latency_batch_ms (float | None | Unset): Per image at the objective's latency_batch: the median of onnxruntime
            CPU runs at that batch (null without one).
        latency_p90_ms (float | None | Unset): The 90th percentile of the same runs.
        measured_epoch_s (float | None | Unset): Measured seconds per epoch (median).
        planned_epochs (int | None | Unset): Epochs this trial trains for in full: the budget's epochs_per_trial, or a
            multiple of it once a time-bound search has lengthened its trials because none had learned
            (budget.adaptive_epochs). null on trials stored before trial lengths varied.
        predicted_epoch_s (float | None | Unset): Seconds per epoch predicted before training (device calibration and
            the candidate's FLOPs).
        reference_design (bool | None | Unset): Whether the trial trains one of the search space's hand-designed
            reference networks with its recipe (tried first; when no trial has learned, the final model's default trial is
            chosen among them).
        started_from_trial (int | None | Unset): The number of the trial whose weights this one started from: a trial
            promoted to a longer length (the leader or lowest-loss trial of the shorter one) trains on from its shorter run
            where the search kept those weights; null: from random weights.
        stop_requested_at (datetime.datetime | None | Unset): When a stop of this trial was asked for (it ends stopped
            at its next batch, unless it ended first).
        val_balanced_accuracy (float | None | Unset): Mean per-class recall on the validation split.
        val_mirrored_balanced_accuracy (float | None | Unset): Balanced accuracy of the trained network on the
            validation images mirrored left to right: close to val_balanced_accuracy for a network trained without flips, a
            quarter of the way from chance to 1 or more, means the data set is mirror-symmetric (the reference networks not
            yet tried then train with flips).
        val_recall (list[float | None] | None | Unset): Recall of each class on the validation split (dataset class
            order; null for a class absent from it).
        val_upside_down_balanced_accuracy (float | None | Unset): Balanced accuracy on the validation images flipped top
            to bottom: close to val_balanced_accuracy for a network trained without vertical flips means the images are
            orientation-free (the reference networks not yet tried then train with vertical flips and quarter turns).
    """

    arch: TrialReadArch
    arch_hash: str
    attempts: int
    created_at: datetime.datetime
    decisions: TrialReadDecisions
    duration_s: float | None
    epochs: list[EpochRead]
    error: None | str
    feasible: bool
    finished_at: datetime.datetime | None
    flops: int | None
    id: str
    latency_ms: float | None
    number: int
    params: int | None
    seed: int
    started_at: datetime.datetime | None
    status: TrialReadStatus
    val_accuracy: float | None
    val_loss: float | None
    bf16: bool | None | Unset = UNSET
    latency_batch_ms: float | None | Unset = UNSET
    latency_p90_ms: float | None | Unset = UNSET
    measured_epoch_s: float | None | Unset = UNSET
    planned_epochs: int | None | Unset = UNSET
    predicted_epoch_s: float | None | Unset = UNSET
    reference_design: bool | None | Unset = UNSET
    started_from_trial: int | None | Unset = UNSET
    stop_requested_at: datetime.datetime | None | Unset = UNSET
    val_balanced_accuracy: float | None | Unset = UNSET
    val_mirrored_balanced_accuracy: float | None | Unset = UNSET
    val_recall: list[float | None] | None | Unset = UNSET
    val_upside_down_balanced_accuracy: float | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        arch = self.arch.to_dict()

        arch_hash = self.arch_hash

        attempts = self.attempts

        created_at = self.created_at.isoformat()

        decisions = self.decisions.to_dict()

        duration_s: float | None
        duration_s = self.duration_s

        epochs = []
        for epochs_item_data in self.epochs:
            epochs_item = epochs_item_data.to_dict()
            epochs.append(epochs_item)

        error: None | str
        error = self.error

        feasible = self.feasible

        finished_at: None | str
        if isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        flops: int | None
        flops = self.flops

        id = self.id

        latency_ms: float | None
        latency_ms = self.latency_ms

        number = self.number

        params: int | None
        params = self.params

        seed = self.seed

        started_at: None | str
        if isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        status = self.status.value

        val_accuracy: float | None
        val_accuracy = self.val_accuracy

        val_loss: float | None
        val_loss = self.val_loss

        bf16: bool | None | Unset
        if isinstance(self.bf16, Unset):
            bf16 = UNSET
        else:
            bf16 = self.bf16

        latency_batch_ms: float | None | Unset
        if isinstance(self.latency_batch_ms, Unset):
            latency_batch_ms = UNSET
        else:
            latency_batch_ms = self.latency_batch_ms

        latency_p90_ms: float | None | Unset
        if isinstance(self.latency_p90_ms, Unset):
            latency_p90_ms = UNSET
        else:
            latency_p90_ms = self.latency_p90_ms

        measured_epoch_s: float | None | Unset
        if isinstance(self.measured_epoch_s, Unset):
            measured_epoch_s = UNSET
        else:
            measured_epoch_s = self.measured_epoch_s

        planned_epochs: int | None | Unset
        if isinstance(self.planned_epochs, Unset):
            planned_epochs = UNSET
        else:
            planned_epochs = self.planned_epochs

        predicted_epoch_s: float | None | Unset
        if isinstance(self.predicted_epoch_s, Unset):
            predicted_epoch_s = UNSET
        else:
            predicted_epoch_s = self.predicted_epoch_s

        reference_design: bool | None | Unset
        if isinstance(self.reference_design, Unset):
            reference_design = UNSET
        else:
            reference_design = self.reference_design

        started_from_trial: int | None | Unset
        if isinstance(self.started_from_trial, Unset):
            started_from_trial = UNSET
        else:
            started_from_trial = self.started_from_trial

        stop_requested_at: None | str | Unset
        if isinstance(self.stop_requested_at, Unset):
            stop_requested_at = UNSET
        elif isinstance(self.stop_requested_at, datetime.datetime):
            stop_requested_at = self.stop_requested_at.isoformat()
        else:
            stop_requested_at = self.stop_requested_at

        val_balanced_accuracy: float | None | Unset
        if isinstance(self.val_balanced_accuracy, Unset):
            val_balanced_accuracy = UNSET
        else:
            val_balanced_accuracy = self.val_balanced_accuracy

        val_mirrored_balanced_accuracy: float | None | Unset
        if isinstance(self.val_mirrored_balanced_accuracy, Unset):
            val_mirrored_balanced_accuracy = UNSET
        else:
            val_mirrored_balanced_accuracy = self.val_mirrored_balanced_accuracy

        val_recall: list[float | None] | None | Unset
        if isinstance(self.val_recall, Unset):
            val_recall = UNSET
        elif isinstance(self.val_recall, list):
            val_recall = []
            for val_recall_type_0_item_data in self.val_recall:
                val_recall_type_0_item: float | None
                val_recall_type_0_item = val_recall_type_0_item_data
                val_recall.append(val_recall_type_0_item)

        else:
            val_recall = self.val_recall

        val_upside_down_balanced_accuracy: float | None | Unset
        if isinstance(self.val_upside_down_balanced_accuracy, Unset):
            val_upside_down_balanced_accuracy = UNSET
        else:
            val_upside_down_balanced_accuracy = self.val_upside_down_balanced_accuracy

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "arch": arch,
                "arch_hash": arch_hash,
                "attempts": attempts,
                "created_at": created_at,
                "decisions": decisions,
                "duration_s": duration_s,
                "epochs": epochs,
                "error": error,
                "feasible": feasible,
                "finished_at": finished_at,
                "flops": flops,
                "id": id,
                "latency_ms": latency_ms,
                "number": number,
                "params": params,
                "seed": seed,
                "started_at": started_at,
                "status": status,
                "val_accuracy": val_accuracy,
                "val_loss": val_loss,
            }
        )
        if bf16 is not UNSET:
            field_dict["bf16"] = bf16
        if latency_batch_ms is not UNSET:
            field_dict["latency_batch_ms"] = latency_batch_ms
        if latency_p90_ms is not UNSET:
            field_dict["latency_p90_ms"] = latency_p90_ms
        if measured_epoch_s is not UNSET:
            field_dict["measured_epoch_s"] = measured_epoch_s
        if planned_epochs is not UNSET:
            field_dict["planned_epochs"] = planned_epochs
        if predicted_epoch_s is not UNSET:
            field_dict["predicted_epoch_s"] = predicted_epoch_s
        if reference_design is not UNSET:
            field_dict["reference_design"] = reference_design
        if started_from_trial is not UNSET:
            field_dict["started_from_trial"] = started_from_trial
        if stop_requested_at is not UNSET:
            field_dict["stop_requested_at"] = stop_requested_at
        if val_balanced_accuracy is not UNSET:
            field_dict["val_balanced_accuracy"] = val_balanced_accuracy
        if val_mirrored_balanced_accuracy is not UNSET:
            field_dict["val_mirrored_balanced_accuracy"] = (
                val_mirrored_balanced_accuracy
            )
        if val_recall is not UNSET:
            field_dict["val_recall"] = val_recall
        if val_upside_down_balanced_accuracy is not UNSET:
            field_dict["val_upside_down_balanced_accuracy"] = (
                val_upside_down_balanced_accuracy
            )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.epoch_read import EpochRead
        from ..models.trial_read_arch import TrialReadArch
        from ..models.trial_read_decisions import TrialReadDecisions

        d = dict(src_dict)
        arch = TrialReadArch.from_dict(d.pop("arch"))

        arch_hash = d.pop("arch_hash")

        attempts = d.pop("attempts")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        decisions = TrialReadDecisions.from_dict(d.pop("decisions"))

        def _parse_duration_s(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        duration_s = _parse_duration_s(d.pop("duration_s"))

        epochs = []
        _epochs = d.pop("epochs")
        for epochs_item_data in _epochs:
            epochs_item = EpochRead.from_dict(epochs_item_data)

            epochs.append(epochs_item)

        def _parse_error(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        error = _parse_error(d.pop("error"))

        feasible = d.pop("feasible")

        def _parse_finished_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)

                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        finished_at = _parse_finished_at(d.pop("finished_at"))

        def _parse_flops(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        flops = _parse_flops(d.pop("flops"))

        id = d.pop("id")

        def _parse_latency_ms(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        latency_ms = _parse_latency_ms(d.pop("latency_ms"))

        number = d.pop("number")

        def _parse_params(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        params = _parse_params(d.pop("params"))

        seed = d.pop("seed")

        def _parse_started_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                started_at_type_0 = datetime.datetime.fromisoformat(data)

                return started_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        started_at = _parse_started_at(d.pop("started_at"))

        status = TrialReadStatus(d.pop("status"))

        def _parse_val_accuracy(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        val_accuracy = _parse_val_accuracy(d.pop("val_accuracy"))

        def _parse_val_loss(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        val_loss = _parse_val_loss(d.pop("val_loss"))

        def _parse_bf16(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        bf16 = _parse_bf16(d.pop("bf16", UNSET))

        def _parse_latency_batch_ms(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        latency_batch_ms = _parse_latency_batch_ms(d.pop("latency_batch_ms", UNSET))

        def _parse_latency_p90_ms(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        latency_p90_ms = _parse_latency_p90_ms(d.pop("latency_p90_ms", UNSET))

        def _parse_measured_epoch_s(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        measured_epoch_s = _parse_measured_epoch_s(d.pop("measured_epoch_s", UNSET))

        def _parse_planned_epochs(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        planned_epochs = _parse_planned_epochs(d.pop("planned_epochs", UNSET))

        def _parse_predicted_epoch_s(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        predicted_epoch_s = _parse_predicted_epoch_s(d.pop("predicted_epoch_s", UNSET))

        def _parse_reference_design(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        reference_design = _parse_reference_design(d.pop("reference_design", UNSET))

        def _parse_started_from_trial(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        started_from_trial = _parse_started_from_trial(
            d.pop("started_from_trial", UNSET)
        )

        def _parse_stop_requested_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                stop_requested_at_type_0 = datetime.datetime.fromisoformat(data)

                return stop_requested_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        stop_requested_at = _parse_stop_requested_at(d.pop("stop_requested_at", UNSET))

        def _parse_val_balanced_accuracy(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        val_balanced_accuracy = _parse_val_balanced_accuracy(
            d.pop("val_balanced_accuracy", UNSET)
        )

        def _parse_val_mirrored_balanced_accuracy(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        val_mirrored_balanced_accuracy = _parse_val_mirrored_balanced_accuracy(
            d.pop("val_mirrored_balanced_accuracy", UNSET)
        )

        def _parse_val_recall(data: object) -> list[float | None] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                val_recall_type_0 = []
                _val_recall_type_0 = data
                for val_recall_type_0_item_data in _val_recall_type_0:

                    def _parse_val_recall_type_0_item(data: object) -> float | None:
                        if data is None:
                            return data
                        return cast(float | None, data)

                    val_recall_type_0_item = _parse_val_recall_type_0_item(
                        val_recall_type_0_item_data
                    )

                    val_recall_type_0.append(val_recall_type_0_item)

                return val_recall_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[float | None] | None | Unset, data)

        val_recall = _parse_val_recall(d.pop("val_recall", UNSET))

        def _parse_val_upside_down_balanced_accuracy(
            data: object,
        ) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        val_upside_down_balanced_accuracy = _parse_val_upside_down_balanced_accuracy(
            d.pop("val_upside_down_balanced_accuracy", UNSET)
        )

        trial_read = cls(
            arch=arch,
            arch_hash=arch_hash,
            attempts=attempts,
            created_at=created_at,
            decisions=decisions,
            duration_s=duration_s,
            epochs=epochs,
            error=error,
            feasible=feasible,
            finished_at=finished_at,
            flops=flops,
            id=id,
            latency_ms=latency_ms,
            number=number,
            params=params,
            seed=seed,
            started_at=started_at,
            status=status,
            val_accuracy=val_accuracy,
            val_loss=val_loss,
            bf16=bf16,
            latency_batch_ms=latency_batch_ms,
            latency_p90_ms=latency_p90_ms,
            measured_epoch_s=measured_epoch_s,
            planned_epochs=planned_epochs,
            predicted_epoch_s=predicted_epoch_s,
            reference_design=reference_design,
            started_from_trial=started_from_trial,
            stop_requested_at=stop_requested_at,
            val_balanced_accuracy=val_balanced_accuracy,
            val_mirrored_balanced_accuracy=val_mirrored_balanced_accuracy,
            val_recall=val_recall,
            val_upside_down_balanced_accuracy=val_upside_down_balanced_accuracy,
        )

        trial_read.additional_properties = d
        return trial_read

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
