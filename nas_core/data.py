"""Dataset ingestion: an uploaded ImageFolder zip, hostile until proven otherwise → canonical uint8 tensors.

Pipeline of ``ingest_zip`` (each stage runs only when the previous one passed, so cheap checks guard costly ones):

1. Archive headers, nothing decompressed yet: member count; every member name (path traversal in any form, NUL
   bytes, duplicates); symlinks and other special files; encryption; compression methods; declared total size;
   compression ratio per member and over the whole archive. Any finding rejects the whole dataset
   (``DatasetRejected``) with every finding listed.
2. Layout: one folder per class (sorted names = label order); a single top-level folder wrapping all class folders is
   unwrapped; files deeper inside a class folder belong to that class (as torchvision's ``ImageFolder``). Junk is
   ignored and listed in ``IngestResult.ignored``, not in ``errors``: ``__MACOSX/``, ``Thumbs.db``, ``desktop.ini``
   and every hidden name (a path part starting with ``.``, e.g. ``.DS_Store``). Fewer than 2 classes → rejected;
   so are class names that differ only in Unicode normalisation (NFC ``café`` and NFD ``café`` display the same).
3. Nested archives, by extension and by magic bytes of each member's first bytes → rejected.
4. Images, one member in memory at a time, read through a size-limited reader, Pillow restricted to real image
   formats. First every header alone (``Image.open`` decodes nothing): each image's pixels against
   ``max_image_pixels``, then all of them together against ``max_dataset_pixels`` — a dataset over it is rejected
   before a single image is decoded. Then ``verify()`` and a fresh ``load()`` of each. A file that fails (not an image,
   truncated, pixel bomb, wrong extension, outside any class folder) is skipped and listed in ``errors``.
   Images with the same content (same bytes, or the same decoded pixels) are kept once: copies inside one class are
   dropped but one, and content found in two classes is dropped from all of them (its label is ambiguous), each
   listed in ``errors`` naming the other files — so no image can sit in two splits. Then every class needs
   ``min_images_per_class`` valid images, or the dataset is rejected naming it.
5. Canonical geometry, chosen from the valid images: side = the smaller of the median height and median width,
   raised to at least 16 and capped at ``max_resolution`` (the cap wins if it is below 16); images are resized to
   side × side (aspect ratio not kept — the same stretch a client applies). Channels: 1 when every image is
   grayscale (``1``, ``L``, ``LA``, ``I``, ``I;16*``, ``F``, or a palette of grays), else 3 (RGB, alpha dropped).
6. A second streaming pass decodes each valid image again through ``preprocess_image`` into one preallocated
   tensor — the only copy of pixel data kept.

Members are processed in sorted (class, name) order, so the result does not depend on the order inside the zip.
Multi-frame files (GIF, TIFF, WebP) contribute their first frame. EXIF orientation is not applied, exactly as a client
following ``preprocessing.json`` would not apply it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import stat
import statistics
import unicodedata
import zipfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from nas_core.errors import DatasetRejected, NASError
from nas_core.images import RESIZE_METHOD, BadImage, IngestLimits, decode_checked, open_image, preprocess_image

DEFAULT_LIMITS = IngestLimits()
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"})
ARCHIVE_EXTENSIONS = frozenset({".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".jar",
                                ".lz", ".lzma", ".cab", ".iso"})
# (offset, signature) pairs of archive and compressed-stream formats.
_ARCHIVE_MAGIC = ((0, b"PK\x03\x04"), (0, b"PK\x05\x06"), (0, b"PK\x07\x08"), (0, b"\x1f\x8b"),
                  (0, b"7z\xbc\xaf\x27\x1c"), (0, b"Rar!\x1a\x07"), (0, b"\xfd7zXZ\x00"), (0, b"\x28\xb5\x2f\xfd"),
                  (0, b"MSCF"), (4, b"1AY&SY"), (257, b"ustar"))
_MAGIC_PREFIX_BYTES = 512
_JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx"})
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_SUPPORTED_COMPRESSION = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
_ENCRYPTED_FLAGS = 0x1 | 0x40  # traditional PKWARE encryption, strong encryption
_AES_COMPRESSION = 99  # WinZip AES: the real method hides in an extra field
_READ_CHUNK = 1 << 20
# Enough for the header of almost every image (a JPEG's EXIF block can be larger; then the whole member is read).
_HEADER_PREFIX_BYTES = 64 * 1024
_DIGEST_STRIP_BYTES = 4 << 20  # decoded pixels are hashed in strips of about this size, never copied whole
MIN_SIDE = 16
MANIFEST_FORMAT = "nas-dataset"
MANIFEST_VERSION = 1
_NPZ_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the same arrays always give the same shard bytes


@dataclass
class IngestResult:
    """A validated dataset: canonical tensors plus the report the service shows to the uploader."""

    classes: list[str]  # sorted class folder names = label index order
    images: torch.Tensor  # uint8 [N, C, H, W] at the canonical resolution
    labels: torch.Tensor  # int64 [N]
    files: list[str]  # archive member name of each image (same order)
    channels: int
    height: int
    width: int
    mean: tuple[float, ...]  # per channel, of images/255 (training normalisation)
    std: tuple[float, ...]
    errors: list[dict]  # skipped files: {"file": name, "error": reason}
    duplicates: list[list[str]]  # groups of files with the same content: one kept, none if the group spans classes
    source_sizes: dict  # {"min": [h, w], "max": [h, w], "median": [h, w]}, each taken per axis
    ignored: list[str] = field(default_factory=list)  # junk members skipped silently (__MACOSX/, .DS_Store, …)
    source_modes: dict[str, int] = field(default_factory=dict)  # Pillow mode → number of valid images

    @property
    def num_images(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> list[dict]:
        """``[{"name": class, "count": images}]`` in label order."""
        counts = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return [{"name": name, "count": count} for name, count in zip(self.classes, counts)]


@dataclass
class DatasetTensors:
    """What a trainer needs, as read back from the object store by ``unpack_dataset``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    split: dict[str, torch.Tensor]
    channels: int
    height: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class SplitTensors:
    """A dataset's splits as uint8 ``[N, C, H, W]`` images and int64 labels (on the device that trains), with what
    preprocessing needs: what the trainer and the final model (:mod:`nas_core.final`) take."""

    classes: list[str]
    channels: int
    height: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


