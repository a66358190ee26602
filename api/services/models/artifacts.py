"""The artifact files of a final model: each format's file name, media type and input layout, and the model card
(``card.json`` and ``card.md``) that lists every other file with its hash and how it was checked."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    """How one artifact format is named and served."""

    filename: str
    media_type: str


ARTIFACT_FILES = {
    "onnx": ArtifactFile("model.onnx", "application/octet-stream"),
    "onnx_int8": ArtifactFile("model.int8.onnx", "application/octet-stream"),
    "pt2": ArtifactFile("model.pt2", "application/octet-stream"),
    "savedmodel": ArtifactFile("model.savedmodel.zip", "application/zip"),  # TensorFlow SavedModel, NHWC input
    "tflite": ArtifactFile("model.tflite", "application/octet-stream"),  # float32 TFLite, NHWC input
    "tflite_int8": ArtifactFile("model.int8.tflite", "application/octet-stream"),  # int8 inside, float32 in and out
    "preprocessing": ArtifactFile("preprocessing.json", "application/json"),
    "card_md": ArtifactFile("card.md", "text/markdown"),  # the card for people; written before card.json
    "card": ArtifactFile("card.json", "application/json"),
}
# The input layout each model format takes (preprocessing.json's ``layouts`` and the card say it too).
ARTIFACT_LAYOUTS = {"onnx": "NCHW", "onnx_int8": "NCHW", "pt2": "NCHW", "savedmodel": "NHWC", "tflite": "NHWC",
                    "tflite_int8": "NHWC"}


def _verification(format: str, *, built, metrics: dict) -> dict | None:
    """How ``format``'s file was checked on the test split, for the card (None: not a model file)."""
    from nas_core.final import VERIFY_CHUNK  # the .pt2 program is checked on the first chunk

    images = metrics["test_images"]
    if format == "onnx":
        return {"runtime": "onnxruntime", "against": "pytorch", "images": images, "atol": 1e-4,
                "max_abs_diff": built.onnx_max_abs_diff, "argmax_agreement": 1.0}
    if format == "pt2":
        return {"runtime": "torch.export", "against": "pytorch", "images": min(images, VERIFY_CHUNK), "atol": 1e-4,
                "max_abs_diff": built.pt2_max_abs_diff, "argmax_agreement": 1.0}
    if format == "onnx_int8" and metrics["int8"] is not None:
        int8 = metrics["int8"]
        return {"runtime": "onnxruntime", "against": "onnx", "images": images, "argmax_agreement": int8["agreement"],
                "accuracy_change": int8["accuracy_change"], "flagged": int8["flagged"], "reason": int8["reason"]}
    if format in ("savedmodel", "tflite") and metrics["tensorflow"] is not None:
        check, atol = metrics["tensorflow"][format], metrics["tensorflow"]["atol"]
        return {"runtime": "tensorflow" if format == "savedmodel" else "litert", "against": "onnx",
                "images": check["images"], "atol": atol, "max_abs_diff": check["max_abs_diff"],
                "argmax_agreement": check["argmax_agreement"]}
    if format == "tflite_int8" and (_tflite_int8(metrics) or {}).get("ok"):
        int8 = _tflite_int8(metrics)
        return {"runtime": "litert", "against": "onnx", "images": int8["images"],
                "argmax_agreement": int8["agreement"], "accuracy_change": int8["accuracy_change"],
                "flagged": int8["flagged"], "reason": int8["reason"]}
    return None


def _tflite_int8(metrics: dict) -> dict | None:
    """The int8 TFLite file's report (None: TensorFlow formats off, or a model built before the file existed)."""
    return (metrics["tensorflow"] or {}).get("tflite_int8")


