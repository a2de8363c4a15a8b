"""Backups in S3, decided over plain data: what the s3-credentials relation sent (checked field
by field against the `s3` interface, v1 and v0), where a backup's object goes, what its
metadata says, and how S3 and local backups list together.

Nothing here talks to S3 (workload/object_store.py does) or reads a databag
(relations/s3.py does): a provider's garbage is refused here, with the field it came in."""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import re
from dataclasses import dataclass

from core.s3_attributes import parse_attributes

# The requirer's side of the s3 interface (charm-relation-interfaces interfaces/s3/v1): which
# provider fields it wants in a Juju secret, and the library version it speaks.
REQUESTED_SECRETS = '["access-key", "secret-key"]'
LIB_VERSION = "1.0"

BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")  # S3's bucket naming rules
REGION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
STORAGE_CLASS_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
PATH_SEGMENT = re.compile(r"^[A-Za-z0-9_.=+-]{1,128}$")
BACKUP_ID_PATTERN = re.compile(r"^backup-\d{8}-\d{6}(-\d{1,2})?$")
URI_STYLES = ("host", "path")
API_VERSIONS = ("2", "4")
METADATA_SUFFIX = ".json"  # the manifest written next to a backup's object once it is verified


class InvalidS3Data(ValueError):
    """A field of the s3-credentials relation breaks the interface's rules: `field` names it."""

    def __init__(self, field: str, why: str):
        super().__init__(f"{field}: {why}")
        self.field = field
        self.why = why


@dataclass(frozen=True)
class S3Settings:
    """Where backups go and how to reach it, once every field checked out."""

    bucket: str
    access_key: str
    secret_key: str
    endpoint: str | None = None  # None: AWS's own endpoint for the region
    region: str | None = None
    path: str = ""  # the prefix inside the bucket, without leading or trailing '/'
    uri_style: str | None = None  # host | path; None lets the client choose
    storage_class: str | None = None
    api_version: str | None = None  # 2 | 4
    ca_chain: tuple[str, ...] = ()  # PEM certificates to trust for the endpoint
    headers: tuple[tuple[str, str], ...] = ()  # `attributes`: HTTP headers for what is stored
    protocol: str = "v1"  # v1: keys from the Juju secret; v0: keys in the databag

    def prefix(self, app: str) -> str:
        """`<path>/<app>/`: every backup of application `app` lives under it."""
        return f"{self.path}/{app}/" if self.path else f"{app}/"

    def key(self, app: str, backup_id: str) -> str:
        return self.prefix(app) + backup_id

    def describe(self) -> str:
        where = self.endpoint or f"AWS {self.region or 'us-east-1'}"
        return f"s3://{self.bucket}/{self.path} at {where} ({self.protocol})"


def parse_settings(data: dict[str, str], secret: dict[str, str] | None) -> S3Settings | None:
    """The provider's app databag (and, for v1, the content of the secret `secret-extra`
    names) as settings. None while the provider has not sent its credentials yet; a field that
    breaks the rules raises InvalidS3Data naming it."""
    if data.get("secret-extra"):
        if secret is None:
            return None  # granted but not readable yet, or not granted yet
        access, secret_key, protocol = secret.get("access-key"), secret.get("secret-key"), "v1"
        where = "secret-extra"
    else:
        access, secret_key, protocol = data.get("access-key"), data.get("secret-key"), "v0"
        where = ""
    if not access and not secret_key and not data.get("bucket"):
        return None
    access_key = _credential(f"{where}.access-key" if where else "access-key", access)
    secret_value = _credential(f"{where}.secret-key" if where else "secret-key", secret_key)
    return S3Settings(
        bucket=check_bucket(data.get("bucket", "")),
        access_key=access_key,
        secret_key=secret_value,
        endpoint=check_endpoint(data.get("endpoint") or None),
        region=_optional("region", data.get("region"), REGION_PATTERN, "letters, digits, -, _"),
        path=check_path(data.get("path", "")),
        uri_style=_choice("s3-uri-style", data.get("s3-uri-style"), URI_STYLES),
        storage_class=_optional(
            "storage-class", data.get("storage-class"), STORAGE_CLASS_PATTERN, "e.g. STANDARD"
        ),
        api_version=_choice("s3-api-version", data.get("s3-api-version"), API_VERSIONS),
        ca_chain=check_ca_chain(data.get("tls-ca-chain")),
        headers=check_attributes(data.get("attributes")),
        protocol=protocol,
    )


