"""Majority loss: the status message and when the rebuild action may act."""

from __future__ import annotations

import pytest

from observed import ClusterView, Member
from recovery import (
    RebuildRefused,
    Survivor,
    best,
    check_rebuild,
    has_quorum,
    quorum_lost,
    quorum_lost_message,
)


def survivor(n: int, index: int, leader: bool = False) -> Survivor:
    return Survivor(unit=f"etcd-k8s/{n}", member_id=f"a{n}", raft_index=index, has_leader=leader)


def test_best_is_the_most_data_and_ties_go_to_the_lowest_unit() -> None:
    assert best([survivor(0, 10), survivor(1, 12), survivor(2, 11)]).unit == "etcd-k8s/1"
    assert best([survivor(2, 12), survivor(1, 12)]).unit == "etcd-k8s/1"


def test_quorum_is_lost_only_when_nobody_sees_a_leader() -> None:
    assert quorum_lost([survivor(0, 10)])
    assert not quorum_lost([survivor(0, 10), survivor(1, 10, leader=True)])
    assert not quorum_lost([])  # nothing answers: nothing to tell apart


def test_message_names_the_unit_and_the_command() -> None:
    message = quorum_lost_message([survivor(0, 10), survivor(2, 15)], members=3)
    assert "quorum lost: 2 of 3 members answer" in message
    assert "juju run etcd-k8s/2 rebuild-cluster" in message
    assert "raft index 15" in message


def test_message_when_nothing_answers() -> None:
    assert "no etcd member answers (0 of 3)" in quorum_lost_message([], members=3)


def test_rebuild_from_the_survivor_with_most_data() -> None:
    assert check_rebuild("etcd-k8s/0", [survivor(0, 20), survivor(1, 12)], False).unit == (
        "etcd-k8s/0"
    )


@pytest.mark.parametrize(
    "me, survivors, words",
    [
        ("etcd-k8s/1", [survivor(0, 20)], "does not answer"),
        ("etcd-k8s/0", [survivor(0, 20), survivor(1, 20, leader=True)], "still has a leader"),
        ("etcd-k8s/0", [survivor(0, 12), survivor(1, 20)], "etcd-k8s/1 has more data"),
    ],
    ids=["not-running-here", "quorum-exists", "another-has-more"],
)
def test_rebuild_refuses(me: str, survivors: list[Survivor], words: str) -> None:
    with pytest.raises(RebuildRefused, match=words):
        check_rebuild(me, survivors, False)


def test_force_overrides_quorum_and_data_but_not_a_dead_member() -> None:
    survivors = [survivor(0, 12), survivor(1, 20, leader=True)]
    assert check_rebuild("etcd-k8s/0", survivors, True).unit == "etcd-k8s/0"
    with pytest.raises(RebuildRefused, match="does not answer"):
        check_rebuild("etcd-k8s/2", survivors, True)


def view(healthy: str, leader: str | None, learners: str = "") -> ClusterView:
    members = tuple(
        Member(
            id=f"a{n}",
            name=f"etcd-k8s-{n}",
            peer_urls=(f"http://p{n}",),
            is_learner=str(n) in learners,
        )
        for n in range(3)
    )
    return ClusterView("c1", members, frozenset(f"a{n}" for n in healthy), leader)


@pytest.mark.parametrize(
    "cluster, expected",
    [
        (None, False),  # no member list at all (3.5 without quorum)
        (view("012", "a0"), True),
        (view("01", "a0"), True),  # 2 of 3 voters healthy, a leader seen
        (view("0", "a0"), False),  # 3.4 answers member list, but 1 of 3 is no majority
        (view("012", None), False),  # nobody sees a leader
        (view("01", "a0", learners="1"), False),  # a healthy learner does not count: 1 of 2
    ],
    ids=["no-view", "all", "majority", "minority", "no-leader", "learner-not-counted"],
)
def test_has_quorum(cluster: ClusterView | None, expected: bool) -> None:
    assert has_quorum(cluster) is expected
