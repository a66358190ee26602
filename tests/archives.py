"""Builders of good and bad ImageFolder zips, shared by the engine tests and the HTTP tests.

Every builder returns the archive as ``bytes`` (write them to a file or send them as an upload body) and is
deterministic: the same arguments give the same bytes, so tests can also assert on hashes. Images are seeded noise,
so no two generated files are byte-identical unless a builder says so (``duplicates=``).

Good archive (defaults: 2 classes × 6 RGB PNGs of 20×20 — passes the default ``IngestLimits``)::

    data = make_image_folder_zip(classes={"cat": 6, "dog": 6}, size=(20, 20), mode="RGB")

Bad archives, one builder each: ``zip_slip(form)`` for every form in ``ZIP_SLIP_FORMS``, ``symlink_zip()``,
``encrypted_zip()``, ``nul_name_zip()``, ``understated_size_zip()``, ``nested_zip()``, ``bomb_ratio_zip()``,
``many_members_zip(n)``, ``text_as_png_zip()``, ``truncated_jpeg_zip()``, ``pixel_bomb_zip()``, ``empty_class_zip()``,
``single_class_zip()``, ``not_a_zip()``, ``decode_amplification_zip()``, ``normalisation_twins_zip()``.
Whole-archive rejections (slip, symlink, encrypted, NUL in a name, understated size, nested, bombs, member count,
empty or single class, too many pixels in all, class names that differ only in Unicode form) make the dataset fail;
per-file problems (text as PNG, truncated JPEG, pixel bomb) leave a usable dataset with the bad file listed in its
error report, because each of those builders keeps 6 good images per class around the bad one.
"""

from __future__ import annotations

import functools
import io
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from typing import BinaryIO

import numpy as np
from PIL import Image

# The fixed timestamp keeps the archives byte-for-byte reproducible.
_DATE_TIME = (2024, 1, 1, 0, 0, 0)

#: Every path-traversal form ``zip_slip`` can build, mapped to the member name it writes.
ZIP_SLIP_FORMS: dict[str, str] = {
    "dotdot": "../evil.png",
    "inner_dotdot": "cat/../../evil.png",
    "absolute": "/tmp/evil.png",
    "drive": "C:evil.png",
    "drive_backslash": "C:\\evil.png",
    "backslash": "cat\\..\\..\\evil.png",
}

_FORMAT_BY_EXTENSION = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "bmp": "BMP", "gif": "GIF", "webp": "WEBP",
                        "tif": "TIFF", "tiff": "TIFF"}