class DatasetIntegrityError(NASError):
    """Stored dataset objects do not match their manifest (tampered, truncated, or from another dataset)."""


@dataclass(frozen=True, slots=True)
class _Candidate:
    info: zipfile.ZipInfo
    class_index: int
    name: str  # relative to the wrapper folder, for sorting


@dataclass(frozen=True, slots=True)
class _Header:
    candidate: _Candidate
    height: int
    width: int


@dataclass(frozen=True, slots=True)
class _Valid:
    candidate: _Candidate
    sha256: str  # of the member's bytes
    pixels_sha256: str  # of the decoded pixels (mode, size, palette and every pixel)
    height: int
    width: int
    mode: str
    grayscale: bool


# ----------------------------------------------------------------------------------------------------------------
# Public API


def ingest_zip(source: str | os.PathLike | BinaryIO | bytes, limits: IngestLimits = DEFAULT_LIMITS) -> IngestResult:
    """Validate and tensorize an ImageFolder zip (a path, a seekable binary file, or bytes).

    Raises ``DatasetRejected(message, errors=[{"file", "error"}])`` when the archive as a whole is unusable
    (``"file"`` is None for findings about the whole archive); files that are merely bad are skipped and listed in
    ``IngestResult.errors``. See the module docstring for every rule.

    >>> from tests.archives import make_image_folder_zip
    >>> result = ingest_zip(make_image_folder_zip(classes={"cat": 5, "dog": 6}, size=(20, 30)))
    >>> result.classes, tuple(result.images.shape), result.class_counts()[0]
    (['cat', 'dog'], (11, 3, 20, 20), {'name': 'cat', 'count': 5})
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _ingest_file(io.BytesIO(source), limits)
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:  # a missing file is the caller's bug, not a bad upload
            return _ingest_file(handle, limits)
    return _ingest_file(source, limits)


def stratified_split(labels: torch.Tensor, *, seed: int,
                     fractions: Sequence[float] = (0.7, 0.15, 0.15)) -> dict[str, torch.Tensor]:
    """Seeded, stratified train/val/test split: ``{"train", "val", "test"}`` → sorted int64 index tensors.

    Per class, n × fraction rounded half up images go to val and to test, at least 1 each when the class has ≥ 3 images
    and the fraction is positive; train takes the rest. Classes with 1–2 images fill train first, then val.
    The splits are disjoint and cover every index; the same labels and seed give the same split.

    >>> split = stratified_split(torch.tensor([0] * 10 + [1] * 10), seed=0)
    >>> [len(split[name]) for name in ("train", "val", "test")]
    [12, 4, 4]
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, not {tuple(fractions)}")
    labels = torch.as_tensor(labels, dtype=torch.int64)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    _, val_fraction, test_fraction = fractions
    for label in torch.unique(labels).tolist():  # sorted, so the seed's draws always go to the same classes
        members = torch.nonzero(labels == label).flatten().numpy()
        members = members[rng.permutation(len(members))]
        count = len(members)
        if count >= 3:
            n_val = max(1 if val_fraction > 0 else 0, int(count * val_fraction + 0.5))
            n_test = max(1 if test_fraction > 0 else 0, int(count * test_fraction + 0.5))
            while count - n_val - n_test < 1:  # train keeps at least one; shrink the larger held-out side
                if n_val >= n_test:
                    n_val -= 1
                else:
                    n_test -= 1
        else:
            n_val, n_test = (count - 1 if val_fraction > 0 else 0), 0
        parts["val"].append(members[:n_val])
        parts["test"].append(members[n_val:n_val + n_test])
        parts["train"].append(members[n_val + n_test:])
    return {name: torch.from_numpy(np.sort(np.concatenate(chunks)) if chunks else np.empty(0, np.int64)).long()
            for name, chunks in parts.items()}


