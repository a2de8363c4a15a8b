"""Pure decisions behind the operator's actions: which member a parameter names, the order in
which to defragment, what to compact to, how to take the old cluster down before a restore.
No ops, no etcdctl: each takes what was observed and returns what to do, or raises
`ActionRefused` with the reason the action fails with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core import access, rolling, tls
from core.membership import removal_keeps_quorum
from core.model import ClusterView, Member, Observation
from core.recovery import has_quorum
from core.steps import CutDone, Idle, MoveLeader, RemoveMember, TlsStep


class ActionRefused(Exception):
    """The action changes nothing and fails with this message."""


class PartialFailure(ActionRefused):
    """Failed part way: the results so far still go out with the failure."""

    def __init__(self, message: str, results: dict[str, object]):
        super().__init__(message)
        self.results = results


# ---- naming a member ----------------------------------------------------------------------------


def find_member(view: ClusterView, ref: str) -> Member:
    """A member by unit name (`etcd-k8s/1`), member name (`etcd-k8s-1`) or hex id."""
    wanted = ref.strip().lower()
    name = wanted.replace("/", "-")
    for member in view.members:
        if member.id == wanted.removeprefix("0x") or (member.name and member.name == name):
            return member
    known = ", ".join(f"{m.name or '(unstarted)'} ({m.id})" for m in view.members)
    raise ActionRefused(f"no member {ref!r} in the cluster; members: {known}")


def label(member: Member) -> str:
    return member.name or member.id


def promote_target(view: ClusterView, ref: str | None) -> Member:
    if ref:
        member = find_member(view, ref)
        if not member.is_learner:
            raise ActionRefused(f"member {label(member)} is already a voter, not a learner")
        return member
    if not view.learners:
        raise ActionRefused("there is no learner to promote")
    if len(view.learners) > 1:
        names = ", ".join(label(m) for m in view.learners)
        raise ActionRefused(f"several learners ({names}): name one with member=")
    return view.learners[0]


def move_leader_target(view: ClusterView, ref: str) -> Member:
    member = find_member(view, ref)
    if member.is_learner:
        raise ActionRefused(f"member {label(member)} is a learner; only a voter can lead")
    if member.id not in view.healthy_ids:
        raise ActionRefused(f"member {label(member)} is not healthy; it cannot take leadership")
    return member


def require_quorum(view: ClusterView | None, action: str) -> ClusterView:
    if view is None or not has_quorum(view):
        raise ActionRefused(
            f"{action} needs a cluster with quorum and a leader; it has none now "
            "(see juju status for what to do)"
        )
    return view


# ---- defrag -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DefragItem:
    """One member in the defrag order, or why it is left alone."""

    member: Member
    skip: str | None = None  # why it is left alone, or None to defragment it


def defrag_plan(
    view: ClusterView,
    free_bytes: Mapping[str, int],
    only: Member | None = None,
    threshold: int = 0,
) -> list[DefragItem]:
    """One member at a time: learners, then followers, the leader last (defrag blocks a member
    and a blocked leader stalls everyone). `free_bytes` maps member id to dbSize - dbSizeInUse
    for the members that answered; one that did not is skipped, not guessed at."""
    members = [only] if only else list(view.members)
    majority = len(view.voters) // 2 + 1
    degraded = len(view.healthy_voters) < len(view.voters)

    def order(member: Member) -> tuple[int, str]:
        rank = 2 if member.id == view.leader_id else (0 if member.is_learner else 1)
        return rank, member.name or member.id

    plan = []
    for member in sorted(members, key=order):
        skip = None
        if member.id not in view.healthy_ids or member.id not in free_bytes:
            skip = "not healthy: skipped"
        elif degraded and not member.is_learner and len(view.healthy_voters) - 1 < majority:
            # A voter being defragmented answers nothing: with another voter already down,
            # that would leave no quorum for as long as it runs.
            skip = "skipped: with a voter down, blocking this one would lose quorum"
        elif free_bytes[member.id] < threshold:
            skip = f"only {free_bytes[member.id]} bytes to reclaim, below threshold {threshold}"
        plan.append(DefragItem(member, skip))
    return plan


# ---- compact ------------------------------------------------------------------------------------


def compact_revision(current: int, revision: int | None, keep: int) -> int:
    """The revision to compact at: the one asked for, else the current one minus a kept window."""
    if revision is not None:
        if revision > current:
            raise ActionRefused(f"revision {revision} is in the future; the current is {current}")
        if revision < 1:
            raise ActionRefused("revision must be 1 or more")
        return revision
    target = current - keep
    if target < 1:
        raise ActionRefused(f"nothing to compact: current revision {current}, keep {keep}")
    return target


# ---- restore: taking the old cluster down --------------------------------------------------------


CutStep = MoveLeader | RemoveMember | CutDone


def next_cut_step(view: ClusterView | None, seed_name: str, force: bool) -> CutStep:
    """Before a restore, shrink the old cluster to the restoring member, one change at a time,
    so that no other member keeps serving old data as a cluster of its own. Leadership moves
    to the restoring member first; then learners and members that are down go, then the rest.
    Without quorum nothing can be removed: only `force` (the operator's word that the others
    are not serving) lets the restore go on."""
    if view is None or not has_quorum(view):
        if force:
            return CutDone()
        raise ActionRefused(
            "the old cluster has no quorum, so its other members cannot be removed first; "
            "if they are down or can be left to stop on their next hook, run again with force=true"
        )
    seed = next((m for m in view.members if m.name == seed_name), None)
    others = [m for m in view.members if m is not seed]
    if not others:
        return CutDone()
    if seed is None or seed.is_learner or seed.id not in view.healthy_ids:
        if force:
            return CutDone()
        raise ActionRefused(
            f"{seed_name} is not a healthy voter of the running cluster, so it cannot take it "
            "down member by member; run again with force=true to restore anyway"
        )
    if view.leader_id != seed.id:
        return MoveLeader(to=seed)

    def order(member: Member) -> tuple[int, str]:
        healthy_voter = not member.is_learner and member.id in view.healthy_ids
        return (1 if healthy_voter else 0), member.name or member.id

    victim = min(others, key=order)
    if not removal_keeps_quorum(view, victim):
        raise ActionRefused(f"restore stopped: removing {label(victim)} would lose quorum")
    return RemoveMember(member=victim, reason="restore: the old cluster shrinks to one member")


# ---- pre-refresh-check --------------------------------------------------------------------------


def refresh_busy(obs: Observation) -> tuple[str, ...]:
    """What is under way that a roll must not cut across (each named for the refusal): a
    restore still rejoining, a unit waiting (a rebuild, a join), a TLS switch, a rolling
    restart, an auth or client-user change the leader still has to make."""
    busy: list[str] = []
    cluster = obs.cluster
    if obs.app.restore is not None and cluster and len(cluster.voters) < len(obs.units):
        busy.append(f"the restore of {obs.app.restore.snapshot} (units still rejoining)")
    elif cluster and len(cluster.members) < len(obs.present):
        busy.append("a rebuild or scale-up (units not yet members)")
    waiting = sorted(u.unit for u in obs.units if u.waiting_for)
    if waiting:
        busy.append(f"a rejoin ({', '.join(waiting)} waiting)")
    records = (obs.app.tls.peer, obs.app.tls.client)
    if any(r.stage == "trust" for r in records) or isinstance(tls.next_tls_step(obs), TlsStep):
        busy.append("a TLS roll")
    if obs.app.restart_turn or rolling.next_turn_step(obs) != Idle():
        busy.append("a rolling restart")
    if access.next_auth_step(obs) != Idle() or access.next_clients_step(obs) != Idle():
        busy.append("a client roll (auth or client users)")
    return tuple(busy)
