"""Scheduled backups on real etcd 3.5 and a real S3 server (SeaweedFS): a simulated day and
more with the clock injected ($ETCD_K8S_TEST_NOW, src/workload/clock.py), the leader taking
each due backup on its next hook, `backup-retention=gfs` applied and checked against the
bucket's own listing, a missed stretch taken once, a failed window retried and shown in the
status, and a Juju leader change in the middle of an upload: one backup, nothing partial."""

from __future__ import annotations

import datetime
import threading
import time

import pytest

from literals import CLOCK_ENV
from tests.bench import threads
from tests.bench.checks import client, write_keys
from tests.bench.gate import Gate
from tests.bench.juju import Juju
from tests.bench.s3 import SeaweedS3
from tests.cluster.test_backups import BUCKET, PATH, integrator
from tests.cluster.test_restore import settle_all

PREFIX = f"{PATH}/etcd-k8s/"
DAY0 = datetime.datetime(2026, 12, 2, tzinfo=datetime.UTC)  # a Wednesday


def at(monkeypatch: pytest.MonkeyPatch, moment: datetime.datetime) -> None:
    monkeypatch.setenv(CLOCK_ENV, moment.isoformat())


def stamp(moment: datetime.datetime) -> str:
    return moment.strftime("backup-%Y%m%d-%H%M%S")


def in_bucket(s3: SeaweedS3) -> list[str]:
    """The backups the bucket itself lists (objects with a manifest), oldest first; fails on
    anything half-made under the prefix: an object without its manifest, an upload pending."""
    keys = s3.keys(BUCKET)
    assert not [k for k in keys if k.startswith("upload:")], keys
    objects = {k for k in keys if not k.endswith(".json")}
    manifests = {k.removesuffix(".json") for k in keys if k.endswith(".json")}
    assert objects == manifests - {PREFIX + "backup-in-progress"}, keys
    return sorted(k.removeprefix(PREFIX) for k in objects)


def tick(
    bench: Juju, leader: str, monkeypatch: pytest.MonkeyPatch, moment: datetime.datetime
) -> None:
    """The leader's next update-status, at `moment`."""
    at(monkeypatch, moment)
    bench.run_hooks(leader, ("update-status",))


