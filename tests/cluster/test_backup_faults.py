"""Backup faults on real etcd and a real S3 server (SeaweedFS, signatures checked), each a clear
failure with nothing lost and nothing half-listed (the bucket's own listing and list-backups
checked after each): wrong credentials, a missing bucket, a full local disk during the snapshot,
the S3 relation removed mid-upload (its credentials revoked); then disaster recovery into a new
application with TLS, auth and two client relations, from another application's backup
(`<app>/<id>`), and the same 3.5 backup refused by a 3.4 image with the reason.

Covered in test_backups.py and not repeated: the store dying mid-upload, an object altered after
upload, a manifest claiming a newer etcd, garbage relation data, https with a custom CA."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from literals import S3_LOCK_OBJECT
from tests.bench.binaries import etcdctl
from tests.bench.ca import self_signed_client
from tests.bench.checks import assert_formed, client, wait_healthy, write_keys
from tests.bench.juju import Juju
from tests.bench.s3 import S3Integrator, SeaweedS3
from tests.bench.s3_faults import Proxy, add_user, remove_user
from tests.cluster.test_backups import (
    BUCKET,
    PATH,
    backup,
    integrator,
    listed,
    recovered,
    start,
)
from tests.cluster.test_clients import assert_isolated, connection, ctl
from tests.cluster.test_restore import all_keys, settle_all

__all__ = ["start"]  # the fixture, shared with test_backups

MiB = 1024 * 1024


def relation_integrator(endpoint: str, user: str) -> S3Integrator:
    """s3-integrator handing over the per-relation credentials of `user` (v1, a Juju secret)."""
    return S3Integrator(
        {
            "endpoint": endpoint,
            "bucket": BUCKET,
            "path": PATH,
            "region": "us-east-1",
            "s3-uri-style": "path",
            "access-key": f"{user}-key",
            "secret-key": f"{user}-secret-0123456789abcdef",
        }
    )


def new_user(server: SeaweedS3, user: str) -> None:
    add_user(server, user, f"{user}-key", f"{user}-secret-0123456789abcdef")


def objects(server: SeaweedS3) -> list[str]:
    """The bucket's listing (objects, and pending uploads as `upload:<key>`)."""
    return server.keys(BUCKET)


def local_files(bench: Juju, unit: str) -> list[str]:
    folder = bench.units[unit].pod.storage_dir / "backups"
    return sorted(p.name for p in folder.rglob("*.db")) if folder.exists() else []


def fingerprint(bench: Juju) -> dict[str, int]:
    """Every key with the revision it was last written at (keys only: the big values would
    pass gRPC's message limit): any change to the data shows."""
    c = client(bench)
    try:
        return {meta.key.decode(): meta.mod_revision for _, meta in c.get_all(keys_only=True)}
    finally:
        c.close()


def s3_rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.splitlines()[1:] if " s3 " in line]


