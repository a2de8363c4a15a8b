"""core/backups.py: the s3-credentials data checked field by field (v1 and v0), object keys,
backup ids, the listing table."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json

import pytest

from core import backups as b
from core import s3_attributes as s3a
from core.backups import InvalidS3Data, parse_settings
from core.status import Status, app_status
from tests.bench.ca import Authority
from tests.unit.loaded import loaded

KEYS = {"access-key": "AKIA123", "secret-key": "s3cr3t/+key"}
V1 = {
    "secret-extra": "secret://uuid/abc",
    "bucket": "etcd-backups",
    "path": "/nightly/prod/",
    "endpoint": "https://s3.example.com:9000/",
    "region": "eu-west-1",
    "s3-uri-style": "path",
    "storage-class": "STANDARD",
    "s3-api-version": "4",
    "lib-version": "1.10",
    "attributes": '["Cache-Control=max-age=90000"]',
}
NOW = datetime.datetime(2026, 12, 2, 7, 30, tzinfo=datetime.UTC)


def test_v1_reads_the_keys_from_the_secret() -> None:
    settings = parse_settings(V1, KEYS)
    assert settings is not None
    assert (settings.protocol, settings.access_key, settings.secret_key) == ("v1", *KEYS.values())
    assert settings.endpoint == "https://s3.example.com:9000"
    assert settings.path == "nightly/prod"
    assert settings.uri_style == "path" and settings.api_version == "4"
    assert settings.key("etcd-k8s", "backup-1") == "nightly/prod/etcd-k8s/backup-1"
    assert "s3://etcd-backups/nightly/prod" in settings.describe()


def test_v1_without_the_secret_yet_is_not_ready() -> None:
    assert parse_settings(V1, None) is None


def test_v0_reads_plain_fields_and_defaults() -> None:
    settings = parse_settings({"bucket": "b12", **KEYS}, None)
    assert settings is not None and settings.protocol == "v0"
    assert settings.endpoint is None and settings.region is None and settings.path == ""
    assert settings.prefix("app") == "app/"
    assert "AWS us-east-1" in settings.describe()


def test_nothing_sent_yet() -> None:
    assert parse_settings({}, None) is None
    assert parse_settings({"lib-version": "1.10"}, None) is None


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("bucket", "", "bucket"),
        ("bucket", "ab", "bucket"),
        ("bucket", "Upper", "bucket"),
        ("bucket", "a..b", "bucket"),
        ("bucket", "a.-b", "bucket"),
        ("bucket", "192.168.1.10", "bucket"),
        ("endpoint", "ftp://x", "endpoint"),
        ("endpoint", "https://", "endpoint"),
        ("endpoint", "http://u:p@host", "endpoint"),
        ("endpoint", "http://host/?q=1", "endpoint"),
        ("endpoint", "http://host:99999", "endpoint"),
        ("endpoint", "http://host:0", "endpoint"),
        ("endpoint", "http://ho st", "endpoint"),
        ("region", "us east", "region"),
        ("s3-uri-style", "sideways", "s3-uri-style"),
        ("s3-api-version", "3", "s3-api-version"),
        ("storage-class", "glacier deep", "storage-class"),
        ("path", "a/../b", "path"),
        ("path", "a/b c", "path"),
        ("tls-ca-chain", "nope", "tls-ca-chain"),
        ("tls-ca-chain", '{"a": 1}', "tls-ca-chain"),
        ("tls-ca-chain", "[1]", "tls-ca-chain"),
        ("tls-ca-chain", '["not a pem"]', "tls-ca-chain"),
        ("tls-ca-chain", '["-----BEGIN CERTIFICATE-----\\n!!\\n-----END CERTIFICATE-----"]',
         "tls-ca-chain"),
        ("tls-ca-chain", '["-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----"]',
         "tls-ca-chain"),
    ],
)  # fmt: skip
def test_garbage_names_its_field(field: str, value: str, named: str) -> None:
    with pytest.raises(InvalidS3Data) as raised:
        parse_settings({**V1, field: value}, KEYS)
    assert raised.value.field == named
    assert str(raised.value).startswith(f"{named}: ")


@pytest.mark.parametrize(
    ("data", "secret", "named"),
    [
        (V1, {"access-key": "a"}, "secret-extra.secret-key"),
        (V1, {"secret-key": "a"}, "secret-extra.access-key"),
        (V1, {**KEYS, "access-key": "with space"}, "secret-extra.access-key"),
        ({"bucket": "abc", "access-key": "a"}, None, "secret-key"),
        ({"bucket": "abc", "secret-key": "a", "access-key": " "}, None, "access-key"),
    ],
)
def test_missing_or_bad_keys_are_named(data: dict, secret: dict | None, named: str) -> None:
    with pytest.raises(InvalidS3Data) as raised:
        parse_settings(data, secret)
    assert raised.value.field == named


def test_a_long_garbage_value_is_shortened_and_printable() -> None:
    with pytest.raises(InvalidS3Data) as raised:
        parse_settings({**V1, "region": "x\n" * 80}, KEYS)
    assert "\n" not in str(raised.value) and "..." in str(raised.value)


def test_optional_fields_may_be_empty() -> None:
    empty = {key: "" for key in ("endpoint", "region", "s3-uri-style", "tls-ca-chain", "path")}
    settings = parse_settings({**V1, **empty, "s3-api-version": '"2"'}, KEYS)
    assert settings is not None
    assert (settings.endpoint, settings.region, settings.uri_style) == (None, None, None)
    assert settings.ca_chain == () and settings.api_version == "2"


def test_ca_chain_as_pem_and_as_base64_of_pem() -> None:
    authority = Authority("s3-ca")
    pem = authority.pem
    for item in (pem, base64.b64encode(pem.encode()).decode(), pem + pem):
        chain = b.check_ca_chain(json.dumps([item]))
        assert chain and all(c.startswith("-----BEGIN CERTIFICATE-----\n") for c in chain)
        body = "".join(pem.strip().splitlines()[1:-1])
        assert "".join(chain[0].strip().splitlines()[1:-1]) == body


def test_backup_ids() -> None:
    assert b.backup_id(NOW, set()) == "backup-20261202-073000"
    assert b.backup_id(NOW, {"backup-20261202-073000"}) == "backup-20261202-073000-2"
    every = {"backup-20261202-073000"} | {f"backup-20261202-073000-{n}" for n in range(2, 100)}
    with pytest.raises(ValueError):
        b.backup_id(NOW, every)


def test_check_backup_id() -> None:
    assert b.check_backup_id("backup-20261202-073000") == (None, "backup-20261202-073000")
    assert b.check_backup_id("old-app/backup-20261202-073000-2") == (
        "old-app",
        "backup-20261202-073000-2",
    )
    for bad in ("../x", "backup-1", "Old/backup-20261202-073000", "a/b/backup-20261202-073000"):
        with pytest.raises(ValueError, match="invalid backup-id"):
            b.check_backup_id(bad)


def record(ident: str, where: str, created: str, revision: int | None = 5) -> b.BackupRecord:
    return b.BackupRecord(ident, where, 2048, revision, "3.5.1", created, "complete")


def test_table_is_newest_first_with_ages() -> None:
    rows = [
        record("old", "s3", "2026-11-30T07:30:00.000Z"),
        record("new", "local", "2026-12-02T07:29:18Z"),
        record("mid", "s3", "2026-12-02T04:00:00Z", revision=None),
        record("odd", "local", ""),
    ]
    lines = b.table(rows, NOW).splitlines()
    assert [line.split()[0] for line in lines] == ["ID", "new", "mid", "old", "odd"]
    assert " 42s " in lines[1] and " 3h " in lines[2] and " 2d " in lines[3]
    assert lines[2].split()[4] == "?"  # no revision known


@pytest.mark.parametrize(
    ("created", "shown"),
    [("", "?"), ("yesterday", "?"), ("2026-12-02T07:25:00Z", "5m"), ("2027-01-01T00:00:00Z", "0s")],
)
def test_age(created: str, shown: str) -> None:
    assert b.age(created, NOW) == shown


def test_human_bytes() -> None:
    assert b.human_bytes(10) == "10 B"
    assert b.human_bytes(3 * 1024 * 1024) == "3.0 MiB"
    assert b.human_bytes(5 * 1024**4) == "5120.0 GiB"


def test_composite_etag_is_s3s() -> None:
    parts = [hashlib.md5(b"a").digest(), hashlib.md5(b"b").digest()]
    assert b.composite_etag(parts) == hashlib.md5(b"".join(parts)).hexdigest() + "-2"


def test_refused_s3_data_is_a_note_of_the_app_status(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.status as status

    monkeypatch.setattr(status, "_app_status", lambda outcome, units: Status("active", "3/3"))
    said = app_status(None, 3, backups_refused="endpoint: 'ftp://x' is no URL")  # type: ignore[arg-type]
    assert said == Status(
        "active", "3/3; backups off: s3-credentials endpoint: 'ftp://x' is no URL"
    )
    assert app_status(None, 3) == Status("active", "3/3")  # type: ignore[arg-type]


def test_a_hook_does_not_import_boto3() -> None:
    """boto3 and botocore take about a second to import: only the backup actions load them."""
    code = "import charm, actions.registry, relations.s3\nimport actions.backups, actions.restore"
    assert loaded(code, ("boto3", "botocore")) == []


@pytest.mark.parametrize(
    ("taken_by", "running", "refused"),
    [
        ("3.5.1", (3, 5), False),
        ("3.4.23", (3, 5), False),
        ("v3.6.0", (3, 5), True),
        ("3.5.26", (3, 4), True),
        ("4.0.0", (3, 9), True),
        ("", (3, 5), False),
        ("unknown", (3, 5), False),
    ],
)
def test_newer_minor(taken_by: str, running: tuple[int, int], refused: bool) -> None:
    why = b.newer_minor(taken_by, running)
    assert (why is not None) == refused
    if why:
        assert f"etcd {taken_by}" in why and f"{running[0]}.{running[1]}" in why


def test_retention_keeps_the_newest_complete_and_the_new_one() -> None:
    rows = [
        record("b1", "s3", "2026-12-01T01:00:00Z"),
        record("b2", "s3", "2026-12-01T02:00:00Z"),
        record("b3", "s3", "2026-12-01T03:00:00Z"),
        record("local", "local", "2026-12-01T04:00:00Z"),
        b.BackupRecord("half", "s3", 1, None, "", "", "incomplete (no verified manifest)"),
        record("new", "s3", "2026-11-01T00:00:00Z"),  # the one just taken, its clock behind
    ]
    assert b.beyond_retention(rows, 0, "new") == []
    assert b.beyond_retention(rows, 2, "new") == ["b2", "b1"]
    assert b.beyond_retention(rows, 1, "new") == ["b3", "b2", "b1"]
    assert b.beyond_retention(rows, 9, "new") == []


def test_orphans_are_old_backup_objects_without_a_manifest() -> None:
    now = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.UTC)
    hours = [now - datetime.timedelta(hours=h) for h in (0, 2, 3, 5)]
    objects = [
        ("backup-20261202-120000", hours[0]),  # young: an upload finishing, kept
        ("backup-20261202-100000", hours[1]),  # old, no manifest: an orphan
        ("backup-20261202-090000", hours[2]),  # old, with its manifest: a backup
        ("notes.txt", hours[3]),  # not a backup id: not this charm's
    ]
    manifests = {"backup-20261202-090000"}
    assert b.orphans(objects, manifests, now) == ["backup-20261202-100000"]
    assert b.orphans(objects, manifests, now - datetime.timedelta(hours=2)) == []


def test_attributes_are_headers_on_the_operations_that_need_them() -> None:
    sse_c = "X-Amz-Server-Side-Encryption-Customer-Key"
    raw = json.dumps(["Cache-Control=max-age=90000,min-fresh=9000", f"{sse_c}=CuStoMerKey="])
    settings = parse_settings({**V1, "attributes": raw}, KEYS)
    assert settings is not None
    assert settings.headers == (
        ("Cache-Control", "max-age=90000,min-fresh=9000"),
        (sse_c, "CuStoMerKey="),
    )
    assert s3a.headers_for(settings.headers, "CreateMultipartUpload") == dict(settings.headers)
    assert s3a.headers_for(settings.headers, "UploadPart") == {sse_c: "CuStoMerKey="}
    assert s3a.headers_for(settings.headers, "GetObject") == {sse_c: "CuStoMerKey="}
    assert s3a.headers_for(settings.headers, "CompleteMultipartUpload") == {}
    assert s3a.encrypted(settings.headers)
    assert not s3a.encrypted((("Cache-Control", "no-store"),))
    assert s3a.encrypted((("x-amz-server-side-encryption", "aws:kms"),))
    assert not s3a.encrypted((("x-amz-server-side-encryption", "AES256"),))


@pytest.mark.parametrize(
    "raw",
    ['"Cache-Control=x"', "not json", '["no equals sign"]', '["Bad Name=x"]', '["Host=evil"]'],
)
def test_garbage_attributes_are_named(raw: str) -> None:
    with pytest.raises(InvalidS3Data) as refused:
        parse_settings({**V1, "attributes": raw}, KEYS)
    assert refused.value.field == "attributes"
