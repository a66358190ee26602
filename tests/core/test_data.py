"""Dataset ingestion: every hostile archive is refused, every bad file reported, good data tensorized exactly."""

from __future__ import annotations

import io
import json
import time
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from nas_core.data import (
    DatasetIntegrityError,
    IngestLimits,
    canonical_side,
    ingest_zip,
    pack_dataset,
    preprocess_image,
    stratified_split,
    unpack_dataset,
)
from nas_core.errors import DatasetRejected
from tests import archives


def rejected(data: bytes, limits: IngestLimits = IngestLimits()) -> DatasetRejected:
    with pytest.raises(DatasetRejected) as caught:
        ingest_zip(data, limits)
    assert caught.value.errors, "a rejection must carry a report"
    return caught.value


def errors_for(errors: list[dict], name: str) -> list[str]:
    return [item["error"] for item in errors if item["file"] == name]


# -- whole-archive rejections -----------------------------------------------------------------------------------


@pytest.mark.parametrize("form", sorted(archives.ZIP_SLIP_FORMS))
def test_zip_slip_rejected_in_every_form(form):
    error = rejected(archives.zip_slip(form))
    assert errors_for(error.errors, archives.ZIP_SLIP_FORMS[form]), error.errors


def test_symlink_member_rejected():
    error = rejected(archives.symlink_zip())
    assert errors_for(error.errors, "cat/link.png") == ["symbolic link"]


def test_encrypted_member_rejected_on_the_flag_bit():
    error = rejected(archives.encrypted_zip())
    assert errors_for(error.errors, "cat/cat_000.png") == ["encrypted member"]


@pytest.mark.parametrize("disguised", [False, True])
def test_nested_archive_rejected_by_extension_and_by_magic(disguised):
    error = rejected(archives.nested_zip(disguised=disguised))
    name = "cat/more.png" if disguised else "cat/more.zip"
    assert errors_for(error.errors, name) == [f"nested archive (by {'content' if disguised else 'extension'})"]


def test_nested_archive_outside_class_folders_still_rejected():
    data = archives.make_image_folder_zip(extra_members=[("notes.txt", archives.make_image_folder_zip())])
    assert errors_for(rejected(data).errors, "notes.txt") == ["nested archive (by content)"]


def test_bomb_by_ratio_rejected_before_decompressing(monkeypatch):
    data = archives.bomb_ratio_zip()
    # Reading any member would call ZipFile.open; the header check must decide first.
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *args, **kwargs: pytest.fail("member was read"))
    error = rejected(data)
    assert any("zip bomb" in reason for reason in errors_for(error.errors, "cat/bomb.png"))


def test_small_highly_compressible_member_is_not_a_bomb():
    flat = io.BytesIO()
    Image.new("RGB", (20, 20), (10, 20, 30)).save(flat, format="BMP")  # 1.3 kB that deflates ~50×
    data = archives.make_image_folder_zip(extra_members=[("cat/flat.bmp", flat.getvalue())])
    assert "cat/flat.bmp" in ingest_zip(data).files


def test_bomb_by_member_count_rejected():
    error = rejected(archives.many_members_zip(41), IngestLimits(max_members=40))
    assert "too many members" in error.errors[0]["error"]


def test_total_uncompressed_size_cap():
    data = archives.make_image_folder_zip()
    declared = sum(info.file_size for info in zipfile.ZipFile(io.BytesIO(data)).infolist())
    error = rejected(data, IngestLimits(max_uncompressed_bytes=declared - 1))
    assert "exceed the limit" in error.errors[0]["error"]
    assert ingest_zip(data, IngestLimits(max_uncompressed_bytes=declared)).images.shape[0] == 12


def test_header_that_understates_a_member_size_rejects_the_archive():
    error = rejected(archives.understated_size_zip())
    assert errors_for(error.errors, "cat/cat_000.png")[0].startswith("damaged archive member")


def test_not_a_zip_rejected():
    assert "not a zip" in rejected(archives.not_a_zip()).errors[0]["error"]


def test_empty_class_rejected_naming_it():
    error = rejected(archives.empty_class_zip())
    assert "'bird'" in error.message
    assert errors_for(error.errors, "bird/") == ["class 'bird' has 0 valid image(s); at least 5 are required"]


def test_single_class_rejected():
    error = rejected(archives.single_class_zip())
    assert "at least 2 class folders" in error.message


