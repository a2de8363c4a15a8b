"""Backups in S3 on real etcd and a real S3 server (SeaweedFS, signatures checked): create,
list, restore, disaster recovery into a new application that never held the data, garbage
relation data refused field by field, and an upload whose store dies mid-way leaving nothing.

The full path runs on both etcd versions; the others on 3.5 only (CI's time)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.bench.ca import Authority
from tests.bench.checks import assert_formed, client, wait_healthy, write_keys
from tests.bench.juju import Juju
from tests.bench.s3 import ACCESS_KEY, SECRET_KEY, S3Integrator, SeaweedS3
from tests.cluster.conftest import PACKED
from tests.cluster.test_restore import all_keys, settle_all

BUCKET = "etcd-backups"
PATH = "nightly/prod"


@pytest.fixture
def start(
    version: str, bench_seed: int | None, request: pytest.FixtureRequest
) -> Callable[..., Juju]:
    """A new model, as the suite's `bench` fixture makes it (the packed charm on the versions
    in $ETCD_K8S_PACKED, parallel mode with a seed): the disaster-recovery test needs two,
    one after the other. `start("3.4")`: a model on another etcd than the test's."""

    def new_model(on: str | None = None) -> Juju:
        on = on or version
        charm_dir = request.getfixturevalue("unpacked_charm") if on in PACKED else None
        return Juju.start(on, charm_dir=charm_dir, seed=bench_seed)

    return new_model


def integrator(server: SeaweedS3, protocol: str = "v1", **extra: str) -> S3Integrator:
    config = {
        "endpoint": server.endpoint,
        "bucket": BUCKET,
        "path": PATH,
        "region": "us-east-1",
        "s3-uri-style": "path",
        "access-key": ACCESS_KEY,
        "secret-key": SECRET_KEY,
        **extra,
    }
    return S3Integrator(config, protocol=protocol)


def deployed(bench: Juju, server: SeaweedS3, units: int, protocol: str = "v1") -> str:
    bench.deploy(units)
    bench.relate_s3(integrator(server, protocol))
    settle_all(bench)
    assert bench.leader is not None
    return bench.leader


def backup(bench: Juju, leader: str) -> dict[str, Any]:
    made = bench.run_action(leader, "create-backup")
    assert made.failure is None, made.failure
    # Progress as `juju run` shows it: the snapshot, the upload up to 100%, the verification.
    assert any(line.startswith("upload backup-") and ": 100% " in line for line in made.logs)
    assert made.logs[-1].endswith("the store's copy verified, manifest written"), made.logs
    return made.results


def listed(bench: Juju, unit: str) -> str:
    answer = bench.run_action(unit, "list-backups")
    assert answer.failure is None, answer.failure
    return str(answer.results["backups"])


def recovered(fresh: Juju, leader: str, ident: str, at_backup: dict[str, str]) -> dict[str, Any]:
    """Restore backup `ident` on a new one-unit application, add a unit: both hold exactly the
    backup's keys. Returns the restore's results."""
    back = fresh.run_action(leader, "restore", **{"backup-id": ident})
    assert back.failure is None, back.failure
    settle_all(fresh)
    fresh.add_unit(1)
    settle_all(fresh)
    assert_formed(fresh, 2)
    wait_healthy(fresh)
    for name in fresh.units:
        assert all_keys(fresh, name) == at_backup, name
    return back.results