def _measured(format: str, *, built, metrics: dict) -> tuple[float | None, float | None]:
    """``format``'s test accuracy and CPU milliseconds at batch 1 as the job already measured them (None: not
    measured; nothing is run again for the card)."""
    from nas_core.final import VERIFY_CHUNK

    accuracy, images = built.report.accuracy, metrics["test_images"]
    if format == "onnx":  # the reported accuracy is the ONNX file's (verified on every test image); timed by the job
        return accuracy, built.latency_ms
    if format == "onnx_int8" and metrics["int8"] is not None and metrics["int8"]["int8"] is not None:
        figures = metrics["int8"]["int8"]
        return figures["test_accuracy"], figures["latency_ms_batch_1"]
    if format == "pt2" and images <= VERIFY_CHUNK:  # its check then covered every test image, same argmax
        return accuracy, None
    if format in ("savedmodel", "tflite") and metrics["tensorflow"] is not None:
        check = metrics["tensorflow"][format]
        # run on every test image and kept only with model.onnx's class on each: the same test accuracy
        if check["ok"] and check["images"] == images and check["argmax_agreement"] == 1.0:
            return accuracy, None
    if format == "tflite_int8" and (_tflite_int8(metrics) or {}).get("ok"):
        int8 = _tflite_int8(metrics)
        return int8["test_accuracy"], int8["latency_ms_batch_1"]
    return None, None


def _artifact_entry(folder: Path, format: str, *, built, metrics: dict) -> dict[str, Any]:
    path = folder / ARTIFACT_FILES[format].filename
    accuracy, latency_ms = _measured(format, built=built, metrics=metrics)
    return {"format": format, "file": path.name, "size": path.stat().st_size, "sha256": sha256(path),
            "layout": ARTIFACT_LAYOUTS.get(format), "test_accuracy": accuracy, "latency_ms_batch_1": latency_ms,
            "verification": _verification(format, built=built, metrics=metrics)}


def write_cards(card: dict, *, folder: Path, built, metrics: dict) -> None:
    """``card.md`` and ``card.json``, both listing every other artifact (file, bytes, sha256, layout, check).

    The files are final by now, so their hashes are those of what is uploaded; card.md is rendered from the card
    and then listed in card.json (a file cannot hold its own hash).
    """
    card["artifacts"] = [_artifact_entry(folder, format, built=built, metrics=metrics)
                         for format, file in ARTIFACT_FILES.items()
                         if format not in ("card", "card_md") and (folder / file.filename).exists()]
    card["missing_formats"] = _missing_formats(metrics)
    (folder / ARTIFACT_FILES["card_md"].filename).write_text(card_markdown(card))
    card["artifacts"].append(_artifact_entry(folder, "card_md", built=built, metrics=metrics))
    write_json(folder / ARTIFACT_FILES["card"].filename, card)


def _missing_formats(metrics: dict) -> dict[str, str]:
    """The optional formats this model lacks, and why."""
    missing = {}
    if metrics["int8"] is not None and metrics["int8"]["reason"] and metrics["int8"]["int8"] is None:
        missing["onnx_int8"] = metrics["int8"]["reason"]
    tensorflow = metrics["tensorflow"]
    for format in ("savedmodel", "tflite", "tflite_int8"):
        if tensorflow is None:
            missing[format] = "not made: NAS_TF_EXPORT is off"
        elif tensorflow.get(format) is not None and not tensorflow[format]["ok"]:
            missing[format] = tensorflow[format]["reason"]
    return missing


def _trained_on(metrics: dict) -> str:
    """The splits a final model trained on, and with a held-out validation split, the weights it kept."""
    if not metrics.get("validation_held_out"):
        return "the train and val splits"
    kept = metrics.get("kept_epoch")
    return ("the train split (no trial of the search learned the data, so the val split was held out to choose the "
            "weights kept: " + ("the winning trial's own, which no epoch beat beyond the noise" if kept == 0
                                else f"epoch {kept}") + ")")