def test_class_below_minimum_after_skipping_bad_files_rejected_with_file_report():
    data = archives.make_image_folder_zip(classes={"cat": 4, "dog": 6},
                                          extra_members=[("cat/notes.png", b"not an image")])  # 5 files, 4 valid
    error = rejected(data)
    assert "'cat'" in error.message and errors_for(error.errors, "cat/notes.png")
    assert errors_for(error.errors, "cat/") == ["class 'cat' has 4 valid image(s); at least 5 are required"]
    assert ingest_zip(data, IngestLimits(min_images_per_class=4)).class_counts()[0]["count"] == 4


# -- per-file problems: skipped and reported --------------------------------------------------------------------


def test_text_file_named_png_is_skipped_and_reported():
    result = ingest_zip(archives.text_as_png_zip())
    assert "cat/notes.png" not in result.files
    assert "not an image" in errors_for(result.errors, "cat/notes.png")[0]
    assert result.class_counts() == [{"name": "cat", "count": 6}, {"name": "dog", "count": 6}]


def test_truncated_jpeg_is_skipped_and_reported():
    result = ingest_zip(archives.truncated_jpeg_zip())
    assert "dog/broken.jpg" not in result.files
    assert "truncated" in errors_for(result.errors, "dog/broken.jpg")[0]


def test_pixel_bomb_header_is_skipped_and_reported():
    result = ingest_zip(archives.pixel_bomb_zip())
    assert "pixel bomb" in errors_for(result.errors, "cat/huge.png")[0]


def test_real_image_above_a_low_pixel_limit_is_skipped_before_decoding():
    big = archives.image_bytes(size=(40, 40), seed=5)
    result = ingest_zip(archives.make_image_folder_zip(extra_members=[("dog/big.png", big)]),
                        IngestLimits(max_image_pixels=1000))
    assert errors_for(result.errors, "dog/big.png") == [
        "pixel bomb: 40×40 = 1600 pixels exceed the per-image limit max_image_pixels = 1000; skipped"]


@pytest.mark.parametrize("width", [10_000, 20_000])  # over Pillow's warning threshold; over its hard limit too
def test_pixel_bomb_report_cites_our_limit_not_pillows(width):
    data = archives.make_image_folder_zip(extra_members=[("cat/huge.png", archives.pixel_bomb_png(width=width))])
    limits = IngestLimits(max_image_pixels=40_000_000, setting_names={"max_image_pixels": "NAS_MAX_IMAGE_PIXELS"})
    [error] = errors_for(ingest_zip(data, limits).errors, "cat/huge.png")
    assert error.startswith("pixel bomb:") and "NAS_MAX_IMAGE_PIXELS = 40000000" in error, error
    assert str(Image.MAX_IMAGE_PIXELS) not in error and str(2 * Image.MAX_IMAGE_PIXELS) not in error, error


def test_dataset_over_the_pixel_limit_is_rejected_from_headers_before_anything_is_decoded(monkeypatch):
    data = archives.make_image_folder_zip(size=(20, 20), extra_members=[("dog/big.png", archives.flat_png(300))])
    monkeypatch.setattr(Image.Image, "load", lambda *args, **kwargs: pytest.fail("an image was decoded"))
    error = rejected(data, IngestLimits(max_dataset_pixels=12 * 400 + 300 * 300 - 1,
                                        setting_names={"max_dataset_pixels": "NAS_MAX_DATASET_PIXELS"}))
    assert "NAS_MAX_DATASET_PIXELS = 94799" in error.message
    assert error.errors[0] == {"file": None, "error": "13 images declare 94800 pixels in all, more than the limit "
                                                      "NAS_MAX_DATASET_PIXELS = 94799; nothing was decoded"}
    assert error.errors[1] == {"file": "dog/big.png", "error": "300×300 = 90000 pixels (one of the largest images)"}


def test_dataset_at_the_pixel_limit_is_accepted():
    data = archives.make_image_folder_zip(size=(20, 20), extra_members=[("dog/big.png", archives.flat_png(300))])
    assert ingest_zip(data, IngestLimits(max_dataset_pixels=12 * 400 + 300 * 300)).num_images == 13


def test_a_tiny_zip_that_decodes_to_billions_of_pixels_is_refused_at_once():
    data = archives.decode_amplification_zip()  # 60 × 6300² = 2.4 G pixels in 22 kB; each image alone is fine
    assert len(data) < 30_000
    started = time.monotonic()
    error = rejected(data, IngestLimits(max_image_pixels=40_000_000))
    assert time.monotonic() - started < 10  # decoding them takes minutes and ~40 MB each
    assert "2381400000 pixels" in error.message and "max_dataset_pixels = 2000000000" in error.message


