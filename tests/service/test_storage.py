"""The object store interface on both backends: a local directory and S3 (moto) through the minio client."""

from __future__ import annotations

import httpx
import pytest
from minio import Minio

from api.storage import LocalStore, ObjectNotFound, S3Store, dataset_prefix, validate_key


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    endpoint = request.getfixturevalue("moto_s3")
    bucket = f"store-test-{request.node.name.split('[')[0][-20:].replace('_', '-')}"
    client = Minio(endpoint.split("://")[1], access_key="a", secret_key="b", secure=False, region="us-east-1")
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    return S3Store(bucket=bucket, endpoint=endpoint, access_key="a", secret_key="b", secure=False)


def test_put_read_stream_size_exists_delete(store, tmp_path):
    prefix = dataset_prefix("proj", "ds1")
    source = tmp_path / "source.bin"
    source.write_bytes(b"x" * 3_000_000)
    store.put_file(prefix + "upload.zip", source)
    store.put_bytes(prefix + "shards/shard-00000.npz", b"shard")
    store.put_bytes("proj/datasets/ds2/keep.txt", b"other dataset")

    assert store.exists(prefix + "upload.zip") and not store.exists(prefix + "missing")
    assert store.size(prefix + "upload.zip") == 3_000_000
    with store.open(prefix + "upload.zip") as stream:
        assert stream.read(10) == b"x" * 10 and len(stream.read()) == 3_000_000 - 10
    assert store.read_bytes(prefix + "shards/shard-00000.npz") == b"shard"
    assert store.list_keys(prefix) == [prefix + "shards/shard-00000.npz", prefix + "upload.zip"]
    download = tmp_path / "download.bin"
    store.download_file(prefix + "upload.zip", download)
    assert download.read_bytes() == source.read_bytes()

    assert store.delete_prefix(prefix) == 2
    assert store.list_keys(prefix) == [] and store.read_bytes("proj/datasets/ds2/keep.txt") == b"other dataset"
    with pytest.raises(ObjectNotFound):
        store.read_bytes(prefix + "upload.zip")
    store.check()


def test_presigned_url_serves_the_object_on_s3_and_is_none_locally(store):
    store.put_bytes("proj/models/m1/model.onnx", b"onnx bytes")
    url = store.presigned_get_url("proj/models/m1/model.onnx", expires_s=60)
    if isinstance(store, LocalStore):
        assert url is None
    else:
        assert httpx.get(url).content == b"onnx bytes"


@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "a/../../b", "a\\..\\b", "a//b", "C:/x", "", "a/./b"])
def test_unsafe_keys_are_refused(store, key):
    with pytest.raises(ValueError):
        store.put_bytes(key, b"no")
    with pytest.raises(ValueError):
        validate_key(key)


def test_local_store_does_not_follow_a_symlink_out_of_its_root(tmp_path):
    store = LocalStore(tmp_path / "root")
    (tmp_path / "outside").mkdir()
    (tmp_path / "root" / "proj").symlink_to(tmp_path / "outside")
    with pytest.raises(ValueError):
        store.put_bytes("proj/datasets/d/x", b"no")
    assert list((tmp_path / "outside").iterdir()) == []
