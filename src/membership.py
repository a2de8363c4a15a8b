"""The membership decision core: what this unit, and the Juju leader, should do next.

Pure functions over observed state. Nothing here talks to Pebble, etcd or Juju; `charm.py`
gathers an `Observation`, asks `next_local_step` / `next_cluster_step`, carries the step out,
observes again. Every function returns exactly one step, so one change happens at a time.

The flow grows seed 000's decision tree:
- no cluster yet: only the Juju leader plans a bootstrap, naming itself, and the named unit
  bootstraps on a later hook, once that plan is committed to peer app data. A leader change in
  between finds the plan and waits, so two units never both bootstrap.
- data on disk: start the member that is there; never ask the cluster to add it again.
- no data, cluster exists: wait for the leader to `member add --learner` this unit and publish a
  join ticket; start with state `existing`; promote as soon as etcd says the learner is in sync.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from observed import (  # noqa: F401  (re-exported: the core's vocabulary)
    EMPTY,
    LEARNER,
    NO_LEADER,
    SERVING,
    STOPPED,
    AppState,
    ClusterView,
    ConfigState,
    Disk,
    JoinTicket,
    Marker,
    Member,
    Observation,
    RebuildRecord,
    RestoreRecord,
    UnitInfo,
)

# ---- steps -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    """Nothing to do now; `reason` says for what, in words for `juju status`."""

    reason: str


@dataclass(frozen=True)
class Idle:
    """All is as it should be for this part of the decision."""


@dataclass(frozen=True)
class PlanBootstrap:
    """Leader: record in app data that `member` bootstraps a new cluster with `token`."""

    member: str
    token: str


@dataclass(frozen=True)
class Bootstrap:
    """Start a one-member cluster, state `new`."""

    token: str


@dataclass(frozen=True)
class StartMember:
    """Start the member whose data is on disk."""


@dataclass(frozen=True)
class Join:
    """Start as the learner the leader added, state `existing`."""

    ticket: JoinTicket
    token: str


@dataclass(frozen=True)
class Promote:
    """Promote a started learner to voter (the learner itself or the leader may do it)."""

    member: Member


@dataclass(frozen=True)
class RecordCluster:
    """Leader: remember the cluster id, which marks the cluster as formed."""

    cluster_id: str


@dataclass(frozen=True)
class AddLearner:
    """Leader: `member add --learner` for this unit, then publish its join ticket."""

    unit: UnitInfo


@dataclass(frozen=True)
class PublishTicket:
    ticket: JoinTicket


@dataclass(frozen=True)
class ClearTicket:
    """Leader: the joiner is a voter now (or gone); drop its ticket."""


@dataclass(frozen=True)
class WipeStaleData:
    """The data on disk belongs to a member the cluster no longer has: wipe it, then join anew."""

    reason: str


@dataclass(frozen=True)
class DropSuperseded:
    """The leader restored the cluster from a snapshot; this unit's data is of the cluster the
    restore replaced: stop etcd and wipe it, then join the restored cluster as a learner."""

    reason: str


@dataclass(frozen=True)
class RemoveMember:
    """`member remove`: a member whose data is gone, or whose unit is gone."""

    member: Member
    reason: str


@dataclass(frozen=True)
class MoveLeader:
    """`move-leader` to a healthy voter before this member leaves."""

    to: Member


@dataclass(frozen=True)
class Left:
    """This unit's member is no longer in the cluster: stop etcd."""


@dataclass(frozen=True)
class LastVoter:
    """This is the last voter and its unit goes: the application is being removed. Stop etcd;
    removing the member would leave nothing to remove it from."""


@dataclass(frozen=True)
class Blocked:
    """Something only an operator can settle."""

    reason: str


@dataclass(frozen=True)
class HoldData(Blocked):
    """This unit's data is of a member the cluster dropped, yet holds writes the cluster lacks:
    it is kept until an operator decides (discard-data), and the unit must not be re-added."""


LocalStep = (
    Wait
    | Idle
    | PlanBootstrap
    | Bootstrap
    | StartMember
    | Join
    | Promote
    | WipeStaleData
    | DropSuperseded
    | RemoveMember
    | Blocked
)
ClusterStep = (
    Wait
    | Idle
    | RecordCluster
    | AddLearner
    | PublishTicket
    | ClearTicket
    | Promote
    | RemoveMember
    | Blocked
)
DepartureStep = Wait | MoveLeader | RemoveMember | Left | LastVoter | Blocked


# ---- the local decision ------------------------------------------------------------------------


