"""Majority lost: what the status says, and when the rebuild action may act. Pure functions.

Without quorum `member list` fails (3.5 reads it linearizably), but every running member still
answers `endpoint status` from its own state: its id, its raft index (how much of the log it
has) and whether it sees a leader. That is enough to tell an operator which member to rebuild
from, and for the action to refuse when rebuilding would throw away a healthy majority.

What a unit reaches is not what exists: a unit cut off from the others reaches only itself and
cannot tell "they are dead" from "I am cut off". So quorum is judged lost only on positive
evidence: the members that answer and see no leader, plus those whose units say through Juju
(peer data, which still flows while etcd traffic is cut) that their member is stopped, has no
data, or sees no leader, must leave too few members for a majority anywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from core.messages import say
from core.model import OUT_OF_QUORUM, SERVING, ClusterView


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


Kind = Literal["quorum", "lost", "cut-off", "unknown"]


@dataclass(frozen=True)
class Verdict:
    """Where the quorum is, as far as `observer` can tell, and what to say about it."""

    kind: Kind
    message: str
    pick: Survivor | None = None  # the member to rebuild from, when the quorum is lost

    @property
    def lost(self) -> bool:
        return self.kind == "lost"


def judge(observer: str, survivors: list[Survivor], reports: Mapping[str, str | None]) -> Verdict:
    """`survivors`: the members that answered `endpoint status` (the observer's own among them
    when it runs); `reports`: every unit that has a member, the observer included, mapped to
    what it last said of its member through Juju (model.SERVING, ...; None: nothing)."""
    if any(s.has_leader for s in survivors):
        return Verdict("quorum", say("quorum.leader-seen"))
    members = len(reports)
    answering = {s.unit for s in survivors}
    out = answering | {unit for unit, state in reports.items() if state in OUT_OF_QUORUM}
    if members - len(out) < members // 2 + 1:
        if not survivors:
            return Verdict("lost", say("quorum.none-answers", members=members))
        pick = best(survivors)
        said = say(
            "quorum.lost", out=len(out), members=members, unit=pick.unit, index=pick.raft_index
        )
        return Verdict("lost", said, pick)
    serving = sorted(u for u, state in reports.items() if state == SERVING and u not in answering)
    if serving:
        return Verdict(
            "cut-off", say("quorum.cut-off", observer=observer, units=", ".join(serving))
        )
    silent = sorted(u for u in reports if u not in out)
    return Verdict("unknown", say("quorum.unknown", observer=observer, units=", ".join(silent)))


def check_rebuild(
    me: str, survivors: list[Survivor], reports: Mapping[str, str | None], force: bool
) -> Survivor:
    """The member to rebuild from (this unit's), or RebuildRefused with the reason."""
    mine = next((s for s in survivors if s.unit == me), None)
    if mine is None:
        raise RebuildRefused(
            "etcd on this unit does not answer; run rebuild-cluster on a unit whose member runs"
        )
    if force:
        return mine
    verdict = judge(me, survivors, reports)
    if verdict.kind == "quorum":
        raise RebuildRefused(
            "the cluster still has a leader (quorum): rebuilding would drop healthy members; "
            "use force=true only if you mean it"
        )
    if verdict.kind == "cut-off":
        raise RebuildRefused(
            f"refusing: {verdict.message}. Rebuilding here would fork the cluster and drop "
            "every write the others acknowledge; nothing was changed"
        )
    if verdict.kind == "unknown":
        raise RebuildRefused(
            f"refusing: {verdict.message}. Nothing was changed; if the other members are gone "
            "for good, run again with force=true"
        )
    pick = best(survivors)
    if pick.raft_index > mine.raft_index:
        raise RebuildRefused(
            f"{pick.unit} has more data (raft index {pick.raft_index} > {mine.raft_index}): "
            f"run rebuild-cluster on {pick.unit}, or force=true to rebuild from this one"
        )
    return mine
