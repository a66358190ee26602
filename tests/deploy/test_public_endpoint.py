"""NAS_S3_PUBLIC_ENDPOINT: presigned URLs are signed for the address clients use, offline, while the services keep
talking to NAS_S3_ENDPOINT. Nothing listens on either address here: signing must not need the network."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from pydantic import ValidationError

from api.settings import Settings
from api.storage import S3Store, store_from_settings
from tests.deploy.topology import signed_for
from tests.service.helpers import free_port

S3 = {"storage_url": "s3://nas", "s3_access_key": "nas-admin", "s3_secret_key": "a-secret", "s3_secure": False}
KEY = "p/models/m/attempt-1/model.onnx"


def test_the_public_endpoint_defaults_to_the_services_endpoint(tmp_path):
    settings = Settings(data_dir=tmp_path, s3_endpoint="minio:9000", **S3)
    assert settings.s3_public_endpoint == "minio:9000"
    public = Settings(data_dir=tmp_path, s3_endpoint="minio:9000", s3_public_endpoint="localhost:9000", **S3)
    assert public.s3_public_endpoint == "localhost:9000" and public.s3_endpoint == "minio:9000"
    # Offline signing needs the region: without one the minio client would ask the public address for it.
    with pytest.raises(ValidationError, match="NAS_S3_PUBLIC_ENDPOINT needs NAS_S3_REGION"):
        Settings(data_dir=tmp_path, s3_endpoint="minio:9000", s3_public_endpoint="localhost:9000", s3_region="",
                 **S3)


@pytest.mark.parametrize(("public_endpoint", "scheme", "host"), [
    ("localhost:{port}", "http", "localhost:{port}"),
    ("https://nas.example.com", "https", "nas.example.com"),  # a scheme of its own overrides NAS_S3_SECURE
])
def test_presigned_urls_are_signed_offline_for_the_public_endpoint(tmp_path, public_endpoint, scheme, host):
    services_port, public_port = free_port(), free_port()  # nothing listens on either
    public_endpoint, host = public_endpoint.format(port=public_port), host.format(port=public_port)
    settings = Settings(data_dir=tmp_path, s3_endpoint=f"127.0.0.1:{services_port}",
                        s3_public_endpoint=public_endpoint, **S3)
    store = store_from_settings(settings)
    assert isinstance(store, S3Store)

    url = store.presigned_get_url(KEY, expires_s=120)
    parsed = urlparse(url)
    assert (parsed.scheme, parsed.netloc, parsed.path) == (scheme, host, f"/nas/{KEY}")
    assert parse_qs(parsed.query)["X-Amz-Expires"] == ["120"]
    # The signature is the one a client at that host computes, not the services' address pasted into the URL.
    assert signed_for(url, host, access_key="nas-admin", secret_key="a-secret") == url
    internal = signed_for(url, f"127.0.0.1:{services_port}", access_key="nas-admin", secret_key="a-secret")
    assert parse_qs(urlparse(internal).query)["X-Amz-Signature"] != parse_qs(parsed.query)["X-Amz-Signature"]


def test_without_a_public_endpoint_urls_name_the_services_endpoint(tmp_path):
    port = free_port()
    store = store_from_settings(Settings(data_dir=tmp_path, s3_endpoint=f"127.0.0.1:{port}", **S3))
    url = store.presigned_get_url(KEY)
    assert urlparse(url).netloc == f"127.0.0.1:{port}"
    assert signed_for(url, f"127.0.0.1:{port}", access_key="nas-admin", secret_key="a-secret") == url