def test_files_at_root_and_unknown_extensions_are_reported_junk_is_ignored():
    data = archives.make_image_folder_zip(extra_members=[
        ("README.txt", b"hello"), ("cat/labels.csv", b"a,b"), ("__MACOSX/cat/._cat_000.png", b"\0"),
        ("cat/.DS_Store", b"\0"), ("dog/Thumbs.db", b"\0")])
    result = ingest_zip(data)
    assert errors_for(result.errors, "README.txt") == ["not inside a class folder; skipped"]
    assert "not an image file extension" in errors_for(result.errors, "cat/labels.csv")[0]
    assert sorted(result.ignored) == ["__MACOSX/cat/._cat_000.png", "cat/.DS_Store", "dog/Thumbs.db"]
    assert len(result.files) == 12


# -- layout, geometry, colour -----------------------------------------------------------------------------------


def test_wrapper_folder_accepted_with_the_same_result():
    plain = ingest_zip(archives.make_image_folder_zip())
    wrapped = ingest_zip(archives.make_image_folder_zip(wrapper="my-dataset"))
    assert wrapped.classes == plain.classes == ["cat", "dog"]
    assert torch.equal(wrapped.images, plain.images) and torch.equal(wrapped.labels, plain.labels)
    assert wrapped.files[0] == "my-dataset/cat/cat_000.png"


def test_images_in_subfolders_belong_to_their_class_folder():
    extra = [(f"dog/outdoor/d{index}.png", archives.image_bytes(seed=500 + index)) for index in range(2)]
    result = ingest_zip(archives.make_image_folder_zip(extra_members=extra))
    assert result.class_counts() == [{"name": "cat", "count": 6}, {"name": "dog", "count": 8}]


@pytest.mark.parametrize("mode,ext", [("L", "png"), ("1", "bmp"), ("I;16", "png"), ("L", "jpg")])
def test_grayscale_stays_one_channel(mode, ext):
    result = ingest_zip(archives.make_image_folder_zip(mode=mode, ext=ext))
    assert result.channels == 1 and result.images.shape[1] == 1 and len(result.mean) == len(result.std) == 1


def test_sixteen_bit_grayscale_keeps_its_high_byte_instead_of_clipping():
    result = ingest_zip(archives.make_image_folder_zip(mode="I;16"))
    assert 100 < result.images.float().mean() < 155  # uniform noise: clipping would push it to ~255


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_colour_becomes_three_channels(mode):
    result = ingest_zip(archives.make_image_folder_zip(mode=mode))
    assert result.channels == 3 and result.images.shape[1:] == (3, 20, 20)


def test_one_colour_image_makes_the_whole_dataset_rgb():
    data = archives.make_image_folder_zip(mode="L", extra_members=[("dog/colour.png", archives.image_bytes())])
    result = ingest_zip(data)
    assert result.channels == 3 and result.source_modes == {"L": 12, "RGB": 1}


def test_canonical_size_rule():
    assert canonical_side([30, 30, 90], [40, 50, 50], 64) == 30  # min of the per-axis medians
    assert canonical_side([8, 8, 9], [8, 9, 9], 64) == 16  # at least 16
    assert canonical_side([300], [200], 64) == 64  # capped
    assert canonical_side([300], [200], 8) == 8  # the cap wins over the floor
    result = ingest_zip(archives.make_image_folder_zip(size=(50, 30)))  # (width, height)
    assert (result.height, result.width) == (30, 30)
    assert result.source_sizes == {"min": [30, 50], "max": [30, 50], "median": [30, 50]}
    assert ingest_zip(archives.make_image_folder_zip(size=(50, 30)), IngestLimits(max_resolution=24)).height == 24


def _reencoded(data: bytes) -> bytes:
    """The same pixels in other bytes (PNG without compression)."""
    buffer = io.BytesIO()
    with Image.open(io.BytesIO(data)) as image:
        image.save(buffer, format="PNG", compress_level=0)
    assert buffer.getvalue() != data
    return buffer.getvalue()


