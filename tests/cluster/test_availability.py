"""Scale down and repair on real etcd, with an independent etcd3 writer running through each:
no acknowledged write may be lost, and the cluster ends with one id and every unit a voter."""

from __future__ import annotations

import time

from tests.bench.checks import (
    assert_formed,
    assert_keys,
    etcd_leader,
    make_etcd_leader,
    member_table,
    raft_term,
    wait_healthy,
    write_keys,
)
from tests.bench.juju import Juju
from tests.bench.writer import Writer


def settle_and_refresh(bench: Juju) -> None:
    """Run what Juju queued, then one update-status round: a leader learns nothing new when a
    departing unit finishes leaving on its own, so its status catches up on the next hook."""
    bench.settle()
    bench.update_status()
    bench.settle()


def assert_no_loss(writer: Writer) -> None:
    report = writer.report()
    assert report.acknowledged > 0, "the writer never got a write through"
    assert report.lost == 0, f"{report.lost} acknowledged writes lost, e.g. {report.lost_keys}"


def test_scale_3_5_3_1_3(bench: Juju) -> None:
    bench.deploy(3)
    bench.settle()
    before = write_keys(bench, "scale", 100)
    with Writer(bench) as writer:
        for step, change in enumerate([+2, -2, -2, +2]):
            if change > 0:
                bench.add_unit(change)
            else:
                for _ in range(-change):  # Kubernetes removes one pod at a time, highest first
                    bench.remove_unit(1)
                    settle_and_refresh(bench)
            settle_and_refresh(bench)
            size = len(bench.units)
            assert_formed(bench, size)
            assert bench.app_status.message.startswith(f"{size}/{size} units are healthy voters"), (
                step,
                bench.app_status,
            )
    assert_no_loss(writer)
    assert_keys(bench, before)
    if len(bench.units) == 1:
        assert "tolerates no failure" in bench.app_status.message


def test_removing_the_unit_that_holds_etcd_leadership(bench: Juju) -> None:
    """The departing member hands leadership over first: one term bump, no election by
    timeout, no failed write."""
    bench.deploy(3)
    bench.settle()
    make_etcd_leader(bench, "etcd-k8s/2")  # the highest ordinal is the one Kubernetes removes
    assert etcd_leader(bench) == "etcd-k8s/2"
    term = raft_term(bench)
    with Writer(bench) as writer:
        mark = len(bench.log)
        bench.remove_unit(1)
        settle_and_refresh(bench)
    assert_formed(bench, 2)
    moves = [line for line in bench.log[mark:] if "decision: move-leader" in line]
    assert len(moves) == 1, moves
    assert raft_term(bench) == term + 1, "an election happened besides the handover"
    report = writer.report()
    assert report.lost == 0 and report.failed == 0, report


def test_3_2_3_with_the_old_pvc(bench: Juju) -> None:
    """Juju gives back unit /2 with its old volume, holding a member that was removed: it is
    detected before etcd starts, wiped, and joins as a new learner."""
    bench.deploy(3)
    bench.settle()
    old_ids = {m.id for m in member_table(bench)[1]}
    with Writer(bench) as writer:
        bench.remove_unit(1)
        settle_and_refresh(bench)
        assert_formed(bench, 2)
        mark = len(bench.log)
        (back,) = bench.add_unit(1)
        settle_and_refresh(bench)
    assert back.name == "etcd-k8s/2"
    listed = assert_formed(bench, 3)
    wipes = [line for line in bench.log[mark:] if "decision: wipe-stale-data" in line]
    assert len(wipes) == 1 and "etcd-k8s/2" in wipes[0], wipes
    new_member = next(m for m in listed if m.name == "etcd-k8s-2")
    assert new_member.id not in old_ids
    assert_no_loss(writer)


def test_lost_pvc(bench: Juju) -> None:
    """The member is listed but its data is gone: removed, then joined again as a learner."""
    bench.deploy(3)
    bench.settle()
    before = write_keys(bench, "pvc", 100)
    old = {m.name: m.id for m in member_table(bench)[1]}
    with Writer(bench) as writer:
        mark = len(bench.log)
        bench.lose_storage("etcd-k8s/1")
        settle_and_refresh(bench)
    listed = assert_formed(bench, 3)
    assert {m.name: m.id for m in listed}["etcd-k8s-1"] != old["etcd-k8s-1"]
    removals = [line for line in bench.log[mark:] if "decision: remove-member" in line]
    assert len(removals) == 1 and old["etcd-k8s-1"] in removals[0], removals
    assert_no_loss(writer)
    assert_keys(bench, before)


def test_kill_9_of_leader_and_of_a_follower(bench: Juju) -> None:
    """A crashed member comes back on its own (Pebble restarts it) with its data; nobody
    removes it meanwhile."""
    bench.deploy(3)
    bench.settle()
    ids = {m.id for m in member_table(bench)[1]}
    with Writer(bench) as writer:
        for victim in (etcd_leader(bench), "etcd-k8s/0"):
            bench.kill9(victim)
            settle_and_refresh(bench)  # hooks may run while it is down
            wait_healthy(bench)
            settle_and_refresh(bench)
    assert {m.id for m in assert_formed(bench, 3)} == ids
    assert not [line for line in bench.log if "remove-member" in line]
    assert_no_loss(writer)