def pack_dataset(result: IngestResult, split: dict[str, torch.Tensor], *, shard_images: int = 4096
                 ) -> tuple[dict, dict[str, bytes]]:
    """Serialize an ingest result and its split into ``(manifest, {object_name: bytes})`` for the object store.

    Objects: ``shard-00000.npz``, … (``images`` uint8 [n, C, H, W], ``labels`` int64 [n]; uncompressed npz with fixed
    timestamps, so bytes are reproducible) and ``split.npz`` (``train``/``val``/``test`` int64 indices). The manifest
    is JSON-able; its ``sha256`` covers classes, geometry and every shard hash — the same input always gives the same
    value. Names are relative: the caller prefixes them with the dataset's key.
    """
    if shard_images < 1:
        raise ValueError("shard_images must be at least 1")
    count = result.num_images
    _check_split(split, count)
    objects: dict[str, bytes] = {}
    shards = []
    images = result.images.contiguous().numpy()
    labels = result.labels.to(torch.int64).numpy()
    for index, start in enumerate(range(0, count, shard_images)):
        name = f"shard-{index:05d}.npz"
        data = _npz_bytes({"images": images[start:start + shard_images], "labels": labels[start:start + shard_images]})
        objects[name] = data
        shards.append({"name": name, "sha256": hashlib.sha256(data).hexdigest(), "count": len(labels[start:start +
                      shard_images]), "size": len(data)})
    split_bytes = _npz_bytes({name: split[name].to(torch.int64).numpy() for name in ("train", "val", "test")})
    objects["split.npz"] = split_bytes
    image = {"channels": result.channels, "height": result.height, "width": result.width}
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "classes": list(result.classes),
        "class_counts": result.class_counts(),
        "num_images": count,
        "image": image,
        "resize": RESIZE_METHOD,
        "scale": 255.0,
        "mean": list(result.mean),
        "std": list(result.std),
        "splits": {name: int(split[name].numel()) for name in ("train", "val", "test")},
        "split": {"name": "split.npz", "sha256": hashlib.sha256(split_bytes).hexdigest(), "size": len(split_bytes)},
        "shards": shards,
    }
    manifest["sha256"] = _content_sha256(manifest)
    return manifest, objects


