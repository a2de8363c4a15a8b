"""Majority lost: what the status says, and when the rebuild action may act. Pure functions.

Without quorum `member list` fails (3.5 reads it linearizably), but every running member still
answers `endpoint status` from its own state: its id, its raft index (how much of the log it
has) and whether it sees a leader. That is enough to tell an operator which member to rebuild
from, and for the action to refuse when rebuilding would throw away a healthy majority.
"""

from __future__ import annotations

from dataclasses import dataclass

from observed import ClusterView


@dataclass(frozen=True)
class Survivor:
    """A member that answered `endpoint status`."""

    unit: str
    member_id: str
    raft_index: int
    has_leader: bool


class RebuildRefused(Exception):
    """The rebuild-cluster action will not act; the message says why and what to do."""


def has_quorum(view: ClusterView | None) -> bool:
    """3.5 refuses `member list` without quorum; 3.4 answers it from local state, so judge by
    health and leadership, not by the list answering."""
    if view is None:
        return False
    return bool(view.leader_id) and len(view.healthy_voters) >= len(view.voters) // 2 + 1


def best(survivors: list[Survivor]) -> Survivor:
    """The member with the most data; ties go to the lowest unit for a stable answer."""
    return max(survivors, key=lambda s: (s.raft_index, -int(s.unit.rsplit("/", 1)[1])))


def quorum_lost(survivors: list[Survivor]) -> bool:
    return bool(survivors) and not any(s.has_leader for s in survivors)


def quorum_lost_message(survivors: list[Survivor], members: int) -> str:
    if not survivors:
        return f"no etcd member answers (0 of {members}); check the pods, their volumes and logs"
    pick = best(survivors)
    return (
        f"quorum lost: {len(survivors)} of {members} members answer, none has a leader; "
        f"to rebuild from {pick.unit} (most data, raft index {pick.raft_index}) run: "
        f"juju run {pick.unit} rebuild-cluster"
    )


def check_rebuild(me: str, survivors: list[Survivor], force: bool) -> Survivor:
    """The member to rebuild from (this unit's), or RebuildRefused with the reason."""
    mine = next((s for s in survivors if s.unit == me), None)
    if mine is None:
        raise RebuildRefused(
            "etcd on this unit does not answer; run rebuild-cluster on a unit whose member runs"
        )
    if force:
        return mine
    if any(s.has_leader for s in survivors):
        raise RebuildRefused(
            "the cluster still has a leader (quorum): rebuilding would drop healthy members; "
            "use force=true only if you mean it"
        )
    pick = best(survivors)
    if pick.raft_index > mine.raft_index:
        raise RebuildRefused(
            f"{pick.unit} has more data (raft index {pick.raft_index} > {mine.raft_index}): "
            f"run rebuild-cluster on {pick.unit}, or force=true to rebuild from this one"
        )
    return mine