def card_markdown(card: dict) -> str:
    """``card.md``: the card for people, rendered from the same data as ``card.json``."""
    metrics, dataset = card["metrics"], card["dataset"]
    image = dataset["image"]
    lines = [f"# Model {card['model_id']}", "",
             f"Experiment `{card['experiment_id']}`, trial `{card['trial_id']}`; trained {card['epochs']} epochs on "
             f"{_trained_on(metrics)} of dataset **{dataset['name']}** (`{dataset['id']}`), tested on its held-out "
             "test split.", "",
             "## Results", "",
             f"- Test accuracy: {metrics['test_accuracy']:.4f} on {metrics['test_images']} images",
             f"- Parameters: {metrics['params']:,}; FLOPs: {metrics['flops']:,}",
             f"- Latency: {metrics['latency_ms']:.3f} ms ({metrics['latency']})",
             f"- Test-time mirroring: {'yes' if metrics['test_time_mirror'] else 'no'}",
             *(["- Random horizontal flips added in retraining: the winning trial's weights showed the data "
                "mirror-symmetric"] if metrics.get("flips_added") else []),
             *([f"- Augmentation policy added in retraining: {metrics['augmentation_added']} (a long schedule)"]
               if metrics.get("augmentation_added") else []),
             *(["- Trained under bf16 autocast (faster on this device); tested and exported in float32"]
               if metrics.get("bf16") else []), "",
             *_search_lines(card.get("search")),
             "## Input", "",
             f"{image['channels']} channel(s), {len(dataset['classes'])} classes; see `preprocessing.json` for the "
             "resizing and normalisation. NCHW formats take `[N, C, H, W]`, NHWC formats `[N, H, W, C]`.", "",
             "## Artifacts", "",
             "| format | file | bytes | sha256 | layout | test accuracy | ms, batch 1 | check on the test split |",
             "| --- | --- | ---: | --- | --- | ---: | ---: | --- |"]
    for entry in card["artifacts"]:
        lines.append(f"| {entry['format']} | `{entry['file']}` | {entry['size']} | `{entry['sha256']}` | "
                     f"{entry['layout'] or ''} | {_figure(entry.get('test_accuracy'), '.4f')} | "
                     f"{_figure(entry.get('latency_ms_batch_1'), '.3f')} | {_describe_check(entry['verification'])} |")
    lines += ["", "Latency: the job's CPU timing (one thread, median): onnxruntime for the ONNX files, the LiteRT "
              "interpreter for the int8 TFLite file (`metrics.tensorflow.tflite_int8` has the float32 TFLite file's "
              "next to it); the other formats are not timed by the job. `card.json` holds the same data, and this "
              "file's sha256."]
    if card.get("missing_formats"):
        lines += ["", "## Formats not made", ""]
        lines += [f"- {format}: {reason}" for format, reason in card["missing_formats"].items()]
    return "\n".join(lines) + "\n"


def _search_lines(search: dict | None) -> list[str]:
    if not search:
        return []
    budget = ", ".join(f"{name} {value}" for name, value in sorted(search["budget"].items()))
    return ["## Search", "",
            f"Found by a {search['strategy']} search (experiment `{search['experiment_id']}`); trials trained: "
            f"{search['trials_trained']}; budget: {budget or 'none'}.", ""]


def _figure(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _describe_check(check: dict | None) -> str:
    if check is None:
        return ""
    parts = [f"{check['runtime']} vs {check['against']}, {check['images']} images"]
    if check.get("max_abs_diff") is not None:
        parts.append(f"max abs diff {check['max_abs_diff']:.2e}")
    if check.get("argmax_agreement") is not None:
        parts.append(f"argmax agreement {check['argmax_agreement']:.2%}")
    if check.get("flagged"):
        parts.append(f"flagged: {check['reason']}")
    return "; ".join(parts)


def write_json(path: Path, data: dict) -> None:
    """``data`` as indented JSON with sorted keys (``card.json``, ``preprocessing.json``)."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def sha256(path: Path) -> str:
    """The hex SHA-256 of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