def unpack_dataset(manifest: dict, read: Callable[[str], bytes]) -> DatasetTensors:
    """Read a packed dataset back through ``read(object_name) -> bytes``, verifying every object's sha256.

    Raises ``DatasetIntegrityError`` on any mismatch: a shard or split whose bytes changed, a manifest whose
    ``sha256`` no longer matches its content, or arrays of the wrong shape or type.
    """
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("version") != MANIFEST_VERSION:
        raise DatasetIntegrityError(f"unknown dataset manifest format {manifest.get('format')!r} "
                                    f"version {manifest.get('version')!r}")
    if _content_sha256(manifest) != manifest.get("sha256"):
        raise DatasetIntegrityError("dataset manifest does not match its sha256")
    geometry = manifest["image"]
    shape = (geometry["channels"], geometry["height"], geometry["width"])
    image_chunks, label_chunks = [], []
    for shard in manifest["shards"]:
        arrays = _verified_npz(read, shard)
        images, labels = arrays["images"], arrays["labels"]
        if (images.dtype != np.uint8 or tuple(images.shape[1:]) != shape or labels.dtype != np.int64
                or images.shape[0] != shard["count"] or labels.shape != (shard["count"],)):
            raise DatasetIntegrityError(f"{shard['name']}: arrays do not match the manifest", errors=[
                {"file": shard["name"], "error": f"images {images.dtype}{list(images.shape)}, "
                                                 f"labels {labels.dtype}{list(labels.shape)}"}])
        image_chunks.append(images)
        label_chunks.append(labels)
    images = torch.from_numpy(np.concatenate(image_chunks)) if image_chunks else torch.empty((0, *shape),
                                                                                              dtype=torch.uint8)
    labels = torch.from_numpy(np.concatenate(label_chunks)) if label_chunks else torch.empty(0, dtype=torch.int64)
    if labels.numel() != manifest["num_images"] or (labels.numel() and
                                                    int(labels.max()) >= len(manifest["classes"])):
        raise DatasetIntegrityError("labels do not match the manifest's classes or image count")
    split_arrays = _verified_npz(read, manifest["split"])
    split = {name: torch.from_numpy(split_arrays[name]).long() for name in ("train", "val", "test")}
    try:
        _check_split(split, labels.numel())
    except ValueError as error:
        raise DatasetIntegrityError(str(error)) from None
    return DatasetTensors(images=images, labels=labels, classes=list(manifest["classes"]), split=split,
                          channels=shape[0], height=shape[1], width=shape[2], mean=tuple(manifest["mean"]),
                          std=tuple(manifest["std"]))


# ----------------------------------------------------------------------------------------------------------------
# Ingestion stages


def _ingest_file(handle: BinaryIO, limits: IngestLimits) -> IngestResult:
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as error:
        raise DatasetRejected("the upload is not a readable zip archive",
                              errors=[{"file": None, "error": f"not a zip archive: {error}"}]) from None
    with archive:
        infos = archive.infolist()
        _check_headers(infos, limits)
        classes, candidates, files, errors, ignored = _layout(infos)
        _check_nested_archives(archive, files)
        headers = _read_headers(archive, candidates, errors, limits)
        _check_dataset_pixels(headers, errors, limits)
        valid = _validate_images(archive, headers, errors, limits)
        valid, duplicates = _drop_duplicates(classes, valid, errors)
        _check_class_sizes(classes, valid, errors, limits)
        return _tensorize(archive, classes, valid, errors, ignored, limits, duplicates)


def _check_headers(infos: list[zipfile.ZipInfo], limits: IngestLimits) -> None:
    """Stage 1: everything decidable from the central directory alone, before one byte is decompressed."""
    if len(infos) > limits.max_members:
        reason = f"too many members: {len(infos)} > {limits.max_members}"
        raise DatasetRejected(f"the archive has {len(infos)} members; at most {limits.max_members} are allowed",
                              errors=[{"file": None, "error": reason}])
    problems: list[dict] = []
    seen: set[tuple[str, ...]] = set()
    total_size = total_compressed = 0
    for info in infos:
        name = info.orig_filename
        reasons = []
        unsafe = _unsafe_name(name) or _unsafe_name(info.filename)
        if unsafe:
            reasons.append(unsafe)
        else:
            key = (*_parts(info.filename), "/" if info.is_dir() else "")
            if key in seen:
                reasons.append("duplicate member name (readers would disagree on which one counts)")
            seen.add(key)
        file_type = stat.S_IFMT(info.external_attr >> 16)
        if file_type == stat.S_IFLNK:
            reasons.append("symbolic link")
        elif file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
            reasons.append("special file (device, FIFO or socket)")
        if info.flag_bits & _ENCRYPTED_FLAGS or info.compress_type == _AES_COMPRESSION:
            reasons.append("encrypted member")
        elif info.compress_type not in _SUPPORTED_COMPRESSION:
            reasons.append(f"unsupported compression method {info.compress_type}")
        if (info.file_size > limits.ratio_check_min_bytes
                and info.file_size > limits.max_compression_ratio * max(info.compress_size, 1)):
            ratio = info.file_size / max(info.compress_size, 1)
            reasons.append(f"compression ratio {ratio:.0f}:1 exceeds {limits.max_compression_ratio:.0f}:1 "
                           "(zip bomb)")
        total_size += info.file_size
        total_compressed += info.compress_size
        problems.extend({"file": name, "error": reason} for reason in reasons)
    if total_size > limits.max_uncompressed_bytes:
        problems.append({"file": None, "error": f"{total_size} uncompressed bytes exceed the limit of "
                                              f"{limits.max_uncompressed_bytes}"})
    if (total_size > limits.ratio_check_min_bytes
            and total_size > limits.max_compression_ratio * max(total_compressed, 1)):
        problems.append({"file": None, "error": f"archive compression ratio {total_size / max(total_compressed, 1):.0f}"
                                              f":1 exceeds {limits.max_compression_ratio:.0f}:1 (zip bomb)"})
    if problems:
        raise DatasetRejected(f"the archive is unsafe: {len(problems)} problem(s), first: "
                              f"{problems[0]['file'] or 'archive'}: {problems[0]['error']}", errors=problems)