@contextlib.contextmanager
def small_disk(folder: Path, size: int) -> Iterator[Path]:
    """A tmpfs of `size` bytes mounted on the unit's backups folder (inside its volume, so the
    pod's view of the storage shows it too): a disk that fills up."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path) -> None:
    """Write until the disk is full (ENOSPC), as something else on the volume would."""
    with (folder / "filler").open("wb", buffering=0) as out:  # unbuffered: nothing left to
        try:  # flush (and fail) on close
            while True:
                out.write(b"\0" * MiB)
        except OSError:
            pass


@pytest.mark.parametrize("version", ["3.5"], indirect=True)
def test_faults_fail_clearly_and_leave_nothing_half_listed(
    start: Callable[..., Juju], s3: SeaweedS3
) -> None:
    proxy = Proxy(s3.port).start()
    new_user(s3, "relation-1")
    try:
        with start() as bench:
            bench.deploy(1)
            bench.relate_s3(relation_integrator(proxy.endpoint, "relation-1"))
            settle_all(bench)
            leader = bench.leader
            assert leader is not None
            write_keys(bench, "faults", 50)
            before = all_keys(bench)
            assert bench.s3 is not None
            good = dict(bench.s3.config)

            # ---- wrong credentials (v1: a new revision of the provider's secret)
            bench.configure_s3(**{**good, "secret-key": "not-the-secret-key-0123456789"})
            settle_all(bench)
            wrong = bench.run_action(leader, "create-backup")
            assert wrong.failure is not None, wrong
            assert "SignatureDoesNotMatch" in wrong.failure, wrong.failure
            assert "wrong credentials" in wrong.failure and "nothing was taken" in wrong.failure
            refused = bench.run_action(leader, "list-backups")
            assert refused.failure is not None and "SignatureDoesNotMatch" in refused.failure
            assert objects(s3) == [] and local_files(bench, leader) == []

            # ---- a missing bucket is made; deleted later, the next backup makes it again
            bench.configure_s3(**good)
            settle_all(bench)
            first = backup(bench, leader)
            assert objects(s3) == [first["key"], first["key"] + ".json"]
            direct = s3.client()
            for name in objects(s3):
                direct.delete_object(Bucket=BUCKET, Key=name)
            direct.delete_bucket(Bucket=BUCKET)
            assert listed(bench, leader) == "none"
            kept = backup(bench, leader)
            assert objects(s3) == [kept["key"], kept["key"] + ".json"]
            assert any("decision: created S3 bucket" in line for line in bench.juju_logs)

            # ---- the local disk fills up during the snapshot
            folder = bench.units[leader].pod.storage_dir / "backups"
            # Room for the space check (db + 10% + 64 MiB headroom) and 1 MiB more; something
            # else fills it once the check passed, just before etcdctl writes the snapshot.
            with small_disk(folder, 72 * MiB) as disk:
                bench.units[leader].pod.before_execs.append(
                    (("snapshot", "save"), lambda: fill(disk))
                )
                full = bench.run_action(leader, "create-backup")
                assert not bench.units[leader].pod.before_execs, "the snapshot never started"
                assert full.failure is not None, full
                assert "no space left on device" in full.failure.lower(), full.failure
                assert "snapshot failed, no file kept" in full.failure, full.failure
                assert sorted(p.name for p in disk.iterdir()) == ["filler"]
                (disk / "filler").unlink()
            assert objects(s3) == [kept["key"], kept["key"] + ".json"]
            assert [r[0] for r in s3_rows(listed(bench, leader))] == [kept["backup-id"]]
            assert all_keys(bench) == before
            wait_healthy(bench)

            # ---- the relation removed mid-upload: the provider revokes its credentials
            c = client(bench)
            blob = "x" * 100_000
            for i in range(700):  # ~70 MB: five parts of 16 MiB, four in flight at once
                c.put(f"/big/{i:05d}", blob)
            c.close()
            before = fingerprint(bench)

            def relation_removed() -> None:
                remove_user(s3, "relation-1")
                bench.remove_s3()

            proxy.arm(8 * MiB, relation_removed)  # while the first parts are on their way
            cut = bench.run_action(leader, "create-backup")
            assert proxy.fired.is_set(), "the upload never got that far"
            assert cut.failure is not None, cut
            assert "nothing listed" in cut.failure and "InvalidAccessKeyId" in cut.failure, cut
            assert local_files(bench, leader) == []
            settle_all(bench)
            # The backup lock's release was refused too: it stays until a later backup of this
            # unit takes it over (or it goes stale); it is no backup and lists as none.
            lock = f"{PATH}/etcd-k8s/{S3_LOCK_OBJECT}"
            done = [k for k in objects(s3) if not k.startswith("upload:") and k != lock]
            assert done == [kept["key"], kept["key"] + ".json"], objects(s3)
            # The abort was refused with the revoked keys too: its parts wait, unlisted.
            pending = [k for k in objects(s3) if k.startswith(f"upload:{PATH}/etcd-k8s/backup-")]
            assert len(pending) == 1, objects(s3)
            gone = bench.run_action(leader, "list-backups")
            assert gone.failure is None and gone.results["s3"] == "not related", gone
            assert "no S3 storage" in str(bench.run_action(leader, "create-backup").failure)
            assert "backups off" not in bench.app_status.message

            # Related again with new credentials: the next backup clears the revoked upload's
            # parts (the abort was refused with the keys), and both backups list, complete.
            # Uploads that are not this application's backups stay: another application's
            # (its name starts like ours) and another tool's under our prefix.
            foreign = [f"{PATH}/etcd-k8s-2/backup-20261201-000000", f"{PATH}/etcd-k8s/notes/x"]
            for name in foreign:
                direct.create_multipart_upload(Bucket=BUCKET, Key=name)
            new_user(s3, "relation-2")
            bench.relate_s3(relation_integrator(proxy.endpoint, "relation-2"))
            settle_all(bench)
            again = backup(bench, leader)
            assert objects(s3) == sorted(
                [kept["key"], kept["key"] + ".json", again["key"], again["key"] + ".json"]
            ) + sorted(f"upload:{name}" for name in foreign)
            for upload in direct.list_multipart_uploads(Bucket=BUCKET)["Uploads"]:
                direct.abort_multipart_upload(
                    Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"]
                )
            rows = s3_rows(listed(bench, leader))
            assert [r[0] for r in rows] == [again["backup-id"], kept["backup-id"]]
            assert all(r[-1] == "complete" for r in rows), rows
            assert fingerprint(bench) == before

            # The provider's `attributes`: HTTP headers on what is stored, here a cache rule
            # and server-side encryption with a customer key (SSE-C), which the store enforces.
            assert bench.s3 is not None
            sse = "X-Amz-Server-Side-Encryption-Customer"
            key = os.urandom(32)
            attributes = [
                "Cache-Control=no-store, max-age=0",
                f"{sse}-Algorithm=AES256",
                f"{sse}-Key={base64.b64encode(key).decode()}",
                f"{sse}-Key-MD5={base64.b64encode(hashlib.md5(key).digest()).decode()}",
            ]
            bench.configure_s3(**{**bench.s3.config, "attributes": json.dumps(attributes)})
            settle_all(bench)
            sealed = backup(bench, leader)
            for name in (sealed["key"], sealed["key"] + ".json"):
                with pytest.raises(direct.exceptions.ClientError, match="InvalidArgument|Bad"):
                    direct.head_object(Bucket=BUCKET, Key=name)  # without the key: refused
                head = direct.head_object(
                    Bucket=BUCKET, Key=name, SSECustomerAlgorithm="AES256", SSECustomerKey=key
                )
                assert head.get("CacheControl") == "no-store, max-age=0", (name, head)
            rows = s3_rows(listed(bench, leader))
            assert rows[0][0] == sealed["backup-id"] and rows[0][-1] == "complete", rows
            local = bench.run_action(leader, "restore", **{"backup-id": sealed["backup-id"]})
            assert local.failure is None, local.failure
            settle_all(bench)
            assert fingerprint(bench) == before
    finally:
        proxy.close()


def relate_all(bench: Juju, work: Path, ids: dict, server: SeaweedS3, tag: str) -> None:
    """Peer and client TLS from the provider, two clients, the S3 store."""
    bench.relate_certificates("peer-certificates")
    bench.relate_certificates("client-certificates")
    for name, prefix in (("client-a", "/a/"), ("client-b", "/b/")):
        cert = ids[name].cert.read_text()
        bench.relate_client(name, prefix, cert, work / f"{name}-{tag}.json")
    bench.relate_s3(integrator(server))
    settle_all(bench)
    bench.client_identity = bench.provider.authority.client_identity(work / tag, "root")


def serves_both(bench: Juju, ids: dict) -> None:
    conns = {n: connection(bench.client_apps[n], ids[n]) for n in ids}
    assert_isolated(bench, (conns["client-a"], ids["client-a"]), "/b/")
    assert_isolated(bench, (conns["client-b"], ids["client-b"]), "/a/")


def root_password(bench: Juju, unit: str) -> str:
    shown = bench.run_action(unit, "get-root-password")
    assert shown.failure is None, shown.failure
    return str(shown.results["password"])


def as_root(bench: Juju, ids: dict, password: str) -> dict[str, tuple[int, str]]:
    """`etcdctl user list` as root with `password`, on each member alone."""
    env = {**os.environ, "ETCDCTL_USER": "root", "ETCDCTL_PASSWORD": password}
    answers = {}
    for unit in bench.units:
        out = subprocess.run(
            [etcdctl(bench.version), f"--endpoints=https://{bench.address(unit)}:2379"]
            + ["--command-timeout=5s", *ids["client-a"].etcdctl_args(), "user", "list"],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        answers[unit] = (out.returncode, (out.stdout + out.stderr)[-300:])
    return answers


@pytest.mark.parametrize("version", ["3.5"], indirect=True)
def test_disaster_recovery_with_tls_auth_and_clients_from_another_apps_backup(
    start: Callable[..., Juju], s3: SeaweedS3, tmp_path: Path
) -> None:
    """The lost application ran etcd 3.4 with TLS and auth on; the new one runs 3.5: this is
    also the way to 3.5 that docs/explanation/refresh.md gives where a rolling 3.4 -> 3.5
    refresh with auth on is refused (restore into a new 3.5 application)."""
    work = tmp_path
    ids = {name: self_signed_client(work, name) for name in ("client-a", "client-b")}
    for tag in ("old", "new"):
        (work / tag).mkdir()
    with start("3.4") as old:
        old.deploy(3)
        relate_all(old, work, ids, s3, "old")
        assert_formed(old, 3)
        serves_both(old, ids)
        write_keys(old, "dr", 40)
        old_password = root_password(old, next(iter(old.units)))
        at_backup = all_keys(old)
        assert old.leader is not None
        made = backup(old, old.leader)
        provider = old.provider

    # The lost application was called etcd-lost: its backups are under its own prefix, as it
    # would have written them (object, then its manifest).
    direct = s3.client()
    lost = f"{PATH}/etcd-lost/{made['backup-id']}"
    direct.copy_object(Bucket=BUCKET, Key=lost, CopySource={"Bucket": BUCKET, "Key": made["key"]})
    manifest = json.loads(
        direct.get_object(Bucket=BUCKET, Key=made["key"] + ".json")["Body"].read()
    )
    manifest.update(app="etcd-lost", key=lost)
    direct.put_object(Bucket=BUCKET, Key=lost + ".json", Body=json.dumps(manifest).encode())
    for name in (made["key"] + ".json", made["key"]):
        direct.delete_object(Bucket=BUCKET, Key=name)

    # Disaster recovery: a new application, the same certificates provider and S3 store.
    with start() as fresh:
        fresh.provider = provider
        fresh.deploy(1)
        relate_all(fresh, work, ids, s3, "new")
        leader = fresh.leader
        assert leader is not None
        assert all_keys(fresh) == {}
        assert listed(fresh, leader) == "none"  # its own prefix is empty
        new_password = root_password(fresh, leader)
        assert new_password != old_password
        ident = f"etcd-lost/{made['backup-id']}"
        assert made["etcd-version"].startswith("3.4.")
        assert recovered(fresh, leader, ident, at_backup)["sha256"] == made["sha256"]
        assert local_files(fresh, leader) == [f"etcd-lost-{made['backup-id']}.db"]
        # Auth and TLS under the new application's root secret, not the lost one's.
        # On every member, the one added after the restore too: it joined from a raft snapshot,
        # which leaves etcd's simple-token provider off until a restart (etcd-io/etcd#13134).
        answers = as_root(fresh, ids, new_password)
        assert all(code == 0 and "client-a" in out for code, out in answers.values()), answers
        assert any("decision: restart-learner member=etcd-k8s-1" in x for x in fresh.juju_logs)
        answers = as_root(fresh, ids, old_password)
        assert all(code != 0 for code, _ in answers.values()), answers
        nobody = fresh.provider.authority.client_identity(work / "new", "nobody")
        code, out = ctl(fresh, "put", "/a/x", "y", ident=nobody)
        assert code != 0 and "permission denied" in out, out
        serves_both(fresh, ids)
        assert fresh.leader is not None
        newer = backup(fresh, fresh.leader)
        assert newer["etcd-version"].startswith("3.5.")

    # The new application's 3.5 backup on an image of etcd 3.4: refused with the reason,
    # nothing changed.
    with Juju.start("3.4") as older:
        older.deploy(1)
        older.relate_s3(integrator(s3))
        settle_all(older)
        assert older.leader is not None
        c = client(older)
        c.put("/kept", "yes")
        c.close()
        refused = older.run_action(older.leader, "restore", **{"backup-id": newer["backup-id"]})
        assert refused.failure is not None, refused
        assert (
            "etcd 3.5" in refused.failure and "newer than this image's etcd 3.4" in refused.failure
        )
        assert all_keys(older) == {"/kept": "yes"}
        assert local_files(older, older.leader) == []
