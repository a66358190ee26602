"""Object storage behind one small interface: a local directory (``file://``) or S3/MinIO (``s3://bucket``).

Keys are minted by the server (``{project_id}/datasets/{dataset_id}/…``), never taken from client paths, and are
checked anyway: no absolute keys, no ``..`` segments, no backslashes — a key can never leave its root.

>>> store = LocalStore("/tmp/nas-doc-objects")
>>> store.put_bytes("p/datasets/d/hello.txt", b"hi"); store.read_bytes("p/datasets/d/hello.txt")
b'hi'
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol
from urllib.parse import urlparse

from api.settings import Settings

CHUNK = 1024 * 1024


class ObjectNotFound(KeyError):
    """The key names no object."""


class ObjectStore(Protocol):
    def put_file(self, key: str, path: Path | str) -> None: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def open(self, key: str) -> BinaryIO: ...
    def read_bytes(self, key: str) -> bytes: ...
    def download_file(self, key: str, path: Path | str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def presigned_get_url(self, key: str, *, expires_s: int = 3600) -> str | None: ...
    def check(self) -> None: ...


def validate_key(key: str, *, prefix: bool = False) -> str:
    """Return ``key`` if it is a safe relative object key (or key prefix ending in ``/``), else raise ValueError."""
    body = key[:-1] if prefix and key.endswith("/") else key
    parts = body.split("/")
    if (not body or key.startswith("/") or "\\" in key or "\x00" in key or ":" in parts[0]
            or any(part in ("", ".", "..") for part in parts)):
        raise ValueError(f"unsafe object key {key!r}")
    return key


def dataset_prefix(project_id: str, dataset_id: str) -> str:
    """The prefix that holds every object of one dataset."""
    return validate_key(f"{project_id}/datasets/{dataset_id}/", prefix=True)


class _ReadsThroughOpen:
    """Whole-object reads and downloads, built on a store's streaming ``open``."""

    def open(self, key: str) -> BinaryIO:
        raise NotImplementedError

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as source:
            return source.read()

    def download_file(self, key: str, path: Path | str) -> None:
        with self.open(key) as source, open(path, "wb") as target:
            shutil.copyfileobj(source, target, CHUNK)