def next_local_step(obs: Observation, new_token: str) -> LocalStep:
    """What this unit does about its own member. `new_token` is used only to plan a bootstrap."""
    superseded = _superseded(obs)
    if superseded:
        return DropSuperseded(reason=superseded)
    if obs.running:
        return _running_step(obs)
    if obs.me.waiting_for:
        return Wait(f"waiting for {obs.me.waiting_for} before starting etcd")
    if obs.disk.has_member_data:
        if obs.disk.marker is not None and obs.disk.marker.joining:
            return _unjoined_data(obs, obs.disk.marker)
        return _stale_data(obs) or StartMember()
    app = obs.app
    if app.cluster_token is None:
        return _before_bootstrap(obs, new_token)
    if _may_bootstrap(obs):
        return Bootstrap(token=app.cluster_token)
    if app.bootstrap_member and app.cluster_id is None and obs.cluster is None:
        nobody_ran = not any(u.member_id for u in obs.units)
        if obs.is_leader and nobody_ran and not _present(obs, app.bootstrap_member):
            # The unit named to bootstrap left before doing so: plan again with a fresh token.
            return PlanBootstrap(member=obs.me.member_name, token=new_token)
        return Wait(f"waiting for {app.bootstrap_member} to bootstrap the cluster")
    ticket = app.join
    if ticket is not None and ticket.member_name == obs.me.member_name:
        if obs.cluster is None:
            # A learner starts by asking its peers for the cluster: with none reachable from
            # this pod (cut off, say), etcd would only exit again. Join once one answers.
            return Wait(
                f"waiting to join as learner {ticket.member_id}: no etcd member answers from "
                "this pod"
            )
        listed = obs.cluster.find(obs.me.member_name, obs.me.peer_url)
        if listed is None or listed.id != ticket.member_id:
            return Wait("join ticket is stale; waiting for the leader to add this unit again")
        if listed.started:
            return _remove_lost_self(obs.cluster, listed)
        return Join(ticket=ticket, token=app.cluster_token)
    if obs.cluster is not None:
        listed = obs.cluster.find(obs.me.member_name, obs.me.peer_url)
        if listed is not None and listed.started:
            return _remove_lost_self(obs.cluster, listed)
    return Wait("waiting for the leader to add this unit as a learner")


def _superseded(obs: Observation) -> str | None:
    """Data of a cluster a restore replaced. Decided from the record and the marker alone: a
    member of a replaced cluster may still run, and must not be asked. A restore makes a new
    cluster id, so once the recorded cluster is the restored one, data of any other cluster id
    is older: that of the cluster this restore replaced, or of one an earlier restore did."""
    record = obs.app.restore
    marker = obs.disk.marker
    if record is None or marker is None or not obs.disk.has_member_data:
        return None
    if record.seed == obs.me.member_name or obs.app.cluster_id != record.cluster_id:
        return None
    if marker.cluster_id == record.cluster_id:
        return None
    how = "replaced by" if marker.cluster_id == record.superseded else "older than"
    return (
        f"data of cluster {marker.cluster_id}, {how} restore {record.id} "
        f"(snapshot {record.snapshot})"
    )


def _unjoined_data(obs: Observation, marker: Marker) -> LocalStep:
    """etcd was started as learner `marker.member_id` and never published itself: whatever
    it left in the data dir is a failed start's, not a member's log, unless the live cluster
    shows the learner started after all (the hook ended before it could say so)."""
    view = obs.cluster
    if view is None:
        return Wait(
            f"a learner start (member {marker.member_id}) left data behind; waiting for a "
            "member to answer before deciding on it"
        )
    listed = next((m for m in view.members if m.id == marker.member_id), None)
    if listed is not None and listed.started:
        return StartMember()
    return WipeStaleData(
        reason=f"etcd was started as learner {marker.member_id} but never joined: nothing to keep"
    )


def _remove_lost_self(view: ClusterView, listed: Member) -> LocalStep:
    """Seed 000's "member exists, data lost": remove it so that it can join again as a learner."""
    reason = f"member {listed.id} is listed but this unit's data is gone"
    if not removal_keeps_quorum(view, listed):
        return Blocked(f"{reason}; removing it now would lose quorum")
    return RemoveMember(member=listed, reason=reason)


def _stale_data(obs: Observation) -> LocalStep | None:
    """The data on disk must not be started: wipe it, or block when wiping could lose writes;
    None to start it. Decided only against a live cluster: with no member answering, starting
    what is on disk is how quorum comes back."""
    view = obs.cluster
    if view is None:
        return None
    if obs.app.cluster_id is not None and view.cluster_id != obs.app.cluster_id:
        return None  # the leader blocks on this mismatch; never wipe while it stands
    listed = view.find(obs.me.member_name, obs.me.peer_url)
    marker = obs.disk.marker
    if marker is not None and marker.cluster_id != view.cluster_id:
        return WipeStaleData(
            f"data of cluster {marker.cluster_id}, but the live cluster is {view.cluster_id}"
        )
    if marker is not None and not any(m.id == marker.member_id for m in view.members):
        newer = _newer_than_cluster(obs, view, marker)
        if newer:
            return HoldData(newer)
        return WipeStaleData(
            f"data of member {marker.member_id}, which the cluster no longer lists"
        )
    if listed is None:
        return WipeStaleData("data of a member the cluster does not list")
    return None