def test_copies_inside_one_class_are_kept_once_and_reported():
    source = zipfile.ZipFile(io.BytesIO(archives.make_image_folder_zip())).read("cat/cat_001.png")
    data = archives.make_image_folder_zip(duplicates={"cat/copy.png": "cat/cat_001.png"},
                                          extra_members=[("cat/resaved.png", _reencoded(source))])
    result = ingest_zip(data)
    assert result.duplicates == [["cat/cat_001.png", "cat/copy.png", "cat/resaved.png"]]
    assert "cat/cat_001.png" in result.files and len(result.files) == 12  # the first in name order stays
    assert errors_for(result.errors, "cat/copy.png") == [
        "duplicate of cat/cat_001.png (same bytes); skipped, one copy kept"]
    assert errors_for(result.errors, "cat/resaved.png") == [
        "duplicate of cat/cat_001.png (same decoded pixels); skipped, one copy kept"]


def test_an_image_in_two_classes_is_dropped_from_both_naming_both_paths():
    data = archives.make_image_folder_zip(classes={"cat": 7, "dog": 6}, duplicates={"dog/copy.png": "cat/cat_001.png"})
    result = ingest_zip(data)
    assert "cat/cat_001.png" not in result.files and "dog/copy.png" not in result.files
    assert result.class_counts() == [{"name": "cat", "count": 6}, {"name": "dog", "count": 6}]
    assert result.duplicates == [["cat/cat_001.png", "dog/copy.png"]]
    assert errors_for(result.errors, "cat/cat_001.png") == [
        "same image as dog/copy.png (class 'dog'); an image in more than one class has no single label: dropped "
        "from all of them"]
    assert "cat/cat_001.png (class 'cat')" in errors_for(result.errors, "dog/copy.png")[0]


def test_a_class_left_too_small_by_dropped_duplicates_rejects_the_dataset():
    data = archives.make_image_folder_zip(duplicates={"dog/copy.png": "cat/cat_001.png"})  # cat keeps 5, dog 6
    assert ingest_zip(data).class_counts()[0]["count"] == 5
    error = rejected(data, IngestLimits(min_images_per_class=6))
    assert "'cat'" in error.message and errors_for(error.errors, "dog/copy.png")


def test_no_image_content_lands_in_two_splits():
    copies = {f"cat/copy-{index}.png": "cat/cat_000.png" for index in range(12)}
    copies |= {f"dog/copy-{index}.png": "dog/dog_000.png" for index in range(12)}
    result = ingest_zip(archives.make_image_folder_zip(classes={"cat": 8, "dog": 8}, duplicates=copies))
    assert result.num_images == 16 and len(result.duplicates) == 2
    split = stratified_split(result.labels, seed=0)
    content = {name: {result.images[index].numpy().tobytes() for index in split[name].tolist()} for name in split}
    assert not content["train"] & content["test"] and not content["train"] & content["val"]
    assert not content["val"] & content["test"]


def test_class_names_that_differ_only_in_unicode_normalisation_are_rejected():
    error = rejected(archives.normalisation_twins_zip())
    assert "'cafe\\u0301' and 'caf\\xe9'" in error.message and "normalisation" in error.message
    assert sorted(item["file"] for item in error.errors) == sorted(["caf\u00e9/", "cafe\u0301/"])


def test_result_does_not_depend_on_member_order_and_accepts_paths_and_files(tmp_path):
    data = archives.make_image_folder_zip()
    reordered = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(reordered, "w") as target:
        for info in reversed(source.infolist()):
            target.writestr(info, source.read(info))
    path = tmp_path / "upload.zip"
    path.write_bytes(reordered.getvalue())
    first = ingest_zip(data)
    for other in (ingest_zip(path), ingest_zip(io.BytesIO(reordered.getvalue()))):
        assert other.files == first.files and torch.equal(other.images, first.images)
        assert other.mean == first.mean and other.std == first.std


def test_mean_and_std_are_those_of_the_stored_pixels():
    result = ingest_zip(archives.make_image_folder_zip())
    pixels = result.images.double() / 255
    assert np.allclose(result.mean, pixels.mean(dim=(0, 2, 3)).numpy(), atol=1e-6)
    assert np.allclose(result.std, pixels.std(dim=(0, 2, 3), unbiased=False).numpy(), atol=1e-6)


@pytest.mark.parametrize("mode,ext,size", [("RGB", "jpg", (37, 23)), ("L", "png", (70, 90)), ("RGBA", "webp", (16, 40)),
                                           ("I;16", "png", (20, 20))])
