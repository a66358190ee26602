"""Predictions on raw images, exactly as ``preprocessing.json`` describes: decode safely, preprocess, rank classes.

Decoding applies dataset ingestion's image rules (:mod:`nas_core.data`): only Pillow's plug-ins for
:data:`~nas_core.images.IMAGE_FORMATS` are tried, the header's pixels are checked against ``max_image_pixels`` before
anything is decoded, and ``verify()`` then ``load()`` must both pass (a truncated file fails here). Unlike ingestion,
a photo's EXIF orientation is applied: an image is classified as a camera shows it.

>>> import numpy as np
>>> from PIL import Image
>>> preprocessing = {"input": {"channels": 1, "height": 2, "width": 2}, "color_mode": "L", "resize": "bilinear",
...                  "scale": 255.0, "mean": [0.5], "std": [0.5]}
>>> image_to_input(Image.new("RGB", (5, 3), (255, 255, 255)), preprocessing).tolist()
[[[1.0, 1.0], [1.0, 1.0]]]
>>> [(name, round(p, 3)) for name, p in top_classes(np.array([[0.0, 2.0, 1.0]]), ["ant", "bee", "cow"], k=2)[0]]
[('bee', 0.665), ('cow', 0.245)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageOps

from nas_core.images import RESIZE_METHOD, BadImage, IngestLimits, decode_checked, open_image, preprocess_image
from nas_core.errors import NASError

_COLOR_MODES = {1: "L", 3: "RGB"}


class ImageRejected(NASError):
    """One image cannot be used: not an image in an allowed format, corrupt or truncated, or a pixel bomb."""


def image_size(data: bytes, limits: IngestLimits) -> tuple[int, int]:
    """``(width, height)`` from the header alone: nothing is decoded, so a pixel bomb costs nothing.

    Raises :class:`ImageRejected` for a file that is not an allowed image or declares more than
    ``limits.max_image_pixels`` pixels.
    """
    try:
        with open_image(data, limits) as image:
            return image.size
    except BadImage as error:
        raise ImageRejected(str(error)) from None


def decode_image(data: bytes, limits: IngestLimits) -> Image.Image:
    """The decoded image (first frame), upright: its EXIF orientation applied. Raises :class:`ImageRejected`."""
    try:
        image = decode_checked(data, limits)
    except BadImage as error:
        raise ImageRejected(str(error)) from None
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception as error:  # a hostile EXIF block can make Pillow raise many types
        image.close()
        raise ImageRejected(f"unreadable EXIF orientation: {error}") from None
    return image


def image_to_input(image: Image.Image, preprocessing: Mapping) -> np.ndarray:
    """float32 ``[C, H, W]`` for the ONNX file: ``preprocessing.json``'s colour mode and bilinear resize (the same
    transform as the stored training tensors, :func:`nas_core.images.preprocess_image`), divided by ``scale``, minus
    ``mean``, divided by ``std`` per channel. Any size and Pillow mode; stack the results for a batch."""
    geometry = preprocessing["input"]
    channels = int(geometry["channels"])
    if _COLOR_MODES.get(channels) != preprocessing.get("color_mode", _COLOR_MODES.get(channels)):
        raise NASError(f"preprocessing: color_mode {preprocessing.get('color_mode')!r} does not fit "
                       f"{channels} channels")
    if preprocessing.get("resize", RESIZE_METHOD) != RESIZE_METHOD:
        raise NASError(f"preprocessing: resize {preprocessing['resize']!r} is not supported ({RESIZE_METHOD} is)")
    pixels = preprocess_image(image, channels=channels, height=int(geometry["height"]), width=int(geometry["width"]))
    mean = np.asarray(preprocessing["mean"], dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(preprocessing["std"], dtype=np.float32).reshape(-1, 1, 1)
    return ((pixels.astype(np.float32) / float(preprocessing["scale"]) - mean) / std).astype(np.float32)


def top_classes(logits: np.ndarray, classes: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
    """Per row of ``logits``, the ``k`` most probable classes (softmax) with their probabilities, most probable
    first; equal probabilities keep the classes' order."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != len(classes):
        raise NASError(f"logits of shape {logits.shape} do not fit {len(classes)} classes")
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = exp / exp.sum(axis=1, keepdims=True)
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :max(1, k)]
    return [[(classes[index], float(row[index])) for index in ranks] for row, ranks in zip(probabilities, order)]
