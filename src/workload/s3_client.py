"""The boto3 S3 client for a bucket as S3Settings describe it: addressing style, signature,
timeouts, retries, and the provider's CA chain as the bundle to trust."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from core.backups import S3Settings

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0


def s3_client(settings: S3Settings, workdir: Path) -> Any:
    import boto3
    from botocore.config import Config

    addressing = {"host": "virtual", "path": "path"}.get(settings.uri_style or "", "auto")
    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": addressing},
        signature_version="s3" if settings.api_version == "2" else "s3v4",
        # S3-compatible stores vary in the flexible checksums botocore now sends by default;
        # every part carries its Content-MD5 instead, which they all check.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    verify: bool | str = True
    if settings.ca_chain:
        with tempfile.NamedTemporaryFile(
            "w", prefix="s3-ca-", suffix=".pem", dir=workdir, delete=False
        ) as bundle:
            bundle.write("".join(settings.ca_chain))
        verify = bundle.name
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint,
        region_name=settings.region or "us-east-1",
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        config=config,
        verify=verify,
    )
