"""Final-model schemas: what the HTTP API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api import statuses
from api.schemas.common import MAX_SQL_INT, Text

ModelStatus = Literal[statuses.values(statuses.ModelStatus)]


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # as experiment requests: true is no epoch count

    trial_id: Text | None = Field(default=None, description="default: the experiment's leaderboard best; in "
                                  "accuracy mode, of the trials within one standard error of its metric on the "
                                  "validation split, the one with the lowest validation loss")
    epochs: int | None = Field(default=None, ge=1, le=MAX_SQL_INT,
                               description="default: a multiple of the search's epochs")


class ArtifactRead(BaseModel):
    format: Literal["onnx", "onnx_int8", "pt2", "savedmodel", "tflite", "tflite_int8", "preprocessing", "card_md",
                    "card"]
    size: int
    sha256: str


class RuntimeFigures(BaseModel):
    test_accuracy: float = Field(description="On the held-out test split, run in onnxruntime.")
    size_bytes: int
    latency_ms_batch_1: float = Field(description="onnxruntime on the CPU, one thread, median ms per batch of 1.")
    latency_ms_batch_32: float = Field(description="The same per batch of 32 images.")


class Int8Read(BaseModel):
    fp32: RuntimeFigures = Field(description="model.onnx, measured next to the int8 file.")
    int8: RuntimeFigures | None = Field(description="model.int8.onnx; null when quantization failed.")
    accuracy_change: float | None = Field(description="int8 minus float32 test accuracy.")
    agreement: float | None = Field(description="Fraction of test images on which int8 and float32 predict the "
                                    "same class.")
    calibration_images: int = Field(description="Train images that set the int8 activation ranges.")
    max_accuracy_drop: float = Field(description="The loss past which the int8 file is flagged.")
    flagged: bool = Field(description="int8 loses more than max_accuracy_drop: kept, but not a replacement.")
    reason: str | None = Field(description="Why it is flagged, or why quantization failed.")


class TensorFlowCheck(BaseModel):
    ok: bool = Field(description="The file was made and agrees with model.onnx on the test split.")
    layout: Literal["NHWC"] = Field(description="Input [N, H, W, C], normalised as preprocessing.json says.")
    max_abs_diff: float | None = Field(description="Largest |logit difference| to model.onnx on the test split.")
    argmax_agreement: float | None = Field(description="Fraction of test images with model.onnx's predicted class.")
    images: int
    reason: str | None = Field(description="Why the format was not made (conversion failed, disagreement, or the "
                               "converter is not installed).")


class TFLiteInt8Read(BaseModel):
    ok: bool = Field(description="The file was made (a flagged file is made too).")
    layout: Literal["NHWC"] = Field(description="Input [N, H, W, C], float32, normalised as preprocessing.json says; "
                                    "the output is float32 logits.")
    images: int = Field(description="Test images it ran on (the whole test split).")
    calibration_images: int = Field(description="Train images that set the int8 ranges: those of the onnx_int8 "
                                    "file.")
    max_accuracy_drop: float = Field(description="The loss past which the file is flagged.")
    test_accuracy: float | None = Field(description="On the test split, run with the LiteRT interpreter.")
    fp32_test_accuracy: float | None = Field(description="model.onnx's on the same images.")
    accuracy_change: float | None = Field(description="int8 minus float32 test accuracy.")
    agreement: float | None = Field(description="Fraction of test images on which it predicts model.onnx's class.")
    size_bytes: int | None
    fp32_size_bytes: int | None = Field(description="model.tflite's size.")
    latency_ms_batch_1: float | None = Field(description="LiteRT on the CPU, one thread, median ms per batch of 1.")
    fp32_latency_ms_batch_1: float | None = Field(description="model.tflite's, timed the same way.")
    flagged: bool = Field(description="int8 loses more than max_accuracy_drop: kept, but not a replacement.")
    reason: str | None = Field(description="Why it is flagged, or why it was not made.")


class TensorFlowRead(BaseModel):
    savedmodel: TensorFlowCheck = Field(description="model.savedmodel.zip (TensorFlow SavedModel, run with "
                                        "TensorFlow).")
    tflite: TensorFlowCheck = Field(description="model.tflite (float32, run with the LiteRT interpreter).")
    tflite_int8: TFLiteInt8Read | None = Field(default=None, description="model.int8.tflite (onnx2tf's post-training "
                                               "int8 quantization, calibrated like model.int8.onnx), measured next "
                                               "to float32; null for models built before it.")
    seconds: float = Field(description="Wall time of conversion and checks.")
    atol: float = Field(description="The largest logit difference a format may show and still be made.")
    versions: dict[str, str]


class ClassMetrics(BaseModel):
    name: str
    precision: float
    recall: float
    support: int


class ModelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    status: ModelStatus
    experiment_id: str
    trial_id: str
    epochs: int
    estimated_seconds: float | None = Field(default=None, description="Retraining, test and export time announced "
                                            "before the job starts: the winner's measured epoch time (scaled to "
                                            "train+val) times the epochs, plus export.")
    seed: int
    test_accuracy: float | None
    test_images: int | None
    per_class: list[ClassMetrics] | None
    warm_started: bool | None = Field(default=None, description="Whether retraining started from the trial's "
                                      "trained weights (kept by the search for its leader) rather than from "
                                      "scratch; null until the model is built.")
    test_time_mirror: bool | None = Field(default=None, description="Whether the exported graph averages the "
                                          "logits of each image and its mirror image (chosen when that lowered "
                                          "the winning trial's validation loss without losing accuracy, and the "
                                          "latency constraint allows twice the inference cost); test_accuracy, "
                                          "flops and latency_ms are those of the exported graph. Null until the "
                                          "model is built.")
    flips_added: bool | None = Field(default=None, description="Whether the final model trained with random "
                                     "horizontal flips the winning trial did not use: its weights showed the data "
                                     "mirror-symmetric on the validation split (mirroring kept the balanced "
                                     "accuracy, or averaging both views helped) and the search space allows flips. "
                                     "The card's training recipe is the one trained. Null until the model is built.")
    validation_held_out: bool | None = Field(default=None, description="Whether the final model trained on the "
                                             "train split only and kept the val split to choose its weights by the "
                                             "experiment's metric (then loss): done when no trial of the search "
                                             "learned the data (every validation balanced accuracy less than a "
                                             "tenth of the way from chance to 1), where a long schedule could fit "
                                             "noise unchecked. "
                                             "Null until the model is built.")
    kept_epoch: int | None = Field(default=None, description="With validation_held_out: the epoch whose weights "
                                   "were kept, or 0 for the winning trial's own weights when no epoch beat them "
                                   "beyond the noise of the val split; null otherwise.")
    resolution_raised_from: int | None = Field(default=None, description="The winning trial's input side where "
                                               "the final model trained at a larger one (preprocessing.json states "
                                               "it): its time budget bought far more epochs than the trial trained "
                                               "(more than 60 at the trial's side), so it spent them at the side "
                                               "where about 60 fit, at most the largest the search space allows. "
                                               "Never with a latency or FLOPs constraint, a latency target or a "
                                               "Pareto objective, with held-out validation, or with asked-for "
                                               "epochs. Null otherwise.")
    augmentation_added: str | None = Field(default=None, description="The augmentation policy the final model "
                                           "added to the winning trial's recipe (trivial: TrivialAugment), chosen "
                                           "when its time budget fits 60 epochs or more, the trial trained with "
                                           "no policy and the search space allows it: augmentation that slows a "
                                           "trial of a few dozen epochs pays off over a long schedule. Never with "
                                           "held-out validation or asked-for epochs. The card's training recipe is "
                                           "the one trained. Null otherwise.")
    bf16: bool | None = Field(default=None, description="Whether the final model trained under bf16 autocast, as "
                              "its trials did where it pays (on CUDA GPUs of compute capability 8.0 and later; on "
                              "a CPU where a timed probe of the network showed it faster); testing, export and the "
                              "reported figures are float32 either way. Null until the model is built (and for "
                              "models built before).")
    int8: Int8Read | None = Field(default=None, description="The onnx_int8 artifact (static post-training "
                                  "quantization of model.onnx, QDQ, per-channel weights) next to float32 on the "
                                  "test split; null until the model is built (and for models built before int8).")
    tensorflow: TensorFlowRead | None = Field(default=None, description="The savedmodel, tflite and "
                                              "tflite_int8 artifacts, converted from model.onnx and checked against "
                                              "it on the test split; null when NAS_TF_EXPORT is off (and for "
                                              "models built before).")
    confusion_matrix: list[list[int]] | None
    params: int | None
    flops: int | None
    latency_ms: float | None = Field(description="onnxruntime on the CPU, batch 1, one thread, median")
    artifacts: list[ArtifactRead]
    attempts: int
    detail: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @model_validator(mode="before")
    @classmethod
    def _flatten_metrics(cls, value: Any) -> Any:
        # The row keeps per-class metrics in its `metrics` JSON; the API shows them as top-level fields.
        if isinstance(value, dict) or not hasattr(value, "metrics"):
            return value
        metrics = value.metrics or {}
        fields = {name: getattr(value, name) for name in cls.model_fields if hasattr(value, name)}
        return {**fields, "per_class": metrics.get("per_class"), "test_images": metrics.get("test_images"),
                "warm_started": metrics.get("warm_started"), "test_time_mirror": metrics.get("test_time_mirror"),
                "flips_added": metrics.get("flips_added"), "int8": metrics.get("int8"),
                "validation_held_out": metrics.get("validation_held_out"), "kept_epoch": metrics.get("kept_epoch"),
                "resolution_raised_from": metrics.get("resolution_raised_from"),
                "augmentation_added": metrics.get("augmentation_added"), "bf16": metrics.get("bf16"),
                "tensorflow": metrics.get("tensorflow")}


class ModelList(BaseModel):
    data: list[ModelRead]
    total: int


class PredictedClass(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    class_: str = Field(alias="class", description="A class name, as in preprocessing.json's classes.")
    probability: float = Field(description="Softmax of the model's logits for this class.")


class ImagePrediction(BaseModel):
    filename: str | None = Field(description="The image part's file name, as sent.")
    top: list[PredictedClass] = Field(description="The top_k most probable classes, most probable first.")


class PredictionRead(BaseModel):
    data: list[ImagePrediction] = Field(description="One entry per image, in the order they were sent.")
    latency_ms: float = Field(description="Milliseconds spent in onnxruntime on the request's batch (one CPU "
                                          "thread); decoding and preprocessing are not counted.")
