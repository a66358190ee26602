"""Images from untrusted bytes, and the one transform from an image to the network's input; no torch here.

What dataset ingestion (:mod:`nas_core.data`) and predictions (:mod:`nas_core.inference`, in the API process) share:
the upload limits (:class:`IngestLimits`), the allowed decoders (:data:`IMAGE_FORMATS`), opening a file by its header
alone with the per-image pixel limit checked first (:func:`open_image`), a full decode that refuses truncated files
(:func:`decode_checked`) and the exact resize behind the stored tensors and ``preprocessing.json``
(:func:`preprocess_image`).
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

RESIZE_METHOD = "bilinear"  # Pillow Image.Resampling.BILINEAR; written to preprocessing.json for clients
_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR}[RESIZE_METHOD]
#: Pillow decoders allowed to touch uploaded bytes; everything else (EPS, PSD, ICO, …) is never tried.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
@dataclass(frozen=True, slots=True)
class IngestLimits:
    """Caps applied to one upload; the service builds this from its settings.

    The ratio check applies to members (and archives) above ``ratio_check_min_bytes`` uncompressed: a tiny
    solid-colour BMP can legitimately deflate 500×, but it cannot hurt anyone. It cannot see decode amplification
    either (a 1 kB PNG may declare 40 M pixels), hence ``max_dataset_pixels``: the pixels all images declare in their
    headers, checked before any image is decoded. Pillow's own hard limit (``2 × PIL.Image.MAX_IMAGE_PIXELS``) stays
    a backstop above ``max_image_pixels``.

    ``setting_names`` says how reports name a limit (the service passes its settings, e.g.
    ``{"max_image_pixels": "NAS_MAX_IMAGE_PIXELS"}``); by default a limit is named by its field.

    >>> IngestLimits(max_image_pixels=1000).cite("max_image_pixels")
    'max_image_pixels = 1000'
    """

    max_members: int = 100_000
    max_uncompressed_bytes: int = 2 * 1024**3
    max_compression_ratio: float = 200.0  # per member and whole archive; a bomb betrays itself
    max_image_pixels: int = 50_000_000  # per image, from its header, before it is decoded
    max_dataset_pixels: int = 2_000_000_000  # all images together, from their headers, before any is decoded
    min_images_per_class: int = 5
    max_resolution: int = 128  # canonical side is chosen from the data, capped by this
    ratio_check_min_bytes: int = 1024 * 1024
    setting_names: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("max_members", "max_uncompressed_bytes", "max_image_pixels", "max_dataset_pixels",
                     "max_resolution"):
            if getattr(self, name) < 1:
                raise ValueError(f"IngestLimits.{name} must be at least 1")
        if self.max_compression_ratio <= 1 or self.min_images_per_class < 1 or self.ratio_check_min_bytes < 0:
            raise ValueError("IngestLimits: max_compression_ratio > 1, min_images_per_class ≥ 1, "
                             "ratio_check_min_bytes ≥ 0 are required")

    def cite(self, name: str) -> str:
        """A limit as reports name it: ``"NAS_MAX_IMAGE_PIXELS = 40000000"`` (or the field's name by default)."""
        return f"{self.setting_names.get(name, name)} = {getattr(self, name)}"


class BadImage(Exception):
    """One file is not a usable image; it is skipped and reported."""


def preprocess_image(image: Image.Image, *, channels: int, height: int, width: int) -> np.ndarray:
    """The exact per-image transform behind the stored tensors and ``preprocessing.json``: uint8 ``[C, H, W]``.

    Converts to ``"L"`` (``channels=1``) or ``"RGB"`` (``channels=3``; alpha is dropped), then resizes to
    (width, height) with ``RESIZE_METHOD``. 16-bit grayscale (``I;16*``) is first reduced to 8 bits by dropping the
    low byte (Pillow's own conversion would clip every value above 255 to white).

    >>> preprocess_image(Image.new("RGB", (40, 10), (255, 0, 0)), channels=1, height=4, width=8).shape
    (1, 4, 8)
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    if image.mode.startswith("I;16"):
        high_bytes = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
        image = Image.fromarray(high_bytes, mode="L")
    converted = image.convert("L" if channels == 1 else "RGB")
    resized = converted.resize((width, height), resample=_RESAMPLE)
    array = np.asarray(resized, dtype=np.uint8)
    array = array[np.newaxis] if channels == 1 else array.transpose(2, 0, 1)
    return np.array(array, dtype=np.uint8, order="C")  # a writable copy, safe to hand to torch.from_numpy


def open_image(data: bytes, limits: IngestLimits) -> Image.Image:
    """Open (headers only) with the allowed decoders, refusing pixel bombs before anything is decoded."""
    try:
        with warnings.catch_warnings():
            # Pillow's warning threshold is not ours: the check below enforces max_image_pixels, naming it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError as error:
        raise BadImage(_pixel_bomb(error, limits)) from None
    except Image.UnidentifiedImageError:
        raise BadImage(f"not an image in an allowed format ({', '.join(IMAGE_FORMATS)})") from None
    except Exception as error:  # Pillow raises many types for hostile headers; each one just means "not usable"
        raise BadImage(f"not a supported image ({', '.join(IMAGE_FORMATS)}): {error}") from None
    width, height = image.size
    if width * height > limits.max_image_pixels:
        image.close()
        raise BadImage(f"pixel bomb: {width}×{height} = {width * height} pixels exceed the per-image limit "
                        f"{limits.cite('max_image_pixels')}")
    return image


def _pixel_bomb(error: Exception, limits: IngestLimits) -> str:
    """Pillow's decompression-bomb error, told in terms of our limit (Pillow's message cites its own)."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    pixels = int(found.group(1)) if found else None
    if pixels is None or pixels > limits.max_image_pixels:
        amount = f"{pixels} pixels exceed" if pixels is not None else "the declared size exceeds"
        return f"pixel bomb: {amount} the per-image limit {limits.cite('max_image_pixels')}"
    return f"pixel bomb: {pixels} pixels exceed the decoder's hard limit of {2 * Image.MAX_IMAGE_PIXELS}"


def decode_checked(data: bytes, limits: IngestLimits) -> Image.Image:
    """``verify()`` on one handle, then ``load()`` on a fresh one (verify leaves its image unusable)."""
    # catch_warnings edits process-wide filters: fine in one-task-per-process Celery workers, and the pixel check in
    # open_image enforces the limit even if another thread's filter wins the race. Loading an animated GIF checks
    # frame sizes again: Pillow's warning there becomes an error.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with open_image(data, limits) as image:
            try:
                image.verify()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
                raise BadImage(_pixel_bomb(error, limits)) from None
            except Exception as error:
                raise BadImage(f"corrupt image: {error}") from None
        image = open_image(data, limits)
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            image.close()
            raise BadImage(_pixel_bomb(error, limits)) from None
        except Exception as error:
            image.close()
            raise BadImage(f"corrupt or truncated image: {error}") from None
    return image