def _unsafe_name(name: str) -> str | None:
    """Why ``name`` could escape an extraction root, or None. Checks the raw name, every form at once."""
    if "\x00" in name:
        return "NUL byte in member name"
    if "\\" in name:
        return "backslash in member name (a Windows path separator can hide traversal)"
    if name.startswith("/"):
        return "absolute path"
    if re.match(r"[A-Za-z]:", name):
        return "drive letter in member name"
    if ".." in name.split("/"):
        return "path traversal ('..')"
    if not _parts(name):
        return "empty member name"
    return None


def _parts(name: str) -> tuple[str, ...]:
    return tuple(part for part in name.split("/") if part not in ("", "."))


def _is_junk(parts: tuple[str, ...]) -> bool:
    return any(part.startswith(".") or part.lower() in _JUNK_NAMES for part in parts)


def _layout(infos: list[zipfile.ZipInfo]
            ) -> tuple[list[str], list[_Candidate], list[zipfile.ZipInfo], list[dict], list[str]]:
    """Stage 2: classes from folder names → classes, image candidates, every non-junk file, errors, ignored names."""
    ignored: list[str] = []
    entries: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    for info in infos:
        parts = _parts(info.filename)
        if _is_junk(parts):
            if not info.is_dir():
                ignored.append(info.filename)
            continue
        entries.append((info, parts))
    tops = {parts[0] for _, parts in entries}
    # A lone top folder is a wrapper when something sits below its first level (otherwise it is a lone class).
    wrapped = len(tops) == 1 and all(len(parts) > 1 or info.is_dir() for info, parts in entries) and any(
        len(parts) > 2 or (len(parts) == 2 and info.is_dir()) for info, parts in entries)
    if wrapped:
        entries = [(info, parts[1:]) for info, parts in entries if len(parts) > 1]
    class_names = sorted({parts[0] for info, parts in entries if len(parts) > 1 or info.is_dir()})
    if len(class_names) < 2:
        found = ", ".join(repr(name) for name in class_names) or "none"
        raise DatasetRejected(f"an ImageFolder zip needs at least 2 class folders; found {found}",
                              errors=[{"file": None, "error": f"fewer than 2 classes (found {found})"}])
    _check_class_names(class_names)
    index_of = {name: index for index, name in enumerate(class_names)}
    candidates: list[_Candidate] = []
    errors: list[dict] = []
    for info, parts in entries:
        if info.is_dir():
            continue
        if len(parts) == 1:
            errors.append({"file": info.filename, "error": "not inside a class folder; skipped"})
        elif os.path.splitext(parts[-1])[1].lower() not in IMAGE_EXTENSIONS:
            errors.append({"file": info.filename, "error": "not an image file extension "
                                                           f"({', '.join(sorted(IMAGE_EXTENSIONS))}); skipped"})
        else:
            candidates.append(_Candidate(info=info, class_index=index_of[parts[0]], name="/".join(parts)))
    candidates.sort(key=lambda candidate: (candidate.class_index, candidate.name))
    files = [info for info, _ in entries if not info.is_dir()]
    return class_names, candidates, files, errors, ignored


def _check_class_names(class_names: list[str]) -> None:
    """Two folders whose names differ only in Unicode normalisation (NFC vs NFD) would be two classes that look
    like one everywhere they are shown: the dataset is rejected naming them (escaped, so the difference shows)."""
    by_form: dict[str, list[str]] = defaultdict(list)
    for name in class_names:
        by_form[unicodedata.normalize("NFC", name)].append(name)
    clashes = [names for names in by_form.values() if len(names) > 1]
    if not clashes:
        return
    errors = [{"file": f"{name}/", "error": f"class folder {ascii(name)} is the same name as "
                                            f"{' and '.join(ascii(other) for other in names if other != name)} "
                                            "in another Unicode normalisation form"}
              for names in clashes for name in names]
    first = clashes[0]
    raise DatasetRejected(f"class folders {' and '.join(ascii(name) for name in first)} differ only in Unicode "
                          "normalisation (NFC/NFD) and would show as one class; rename or merge them",
                          errors=errors)