def _credential(field: str, value: str | None) -> str:
    if not value or not value.strip():
        raise InvalidS3Data(field, "missing or empty")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise InvalidS3Data(field, "contains spaces or control characters")
    return value


def check_bucket(name: str) -> str:
    if not name:
        raise InvalidS3Data("bucket", "missing: the provider names no bucket")
    if not BUCKET_PATTERN.fullmatch(name) or ".." in name or ".-" in name or "-." in name:
        raise InvalidS3Data(
            "bucket",
            f"{_show(name)} is no S3 bucket name (3-63 lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit)",
        )
    if _is_ip(name):
        raise InvalidS3Data("bucket", f"{_show(name)} is formatted as an IP address")
    return name


def check_endpoint(url: str | None) -> str | None:
    from urllib.parse import urlsplit  # here: a hook that never checks S3 data skips it

    if url is None:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise InvalidS3Data("endpoint", f"{_show(url)} is no URL ({error})") from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidS3Data("endpoint", f"{_show(url)} is no http(s)://host[:port] URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidS3Data("endpoint", f"{_show(url)}: no credentials, query or fragment")
    if port == 0 or not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", parts.netloc):
        raise InvalidS3Data("endpoint", f"{_show(url)} has an invalid host or port")
    return url.strip().rstrip("/")


def check_path(path: str) -> str:
    stripped = path.strip("/")
    if not stripped:
        return ""
    for segment in stripped.split("/"):
        if segment in (".", "..") or not PATH_SEGMENT.fullmatch(segment):
            raise InvalidS3Data(
                "path", f"{_show(path)}: each part between '/' is 1-128 letters, digits or _.=+-"
            )
    return stripped


def _optional(field: str, value: str | None, pattern: re.Pattern[str], rule: str) -> str | None:
    if not value:
        return None
    if not pattern.fullmatch(value):
        raise InvalidS3Data(field, f"{_show(value)} is not valid ({rule})")
    return value


def _choice(field: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is None or value == "":
        return None
    value = value.strip().strip('"')
    if value not in allowed:
        raise InvalidS3Data(field, f"{_show(value)} is not one of {', '.join(allowed)}")
    return value


def check_attributes(raw: str | None) -> tuple[tuple[str, str], ...]:
    try:
        return parse_attributes(raw)
    except ValueError as error:
        raise InvalidS3Data("attributes", str(error)) from error


def check_ca_chain(raw: str | None) -> tuple[str, ...]:
    """`tls-ca-chain`: a JSON list of certificates, each PEM or base64 of a PEM (the interface's
    README says base64, s3-integrator sends PEM); every one must hold a DER certificate."""
    if not raw:
        return ()
    try:
        items = json.loads(raw)
    except ValueError as error:
        raise InvalidS3Data("tls-ca-chain", "not a JSON list of certificates") from error
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise InvalidS3Data("tls-ca-chain", "not a JSON list of certificate strings")
    pems: list[str] = []
    for number, item in enumerate(items, 1):
        pems += _certificates(item, number)
    return tuple(pems)


def _certificates(item: str, number: int) -> list[str]:
    text = item.strip()
    if "-----BEGIN" not in text:
        try:
            text = base64.b64decode(text, validate=True).decode().strip()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            text = ""
    found = re.findall(
        r"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", text, re.S
    )
    if not found:
        raise InvalidS3Data("tls-ca-chain", f"item {number} holds no PEM certificate")
    pems = []
    for body in found:
        try:
            der = base64.b64decode("".join(body.split()), validate=True)
        except (binascii.Error, ValueError) as error:
            raise InvalidS3Data("tls-ca-chain", f"item {number}: bad base64 in a PEM") from error
        if len(der) < 64 or der[0] != 0x30:
            raise InvalidS3Data("tls-ca-chain", f"item {number}: not a DER certificate")
        lines = [base64.b64encode(der[i : i + 48]).decode() for i in range(0, len(der), 48)]
        pems.append(
            "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"
        )
    return pems


def _is_ip(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _show(value: str) -> str:
    """A value quoted for a status line: short and printable."""
    shown = "".join(c if c.isprintable() else "?" for c in value)
    return repr(shown[:60] + ("..." if len(shown) > 60 else ""))


# ---- backups: ids, metadata, listing ------------------------------------------------------


def backup_id(now: datetime.datetime, taken: set[str]) -> str:
    """`backup-<UTC date>-<time>`, with a counter when several start in one second."""
    base = now.astimezone(datetime.UTC).strftime("backup-%Y%m%d-%H%M%S")
    if base not in taken:
        return base
    for count in range(2, 100):
        if f"{base}-{count}" not in taken:
            return f"{base}-{count}"
    raise ValueError("too many backups in one second")


def check_backup_id(value: str) -> tuple[str | None, str]:
    """`backup-...` (this application's) or `<app>/backup-...` (another application's, as a
    new application restoring a lost one's backups names it). Returns (app or None, id)."""
    app, _, ident = value.rpartition("/")
    if not BACKUP_ID_PATTERN.fullmatch(ident) or (
        app and not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", app)
    ):
        raise ValueError(
            f"invalid backup-id {value!r}: use an id as list-backups shows it "
            "(backup-YYYYMMDD-HHMMSS, or <application>/backup-... for another application's)"
        )
    return app or None, ident


@dataclass(frozen=True)
class BackupRecord:
    """One backup as list-backups shows it, in S3 or on this unit's storage."""

    id: str
    where: str  # s3 | local
    size: int
    revision: int | None
    etcd_version: str
    created: str  # ISO 8601 UTC, "" when unknown
    state: str  # complete | incomplete (no verified manifest) | no sidecar


def newer_minor(taken_by: str, running: tuple[int, int]) -> str | None:
    """Why data that etcd `taken_by` saved cannot be restored by etcd `running` (a newer minor:
    etcd reads its own minor's and older data, never a newer one's), or None. An unreadable
    version is no reason: the staged restore that follows checks the data itself."""
    match = re.match(r"^v?(\d+)\.(\d+)", taken_by or "")
    if match is None:
        return None
    saved = (int(match[1]), int(match[2]))
    if saved <= running:
        return None
    return (
        f"it was taken by etcd {taken_by}, newer than this image's etcd "
        f"{running[0]}.{running[1]}: etcd does not restore a newer minor's data; run an image "
        f"of etcd {saved[0]}.{saved[1]} or newer"
    )


def beyond_retention(records: list[BackupRecord], keep: int, protect: str) -> list[str]:
    """The complete S3 backups to delete so that the newest `keep` remain (0 keeps all),
    never `protect` (the one just taken, whatever the clocks say). Incomplete objects are not
    counted nor touched: they are no backups, and maybe another unit's upload in flight."""
    if keep <= 0:
        return []
    complete = [r for r in newest_first(records) if r.where == "s3" and r.state == "complete"]
    kept = [r.id for r in complete if r.id == protect]
    doomed = []
    for record in complete:
        if record.id == protect:
            continue
        if len(kept) < keep:
            kept.append(record.id)
        else:
            doomed.append(record.id)
    return doomed


ORPHAN_AGE = datetime.timedelta(hours=1)  # an upload's manifest follows its object in seconds


def orphans(
    objects: list[tuple[str, datetime.datetime]], manifests: set[str], now: datetime.datetime
) -> list[str]:
    """The backup objects (id, last modified) without a manifest to delete: left by a backup
    whose verification or manifest failed and whose clean-up never reached the store. They
    are no backup and cost space. One younger than ORPHAN_AGE may be an upload finishing (its
    manifest comes seconds later): kept. Ids of another shape are not this charm's: kept."""
    return sorted(
        ident
        for ident, modified in objects
        if ident not in manifests
        and BACKUP_ID_PATTERN.fullmatch(ident)
        and now - modified > ORPHAN_AGE
    )


def newest_first(records: list[BackupRecord]) -> list[BackupRecord]:
    return sorted(records, key=lambda r: (r.created, r.id, r.where), reverse=True)


def age(created: str, now: datetime.datetime) -> str:
    """How long ago, as people read it: 42s, 5m, 3h, 2d."""
    if not created:
        return "?"
    try:
        then = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return "?"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(records: list[BackupRecord], now: datetime.datetime) -> str:
    lines = [f"{'ID':<28} {'WHERE':<6} {'SIZE':>10} {'REVISION':>9} {'ETCD':<7} {'AGE':>5}  STATE"]
    for r in newest_first(records):
        revision = str(r.revision) if r.revision is not None else "?"
        lines.append(
            f"{r.id:<28} {r.where:<6} {human_bytes(r.size):>10} {revision:>9} "
            f"{r.etcd_version or '?':<7} {age(r.created, now):>5}  {r.state}"
        )
    return "\n".join(lines)


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def composite_etag(part_md5s: list[bytes]) -> str:
    """The ETag S3 gives a multipart object: md5 of the parts' md5s, then '-<parts>'. Computed
    from what was read while uploading, it checks that the store holds exactly those parts."""
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"
