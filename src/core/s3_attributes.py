"""The s3 interface's `attributes` (v1): custom HTTP headers the provider wants on what is
stored (server-side encryption, cache control), checked, and which S3 operation carries which."""

from __future__ import annotations

import json
import re

HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,127}$")
# SSE-C: S3 needs the customer key on every request that reads or writes the object's data.
SSE_CUSTOMER = "x-amz-server-side-encryption-customer-"


def parse_attributes(raw: str | None) -> tuple[tuple[str, str], ...]:
    """`attributes` (v1): a JSON list of "Header=value" strings, custom HTTP headers for the
    objects stored (e.g. server-side encryption: X-Amz-Server-Side-Encryption=aws:kms)."""
    if not raw:
        return ()
    try:
        items = json.loads(raw)
    except ValueError as error:
        raise ValueError("not a JSON list of Header=value strings") from error
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError("not a JSON list of Header=value strings")
    headers = []
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not HEADER_NAME.fullmatch(name):
            raise ValueError(f"{name[:60]!r} is no Header=value (a header name, =, its value)")
        if not value.isprintable() or name.lower() in ("authorization", "host", "content-md5"):
            raise ValueError(f"{name[:60]!r}: not a header the charm may set")
        headers.append((name, value))
    return tuple(headers)


def headers_for(headers: tuple[tuple[str, str], ...], operation: str) -> dict[str, str]:
    """The `attributes` headers one S3 operation carries: all of them where an object is
    created; the SSE-C key also where its data is read or written in parts."""
    creates = operation in ("CreateMultipartUpload", "PutObject")
    reads = operation in ("UploadPart", "HeadObject", "GetObject")
    return {
        name: value
        for name, value in headers
        if creates or (reads and name.lower().startswith(SSE_CUSTOMER))
    }


def encrypted(headers: tuple[tuple[str, str], ...]) -> bool:
    """Server-side encryption with KMS or a customer key: the store's ETags are then no MD5
    of the data, so only the sha256 read back at restore checks the bytes."""
    for name, value in headers:
        lowered = name.lower()
        if lowered.startswith(SSE_CUSTOMER) or (
            lowered == "x-amz-server-side-encryption" and value.lower().startswith("aws:kms")
        ):
            return True
    return False
