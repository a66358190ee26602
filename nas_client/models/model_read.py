from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.model_read_status import ModelReadStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.artifact_read import ArtifactRead
    from ..models.class_metrics import ClassMetrics
    from ..models.int_8_read import Int8Read
    from ..models.tensor_flow_read import TensorFlowRead


T = TypeVar("T", bound="ModelRead")


@_attrs_define
class ModelRead:
    """
    Attributes:
        artifacts (list[ArtifactRead]):
        attempts (int):
        confusion_matrix (list[list[int]] | None):
        created_at (datetime.datetime):
        detail (None | str):
        epochs (int):
        experiment_id (str):
        finished_at (datetime.datetime | None):
        flops (int | None):
        id (str):
        latency_ms (float | None): onnxruntime on the CPU, batch 1, one thread, median
        params (int | None):
        per_class (list[ClassMetrics] | None):
        seed (int):
        status (ModelReadStatus):
        test_accuracy (float | None):
        test_images (int | None):
        trial_id (str):
        updated_at (datetime.datetime):
        augmentation_added (None | str | Unset): The augmentation policy the final model added to the winning trial's
            recipe (trivial: TrivialAugment), chosen when its time budget fits 60 epochs or more, the trial trained with no
            policy and the search space allows it: augmentation that slows a trial of a few dozen epochs pays off over a
            long schedule. Never with held-out validation or asked-for epochs. The card's training recipe is the one
            trained. Null otherwise.
        bf16 (bool | None | Unset): Whether the final model trained under bf16 autocast, as its trials did where it pays
            (on CUDA GPUs of compute capability 8.0 and later; on a CPU where a timed probe of the network showed it
            faster); testing, export and the reported figures are float32 either way. Null until the model is built (and for
            models built before).
        estimated_seconds (float | None | Unset): Retraining, test and export time announced before the job starts: the
            winner's measured epoch time (scaled to train+val) times the epochs, plus export.
        flips_added (bool | None | Unset): Whether the final model trained with random horizontal flips the winning
            trial did not use: its weights showed the data mirror-symmetric on the validation split (mirroring kept the
            balanced accuracy, or averaging both views helped) and the search space allows flips. The card's training recipe
            is the one trained. Null until the model is built.
        int8 (Int8Read | None | Unset): The onnx_int8 artifact (static post-training quantization of model.onnx, QDQ,
            per-channel weights) next to float32 on the test split; null until the model is built (and for models built
            before int8).
        kept_epoch (int | None | Unset): With validation_held_out: the epoch whose weights were kept, or 0 for the
            winning trial's own weights when no epoch beat them beyond the noise of the val split; null otherwise.
        resolution_raised_from (int | None | Unset): The winning trial's input side where the final model trained at a
            larger one (preprocessing.json states it): its time budget bought far more epochs than the trial trained (more
            than 60 at the trial's side), so it spent them at the side where about 60 fit, at most the largest the search
            space allows. Never with a latency or FLOPs constraint, a latency target or a Pareto objective, with held-out
            validation, or with asked-for epochs. Null otherwise.
        tensorflow (None | TensorFlowRead | Unset): The savedmodel, tflite and tflite_int8 artifacts, converted from
            model.onnx and checked against it on the test split; null when NAS_TF_EXPORT is off (and for models built
            before).
        test_time_mirror (bool | None | Unset): Whether the exported graph averages the logits of each image and its
            mirror image (chosen when that lowered the winning trial's validation loss without losing accuracy, and the
            latency constraint allows twice the inference cost); test_accuracy, flops and latency_ms are those of the
            exported graph. Null until the model is built.
        validation_held_out (bool | None | Unset): Whether the final model trained on the train split only and kept the
            val split to choose its weights by the experiment's metric (then loss): done when no trial of the search learned
            the data (every validation balanced accuracy less than a tenth of the way from chance to 1), where a long
            schedule could fit noise unchecked. Null until the model is built.
        warm_started (bool | None | Unset): Whether retraining started from the trial's trained weights (kept by the
            search for its leader) rather than from scratch; null until the model is built.
    """

    artifacts: list[ArtifactRead]
    attempts: int
    confusion_matrix: list[list[int]] | None
    created_at: datetime.datetime
    detail: None | str
    epochs: int
    experiment_id: str
    finished_at: datetime.datetime | None
    flops: int | None
    id: str
    latency_ms: float | None
    params: int | None
    per_class: list[ClassMetrics] | None
    seed: int
    status: ModelReadStatus
    test_accuracy: float | None
    test_images: int | None
    trial_id: str
    updated_at: datetime.datetime
    augmentation_added: None | str | Unset = UNSET
    bf16: bool | None | Unset = UNSET
    estimated_seconds: float | None | Unset = UNSET
    flips_added: bool | None | Unset = UNSET
    int8: Int8Read | None | Unset = UNSET
    kept_epoch: int | None | Unset = UNSET
    resolution_raised_from: int | None | Unset = UNSET
    tensorflow: None | TensorFlowRead | Unset = UNSET
    test_time_mirror: bool | None | Unset = UNSET
    validation_held_out: bool | None | Unset = UNSET
    warm_started: bool | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.int_8_read import Int8Read
        from ..models.tensor_flow_read import TensorFlowRead

        artifacts = []
        for artifacts_item_data in self.artifacts:
            artifacts_item = artifacts_item_data.to_dict()
            artifacts.append(artifacts_item)

        attempts = self.attempts

        confusion_matrix: list[list[int]] | None
        if isinstance(self.confusion_matrix, list):
            confusion_matrix = []
            for confusion_matrix_type_0_item_data in self.confusion_matrix:
                confusion_matrix_type_0_item = confusion_matrix_type_0_item_data

                confusion_matrix.append(confusion_matrix_type_0_item)

        else:
            confusion_matrix = self.confusion_matrix

        created_at = self.created_at.isoformat()

        detail: None | str
        detail = self.detail

        epochs = self.epochs

        experiment_id = self.experiment_id

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

        params: int | None
        params = self.params

        per_class: list[dict[str, Any]] | None
        if isinstance(self.per_class, list):
            per_class = []
            for per_class_type_0_item_data in self.per_class:
                per_class_type_0_item = per_class_type_0_item_data.to_dict()
                per_class.append(per_class_type_0_item)

        else:
            per_class = self.per_class

        seed = self.seed

        status = self.status.value

        test_accuracy: float | None
        test_accuracy = self.test_accuracy

        test_images: int | None
        test_images = self.test_images

        trial_id = self.trial_id

        updated_at = self.updated_at.isoformat()

        augmentation_added: None | str | Unset
        if isinstance(self.augmentation_added, Unset):
            augmentation_added = UNSET
        else:
            augmentation_added = self.augmentation_added

        bf16: bool | None | Unset
        if isinstance(self.bf16, Unset):
            bf16 = UNSET
        else:
            bf16 = self.bf16

        estimated_seconds: float | None | Unset
        if isinstance(self.estimated_seconds, Unset):
            estimated_seconds = UNSET
        else:
            estimated_seconds = self.estimated_seconds

        flips_added: bool | None | Unset
        if isinstance(self.flips_added, Unset):
            flips_added = UNSET
        else:
            flips_added = self.flips_added

        int8: dict[str, Any] | None | Unset
        if isinstance(self.int8, Unset):
            int8 = UNSET
        elif isinstance(self.int8, Int8Read):
            int8 = self.int8.to_dict()
        else:
            int8 = self.int8

        kept_epoch: int | None | Unset
        if isinstance(self.kept_epoch, Unset):
            kept_epoch = UNSET
        else:
            kept_epoch = self.kept_epoch

        resolution_raised_from: int | None | Unset
        if isinstance(self.resolution_raised_from, Unset):
            resolution_raised_from = UNSET
        else:
            resolution_raised_from = self.resolution_raised_from

        tensorflow: dict[str, Any] | None | Unset
        if isinstance(self.tensorflow, Unset):
            tensorflow = UNSET
        elif isinstance(self.tensorflow, TensorFlowRead):
            tensorflow = self.tensorflow.to_dict()
        else:
            tensorflow = self.tensorflow

        test_time_mirror: bool | None | Unset
        if isinstance(self.test_time_mirror, Unset):
            test_time_mirror = UNSET
        else:
            test_time_mirror = self.test_time_mirror

        validation_held_out: bool | None | Unset
        if isinstance(self.validation_held_out, Unset):
            validation_held_out = UNSET
        else:
            validation_held_out = self.validation_held_out

        warm_started: bool | None | Unset
        if isinstance(self.warm_started, Unset):
            warm_started = UNSET
        else:
            warm_started = self.warm_started

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "artifacts": artifacts,
                "attempts": attempts,
                "confusion_matrix": confusion_matrix,
                "created_at": created_at,
                "detail": detail,
                "epochs": epochs,
                "experiment_id": experiment_id,
                "finished_at": finished_at,
                "flops": flops,
                "id": id,
                "latency_ms": latency_ms,
                "params": params,
                "per_class": per_class,
                "seed": seed,
                "status": status,
                "test_accuracy": test_accuracy,
                "test_images": test_images,
                "trial_id": trial_id,
                "updated_at": updated_at,
            }
        )
        if augmentation_added is not UNSET:
            field_dict["augmentation_added"] = augmentation_added
        if bf16 is not UNSET:
            field_dict["bf16"] = bf16
        if estimated_seconds is not UNSET:
            field_dict["estimated_seconds"] = estimated_seconds
        if flips_added is not UNSET:
            field_dict["flips_added"] = flips_added
        if int8 is not UNSET:
            field_dict["int8"] = int8
        if kept_epoch is not UNSET:
            field_dict["kept_epoch"] = kept_epoch
        if resolution_raised_from is not UNSET:
            field_dict["resolution_raised_from"] = resolution_raised_from
        if tensorflow is not UNSET:
            field_dict["tensorflow"] = tensorflow
        if test_time_mirror is not UNSET:
            field_dict["test_time_mirror"] = test_time_mirror
        if validation_held_out is not UNSET:
            field_dict["validation_held_out"] = validation_held_out
        if warm_started is not UNSET:
            field_dict["warm_started"] = warm_started

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.artifact_read import ArtifactRead
        from ..models.class_metrics import ClassMetrics
        from ..models.int_8_read import Int8Read
        from ..models.tensor_flow_read import TensorFlowRead

        d = dict(src_dict)
        artifacts = []
        _artifacts = d.pop("artifacts")
        for artifacts_item_data in _artifacts:
            artifacts_item = ArtifactRead.from_dict(artifacts_item_data)

            artifacts.append(artifacts_item)

        attempts = d.pop("attempts")

        def _parse_confusion_matrix(data: object) -> list[list[int]] | None:
            if data is None:
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                confusion_matrix_type_0 = []
                _confusion_matrix_type_0 = data
                for confusion_matrix_type_0_item_data in _confusion_matrix_type_0:
                    confusion_matrix_type_0_item = cast(
                        list[int], confusion_matrix_type_0_item_data
                    )

                    confusion_matrix_type_0.append(confusion_matrix_type_0_item)

                return confusion_matrix_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[list[int]] | None, data)

        confusion_matrix = _parse_confusion_matrix(d.pop("confusion_matrix"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        def _parse_detail(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        detail = _parse_detail(d.pop("detail"))

        epochs = d.pop("epochs")

        experiment_id = d.pop("experiment_id")

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

        def _parse_params(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        params = _parse_params(d.pop("params"))

        def _parse_per_class(data: object) -> list[ClassMetrics] | None:
            if data is None:
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                per_class_type_0 = []
                _per_class_type_0 = data
                for per_class_type_0_item_data in _per_class_type_0:
                    per_class_type_0_item = ClassMetrics.from_dict(
                        per_class_type_0_item_data
                    )

                    per_class_type_0.append(per_class_type_0_item)

                return per_class_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[ClassMetrics] | None, data)

        per_class = _parse_per_class(d.pop("per_class"))

        seed = d.pop("seed")

        status = ModelReadStatus(d.pop("status"))

        def _parse_test_accuracy(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        test_accuracy = _parse_test_accuracy(d.pop("test_accuracy"))

        def _parse_test_images(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        test_images = _parse_test_images(d.pop("test_images"))

        trial_id = d.pop("trial_id")

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        def _parse_augmentation_added(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        augmentation_added = _parse_augmentation_added(
            d.pop("augmentation_added", UNSET)
        )

        def _parse_bf16(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        bf16 = _parse_bf16(d.pop("bf16", UNSET))

        def _parse_estimated_seconds(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        estimated_seconds = _parse_estimated_seconds(d.pop("estimated_seconds", UNSET))

        def _parse_flips_added(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        flips_added = _parse_flips_added(d.pop("flips_added", UNSET))

        def _parse_int8(data: object) -> Int8Read | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                int8_type_0 = Int8Read.from_dict(data)

                return int8_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(Int8Read | None | Unset, data)

        int8 = _parse_int8(d.pop("int8", UNSET))

        def _parse_kept_epoch(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        kept_epoch = _parse_kept_epoch(d.pop("kept_epoch", UNSET))

        def _parse_resolution_raised_from(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        resolution_raised_from = _parse_resolution_raised_from(
            d.pop("resolution_raised_from", UNSET)
        )

        def _parse_tensorflow(data: object) -> None | TensorFlowRead | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                tensorflow_type_0 = TensorFlowRead.from_dict(data)

                return tensorflow_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TensorFlowRead | Unset, data)

        tensorflow = _parse_tensorflow(d.pop("tensorflow", UNSET))

        def _parse_test_time_mirror(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        test_time_mirror = _parse_test_time_mirror(d.pop("test_time_mirror", UNSET))

        def _parse_validation_held_out(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        validation_held_out = _parse_validation_held_out(
            d.pop("validation_held_out", UNSET)
        )

        def _parse_warm_started(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        warm_started = _parse_warm_started(d.pop("warm_started", UNSET))

        model_read = cls(
            artifacts=artifacts,
            attempts=attempts,
            confusion_matrix=confusion_matrix,
            created_at=created_at,
            detail=detail,
            epochs=epochs,
            experiment_id=experiment_id,
            finished_at=finished_at,
            flops=flops,
            id=id,
            latency_ms=latency_ms,
            params=params,
            per_class=per_class,
            seed=seed,
            status=status,
            test_accuracy=test_accuracy,
            test_images=test_images,
            trial_id=trial_id,
            updated_at=updated_at,
            augmentation_added=augmentation_added,
            bf16=bf16,
            estimated_seconds=estimated_seconds,
            flips_added=flips_added,
            int8=int8,
            kept_epoch=kept_epoch,
            resolution_raised_from=resolution_raised_from,
            tensorflow=tensorflow,
            test_time_mirror=test_time_mirror,
            validation_held_out=validation_held_out,
            warm_started=warm_started,
        )

        model_read.additional_properties = d
        return model_read

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
