"""Membership calls when other units' hooks run at the same time (found by the bench's parallel
mode on real etcd): each retry lists the members again, a member stopping as it answers is
retried elsewhere, and a joiner another hook added at the same time is adopted."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from core.model import ClusterView, Member
from core.steps import RemoveMember
from engine.member import MemberDriver
from workload.etcdctl import EtcdctlError


def member(n: int, learner: bool = False) -> Member:
    return Member(
        id=f"m{n}",
        name="" if learner else f"etcd-k8s-{n}",
        peer_urls=(f"http://etcd-k8s-{n}:2380",),
        client_urls=() if learner else (f"http://etcd-k8s-{n}:2379",),
        is_learner=learner,
    )


def view(*members: Member, leader: str) -> ClusterView:
    return ClusterView("c1", members, frozenset(m.id for m in members), leader)


@dataclass
class FakeClient:
    endpoints: list[str]
    log: list[tuple[str, ...]]
    answers: list[Any]  # per call: None (success), an EtcdctlError, or a value to return

    def _answer(self, *call: str) -> Any:
        self.log.append((self.endpoints[0], *call))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def member_remove(self, member_id: str) -> None:
        self._answer("remove", member_id)

    def member_add_learner(self, name: str, peer_url: str) -> Member:
        return self._answer("add", peer_url)  # type: ignore[no-any-return]

    def member_list(self) -> ClusterView:
        return self._answer("list")  # type: ignore[no-any-return]


@dataclass
class Harness:
    views: list[ClusterView]  # what live_view answers, in turn
    answers: list[Any]
    log: list[tuple[str, ...]] = field(default_factory=list)

    def driver(self) -> MemberDriver:
        ctx = SimpleNamespace(
            client=lambda urls: FakeClient(list(urls), self.log, self.answers),
            deadline=SimpleNamespace(budget=lambda patience, what: 5.0),
        )
        observer = SimpleNamespace(live_view=lambda local_only=False: self.views.pop(0))
        return MemberDriver(ctx, observer)  # type: ignore[arg-type]


def error(stderr: str) -> EtcdctlError:
    return EtcdctlError(["member"], 1, f"Error: {stderr}\n")


def test_a_remove_answered_raft_stopped_is_retried_on_the_new_leader() -> None:
    """Units 1 and 2 leave at once; 1 was the raft leader and has just applied its own
    removal: it answers 2's `member remove` with `raft: stopped`. The retry lists the members
    again and asks the new leader, member 0."""
    stale = view(member(0), member(1), member(2), leader="m1")
    fresh = view(member(0), member(2), leader="m0")
    harness = Harness([fresh], [error("raft: stopped"), None])
    step = RemoveMember(member(2), "unit leaves")
    assert harness.driver().remove(stale, step)
    assert harness.log == [
        ("http://etcd-k8s-1:2379", "remove", "m2"),
        ("http://etcd-k8s-0:2379", "remove", "m2"),
    ]


def test_every_retry_lists_the_members_again() -> None:
    stale = view(member(0), member(1), member(2), leader="m1")
    relisted = [view(member(0), member(2), leader=None), view(member(0), member(2), leader="m2")]
    timed_out = error("context deadline exceeded")
    harness = Harness(relisted, [timed_out, timed_out, None])
    harness.driver().remove(stale, RemoveMember(member(0), "unit leaves"))
    # the stale leader, then every healthy voter (no leader known), then the new leader
    assert [call[0] for call in harness.log] == [
        "http://etcd-k8s-1:2379",
        "http://etcd-k8s-2:2379",
        "http://etcd-k8s-2:2379",
    ]


def test_a_final_answer_is_not_retried() -> None:
    harness = Harness([], [error("etcdserver: permission denied")])
    with pytest.raises(EtcdctlError, match="permission denied"):
        harness.driver().remove(
            view(member(0), member(1), leader="m0"), RemoveMember(member(1), "x")
        )


@pytest.mark.parametrize(
    "answer", ["etcdserver: member ID already exist", "etcdserver: Peer URLs already exists"]
)
def test_a_joiner_added_at_once_by_another_hook_is_adopted(answer: str) -> None:
    """The old leader's hook, still running, and the new leader's both add etcd-k8s-3: the
    second add finds it there and takes that learner, rather than failing the hook."""
    joiner = member(3, learner=True)
    listed = view(member(0), member(1), joiner, leader="m0")
    harness = Harness([], [error(answer), listed])
    unit = SimpleNamespace(member_name="etcd-k8s-3", peer_url="http://etcd-k8s-3:2380")
    got = harness.driver().add_learner(view(member(0), member(1), leader="m0"), unit)  # type: ignore[arg-type]
    assert got == joiner


def test_an_add_refused_for_another_reason_fails() -> None:
    harness = Harness([], [error("etcdserver: too many learner members in cluster")])
    unit = SimpleNamespace(member_name="etcd-k8s-3", peer_url="http://etcd-k8s-3:2380")
    with pytest.raises(EtcdctlError):
        harness.driver().add_learner(view(member(0), leader="m0"), unit)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "stderr, stopping",
    [("raft: stopped", True), ("etcdserver: server stopped", True), ("member not found", False)],
)
def test_member_stopping(stderr: str, stopping: bool) -> None:
    assert error(stderr).member_stopping is stopping