def _check_nested_archives(archive: zipfile.ZipFile, files: list[zipfile.ZipInfo]) -> None:
    """Stage 3: an archive anywhere inside is refused by extension, or by its first bytes when disguised."""
    problems = []
    for info in files:
        name = info.filename
        if os.path.splitext(name)[1].lower() in ARCHIVE_EXTENSIONS:
            problems.append({"file": name, "error": "nested archive (by extension)"})
            continue
        prefix = _read_member(archive, info, limit=_MAGIC_PREFIX_BYTES)
        if any(prefix[offset:offset + len(magic)] == magic for offset, magic in _ARCHIVE_MAGIC):
            problems.append({"file": name, "error": "nested archive (by content)"})
    if problems:
        raise DatasetRejected(f"the archive contains {len(problems)} nested archive(s), first: {problems[0]['file']}",
                              errors=problems)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int | None = None) -> bytes:
    """The member's bytes, never more than its declared size (nor ``limit``); a damaged member rejects the archive."""
    wanted = info.file_size if limit is None else min(limit, info.file_size)
    chunks, received = [], 0
    try:
        with archive.open(info) as stream:
            while received <= wanted:
                chunk = stream.read(min(_READ_CHUNK, wanted + 1 - received))
                if not chunk:
                    break
                received += len(chunk)
                chunks.append(chunk)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as error:
        raise DatasetRejected(f"the archive is damaged at {info.filename}",
                              errors=[{"file": info.filename, "error": f"damaged archive member: {error}"}]) from None
    if received > wanted and limit is None:
        raise DatasetRejected(f"{info.filename} holds more data than its header declares",
                              errors=[{"file": info.filename, "error": "member larger than its declared size"}])
    return b"".join(chunks)[:wanted]


def _pixels_digest(image: Image.Image) -> str:
    """sha256 of what decoding gave: mode, size, palette and pixels, hashed in strips (a large image is never
    copied whole). Two files with the same digest are the same image, however differently they were encoded."""
    digest = hashlib.sha256(f"{image.mode} {image.width}x{image.height}\n".encode())
    palette = image.getpalette(None) if image.mode in ("P", "PA") else None
    digest.update(bytes(palette or b""))
    rows = max(1, _DIGEST_STRIP_BYTES // max(1, 4 * image.width))  # no mode takes more than 4 bytes a pixel
    for top in range(0, image.height, rows):
        digest.update(image.crop((0, top, image.width, min(image.height, top + rows))).tobytes())
    return digest.hexdigest()


def _is_grayscale(image: Image.Image) -> bool:
    if image.mode in _GRAY_MODES:
        return True
    if image.mode in ("P", "PA"):
        palette = image.getpalette("RGB") or []
        return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette) - 2, 3))
    return False


def _read_headers(archive: zipfile.ZipFile, candidates: list[_Candidate], errors: list[dict],
                  limits: IngestLimits) -> list[_Header]:
    """Stage 4a: every candidate's size from its header alone (``Image.open`` decodes nothing); a file whose header
    is unusable or over ``max_image_pixels`` is skipped and reported here."""
    headers = []
    for candidate in candidates:
        try:
            width, height = _header_size(archive, candidate.info, limits)
        except BadImage as error:
            errors.append({"file": candidate.info.filename, "error": f"{error}; skipped"})
            continue
        headers.append(_Header(candidate=candidate, height=height, width=width))
    return headers


def _header_size(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: IngestLimits) -> tuple[int, int]:
    """(width, height) from the member's first bytes, or from all of them when its header lies further in."""
    if info.file_size > _HEADER_PREFIX_BYTES:
        try:
            with open_image(_read_member(archive, info, limit=_HEADER_PREFIX_BYTES), limits) as image:
                return image.size
        except BadImage:
            pass  # not decidable from the prefix (or really bad): the whole member decides
    with open_image(_read_member(archive, info), limits) as image:
        return image.size


