"""Fixtures of the storage tests: a real S3 API on loopback (moto's server mode), started
and stopped by the tests themselves."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.moto import moto_server as serving

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing-key-id",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's S3 on 127.0.0.1 (a free port): its endpoint URL."""
    with serving() as url:
        yield url


@pytest.fixture
def s3(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An empty bucket of its own for the test; the AWS variables point at moto. The
    s3fs filesystem (for checks) is returned, its bucket as ``.bucket``."""
    import s3fs

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    fs = s3fs.S3FileSystem(endpoint_url=moto_server, skip_instance_cache=True)
    bucket = f"t-{uuid.uuid4().hex}"
    fs.mkdir(bucket)
    fs.bucket = bucket
    fs.endpoint = moto_server
    return fs
