"""Settings are validated at start-up; embedded defaults live under the data dir; S3 has no default secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.settings import Settings


def test_embedded_defaults_live_under_the_data_dir(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'nas.db'}"
    assert settings.storage_url == f"file://{tmp_path / 'objects'}"
    assert settings.broker_url == "filesystem://" and settings.is_sqlite


def test_s3_storage_requires_endpoint_and_credentials(tmp_path):
    with pytest.raises(ValidationError, match="NAS_S3_ACCESS_KEY"):
        Settings(data_dir=tmp_path, storage_url="s3://bucket", s3_endpoint="minio:9000")
    settings = Settings(data_dir=tmp_path, storage_url="s3://bucket", s3_endpoint="minio:9000",
                        s3_access_key="k", s3_secret_key="s3cr3t-value")
    assert "s3cr3t-value" not in repr(settings) and settings.s3_secret_key.get_secret_value() == "s3cr3t-value"


@pytest.mark.parametrize("field,value", [("database_url", "mysql://x/y"), ("storage_url", "ftp://x"),
                                          ("broker_url", "amqp://x"), ("max_upload_bytes", 0),
                                          ("ingest_stale_after_s", 10)])
def test_invalid_values_are_refused(tmp_path, field, value):
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, **{field: value})


def test_environment_variables_use_the_nas_prefix(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NAS_MAX_UPLOAD_BYTES", "1234")
    settings = Settings()
    assert settings.max_upload_bytes == 1234 and settings.data_dir == tmp_path
    assert "password" not in str(Settings(data_dir=tmp_path, database_url="postgresql+psycopg://u:password@h/db")
                                 .describe())