def _check_dataset_pixels(headers: list[_Header], errors: list[dict], limits: IngestLimits) -> None:
    """Stage 4b: the pixels every header declares, together, against ``max_dataset_pixels`` — before decoding.

    Decoding time and memory follow the declared pixels, not the archive's bytes: 20 PNGs of 6300×6300 zip to
    21 kB. Over the limit the dataset is rejected at once, listing the largest images."""
    total = sum(header.width * header.height for header in headers)
    if total <= limits.max_dataset_pixels:
        return
    largest = sorted(headers, key=lambda header: (-header.width * header.height, header.candidate.name))[:10]
    report = [{"file": None, "error": f"{len(headers)} images declare {total} pixels in all, more than the limit "
                                      f"{limits.cite('max_dataset_pixels')}; nothing was decoded"}]
    report += [{"file": header.candidate.info.filename,
                "error": f"{header.width}×{header.height} = {header.width * header.height} pixels "
                         "(one of the largest images)"} for header in largest]
    raise DatasetRejected(f"the images would decode to {total} pixels, more than "
                          f"{limits.cite('max_dataset_pixels')} allows; use fewer or smaller images",
                          errors=report + errors)


def _validate_images(archive: zipfile.ZipFile, headers: list[_Header], errors: list[dict],
                     limits: IngestLimits) -> list[_Valid]:
    """Stage 4c: decode every image once to learn which are usable, their colour and content; keep no pixels."""
    valid = []
    for header in headers:
        candidate = header.candidate
        data = _read_member(archive, candidate.info)
        try:
            with decode_checked(data, limits) as image:
                width, height = image.size
                valid.append(_Valid(candidate=candidate, sha256=hashlib.sha256(data).hexdigest(),
                                    pixels_sha256=_pixels_digest(image), height=height, width=width,
                                    mode=image.mode, grayscale=_is_grayscale(image)))
        except BadImage as error:
            errors.append({"file": candidate.info.filename, "error": f"{error}; skipped"})
    return valid


def _drop_duplicates(classes: list[str], valid: list[_Valid], errors: list[dict]
                     ) -> tuple[list[_Valid], list[list[str]]]:
    """Stage 4d: one copy of each content. Copies inside one class: the first (in sorted order) stays. Content in
    two or more classes: every copy goes (which label is right is unknowable). Each dropped file is reported with
    the files it duplicates. Returns the images kept and every group of same-content files."""
    groups: dict[str, list[_Valid]] = defaultdict(list)
    for item in valid:
        groups[item.pixels_sha256].append(item)
    dropped: set[str] = set()
    for group in groups.values():
        if len(group) < 2:
            continue
        names = [item.candidate.info.filename for item in group]
        if len({item.candidate.class_index for item in group}) > 1:
            for name in names:
                peers = [f"{other} (class {classes[peer.candidate.class_index]!r})"
                         for peer, other in zip(group, names) if other != name]
                others = ", ".join(peers[:3]) + (f" and {len(peers) - 3} more" if len(peers) > 3 else "")
                errors.append({"file": name, "error": f"same image as {others}; an image in more than one class has "
                                                      "no single label: dropped from all of them"})
            dropped.update(names)
            continue
        first = group[0]
        for item, name in zip(group[1:], names[1:]):
            same = "bytes" if item.sha256 == first.sha256 else "decoded pixels"
            errors.append({"file": name, "error": f"duplicate of {names[0]} (same {same}); skipped, one copy kept"})
            dropped.add(name)
    kept = [item for item in valid if item.candidate.info.filename not in dropped]
    duplicates = sorted(sorted(item.candidate.info.filename for item in group)
                        for group in groups.values() if len(group) > 1)
    return kept, duplicates


def _check_class_sizes(classes: list[str], valid: list[_Valid], errors: list[dict], limits: IngestLimits) -> None:
    counts = [0] * len(classes)
    for item in valid:
        counts[item.candidate.class_index] += 1
    short = [{"file": f"{name}/", "error": f"class {name!r} has {count} valid image(s); at least "
                                           f"{limits.min_images_per_class} are required"}
             for name, count in zip(classes, counts) if count < limits.min_images_per_class]
    if short:
        names = ", ".join(repr(item["file"].rstrip("/")) for item in short)
        raise DatasetRejected(f"too few valid images in class(es) {names}", errors=short + errors)


# Decoded images of one dataset stay under this many bytes (uint8, every split; each worker holds them on its
# device): 1 GiB is 65,000 grayscale or 21,800 colour images at 128 px.
MAX_TENSOR_BYTES = 1 << 30


