"""Majority loss: the status message and when the rebuild action may act."""

from __future__ import annotations

import pytest

from core.model import EMPTY, LEARNER, NO_LEADER, SERVING, STOPPED, ClusterView, Member
from core.recovery import RebuildRefused, Survivor, best, check_rebuild, has_quorum, judge


def survivor(n: int, index: int, leader: bool = False) -> Survivor:
    return Survivor(unit=f"etcd-k8s/{n}", member_id=f"a{n}", raft_index=index, has_leader=leader)


def reports(*states: str | None) -> dict[str, str | None]:
    """What units etcd-k8s/0, /1, ... last said of their members through Juju."""
    return {f"etcd-k8s/{n}": state for n, state in enumerate(states)}


def test_best_is_the_most_data_and_ties_go_to_the_lowest_unit() -> None:
    assert best([survivor(0, 10), survivor(1, 12), survivor(2, 11)]).unit == "etcd-k8s/1"
    assert best([survivor(2, 12), survivor(1, 12)]).unit == "etcd-k8s/1"


def test_a_leader_in_sight_is_quorum() -> None:
    verdict = judge("etcd-k8s/0", [survivor(0, 10), survivor(1, 10, leader=True)], reports())
    assert verdict.kind == "quorum"


@pytest.mark.parametrize(
    "survivors, states, kind",
    [
        # Cut off: this unit reaches only itself; the others say through Juju they serve.
        ([survivor(0, 10)], (NO_LEADER, SERVING, SERVING), "cut-off"),
        # The same, before the others' hooks said anything since the cut: cannot tell.
        ([survivor(0, 10)], (NO_LEADER, None, None), "unknown"),
        ([survivor(0, 10)], (SERVING, SERVING, None), "cut-off"),  # its own report is stale
        # Two of three volumes lost: their units say so.
        ([survivor(0, 10)], (SERVING, EMPTY, EMPTY), "lost"),
        ([survivor(0, 10)], (NO_LEADER, STOPPED, NO_LEADER), "lost"),
        # One of three says it is down: the other may still hold a quorum with... nobody else
        # is left for it, but it can only be in a quorum with this unit, which sees no leader.
        ([survivor(0, 10)], (NO_LEADER, EMPTY, None), "lost"),
        # Two answer and see no leader: the third cannot hold a quorum alone, whatever it said.
        ([survivor(0, 10), survivor(1, 9)], (NO_LEADER, NO_LEADER, SERVING), "lost"),
        # Five members, this one and one more report down: three may still be serving.
        ([survivor(0, 10)], (NO_LEADER, EMPTY, None, None, None), "unknown"),
        ([survivor(0, 10)], (NO_LEADER, EMPTY, EMPTY, None, None), "lost"),
        # A learner's unit says it is one: no help either way.
        ([survivor(0, 10)], (NO_LEADER, LEARNER, None), "unknown"),
        # Nothing answers, and the units say why.
        ([], (STOPPED, STOPPED, EMPTY), "lost"),
        ([], (None, None, None), "unknown"),
    ],
    ids=[
        "cut-off",
        "no-word",
        "own-stale-report",
        "two-volumes-lost",
        "two-down",
        "one-down-one-silent",
        "two-answer-third-stale",
        "five-one-down",
        "five-two-down",
        "learner",
        "nothing-answers",
        "nothing-answers-no-word",
    ],
)
def test_judge(survivors: list[Survivor], states: tuple[str | None, ...], kind: str) -> None:
    assert judge("etcd-k8s/0", survivors, reports(*states)).kind == kind


def test_lost_names_the_unit_and_the_command() -> None:
    verdict = judge("etcd-k8s/0", [survivor(0, 10), survivor(2, 15)], reports(None, EMPTY, None))
    assert verdict.lost and verdict.pick == survivor(2, 15)
    assert "quorum lost: 3 of 3 members are down or see no leader" in verdict.message
    assert "juju run etcd-k8s/2 rebuild-cluster" in verdict.message
    assert "raft index 15" in verdict.message


def test_lost_with_nothing_answering() -> None:
    verdict = judge("etcd-k8s/0", [], reports(STOPPED, EMPTY, EMPTY))
    assert "no etcd member answers (0 of 3)" in verdict.message


def test_cut_off_and_unknown_advise_no_rebuild() -> None:
    cut = judge("etcd-k8s/0", [survivor(0, 10)], reports(NO_LEADER, SERVING, SERVING))
    assert "etcd-k8s/1, etcd-k8s/2 report a healthy cluster" in cut.message
    assert "cut off" in cut.message and "rebuild-cluster" not in cut.message
    unknown = judge("etcd-k8s/0", [survivor(0, 10)], reports(NO_LEADER, None, None))
    assert "etcd-k8s/1, etcd-k8s/2 have not said" in unknown.message
    assert "juju run" not in unknown.message


def test_rebuild_from_the_survivor_with_most_data() -> None:
    chosen = check_rebuild(
        "etcd-k8s/0",
        [survivor(0, 20), survivor(1, 12)],
        reports(NO_LEADER, NO_LEADER, EMPTY),
        False,
    )
    assert chosen.unit == "etcd-k8s/0"


@pytest.mark.parametrize(
    "me, survivors, states, words",
    [
        ("etcd-k8s/1", [survivor(0, 20)], (NO_LEADER, EMPTY, EMPTY), "does not answer"),
        (
            "etcd-k8s/0",
            [survivor(0, 20), survivor(1, 20, leader=True)],
            (SERVING, SERVING, SERVING),
            "still has a leader",
        ),
        (
            "etcd-k8s/0",
            [survivor(0, 12), survivor(1, 20)],
            (NO_LEADER, NO_LEADER, EMPTY),
            "etcd-k8s/1 has more data",
        ),
        ("etcd-k8s/0", [survivor(0, 20)], (NO_LEADER, SERVING, SERVING), "fork the cluster"),
        ("etcd-k8s/0", [survivor(0, 20)], (NO_LEADER, None, None), "gone for good"),
    ],
    ids=["not-running-here", "quorum-exists", "another-has-more", "cut-off", "no-word"],
)
def test_rebuild_refuses(
    me: str, survivors: list[Survivor], states: tuple[str | None, ...], words: str
) -> None:
    with pytest.raises(RebuildRefused, match=words):
        check_rebuild(me, survivors, reports(*states), False)


def test_force_overrides_quorum_evidence_and_data_but_not_a_dead_member() -> None:
    survivors = [survivor(0, 12), survivor(1, 20, leader=True)]
    states = reports(SERVING, SERVING, SERVING)
    assert check_rebuild("etcd-k8s/0", survivors, states, True).unit == "etcd-k8s/0"
    assert check_rebuild("etcd-k8s/0", [survivor(0, 1)], reports(NO_LEADER, None), True)
    with pytest.raises(RebuildRefused, match="does not answer"):
        check_rebuild("etcd-k8s/2", survivors, states, True)


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