def image_bytes(*, size: tuple[int, int] = (20, 20), mode: str = "RGB", fmt: str = "PNG", seed: int = 0) -> bytes:
    """One encoded image of ``size`` = (width, height) in ``mode`` filled with seeded noise.

    >>> image_bytes(size=(8, 4), mode="L")[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    rng = np.random.default_rng(seed)
    width, height = size
    if mode == "RGB":
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        image = Image.fromarray(pixels, mode="RGB")
    elif mode == "RGBA":
        pixels = rng.integers(0, 256, size=(height, width, 4), dtype=np.uint8)
        image = Image.fromarray(pixels, mode="RGBA")
    elif mode == "L":
        image = Image.fromarray(rng.integers(0, 256, size=(height, width), dtype=np.uint8), mode="L")
    elif mode == "1":
        image = Image.fromarray(rng.integers(0, 256, size=(height, width), dtype=np.uint8), mode="L").convert("1")
    elif mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, size=(height, width), dtype=np.uint16))
    else:
        raise ValueError(f"unsupported mode {mode!r}")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _info(name: str, *, compress_type: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_DATE_TIME)
    info.compress_type = compress_type
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    return info


def _write_zip(members: Iterable[tuple[str, bytes | None]], *, compress_type: int = zipfile.ZIP_DEFLATED) -> bytes:
    """Zip ``(name, data)`` pairs in order; ``data=None`` writes a directory entry (name must end with ``/``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            if data is None:
                info = _info(name, compress_type=zipfile.ZIP_STORED)
                info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10  # 0x10: MS-DOS directory bit
                archive.writestr(info, b"")
            else:
                archive.writestr(_info(name, compress_type=compress_type), data)
    return buffer.getvalue()


def _image_members(classes: Mapping[str, int], *, size: tuple[int, int], mode: str, ext: str, prefix: str,
                   seed: int) -> list[tuple[str, bytes | None]]:
    members: list[tuple[str, bytes | None]] = []
    fmt = _FORMAT_BY_EXTENSION[ext]
    counter = seed * 1_000_003  # distinct seeds per file keep every image unique
    for class_name, count in classes.items():
        members.append((f"{prefix}{class_name}/", None))
        for index in range(count):
            counter += 1
            data = image_bytes(size=size, mode=mode, fmt=fmt, seed=counter)
            members.append((f"{prefix}{class_name}/{class_name}_{index:03d}.{ext}", data))
    return members


def make_image_folder_zip(path_or_buffer: str | os.PathLike | BinaryIO | None = None, *,
                          classes: Mapping[str, int] | None = None, size: tuple[int, int] = (20, 20),
                          mode: str = "RGB", ext: str = "png", wrapper: str | None = None,
                          extra_members: Iterable[tuple[str, bytes | None]] = (),
                          duplicates: Mapping[str, str] | None = None, seed: int = 0) -> bytes:
    """A well-formed ImageFolder zip: one folder per class, ``count`` noise images in each.

    ``classes`` maps class name → image count (default ``{"cat": 6, "dog": 6}``); ``size`` is (width, height);
    ``mode`` is ``"RGB"``, ``"RGBA"``, ``"L"``, ``"1"`` or ``"I;16"``; ``ext`` picks the format (``png``, ``jpg``,
    ``bmp``, ``gif``, ``webp``, ``tif``). ``wrapper`` puts every class folder inside one top-level folder.
    ``extra_members`` are ``(name, bytes)`` pairs appended verbatim (``None`` bytes: a directory entry); their names
    are not prefixed with the wrapper. ``duplicates`` maps a new member name → an existing member name (both
    relative to the wrapper) whose bytes it copies. When ``path_or_buffer`` is given the zip is also written there.

    >>> import zipfile, io
    >>> len(zipfile.ZipFile(io.BytesIO(make_image_folder_zip(classes={"a": 2, "b": 3}))).namelist())
    7
    """
    classes = {"cat": 6, "dog": 6} if classes is None else classes
    prefix = f"{wrapper}/" if wrapper else ""
    members = ([(prefix, None)] if wrapper else []) + _image_members(
        classes, size=size, mode=mode, ext=ext, prefix=prefix, seed=seed)
    if duplicates:
        by_name = dict(members)
        for new_name, source_name in duplicates.items():
            members.append((prefix + new_name, by_name[prefix + source_name]))
    members.extend(extra_members)
    data = _write_zip(members)
    if path_or_buffer is not None:
        if isinstance(path_or_buffer, (str, os.PathLike)):
            with open(path_or_buffer, "wb") as handle:
                handle.write(data)
        else:
            path_or_buffer.write(data)
    return data


def zip_slip(form: str = "dotdot") -> bytes:
    """A good dataset plus one member whose name escapes the extraction root; ``form`` is a key of ``ZIP_SLIP_FORMS``.

    The member holds a real PNG, so only the name can get it rejected.
    """
    return make_image_folder_zip(extra_members=[(ZIP_SLIP_FORMS[form], image_bytes(seed=99))])


def symlink_zip(target: str = "/etc/passwd") -> bytes:
    """A good dataset plus ``cat/link.png``: a Unix symlink member (``S_IFLNK`` in ``external_attr``) to ``target``."""
    buffer = io.BytesIO(make_image_folder_zip())
    with zipfile.ZipFile(buffer, "a") as archive:
        info = _info("cat/link.png", compress_type=zipfile.ZIP_STORED)
        info.create_system = 3  # Unix, so the mode bits in external_attr mean what they say
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, target.encode())
    return buffer.getvalue()


def _central_entry_offset(data: bytes | bytearray, name: str) -> int:
    """Where ``name``'s central directory entry starts, found by walking from the end-of-directory record."""
    end_of_directory = data.rindex(b"PK\x05\x06")
    offset = struct.unpack_from("<I", data, end_of_directory + 16)[0]
    while data[offset:offset + 4] == b"PK\x01\x02":
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, offset + 28)
        if bytes(data[offset + 46:offset + 46 + name_length]).decode() == name:
            return offset
        offset += 46 + name_length + extra_length + comment_length
    raise KeyError(name)


def encrypted_zip() -> bytes:
    """A good dataset whose ``cat/cat_000.png`` has the "encrypted" flag (bit 0x1) set in both headers.

    The payload itself stays plain: a reader must refuse the member on the flag alone, before reading it.
    """
    data = bytearray(make_image_folder_zip())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("cat/cat_000.png")
    for flags_at in (info.header_offset + 6, _central_entry_offset(data, info.filename) + 8):  # local, central
        struct.pack_into("<H", data, flags_at, struct.unpack_from("<H", data, flags_at)[0] | 0x1)
    return bytes(data)


def nul_name_zip() -> bytes:
    """A good dataset plus a member named ``cat/evil\\x00.png``: a NUL byte in the name, in both headers.

    ``zipfile`` cuts names at NUL when writing, so the byte is patched into the local and central headers after.
    """
    placeholder = "cat/evil_.png"
    data = bytearray(make_image_folder_zip(extra_members=[(placeholder, image_bytes(seed=98))]))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(placeholder)
    nul_at = placeholder.index("_")
    data[info.header_offset + 30 + nul_at] = 0  # local header: the name follows 30 fixed bytes
    data[_central_entry_offset(data, placeholder) + 46 + nul_at] = 0  # central: 46 fixed bytes
    return bytes(data)