@pytest.mark.parametrize("version", ["3.5"], indirect=True)
def test_scheduled_backups_retention_and_a_leader_change(
    bench: Juju, s3: SeaweedS3, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    threads.install()  # two units' hooks at once below (the leader change mid-upload)
    at(monkeypatch, DAY0 + datetime.timedelta(minutes=1))
    gate, other_gate = Gate("127.0.0.1", s3.port), Gate("127.0.0.1", s3.port)
    request.addfinalizer(gate.close)
    request.addfinalizer(other_gate.close)
    bench.deploy(3)
    bench.relate_s3(integrator(s3, endpoint=gate.endpoint))
    settle_all(bench)
    leader = bench.leader
    assert leader is not None
    write_keys(bench, "day", 20)

    # An invalid schedule blocks with the option's name and takes nothing.
    bench.set_config(**{"backup-schedule": "every 2 hours"})
    bench.settle()
    assert bench.units[leader].status.name == "blocked"
    assert "backup-schedule" in bench.units[leader].status.message
    assert in_bucket(s3) == []

    # Every 2 hours, GFS retention (the default). The first hook with the schedule takes the
    # latest window (00:00); then each window once, on the leader's next hook after it.
    bench.set_config(**{"backup-schedule": "0 */2 * * *"})
    bench.settle()
    assert in_bucket(s3) == [stamp(DAY0 + datetime.timedelta(minutes=1))]
    for hour in range(2, 25, 2):
        window = DAY0 + datetime.timedelta(hours=hour)
        tick(bench, leader, monkeypatch, window + datetime.timedelta(minutes=2))
        tick(bench, leader, monkeypatch, window + datetime.timedelta(minutes=7))  # served
    day = [stamp(DAY0 + datetime.timedelta(hours=h, minutes=2)) for h in range(2, 25, 2)]
    # After the backup of Dec 3 00:02, GFS keeps the last day (02:02 onwards, one per hour);
    # Dec 2 00:01 is older than a day and not its day's newest (22:02 is): deleted.
    assert in_bucket(s3) == day, in_bucket(s3)
    status = bench.app_status.message
    assert f"last backup {day[-1]} 5m ago" in status, status

    # No hook for two and a half days: the latest window (Dec 5 10:00) is taken once, not the
    # 29 missed ones. GFS then keeps the newest of the last day (Dec 5 10:02), of each day in
    # the week (Dec 3 00:02, Dec 2 22:02), of each ISO week (all in week 49).
    late = datetime.datetime(2026, 12, 5, 10, 2, tzinfo=datetime.UTC)
    tick(bench, leader, monkeypatch, late)
    assert in_bucket(s3) == [day[-2], day[-1], stamp(late)], in_bucket(s3)

    # The store refuses (stopped): the failure and its reason show; the window is tried again
    # 10 minutes later, and the status clears once it succeeds.
    s3.stop()
    failing = datetime.datetime(2026, 12, 5, 12, 1, tzinfo=datetime.UTC)
    tick(bench, leader, monkeypatch, failing)
    status = bench.app_status.message
    assert "last backup attempt failed 0s ago: " in status and "S3" in status, status
    assert f"last backup {stamp(late)} 1h ago" in status, status
    s3.start()
    tick(bench, leader, monkeypatch, failing + datetime.timedelta(minutes=5))  # too soon
    assert stamp(failing + datetime.timedelta(minutes=5)) not in in_bucket(s3)
    retried = failing + datetime.timedelta(minutes=11)
    tick(bench, leader, monkeypatch, retried)
    assert in_bucket(s3)[-1] == stamp(retried)
    status = bench.app_status.message
    assert f"last backup {stamp(retried)} 0s ago" in status and "failed" not in status, status

    # A Juju leader change mid-upload: the old leader's upload is held in flight (its gate
    # stops; the others reach the store through another gate, the provider's endpoint now);
    # the new leader's hooks find the bucket's lock, take no second backup, and create-backup
    # there is refused with the reason. Once the upload ends: one backup for the window,
    # nothing partial, no lock left.
    c = client(bench)
    blob = "x" * 100_000
    for i in range(350):  # ~35 MB: three parts of 16 MiB
        c.put(f"/big/{i:05d}", blob)
    c.close()
    window = datetime.datetime(2026, 12, 5, 14, 0, tzinfo=datetime.UTC)
    at(monkeypatch, window + datetime.timedelta(minutes=1))
    old = leader
    record_before = bench.app_data["backups"]

    def old_leaders_hook() -> None:
        with threads.hook_environment():
            bench.run_hooks(old, ("update-status",))

    runner = threading.Thread(target=old_leaders_hook)
    probe = s3.client()
    runner.start()
    held = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and runner.is_alive():
        if probe.list_multipart_uploads(Bucket=BUCKET).get("Uploads"):
            held = gate.hold()
            break
        time.sleep(0.002)
    try:
        assert held, "the upload was not caught in flight"
        assert bench.s3 is not None
        bench.configure_s3(**{**bench.s3.config, "endpoint": other_gate.endpoint})
        new = next(name for name in bench.units if name != old)
        bench.move_leader(new)
        with threads.hook_environment():
            bench.run_hooks(new)  # leader-elected: the window is due, the lock says wait
        ident = stamp(window + datetime.timedelta(minutes=1))
        waits = f"scheduled backup waits: backup {ident} is running on {old}"
        assert any(waits in line for line in bench.log), "\n".join(bench.log[-40:])
        with threads.hook_environment():
            refused = bench.run_action(new, "create-backup")
        assert refused.failure is not None, refused
        assert "another backup is under way" in refused.failure and old in refused.failure
    finally:
        gate.release()
        runner.join(timeout=300)
    assert not runner.is_alive()
    # In Juju a unit that lost leadership cannot write the application's data: what the old
    # leader recorded of its backup is lost (the bench kept it). The new leader finds the
    # backup in the bucket and takes no second one for the window.
    bench.app_data["backups"] = record_before
    tick(bench, new, monkeypatch, window + datetime.timedelta(minutes=6))
    tick(bench, new, monkeypatch, window + datetime.timedelta(minutes=20))
    assert [b for b in in_bucket(s3) if b >= stamp(window)] == [ident]
    assert any(f"served by {ident} (in S3)" in line for line in bench.log), bench.log[-20:]
    assert PREFIX + "backup-in-progress.json" not in s3.keys(BUCKET)
    table = bench.run_action(new, "list-backups").results["backups"]
    assert ident in table and "incomplete" not in table