def test_backup_list_restore_then_disaster_recovery(
    start: Callable[..., Juju], s3: SeaweedS3
) -> None:
    with start() as bench:
        leader = deployed(bench, s3, 3)
        # The requirer's side of the v1 protocol, as s3-integrator's library reads it.
        assert bench.s3_request["requested-secrets"] == '["access-key", "secret-key"]'
        write_keys(bench, "before", 60)
        at_backup = all_keys(bench)

        made = backup(bench, leader)
        ident, key = made["backup-id"], made["key"]
        assert key == f"{PATH}/etcd-k8s/{ident}"
        assert int(made["keys"]) >= len(at_backup)  # etcd counts its own keys too
        assert made["seconds"].startswith("snapshot ")
        # The object, its manifest, no upload left pending, and the metadata in the store.
        assert s3.keys(BUCKET) == [key, f"{key}.json"]
        head = s3.client().head_object(Bucket=BUCKET, Key=key)
        assert head["ContentLength"] == int(made["size"])
        assert head["Metadata"]["sha256"] == made["sha256"]
        assert head["Metadata"]["revision"] == made["revision"]
        # The local copy went once S3 held it.
        assert not list((bench.units[leader].pod.storage_dir / "backups").glob("*.db"))

        # A local snapshot lists with it, newest first.
        assert bench.run_action(leader, "snapshot", name="local-one").failure is None
        table = listed(bench, leader).splitlines()
        assert table[1].split()[:2] == ["local-one", "local"]
        assert table[2].split()[:2] == [ident, "s3"] and table[2].endswith("complete")

        write_keys(bench, "after", 30)
        restored = bench.run_action(leader, "restore", **{"backup-id": ident})
        assert restored.failure is None, restored.failure
        assert restored.results["sha256"] == made["sha256"]
        settle_all(bench)
        assert_formed(bench, 3)
        wait_healthy(bench)
        for name in bench.units:
            assert all_keys(bench, name) == at_backup, name

    # Disaster: the application and every volume are gone. A new one, related to the same S3,
    # never held the data; it restores the backup, then grows.
    with start() as fresh:
        new_leader = deployed(fresh, s3, 1)
        assert all_keys(fresh) == {}
        assert ident in listed(fresh, new_leader)
        recovered(fresh, new_leader, ident, at_backup)
        c = client(fresh)
        c.put("/written-after-recovery", "yes")
        c.close()


GARBAGE = [
    ("endpoint", "ftp://files.example", "endpoint: 'ftp://files.example' is no http(s)"),
    ("endpoint", "http://user:pw@host:9000", "endpoint: "),
    ("bucket", "Bad_Bucket", "bucket: 'Bad_Bucket' is no S3 bucket name"),
    ("region", "us east 1", "region: 'us east 1' is not valid"),
    ("s3-uri-style", "sideways", "s3-uri-style: 'sideways' is not one of host, path"),
    ("tls-ca-chain", '["-----BEGIN CERTIFICATE-----\\nnot base64!\\n-----END CERTIFICATE-----"]',
     "tls-ca-chain: item 1"),
    ("tls-ca-chain", "not json", "tls-ca-chain: not a JSON list"),
    ("path", "../escape", "path: '../escape'"),
]  # fmt: skip


@pytest.mark.parametrize("version", ["3.5"], indirect=True)
def test_garbage_relation_data_is_refused_and_changes_nothing(
    start: Callable[..., Juju], s3: SeaweedS3
) -> None:
    """v0 (keys in plain fields): each bad field shows in the app status by name, every backup
    action refuses with it, and nothing reaches the store; fixed, a backup goes through and the
    missing bucket is made."""
    with start() as bench:
        leader = deployed(bench, s3, 1, protocol="v0")
        assert bench.s3 is not None
        good = dict(bench.s3.config)
        for field, value, expected in GARBAGE:
            bench.configure_s3(**{**good, field: value})
            settle_all(bench)
            assert expected in bench.app_status.message, (field, bench.app_status.message)
            assert "backups off: s3-credentials " + field in bench.app_status.message
            for action in ("create-backup", "list-backups"):
                refused = bench.run_action(leader, action)
                assert refused.failure is not None and expected in refused.failure, refused
            assert s3.keys(BUCKET) == []
            assert not list((bench.units[leader].pod.storage_dir / "backups").glob("*.db"))
        # A wrong secret key: the server checks the signature and refuses.
        bench.configure_s3(**{**good, "secret-key": "not-the-key"})
        settle_all(bench)
        wrong = bench.run_action(leader, "create-backup")
        assert wrong.failure is not None and "wrong credentials" in wrong.failure, wrong
        bench.configure_s3(**good)
        settle_all(bench)
        assert "backups off" not in bench.app_status.message
        write_keys(bench, "v0", 10)
        made = backup(bench, leader)
        key = made["key"]
        assert s3.keys(BUCKET) == [key, key + ".json"]

        # The object altered in the store after the upload: restore refuses, nothing changes.
        before = all_keys(bench)
        store = s3.client()
        body = store.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        store.put_object(Bucket=BUCKET, Key=key, Body=body[:-1] + bytes([body[-1] ^ 1]))
        altered = bench.run_action(leader, "restore", **{"backup-id": made["backup-id"]})
        assert altered.failure is not None and "not what was uploaded" in altered.failure
        assert all_keys(bench) == before
        assert not list((bench.units[leader].pod.storage_dir / "backups").glob("*.db"))

        # A backup of a newer etcd minor than the image runs: refused with the reason.
        store.put_object(Bucket=BUCKET, Key=key, Body=body)
        manifest = json.loads(store.get_object(Bucket=BUCKET, Key=key + ".json")["Body"].read())
        store.put_object(
            Bucket=BUCKET, Key=key + ".json", Body=json.dumps({**manifest, "etcd_version": "3.9.0"})
        )
        newer = bench.run_action(leader, "restore", **{"backup-id": made["backup-id"]})
        assert newer.failure is not None and "etcd 3.9.0" in newer.failure, newer
        assert "newer" in newer.failure
        assert all_keys(bench) == before

        # Retention: keep=2 after two more backups leaves the newest two, objects and manifests.
        backup(bench, leader)
        third = bench.run_action(leader, "create-backup", keep=2)
        assert third.failure is None, third.failure
        assert third.results["removed"] == made["backup-id"]
        left = [k for k in s3.keys(BUCKET) if not k.endswith(".json")]
        assert len(left) == 2 and third.results["key"] in left and key not in left
        assert key + ".json" not in s3.keys(BUCKET)


