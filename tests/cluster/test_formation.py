"""The foundation, on real etcd: deploy, add-unit, a Juju leader change mid-join, pod churn.

After each: one cluster id, every unit a started voter, no learner left, every key written
before still there, read back by an independent etcd3 client. None of these needs an
update-status: what the charm does it does on the events Juju sends.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from tests.bench.checks import assert_formed, assert_keys, member_table, write_keys
from tests.bench.juju import Juju
from tests.bench.writer import Writer


def deploy(bench: Juju, units: int, scheduler: str = "ordered", leader: int | None = None) -> None:
    bench.scheduler = scheduler
    bench.deploy(units, leader=leader)
    bench.settle()


@pytest.mark.parametrize(
    "units, scheduler, leader",
    [
        (1, "ordered", 0),
        (3, "ordered", 0),
        (3, "reverse", 0),  # non-leader units run their whole deploy sequence first
        (3, "leader-last", 1),
        (3, "random", 2),
        (5, "random", 3),
        (5, "reverse", 4),
    ],
)
def test_deploy(bench: Juju, units: int, scheduler: str, leader: int) -> None:
    bench.rng = random.Random(units * 100 + leader)
    deploy(bench, units, scheduler, leader)

    listed = assert_formed(bench, units)
    assert all(u.status.name == "active" for u in bench.units.values()), bench.log[-5:]
    assert bench.app_status.message.startswith(f"{units}/{units} units are healthy voters")
    if units == 1:
        assert "a single member tolerates no failure" in bench.app_status.message
    written = write_keys(bench, "deploy", 50)
    assert_keys(bench, written)
    assert len({m.id for m in listed}) == units


def test_only_the_leader_bootstraps_whatever_the_order(bench: Juju) -> None:
    """Non-leaders run everything first; the leader, last, is the only one to bootstrap."""
    deploy(bench, 3, "leader-last", leader=2)
    assert_formed(bench, 3)
    bootstraps = [line for line in bench.log if "decision: bootstrap" in line]
    assert bench.app_data["bootstrap-member"] == "etcd-k8s-2"
    assert len(bootstraps) == 1 and "etcd-k8s/2 " in bootstraps[0], bootstraps


def test_add_unit_one_by_one_and_two_at_once(bench: Juju) -> None:
    deploy(bench, 3)
    before = write_keys(bench, "before", 100)
    ids_before = {m.id for m in assert_formed(bench, 3)}

    bench.add_unit(1)
    bench.settle()
    assert_formed(bench, 4)
    bench.add_unit(1)
    bench.settle()
    assert_formed(bench, 5)

    bench.add_unit(2)  # two at once: still one learner at a time
    bench.settle()
    listed = assert_formed(bench, 7)
    assert ids_before <= {m.id for m in listed}, "an existing member was replaced"
    assert_keys(bench, before)


@pytest.mark.parametrize("moment", ["after-add", "before-add", "to-joiner"])
def test_leader_moves_mid_join(bench: Juju, moment: str) -> None:
    """The Juju leader changes while a unit joins: no learner stranded, no member added twice."""
    deploy(bench, 3, leader=0)
    written = write_keys(bench, "midjoin", 50)
    (joiner,) = bench.add_unit(1)

    if moment == "after-add":  # the old leader has added the learner and published its ticket
        bench.settle(until=lambda: bool(bench.app_data.get("join")))
        new_leader = "etcd-k8s/1"
    elif moment == "before-add":  # the joiner introduced itself, the leader has not acted
        bench.settle(until=lambda: bool(bench.databags[joiner.name].get("member-name")))
        new_leader = "etcd-k8s/2"
    else:  # leadership goes to the joiner itself, which has no member yet
        bench.settle(until=lambda: bool(bench.app_data.get("join")))
        new_leader = joiner.name
    bench.move_leader(new_leader)
    bench.settle()

    listed = assert_formed(bench, 4)
    adds = [line for line in bench.log if "add-learner unit=" + joiner.name in line]
    assert len(adds) <= 1, adds
    assert len(listed) == 4
    assert_keys(bench, written)


def test_leader_moves_while_the_old_leaders_hook_adds_the_joiner(bench: Juju) -> None:
    """Juju moves leadership while the old leader's hook runs: that hook still believes it
    leads until it ends (and goes on adding the joiner), and the new leader's leader-elected
    may run at the same time (parallel mode), deciding on data without the old leader's ticket.
    Whoever adds second finds the joiner there and adopts it: one member, no failed hook."""
    deploy(bench, 3, leader=0)
    written = write_keys(bench, "midadd", 20)
    (joiner,) = bench.add_unit(1)
    old = bench.units["etcd-k8s/0"]
    moved = threading.Event()

    def move_when_the_add_begins() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any("decision: add-learner" in r.message for r in list(old.ctx.juju_log)):
                bench.move_leader("etcd-k8s/1")
                moved.set()
                return
            time.sleep(0.005)

    mover = threading.Thread(target=move_when_the_add_begins)
    mover.start()
    try:
        bench.settle()
    finally:
        mover.join()
    assert moved.is_set(), "the old leader never began adding the joiner"
    bench.settle()
    listed = assert_formed(bench, 4)
    assert len([m for m in listed if m.name == joiner.pod_name]) == 1, member_table(bench)
    assert not bench.failures(), bench.failures()
    assert_keys(bench, written)


def test_pod_churn_with_data_intact(bench: Juju) -> None:
    deploy(bench, 3)
    written = write_keys(bench, "churn1", 100)
    ids = {m.id for m in assert_formed(bench, 3)}
    old_address = bench.address("etcd-k8s/1")

    bench.churn(["etcd-k8s/1"])
    log_mark = len(bench.log)
    bench.settle()

    assert bench.address("etcd-k8s/1") != old_address, "the recreated pod kept its IP"
    listed = assert_formed(bench, 3)
    assert {m.id for m in listed} == ids, "the churned unit came back as a different member"
    assert not [line for line in bench.log[log_mark:] if "add-learner" in line]
    assert_keys(bench, written)


def test_pod_churn_of_all_units_at_once(bench: Juju) -> None:
    deploy(bench, 3)
    written = write_keys(bench, "churnall", 100)
    ids = {m.id for m in assert_formed(bench, 3)}
    cluster_ids_before, _ = member_table(bench)

    with Writer(bench) as writer:  # writes fail while every pod is down; none may be lost
        bench.churn(list(bench.units))
        bench.settle()
        bench.update_status()  # statuses written while quorum was still forming catch up here
        bench.settle()
    report = writer.report()
    assert report.lost == 0 and report.acknowledged > 0, report

    listed = assert_formed(bench, 3)
    assert {m.id for m in listed} == ids
    assert member_table(bench)[0] == cluster_ids_before
    assert all(u.status.name == "active" for u in bench.units.values())
    assert_keys(bench, written)