def understated_size_zip() -> bytes:
    """A good dataset whose central directory declares half the real size of ``cat/cat_000.png``.

    A reader that trusts the header stops early and gets a wrong image; a careful one notices (CRC mismatch).
    """
    data = bytearray(make_image_folder_zip())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("cat/cat_000.png")
    struct.pack_into("<I", data, _central_entry_offset(data, info.filename) + 24, info.file_size // 2)
    return bytes(data)


def nested_zip(*, disguised: bool = False) -> bytes:
    """A good dataset plus an archive inside it: ``cat/more.zip``, or with ``disguised`` a zip named ``cat/more.png``.

    The disguised form can only be caught by its magic bytes (``PK\\x03\\x04``).
    """
    inner = make_image_folder_zip(classes={"x": 1, "y": 1})
    name = "cat/more.png" if disguised else "cat/more.zip"
    return make_image_folder_zip(extra_members=[(name, inner)])


def bomb_ratio_zip(uncompressed_bytes: int = 8 * 1024 * 1024) -> bytes:
    """A good dataset plus ``cat/bomb.png``: ``uncompressed_bytes`` of zeros that deflate to ~1000× smaller.

    Small in absolute terms (8 MiB, under every size cap), so only the per-member ratio check can catch it.
    """
    return make_image_folder_zip(extra_members=[("cat/bomb.png", b"\0" * uncompressed_bytes)])


def many_members_zip(n: int = 100_001) -> bytes:
    """An archive of ``n`` one-byte members spread over two class folders (default: one over the default limit).

    Tests pass a small ``n`` with a matching low ``max_members`` to stay fast.
    """
    members = [(f"{('cat', 'dog')[index % 2]}/{index:06d}.png", b"x") for index in range(n)]
    return _write_zip(members, compress_type=zipfile.ZIP_STORED)


def text_as_png_zip() -> bytes:
    """A good dataset plus ``cat/notes.png``, which is a text file: skipped and reported, dataset still usable."""
    return make_image_folder_zip(extra_members=[("cat/notes.png", b"these are my notes, not a picture\n" * 4)])


def truncated_jpeg_zip() -> bytes:
    """A good dataset plus ``dog/broken.jpg``: a real 64×64 JPEG cut in half (the header still opens)."""
    full = image_bytes(size=(64, 64), fmt="JPEG", seed=7)
    return make_image_folder_zip(extra_members=[("dog/broken.jpg", full[: len(full) // 2])])


def pixel_bomb_png(width: int = 10_000, height: int = 10_000) -> bytes:
    """A ~100-byte PNG whose header declares ``width`` × ``height`` grayscale pixels (default 10⁸, over the limits).

    Only the header is honest-looking: the single IDAT chunk holds a few rows, so decoding would fail late and costly;
    a reader must refuse it from the declared size alone.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale, no interlace
    rows = zlib.compress(b"\0" * (width + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b"")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def pixel_bomb_zip() -> bytes:
    """A good dataset plus ``cat/huge.png`` from ``pixel_bomb_png()``: skipped and reported, dataset still usable."""
    return make_image_folder_zip(extra_members=[("cat/huge.png", pixel_bomb_png())])


@functools.lru_cache(maxsize=4)
def flat_png(side: int) -> bytes:
    """A real, fully decodable ``side`` × ``side`` black grayscale PNG, deflated as hard as zlib can (6300 px: 39 kB
    that decode to 40 M pixels)."""
    compressor = zlib.compressobj(9)
    row = b"\0" * (side + 1)  # filter byte 0, then the row
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def decode_amplification_zip(copies: int = 60, side: int = 6300) -> bytes:
    """``copies`` of ``flat_png(side)`` spread over ``cat/`` and ``dog/``: every image is valid and under a 40 M-pixel
    per-image limit and the archive passes every ratio check (60 copies: 22 kB, ~107:1), yet it decodes to
    ``copies × side²`` pixels (2.4 G by default)."""
    return _write_zip([(f"{('cat', 'dog')[index % 2]}/{index:03d}.png", flat_png(side)) for index in range(copies)])


def normalisation_twins_zip() -> bytes:
    """Classes ``café`` (NFC, ``caf\\xe9``), ``café`` (NFD, ``cafe\\u0301``) and ``dog``, 6 images each: two folders
    that display as one class name (rejected)."""
    return make_image_folder_zip(classes={"caf\u00e9": 6, "cafe\u0301": 6, "dog": 6})


def empty_class_zip() -> bytes:
    """Classes ``cat`` and ``dog`` with 6 images each plus ``bird/``: a class folder with no files (rejected)."""
    return make_image_folder_zip(extra_members=[("bird/", None)])


def single_class_zip() -> bytes:
    """Only one class folder, ``cat`` with 6 images: fewer than 2 classes (rejected)."""
    return make_image_folder_zip(classes={"cat": 6})


def not_a_zip() -> bytes:
    """Bytes that are no zip archive at all (a PNG)."""
    return image_bytes()