def test_member_cut_off_longer_than_the_election_timeout(bench: Juju) -> None:
    """A member cut off from the others rejoins when the cut heals; nobody removes it."""
    bench.deploy(3)
    bench.settle()
    ids = {m.id for m in member_table(bench)[1]}
    victim = "etcd-k8s/1"
    with Writer(bench) as writer:
        bench.network.cut(bench.units[victim].pod_name)
        try:
            bench.update_status()  # every unit, the leader included, looks while it is cut off
            bench.settle()
            time.sleep(3)  # three election timeouts
            bench.update_status()
            bench.settle()
        finally:
            bench.network.heal(bench.units[victim].pod_name)
        wait_healthy(bench)
        settle_and_refresh(bench)
    assert {m.id for m in assert_formed(bench, 3)} == ids
    assert not [line for line in bench.log if "remove-member" in line]
    assert_no_loss(writer)


def test_ready_check_means_healthy_voter(bench: Juju) -> None:
    """The Pebble `ready` check from the charm's plan, run in each pod: it passes on every
    voter of a healthy cluster, and fails on a member cut off from the others. Pebble runs it
    at its period: once it has failed `threshold` times the pod is not ready, the unit gets
    pebble-check-failed and its status names the check; healed, pebble-check-recovered."""
    bench.deploy(3)
    bench.settle()

    def ready(unit: str) -> bool:
        checks = bench.units[unit].layers["etcd"].checks
        (check,) = [c for c in checks.values() if getattr(c.level, "value", c.level) == "ready"]
        code, _, _ = bench.units[unit].pod.exec(check.exec["command"].split(), {}, 15, None)
        return code == 0

    assert all(ready(name) for name in bench.units)
    assert all(u.pod.ready for u in bench.units.values())
    victim = "etcd-k8s/2"
    bench.network.cut(bench.units[victim].pod_name)
    try:
        time.sleep(3)  # past the election timeout: it knows it has lost its leader
        assert not ready(victim)
        assert ready("etcd-k8s/0")
        await_hook(bench, victim, "pebble-check-failed")
        assert not bench.units[victim].pod.ready
        assert bench.units["etcd-k8s/0"].pod.ready
        message = bench.units[victim].status.message
        assert message.endswith("; Pebble check etcd-healthy-voter failing"), message
    finally:
        bench.network.heal(bench.units[victim].pod_name)
    wait_healthy(bench)
    assert ready(victim)
    await_hook(bench, victim, "pebble-check-recovered")
    assert bench.units[victim].pod.ready
    assert "Pebble check" not in bench.units[victim].status.message
    assert bench.units[victim].status.name == "active"


def await_hook(bench: Juju, unit: str, kind: str, timeout: float = 120.0) -> None:
    """Run what comes in (Pebble's checks queue hooks on their own) until `unit` has run a
    `kind` hook. Pebble's checks here: every 10 s, down after 3 failures."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bench.settle()
        if any(f" {kind} " in line for line in bench.units[unit].history):
            return
        time.sleep(1)
    raise AssertionError(f"{unit} ran no {kind} hook in {timeout:.0f}s: {bench.log[-5:]}")


def test_majority_loss_then_rebuild_action(bench: Juju) -> None:
    """Two of three volumes lost: the status says so and names the member to rebuild from;
    the action refuses where it must, rebuilds from the survivor, and the others rejoin."""
    bench.deploy(3)
    bench.settle()
    written = write_keys(bench, "majority", 200)

    bench.churn(["etcd-k8s/1", "etcd-k8s/2"], lose_storage=True)
    settle_and_refresh(bench)
    assert bench.app_status.name == "blocked", bench.app_status
    assert "quorum lost" in bench.app_status.message
    assert "juju run etcd-k8s/0 rebuild-cluster" in bench.app_status.message

    refused = bench.run_action("etcd-k8s/1", "rebuild-cluster")
    assert refused.failure and "no etcd data" in refused.failure

    done = bench.run_action("etcd-k8s/0", "rebuild-cluster")
    assert done.failure is None, done
    assert done.results["members-now"] == "1"
    settle_and_refresh(bench)

    listed = assert_formed(bench, 3)
    assert len({m.id for m in listed}) == 3
    assert_keys(bench, written)
    assert bench.app_status.name == "active", bench.app_status


def test_rebuild_refuses_while_quorum_exists(bench: Juju) -> None:
    bench.deploy(3)
    bench.settle()
    ids = {m.id for m in member_table(bench)[1]}
    result = bench.run_action("etcd-k8s/0", "rebuild-cluster")
    assert result.failure and "still has a leader" in result.failure
    assert {m.id for m in assert_formed(bench, 3)} == ids  # nothing changed


def test_unit_gone_without_its_hooks_is_cleaned_up_by_the_leader(bench: Juju) -> None:
    """`juju remove-unit --force`: the departing unit runs no hook. Its member is down and has
    no unit behind it, so the Juju leader removes it, quorum permitting."""
    bench.deploy(3, leader=0)
    bench.settle()
    make_etcd_leader(bench, "etcd-k8s/0")
    with Writer(bench) as writer:
        mark = len(bench.log)
        bench.remove_unit(1, force=True)
        settle_and_refresh(bench)
    assert_formed(bench, 2)
    removals = [line for line in bench.log[mark:] if "decision: remove-member" in line]
    assert len(removals) == 1 and "etcd-k8s/0 " in removals[0], removals
    assert "no unit behind it" in removals[0]
    assert_no_loss(writer)
