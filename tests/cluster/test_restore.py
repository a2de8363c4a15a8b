"""Whole-cluster restore on real etcd: the keys after the restore are exactly the keys at the
snapshot's revision (read back with etcd3), writes work afterwards, units rejoin as learners and
become voters, add-unit still works, and every bad input fails with nothing changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.bench.checks import (
    assert_formed,
    client,
    log_count,
    member_table,
    wait_healthy,
    write_keys,
)
from tests.bench.juju import Juju


def all_keys(bench: Juju, unit: str | None = None) -> dict[str, str]:
    c = client(bench, unit)
    try:
        return {meta.key.decode(): value.decode() for value, meta in c.get_all()}
    finally:
        c.close()


def settle_all(bench: Juju) -> None:
    bench.settle()
    bench.update_status()
    bench.settle()


def deployed_with_snapshot(
    bench: Juju, units: int, name: str
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Deploy, write 40 keys, snapshot on the leader: leader unit, keys at the snapshot, and
    the snapshot action's results."""
    bench.deploy(units)
    bench.settle()
    leader = bench.leader
    assert leader is not None
    write_keys(bench, name, 40)
    taken = bench.run_action(leader, "snapshot", name=name)
    assert taken.failure is None, taken.failure
    return leader, all_keys(bench), taken.results


def assert_restored(bench: Juju, units: int, at_snapshot: dict[str, str]) -> None:
    """Every unit a voter of one cluster again, each holding exactly the snapshot's keys."""
    settle_all(bench)
    assert_formed(bench, units)
    wait_healthy(bench)
    for name in bench.units:
        assert all_keys(bench, name) == at_snapshot, f"{name} differs from the snapshot"


def backups_dir(bench: Juju, unit: str) -> Path:
    return bench.units[unit].pod.storage_dir / "backups"


@pytest.mark.parametrize("units", [1, 3, 5])
def test_restore_whole_cluster(bench: Juju, units: int) -> None:
    leader, at_snapshot, taken = deployed_with_snapshot(bench, units, "nightly")
    assert int(taken["revision"]) > 40
    old_ids, _ = member_table(bench)

    # What happens after the snapshot is what a restore takes back.
    write_keys(bench, "after", 50)
    c = client(bench)
    c.delete("/nightly/00007")
    c.close()
    assert all_keys(bench) != at_snapshot

    restored = bench.run_action(leader, "restore", name="nightly")
    assert restored.failure is None, restored.failure
    assert restored.results["snapshot"] == "nightly"
    assert restored.results["sha256"] == taken["sha256"]
    assert len(restored.results["units"]) == units
    settle_all(bench)

    assert_formed(bench, units)
    new_ids, _ = member_table(bench)
    assert new_ids != old_ids and new_ids == {restored.results["cluster-id"]}
    wait_healthy(bench)
    for name in bench.units:  # every member holds the snapshot's data, read locally
        assert all_keys(bench, name) == at_snapshot, f"{name} differs from the snapshot"
    assert bench.app_status.message.startswith(f"{units}/{units} units are healthy voters")
    # Each rejoining learner caught up from a raft snapshot and was restarted once it applied
    # it (left alone, it would serve no client for ~7 s).
    for name in bench.units:
        if name != leader:
            member = name.replace("/", "-")
            line = f"decision: restart-learner member={member} (caught up from a raft snapshot)"
            assert log_count(bench, 0, line) >= 1, f"{name} was not restarted after its snapshot"

    write_keys(bench, "later", 20)  # writes work on the restored cluster
    bench.add_unit(1)
    settle_all(bench)
    assert_formed(bench, units + 1)
    newcomer = max(bench.units, key=lambda n: bench.units[n].number)
    assert "/later/00019" in all_keys(bench, newcomer)


def test_restore_finishes_when_a_unit_restarts_halfway(bench: Juju) -> None:
    """A unit whose pod is recreated right after the restore (its queued events gone, its
    old member's data still on its volume) still drops that data and rejoins."""
    leader, at_snapshot, _ = deployed_with_snapshot(bench, 3, "s1")
    write_keys(bench, "gone", 10)
    restored = bench.run_action(leader, "restore", name="s1")
    assert restored.failure is None, restored.failure
    other = next(n for n in bench.units if n != leader)
    bench.churn([other])
    assert_restored(bench, 3, at_snapshot)
    assert any("drop-superseded-data" in line and other in line for line in bench.log)


def test_restore_refuses_bad_snapshots_and_changes_nothing(bench: Juju) -> None:
    leader, _, _ = deployed_with_snapshot(bench, 3, "good")
    folder = backups_dir(bench, leader)
    good = (folder / "good.db").read_bytes()
    # Files an operator (or a disk) might leave in the folder:
    (folder / "empty.db").write_bytes(b"")
    (folder / "text.db").write_text("hello, I am not a snapshot\n" * 100)
    (folder / "truncated.db").write_bytes(good[: len(good) // 2])
    flipped = bytearray(good)
    flipped[len(good) // 3] ^= 0xFF
    (folder / "corrupt.db").write_bytes(bytes(flipped))
    # A snapshot altered after it was taken: its recorded sha256 no longer matches.
    (folder / "altered.db").write_bytes(bytes(flipped))
    sidecar = json.loads((folder / "good.json").read_text())
    (folder / "altered.json").write_text(json.dumps({**sidecar, "name": "altered"}))

    before_ids, before_members = member_table(bench)
    before_keys = all_keys(bench)
    cases = {
        "missing": "no snapshot 'missing'",
        "empty": "empty file",
        "text": "not an intact etcd snapshot",
        "truncated": "not an intact etcd snapshot",
        "corrupt": "not an intact etcd snapshot",
        "altered": "changed since it was taken",
        "../good": "invalid snapshot name",
        "a/b": "invalid snapshot name",
        ".hidden": "invalid snapshot name",
    }
    for name, reason in cases.items():
        result = bench.run_action(leader, "restore", name=name)
        assert result.failure and reason in result.failure, (name, result.failure)
    no_name = bench.run_action(leader, "restore")
    assert no_name.failure and "name" in no_name.failure
    follower = next(n for n in bench.units if n != leader)
    not_leader = bench.run_action(follower, "restore", name="good")
    assert not_leader.failure and "leader" in not_leader.failure

    assert member_table(bench) == (before_ids, before_members)
    assert all_keys(bench) == before_keys
    assert not any(p.name.startswith(("restore-", "pre-restore-")) for p in folder.parent.iterdir())
    settle_all(bench)
    assert_formed(bench, 3)


def test_restore_without_quorum_needs_force(bench: Juju) -> None:
    """Disaster recovery: two of three members are down. Restore refuses (it cannot take the
    old cluster down member by member) until the operator says force=true; then the cluster
    comes back from the snapshot with all three units."""
    leader, at_snapshot, _ = deployed_with_snapshot(bench, 3, "dr")
    others = [n for n in bench.units if n != leader]
    for name in others:
        bench.units[name].pod.stop("etcd")
    refused = bench.run_action(leader, "restore", name="dr")
    assert refused.failure and "no quorum" in refused.failure and "force=true" in refused.failure
    assert bench.units[leader].pod.is_active("etcd")
    assert not any(
        p.name.startswith("restore-") for p in bench.units[leader].pod.storage_dir.iterdir()
    )

    forced = bench.run_action(leader, "restore", name="dr", force=True)
    assert forced.failure is None, forced.failure
    assert forced.results["previous-cluster-id"] != forced.results["cluster-id"]
    assert_restored(bench, 3, at_snapshot)
