"""The backup lock against a real S3 server (SeaweedFS, signatures checked): of two units that
both saw no lock (or the same stale one), the store lets exactly one write it."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.backups import S3Settings
from core.schedule import Lock, iso
from tests.bench.s3 import ACCESS_KEY, SECRET_KEY, SeaweedS3
from workload import backup_lock
from workload.object_store import ObjectStore

APP = "etcd-k8s"


@pytest.fixture(scope="module")
def server() -> Iterator[SeaweedS3]:
    server = SeaweedS3().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def store(server: SeaweedS3, tmp_path: Path) -> ObjectStore:
    settings = S3Settings(
        bucket="lock-bucket",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        endpoint=server.endpoint,
        region="us-east-1",
        path="p",
        uri_style="path",
    )
    store = ObjectStore(settings, tmp_path)
    store.ensure_bucket()
    store.delete(backup_lock._key(store, APP))  # each test starts with no lock
    return store


def lock(owner: str, started: datetime.datetime) -> Lock:
    return Lock(owner=owner, backup_id="backup-x", started=iso(started), token=owner)


def test_two_units_racing_for_a_free_lock_one_wins(store: ObjectStore) -> None:
    now = datetime.datetime.now(datetime.UTC)
    assert backup_lock._read(store, APP) == (None, None)  # both units saw no lock...
    assert backup_lock._write(store, APP, lock("etcd-k8s/0", now), None)
    # ...the second one's write is refused by the store, not merely seen later.
    assert not backup_lock._write(store, APP, lock("etcd-k8s/1", now), None)
    held = backup_lock.read(store, APP)
    assert held is not None and held.owner == "etcd-k8s/0"


def test_two_units_taking_over_the_same_stale_lock_one_wins(store: ObjectStore) -> None:
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    assert backup_lock._write(store, APP, lock("etcd-k8s/2", old), None)
    stale, etag = backup_lock._read(store, APP)
    assert stale is not None and etag
    now = datetime.datetime.now(datetime.UTC)
    assert backup_lock._write(store, APP, lock("etcd-k8s/0", now), etag)
    assert not backup_lock._write(store, APP, lock("etcd-k8s/1", now), etag)
    held = backup_lock.read(store, APP)
    assert held is not None and held.owner == "etcd-k8s/0"


def test_take_and_release_through_the_public_calls(store: ObjectStore) -> None:
    mine = backup_lock.take(store, APP, "etcd-k8s/0", "backup-1")
    with pytest.raises(backup_lock.Busy, match="etcd-k8s/0"):
        backup_lock.take(store, APP, "etcd-k8s/1", "backup-2")
    backup_lock.release(store, APP, mine)
    assert backup_lock.read(store, APP) is None
