"""Predictions' engine side: the image → tensor transform the service applies, the same as the budget benchmark's
client-side preprocessing (``bench.budget.onnx_inputs``); the ranking of classes; decoding with ingestion's rules."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bench.budget import onnx_inputs
from nas_core.data import IngestLimits
from nas_core.export import preprocessing_dict
from nas_core.inference import ImageRejected, decode_image, image_size, image_to_input, top_classes
from tests import archives


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("shape", [(9, 31), (40, 12, 3), (7, 7, 4), (5, 6)])
def test_image_to_input_equals_the_benchmarks_preprocessing(channels, shape):
    spec = preprocessing_dict(classes=["a", "b"], channels=channels, height=6, width=11,
                              mean=[0.45, 0.5, 0.55][:channels], std=[0.2, 0.25, 0.3][:channels])
    pixels = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    ours = image_to_input(Image.fromarray(pixels), spec)
    assert ours.dtype == np.float32 and ours.shape == (channels, 6, 11)
    np.testing.assert_array_equal(ours, onnx_inputs(pixels[np.newaxis], spec, "NCHW")[0])


def test_top_classes_are_the_softmax_ranked_and_cut_at_k():
    logits = np.array([[1.0, 3.0, 2.0, 3.0], [1000.0, 998.0, -1000.0, 999.0]], dtype=np.float32)
    first, second = top_classes(logits, ["a", "b", "c", "d"], k=3)
    exp = np.exp([1.0, 3.0, 2.0, 3.0])
    assert [name for name, _ in first] == ["b", "d", "c"]  # a tie keeps the classes' order
    assert [p for _, p in first] == pytest.approx((exp / exp.sum())[[1, 3, 2]])
    big = np.exp([0.0, -2.0, -1.0])  # large logits do not overflow: only their differences count
    assert [name for name, _ in second] == ["a", "d", "b"]
    assert [p for _, p in second] == pytest.approx((big / big.sum())[[0, 2, 1]])
    assert len(top_classes(logits, ["a", "b", "c", "d"], k=10)[0]) == 4


def test_decoding_applies_ingestions_rules_and_the_exif_orientation():
    limits = IngestLimits(max_image_pixels=10_000)
    upright = Image.fromarray(np.random.default_rng(0).integers(0, 256, (9, 16, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 8  # "turn left to view"
    buffer = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_270).save(buffer, format="PNG", exif=exif)
    assert image_size(buffer.getvalue(), limits) == (9, 16)  # as stored
    with decode_image(buffer.getvalue(), limits) as image:
        np.testing.assert_array_equal(np.asarray(image), np.asarray(upright))

    with pytest.raises(ImageRejected, match="pixel bomb"):
        image_size(archives.pixel_bomb_png(), limits)
    with pytest.raises(ImageRejected, match="not an image"):
        decode_image(b"GIF89a but not really", limits)
    jpeg = archives.image_bytes(size=(64, 64), fmt="JPEG")
    with pytest.raises(ImageRejected, match="truncated"):
        decode_image(jpeg[: len(jpeg) // 2], limits)