def _newer_than_cluster(obs: Observation, view: ClusterView, marker: Marker) -> str | None:
    """A member the cluster no longer lists was removed, which it can have seen only up to its
    removal: its log cannot be ahead of the cluster's. Unless the cluster was rebuilt from
    another member that was behind (a cut-off one, say): then this data holds writes the
    rebuilt cluster never had, and wiping it would lose them."""
    if marker.raft_index is None:
        return None
    reference, what = view.raft_index, "the live cluster is"
    for unit in obs.units:
        record = unit.rebuild
        if record and record.cluster_id == view.cluster_id and marker.member_id in record.dropped:
            reference, what = record.raft_index, f"{unit.unit} rebuilt the cluster"
    if reference is None or marker.raft_index <= reference:
        return None
    return (
        f"not wiping this unit's data: member {marker.member_id} got to raft index "
        f"{marker.raft_index}, but {what} at {reference}, so it holds writes the cluster lacks; "
        f"keep them by rebuilding from this data, or drop them with: juju run {obs.me.unit} "
        "discard-data"
    )


def _running_step(obs: Observation) -> LocalStep:
    if obs.cluster is None:
        serving = sorted(u.unit for u in obs.peers if u.member_state == SERVING)
        if serving:
            return Wait(
                f"this member reaches no leader, but {', '.join(serving)} report a healthy "
                "cluster: this pod is cut off from it (check its network)"
            )
        return Wait("etcd is running but no member answers: waiting for quorum")
    if _member_gone(obs, obs.cluster):
        # The member on disk is gone from the cluster (removed, or the cluster rebuilt without
        # it): what runs is its etcd on its way out, whatever holds its peer URL now. A running
        # member is never wiped; its data is judged once it has stopped.
        stale = _stale_data(obs)
        if isinstance(stale, HoldData):
            return stale
        return Blocked("etcd is running but this unit is not a member of the cluster")
    member = obs.cluster.find(obs.me.member_name, obs.me.peer_url)
    if member is None:
        return Blocked("etcd is running but this unit is not a member of the cluster")
    if member.is_learner and member.started:
        return Promote(member=member)
    if member.is_learner:
        return Wait("learner started, waiting for it to publish itself")
    return Idle()


def _member_gone(obs: Observation, view: ClusterView) -> bool:
    """The member whose data is on disk is not in the live cluster's list."""
    marker = obs.disk.marker
    return (
        marker is not None
        and not marker.joining
        and obs.disk.has_member_data
        and not any(m.id == marker.member_id for m in view.members)
    )


def member_state(obs: Observation) -> str:
    """What this unit says of its own member in peer data (observed.SERVING, ...)."""
    if not obs.running:
        return STOPPED if obs.disk.has_member_data else EMPTY
    view = obs.cluster
    member = view.find(obs.me.member_name, obs.me.peer_url) if view else None
    if view is None or member is None or not view.leader_id:
        return NO_LEADER
    if member.is_learner:
        return LEARNER
    return SERVING if member.id in view.healthy_ids else NO_LEADER


def _before_bootstrap(obs: Observation, new_token: str) -> LocalStep:
    if any(u.member_id for u in obs.units) or obs.cluster is not None:
        return Blocked("a member exists but peer app data has no cluster token; refusing to guess")
    if obs.is_leader:
        return PlanBootstrap(member=obs.me.member_name, token=new_token)
    return Wait("waiting for the leader to plan the cluster bootstrap")


def _may_bootstrap(obs: Observation) -> bool:
    app = obs.app
    return (
        app.bootstrap_member == obs.me.member_name
        and app.cluster_id is None
        and obs.cluster is None
        and not any(u.member_id for u in obs.units)
    )


def _present(obs: Observation, member_name: str) -> bool:
    return any(u.member_name == member_name for u in obs.units)


def removal_keeps_quorum(view: ClusterView, member: Member) -> bool:
    """Can `member` be removed without losing quorum? The change itself needs a quorum now,
    and the healthy voters left must be a majority of the voters left. Learners never count."""
    if member.is_learner:
        return True
    voters_after = [m for m in view.voters if m.id != member.id]
    if not voters_after:
        return False
    healthy_now = [m for m in view.voters if m.id in view.healthy_ids]
    if len(healthy_now) < len(view.voters) // 2 + 1:
        return False
    healthy_after = [m for m in voters_after if m.id in view.healthy_ids]
    return len(healthy_after) >= len(voters_after) // 2 + 1