class LocalStore(_ReadsThroughOpen):
    """Objects as files under one root directory; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str, *, prefix: bool = False) -> Path:
        path = (self.root / validate_key(key, prefix=prefix)).resolve()
        if not path.is_relative_to(self.root.resolve()):  # a symlink inside the root must not lead out of it
            raise ValueError(f"object key {key!r} escapes the store root")
        return path

    def _write(self, key: str, source: BinaryIO) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as tmp:
            shutil.copyfileobj(source, tmp, CHUNK)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, path)

    def put_file(self, key: str, path: Path | str) -> None:
        with open(path, "rb") as source:
            self._write(key, source)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write(key, io.BytesIO(data))

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFound(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix, prefix=True)
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*")
                      if p.is_file() and not p.name.startswith(".tmp-"))

    def delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix, prefix=True)
        if not base.is_dir():
            return 0
        count = sum(1 for p in base.rglob("*") if p.is_file())
        shutil.rmtree(base)
        return count

    def presigned_get_url(self, key: str, *, expires_s: int = 3600) -> str | None:
        return None  # local files are streamed by the API itself

    def check(self) -> None:
        probe = self.root / ".readyz"
        probe.write_bytes(b"ok")
        probe.unlink()


class S3Store(_ReadsThroughOpen):
    """Objects in one S3 bucket via the ``minio`` client (MinIO in production, any S3 API works).

    ``endpoint`` is where the services reach the store; ``public_endpoint`` (default: the same) is where clients
    outside their network do, and what presigned URLs are signed for. Either is ``host:port`` or a URL whose
    scheme overrides ``secure``.
    """

    def __init__(self, *, bucket: str, endpoint: str, access_key: str, secret_key: str, secure: bool = True,
                 region: str | None = "us-east-1", public_endpoint: str | None = None) -> None:
        from minio import Minio

        def client(address: str) -> Minio:
            parsed = urlparse(address if "://" in address else f"{'https' if secure else 'http'}://{address}")
            return Minio(parsed.netloc, access_key=access_key, secret_key=secret_key,
                         secure=parsed.scheme == "https", region=region)

        self.bucket = bucket
        self.client = client(endpoint)
        self.signing_client = self.client
        if public_endpoint and public_endpoint != endpoint:
            if not region:
                raise ValueError("signing for a public endpoint needs the region")
            # A signature covers the Host header, so a URL is signed for the host its client will send. With the
            # region given, the minio client signs without a request: the API never has to reach that address.
            self.signing_client = client(public_endpoint)

    def put_file(self, key: str, path: Path | str) -> None:
        self.client.fput_object(self.bucket, validate_key(key), str(path))

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(self.bucket, validate_key(key), io.BytesIO(data), length=len(data))

    def open(self, key: str) -> BinaryIO:
        from minio.error import S3Error

        try:
            response = self.client.get_object(self.bucket, validate_key(key))
        except S3Error as error:
            if error.code in ("NoSuchKey", "NotFound"):
                raise ObjectNotFound(key) from None
            raise
        return _ResponseReader(response)

    def _stat(self, key: str):
        from minio.error import S3Error

        try:
            return self.client.stat_object(self.bucket, validate_key(key))
        except S3Error as error:
            if error.code in ("NoSuchKey", "NotFound", "ResourceNotFound"):
                raise ObjectNotFound(key) from None
            raise

    def exists(self, key: str) -> bool:
        try:
            self._stat(key)
        except ObjectNotFound:
            return False
        return True

    def size(self, key: str) -> int:
        return int(self._stat(key).size)

    def list_keys(self, prefix: str) -> list[str]:
        objects = self.client.list_objects(self.bucket, prefix=validate_key(prefix, prefix=True), recursive=True)
        return sorted(obj.object_name for obj in objects)

    def delete_prefix(self, prefix: str) -> int:
        from minio.deleteobjects import DeleteObject

        keys = self.list_keys(prefix)
        # remove_objects is lazy: iterating it performs the deletes and yields failures.
        failures = list(self.client.remove_objects(self.bucket, (DeleteObject(k) for k in keys)))
        if failures:
            raise RuntimeError(f"could not delete {len(failures)} objects under {prefix!r}: {failures[0]}")
        return len(keys)

    def presigned_get_url(self, key: str, *, expires_s: int = 3600) -> str | None:
        return self.signing_client.presigned_get_object(self.bucket, validate_key(key),
                                                        expires=timedelta(seconds=expires_s))

    def check(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            raise RuntimeError(f"bucket {self.bucket!r} does not exist")


class _ResponseReader(io.RawIOBase):
    """A file-like view of a streaming urllib3 response that returns the connection to the pool on close."""

    def __init__(self, response) -> None:
        self._response = response

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._response.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        return self._response.read() if size is None or size < 0 else self._response.read(size)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._response.release_conn()
        super().close()


def iter_chunks(source: BinaryIO, chunk_size: int = CHUNK) -> Iterator[bytes]:
    """Stream an opened object in chunks, closing it at the end."""
    with source:
        while chunk := source.read(chunk_size):
            yield chunk


def store_from_settings(settings: Settings) -> ObjectStore:
    """The configured store: ``file://DIR`` or ``s3://BUCKET`` (with the ``NAS_S3_*`` settings)."""
    url = urlparse(settings.storage_url)
    if url.scheme == "file":
        return LocalStore(Path(url.netloc + url.path) if url.netloc else Path(url.path))
    assert settings.s3_access_key is not None and settings.s3_secret_key is not None  # enforced by Settings
    return S3Store(bucket=url.netloc, endpoint=settings.s3_endpoint,
                   access_key=settings.s3_access_key.get_secret_value(),
                   secret_key=settings.s3_secret_key.get_secret_value(),
                   secure=settings.s3_secure, region=settings.s3_region or None,
                   public_endpoint=settings.s3_public_endpoint)