def test_preprocess_image_equals_the_stored_tensor(mode, ext, size):
    data = archives.make_image_folder_zip(mode=mode, ext=ext, size=size)
    result = ingest_zip(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for index in (0, len(result.files) - 1):
            with Image.open(io.BytesIO(archive.read(result.files[index]))) as image:
                client = preprocess_image(image, channels=result.channels, height=result.height, width=result.width)
            assert client.dtype == np.uint8 and client.shape == tuple(result.images.shape[1:])
            assert np.array_equal(client, result.images[index].numpy())


# -- split, shards ----------------------------------------------------------------------------------------------


def test_stratified_split_is_disjoint_covering_seeded_and_has_every_class_everywhere():
    labels = torch.tensor([0] * 3 + [1] * 7 + [2] * 40 + [3] * 100)
    split = stratified_split(labels, seed=7)
    joined = torch.cat(list(split.values()))
    assert torch.equal(torch.sort(joined).values, torch.arange(len(labels)))  # disjoint and covering
    for name, indices in split.items():
        assert indices.dtype == torch.int64
        assert set(labels[indices].tolist()) == {0, 1, 2, 3}, name
    assert [int((labels[split["train"]] == 3).sum()), int((labels[split["val"]] == 3).sum())] == [70, 15]
    again = stratified_split(labels, seed=7)
    assert all(torch.equal(split[name], again[name]) for name in split)
    other = stratified_split(labels, seed=8)
    assert not torch.equal(split["val"], other["val"])
    with pytest.raises(ValueError):
        stratified_split(labels, seed=0, fractions=(0.5, 0.5, 0.5))


def test_stratified_split_of_tiny_classes():
    split = stratified_split(torch.tensor([0, 1, 1]), seed=0)
    # A lone image trains; a pair gives one to train and one to val.
    assert len(split["train"]) == 2 and 0 in split["train"].tolist()
    assert len(split["val"]) == 1 and split["val"].item() in (1, 2) and len(split["test"]) == 0


@pytest.fixture(scope="module")
def packed():
    result = ingest_zip(archives.make_image_folder_zip(classes={"a": 7, "b": 5, "c": 6}, mode="L"))
    split = stratified_split(result.labels, seed=3)
    manifest, objects = pack_dataset(result, split, shard_images=5)
    return result, split, manifest, objects


def test_pack_unpack_round_trip(packed):
    result, split, manifest, objects = packed
    assert sorted(objects) == [f"shard-0000{index}.npz" for index in range(4)] + ["split.npz"]
    assert [shard["count"] for shard in manifest["shards"]] == [5, 5, 5, 3]
    assert manifest["splits"] == {name: len(split[name]) for name in ("train", "val", "test")}
    assert manifest["image"] == {"channels": 1, "height": 20, "width": 20} and manifest["classes"] == ["a", "b", "c"]
    manifest = json.loads(json.dumps(manifest))  # JSON-able, and survives the trip
    tensors = unpack_dataset(manifest, objects.__getitem__)
    assert torch.equal(tensors.images, result.images) and torch.equal(tensors.labels, result.labels)
    assert all(torch.equal(tensors.split[name], split[name]) for name in split)
    assert tensors.classes == result.classes and tensors.mean == result.mean and tensors.std == result.std


def test_pack_is_reproducible_and_the_sha256_follows_the_content(packed):
    result, split, manifest, objects = packed
    again_manifest, again_objects = pack_dataset(result, split, shard_images=5)
    assert again_manifest == manifest and again_objects == objects
    changed = ingest_zip(archives.make_image_folder_zip(classes={"a": 7, "b": 5, "c": 6}, mode="L", seed=1))
    assert pack_dataset(changed, split, shard_images=5)[0]["sha256"] != manifest["sha256"]


def test_tampered_shard_fails_verification(packed):
    _, _, manifest, objects = packed
    tampered = dict(objects)
    shard = bytearray(tampered["shard-00001.npz"])
    shard[-200] ^= 0xFF
    tampered["shard-00001.npz"] = bytes(shard)
    with pytest.raises(DatasetIntegrityError) as caught:
        unpack_dataset(manifest, tampered.__getitem__)
    assert caught.value.errors[0]["file"] == "shard-00001.npz"


def test_tampered_manifest_fails_verification(packed):
    _, _, manifest, objects = packed
    with pytest.raises(DatasetIntegrityError):
        unpack_dataset({**manifest, "classes": ["a", "b", "dog"]}, objects.__getitem__)


def test_pack_refuses_a_split_that_is_not_a_partition(packed):
    result, split, _, _ = packed
    with pytest.raises(ValueError):
        pack_dataset(result, {**split, "test": split["val"]})