# ---- the leader's decision ---------------------------------------------------------------------


def next_cluster_step(obs: Observation) -> ClusterStep:
    """What the Juju leader does about the membership as a whole."""
    if not obs.is_leader:
        return Idle()
    view = obs.cluster
    if view is None:
        if obs.app.cluster_id is None:
            return Idle()  # nothing formed yet: the local step handles the bootstrap
        return Wait("no etcd member answers")
    if obs.app.cluster_id is None:
        return RecordCluster(cluster_id=view.cluster_id)
    if obs.app.cluster_id != view.cluster_id:
        return Blocked(
            f"cluster id {view.cluster_id} differs from the recorded {obs.app.cluster_id}"
        )
    orphan = _orphan_step(obs, view)
    if orphan is not None:
        return orphan
    if view.learners:
        return _learner_step(obs, view, view.learners[0])
    if obs.app.join is not None:
        return ClearTicket()
    joiner = _next_joiner(obs, view)
    if joiner is None:
        return Idle()
    unhealthy = [m.name or m.id for m in view.voters if m.id not in view.healthy_ids]
    if unhealthy:
        return Wait(f"not adding {joiner.unit}: voters not healthy: {', '.join(sorted(unhealthy))}")
    return AddLearner(unit=joiner)


def _orphan_step(obs: Observation, view: ClusterView) -> ClusterStep | None:
    """Seed 000's "member is dead but in cluster": a member with no Juju unit behind it. Juju is
    the truth about which units exist; reachability alone never condemns a member."""
    if not obs.present:
        return None  # nothing known about units: never guess
    for member in view.members:
        if obs.has_unit(member):
            continue
        label = member.name or member.id
        if member.id in view.healthy_ids and not member.is_learner:
            return Wait(f"member {label} has no unit; waiting for it to leave the cluster")
        if not removal_keeps_quorum(view, member):
            return Blocked(f"member {label} has no unit and is down; removing it would lose quorum")
        return RemoveMember(member=member, reason=f"member {label} has no unit behind it")
    return None


def _learner_step(obs: Observation, view: ClusterView, learner: Member) -> ClusterStep:
    if learner.started:
        return Promote(member=learner)
    unit = next((u for u in obs.units if u.peer_url in learner.peer_urls), None)
    if unit is None:
        return Wait(f"learner {learner.id} has no unit behind it")
    ticket = ticket_for(unit, learner.id, view)
    if obs.app.join != ticket:
        return PublishTicket(ticket=ticket)
    return Wait(f"waiting for {unit.unit} to start as a learner")


def _next_joiner(obs: Observation, view: ClusterView) -> UnitInfo | None:
    waiting = [
        u for u in obs.units if view.find(u.member_name, u.peer_url) is None and not u.waiting_for
    ]
    return min(waiting, key=lambda u: u.number, default=None)


def ticket_for(unit: UnitInfo, member_id: str, view: ClusterView) -> JoinTicket:
    """The join ticket for `unit`, added as `member_id`, from the live member list."""
    entries: list[str] = []
    for member in view.members:
        name = unit.member_name if member.id == member_id else member.name
        if not name:
            continue  # another unstarted member cannot be named; etcd allows one learner anyway
        entries.extend(f"{name}={url}" for url in member.peer_urls)
    return JoinTicket(
        member_name=unit.member_name,
        member_id=member_id,
        peer_url=unit.peer_url,
        initial_cluster=",".join(sorted(entries)),
    )


def with_member_added(view: ClusterView, member: Member) -> ClusterView:
    """The view after `member add` returned `member` (saves an etcdctl round trip)."""
    return dataclasses.replace(view, members=(*view.members, member))


# ---- leaving ------------------------------------------------------------------------------------


def next_departure_step(obs: Observation) -> DepartureStep:
    """This unit is being removed: hand leadership over, then remove its own member."""
    view = obs.cluster
    if view is None:
        return Wait("no member answers; cannot leave the cluster safely")
    member = view.find(obs.me.member_name, obs.me.peer_url)
    if member is None:
        return Left()
    others = [m for m in view.healthy_voters if m.id != member.id]
    if member.id == view.leader_id and others:
        # Prefer a voter whose unit stays: others may be leaving too.
        staying = [m for m in others if m.name in obs.present and m.name != obs.me.member_name]
        return MoveLeader(to=min(staying or others, key=lambda m: m.name))
    if not member.is_learner and not [m for m in view.voters if m.id != member.id]:
        return LastVoter()
    if not removal_keeps_quorum(view, member):
        return Blocked("removing this member now would lose quorum: the other voters are down")
    return RemoveMember(member=member, reason="this unit is being removed")