@pytest.mark.parametrize("version", ["3.5"], indirect=True)
def test_store_dying_mid_upload_leaves_no_backup(start: Callable[[], Juju], s3: SeaweedS3) -> None:
    """The S3 server is killed while the parts go up: the action fails, nothing is listed,
    no object exists; once the store is back the next backup clears the stale upload."""
    with start() as bench:
        leader = deployed(bench, s3, 1)
        c = client(bench)
        blob = "x" * 100_000
        for i in range(700):  # ~70 MB: five parts of 16 MiB
            c.put(f"/big/{i:05d}", blob)
        c.close()
        outcome: dict[str, Any] = {}
        runner = threading.Thread(
            target=lambda: outcome.update(r=bench.run_action(leader, "create-backup"))
        )
        probe = s3.client()
        runner.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and runner.is_alive():
            try:
                uploading = probe.list_multipart_uploads(Bucket=BUCKET).get("Uploads")
            except probe.exceptions.NoSuchBucket:
                uploading = None  # create-backup makes it first
            if uploading:
                s3.stop()
                break
            time.sleep(0.01)
        runner.join(timeout=600)
        result = outcome["r"]
        assert s3.process is not None and s3.process.poll() is not None, "not killed mid-upload"
        assert result.failure is not None and "nothing listed" in result.failure, result
        assert not list((bench.units[leader].pod.storage_dir / "backups").glob("*.db"))

        s3.start()
        # No object but the backup lock the dead store kept: the next backup (the same unit,
        # whose own earlier attempt cannot be running) takes it over and removes it.
        left = [k for k in s3.keys(BUCKET) if not k.startswith("upload:")]
        assert left == [f"{PATH}/etcd-k8s/backup-in-progress.json"], left
        assert bench.run_action(leader, "list-backups").results["backups"] == "none"
        made = backup(bench, leader)
        assert s3.keys(BUCKET) == [made["key"], made["key"] + ".json"]


@pytest.mark.parametrize("version", ["3.5"], indirect=True)
def test_https_endpoint_trusts_the_providers_ca_chain(start: Callable[[], Juju]) -> None:
    """The store speaks https with a certificate of a private CA: the provider's `tls-ca-chain`
    is what the charm trusts; without it the upload is refused and nothing is listed."""
    authority = Authority("bench-s3-ca")
    server = SeaweedS3(tls=authority).start()
    try:
        with start() as bench:
            bench.deploy(1)
            chain = json.dumps([authority.pem])
            config = {"endpoint": server.https_endpoint, "tls-ca-chain": chain}
            bench.relate_s3(integrator(server, **config))
            settle_all(bench)
            leader = bench.leader
            assert leader is not None
            made = backup(bench, leader)
            assert server.keys(BUCKET) == [made["key"], made["key"] + ".json"]
            assert bench.s3 is not None
            bench.configure_s3(**{**bench.s3.config, "tls-ca-chain": ""})
            settle_all(bench)
            untrusted = bench.run_action(leader, "create-backup")
            assert untrusted.failure is not None, untrusted
            assert "CERTIFICATE_VERIFY_FAILED" in untrusted.failure, untrusted.failure
            assert len(server.keys(BUCKET)) == 2  # still only the first backup
    finally:
        server.close()