def canonical_side(heights: Sequence[int], widths: Sequence[int], max_resolution: int, *, channels: int = 1) -> int:
    """The canonical square side: min(median height, median width), at least ``MIN_SIDE``, at most the cap, and
    small enough that all images fit :data:`MAX_TENSOR_BYTES` (in steps of 8 px).

    >>> canonical_side([100, 120, 500], [80, 90, 90], 64), canonical_side([8, 9], [8, 9], 64)
    (64, 16)
    """
    side = min(statistics.median_low(heights), statistics.median_low(widths))
    fits = int(math.sqrt(MAX_TENSOR_BYTES / max(1, len(heights) * channels))) // 8 * 8
    return min(max_resolution, max(MIN_SIDE, side), max(MIN_SIDE, fits))


def _tensorize(archive: zipfile.ZipFile, classes: list[str], valid: list[_Valid], errors: list[dict],
               ignored: list[str], limits: IngestLimits, duplicates: list[list[str]]) -> IngestResult:
    """Stages 5–6: choose the geometry, decode again straight into the one output tensor, gather the report."""
    heights = [item.height for item in valid]
    widths = [item.width for item in valid]
    channels = 1 if all(item.grayscale for item in valid) else 3
    side = canonical_side(heights, widths, limits.max_resolution, channels=channels)
    images = torch.empty((len(valid), channels, side, side), dtype=torch.uint8)
    for index, item in enumerate(valid):
        data = _read_member(archive, item.candidate.info)
        if hashlib.sha256(data).hexdigest() != item.sha256:
            raise RuntimeError(f"{item.candidate.info.filename} changed while it was being ingested")
        with decode_checked(data, limits) as image:
            images[index] = torch.from_numpy(preprocess_image(image, channels=channels, height=side, width=side))
    mean, std = _channel_stats(images)
    modes: dict[str, int] = defaultdict(int)
    for item in valid:
        modes[item.mode] += 1
    return IngestResult(
        classes=classes,
        images=images,
        labels=torch.tensor([item.candidate.class_index for item in valid], dtype=torch.int64),
        files=[item.candidate.info.filename for item in valid],
        channels=channels, height=side, width=side, mean=mean, std=std,
        errors=errors,
        duplicates=duplicates,
        source_sizes={"min": [min(heights), min(widths)], "max": [max(heights), max(widths)],
                      "median": [statistics.median_low(heights), statistics.median_low(widths)]},
        ignored=ignored,
        source_modes=dict(sorted(modes.items())),
    )


def _channel_stats(images: torch.Tensor, chunk: int = 1024) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std of images/255 in float64 chunks; std floored at 1/255 (constant data)."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, images.shape[0], chunk):
        batch = images[start:start + chunk].to(torch.float64) / 255.0
        total += batch.sum(dim=(0, 2, 3))
        squares += (batch * batch).sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = torch.sqrt(torch.clamp(squares / count - mean * mean, min=0.0)).clamp(min=1.0 / 255.0)
    return tuple(round(float(value), 6) for value in mean), tuple(round(float(value), 6) for value in std)


# ----------------------------------------------------------------------------------------------------------------
# Shards


def _check_split(split: dict[str, torch.Tensor], count: int) -> None:
    if set(split) != {"train", "val", "test"}:
        raise ValueError(f"split needs exactly train/val/test, not {sorted(split)}")
    joined = torch.cat([split[name].to(torch.int64).flatten() for name in ("train", "val", "test")])
    if joined.numel() != count or not torch.equal(torch.sort(joined).values, torch.arange(count)):
        raise ValueError("split must be disjoint and cover every image index exactly once")


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``np.load``-compatible npz with fixed timestamps and no compression: identical arrays → identical bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_NPZ_DATE_TIME)
            with archive.open(info, "w", force_zip64=True) as stream:
                np.lib.format.write_array(stream, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _verified_npz(read: Callable[[str], bytes], entry: dict) -> dict[str, np.ndarray]:
    data = read(entry["name"])
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise DatasetIntegrityError(f"{entry['name']}: sha256 mismatch", errors=[
            {"file": entry["name"], "error": f"sha256 {digest} != manifest {entry['sha256']}"}])
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def _content_sha256(manifest: dict) -> str:
    """The dataset's identity: classes, geometry and shard hashes (canonical JSON), independent of object names."""
    content = {"classes": manifest["classes"], "image": manifest["image"],
               "shards": [shard["sha256"] for shard in manifest["shards"]]}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
