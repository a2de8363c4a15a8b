"""Which members the driver's etcdctl clients talk to."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from core.model import ClusterView, Member
from engine.member import MemberDriver


def member(n: int, learner: bool = False) -> Member:
    return Member(
        id=f"{n:016x}",
        name=f"etcd-k8s-{n}",
        peer_urls=(f"http://10.0.0.{n}:2380",),
        client_urls=(f"https://10.0.0.{n}:2379",),
        is_learner=learner,
    )


def driver() -> MemberDriver:
    ctx = SimpleNamespace(client=lambda endpoints: SimpleNamespace(endpoints=endpoints))
    return MemberDriver(cast(Any, ctx), cast(Any, None))


MEMBERS = (member(1), member(2), member(3), member(4, learner=True))
VIEW = ClusterView(
    cluster_id="c",
    members=MEMBERS,
    healthy_ids=frozenset(m.id for m in MEMBERS),
    leader_id=f"{2:016x}",
)


def test_auth_changes_go_to_the_raft_leader_alone() -> None:
    assert driver().auth_client(VIEW).endpoints == ["https://10.0.0.2:2379"]


def test_without_a_known_leader_auth_changes_go_to_the_voters() -> None:
    view = ClusterView(cluster_id="c", members=MEMBERS, healthy_ids=VIEW.healthy_ids)
    assert driver().auth_client(view).endpoints == [
        "https://10.0.0.1:2379",
        "https://10.0.0.2:2379",
        "https://10.0.0.3:2379",
    ]
