"""The membership decision core: what this unit, and the Juju leader, should do next.

Pure functions over observed state. Nothing here talks to Pebble, etcd or Juju:
engine/observe.py gathers an `Observation`, core/flow.py asks `next_local_step` and
`next_cluster_step` (among its passes), the engine carries the step out and observes again.
Every function returns exactly one step, so one change happens at a time. What the data on
this unit's disk is (stale, superseded, unjoined, ahead of the cluster) is core/data.py's.

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

from core import data, refresh
from core.messages import say
from core.model import (
    EMPTY,
    LEARNER,
    NO_LEADER,
    SERVING,
    STOPPED,
    ClusterView,
    JoinTicket,
    Member,
    Observation,
    UnitInfo,
)
from core.steps import (
    AddLearner,
    Blocked,
    Bootstrap,
    ClearTicket,
    ClusterStep,
    DepartureStep,
    DropSuperseded,
    HoldData,
    Idle,
    Join,
    LastVoter,
    Left,
    LocalStep,
    MoveLeader,
    PlanBootstrap,
    Promote,
    PublishTicket,
    RecordCluster,
    RemoveMember,
    StartMember,
    Wait,
)

# ---- the local decision ------------------------------------------------------------------------


def next_local_step(obs: Observation, new_token: str) -> LocalStep:
    """What this unit does about its own member. `new_token` is used only to plan a bootstrap."""
    superseded = data.superseded(obs)
    if superseded:
        return DropSuperseded(reason=superseded)
    if obs.running:
        return _running_step(obs)
    if obs.me.waiting_for:
        return Wait(say("unit.waiting-for", what=obs.me.waiting_for))
    if obs.disk.has_member_data:
        if obs.disk.marker is not None and obs.disk.marker.joining:
            return data.unjoined(obs, obs.disk.marker)
        return data.stale(obs) or version_refusal(obs) or StartMember()
    if obs.app.cluster_token is None:
        return _before_bootstrap(obs, new_token)
    return _without_data(obs, new_token, obs.app.cluster_token)


def _without_data(obs: Observation, new_token: str, token: str) -> LocalStep:
    """Nothing on disk, a cluster planned: bootstrap it, wait for it, or join it."""
    app = obs.app
    if _may_bootstrap(obs):
        return Bootstrap(token=token)
    if app.bootstrap_member and app.cluster_id is None and obs.cluster is None:
        nobody_ran = not any(u.member_id for u in obs.units)
        if obs.is_leader and nobody_ran and not _present(obs, app.bootstrap_member):
            # The unit named to bootstrap left before doing so: plan again with a fresh token.
            return PlanBootstrap(member=obs.me.member_name, token=new_token)
        return Wait(say("unit.await-bootstrap", member=app.bootstrap_member))
    ticket = app.join
    if ticket is not None and ticket.member_name == obs.me.member_name:
        return _with_ticket(obs, ticket, token)
    if obs.cluster is not None:
        listed = obs.cluster.find(obs.me.member_name, obs.me.peer_url)
        if listed is not None and listed.started:
            return _remove_lost_self(obs.cluster, listed)
    return Wait(say("unit.await-add"))


def _with_ticket(obs: Observation, ticket: JoinTicket, token: str) -> LocalStep:
    if obs.cluster is None:
        # A learner starts by asking its peers for the cluster: with none reachable from this
        # pod (cut off, say), etcd would only exit again. Join once one answers.
        return Wait(say("unit.await-reachable", member_id=ticket.member_id))
    listed = obs.cluster.find(obs.me.member_name, obs.me.peer_url)
    if listed is None or listed.id != ticket.member_id:
        return Wait(say("unit.stale-ticket"))
    if listed.started:
        return _remove_lost_self(obs.cluster, listed)
    return version_refusal(obs) or Join(ticket=ticket, token=token)


def version_refusal(obs: Observation) -> Blocked | None:
    """Refresh's guard (core/refresh.py), before this unit's etcd starts: Blocked, etcd is not
    started and the pod stays unready, so Kubernetes halts the roll on this pod."""
    if obs.versions is None:
        return None
    verdict = refresh.guard(obs.versions)
    return None if verdict.refusal is None else Blocked(verdict.refusal)


def _remove_lost_self(view: ClusterView, listed: Member) -> LocalStep:
    """Seed 000's "member exists, data lost": remove it so that it can join again as a learner."""
    reason = f"member {listed.id} is listed but this unit's data is gone"
    if not removal_keeps_quorum(view, listed):
        return Blocked(say("data.lost-self-blocked", member_id=listed.id))
    return RemoveMember(member=listed, reason=reason)


def _running_step(obs: Observation) -> LocalStep:
    if obs.cluster is None:
        serving = sorted(u.unit for u in obs.peers if u.member_state == SERVING)
        if serving:
            return Wait(say("member.cut-off", units=", ".join(serving)))
        return Wait(say("member.no-quorum"))
    if data.member_gone(obs, obs.cluster):
        # The member on disk is gone from the cluster (removed, or the cluster rebuilt without
        # it): what runs is its etcd on its way out, whatever holds its peer URL now. A running
        # member is never wiped; its data is judged once it has stopped.
        stale = data.stale(obs)
        if isinstance(stale, HoldData):
            return stale
        return Blocked(say("member.not-a-member"))
    member = obs.cluster.find(obs.me.member_name, obs.me.peer_url)
    if member is None:
        return Blocked(say("member.not-a-member"))
    if member.is_learner and member.started:
        return Promote(member=member)
    if member.is_learner:
        return Wait(say("member.learner-unpublished"))
    return Idle()


def member_state(obs: Observation) -> str:
    """What this unit says of its own member in peer data (model.SERVING, ...)."""
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
        return Blocked(say("unit.no-token"))
    if obs.is_leader:
        return PlanBootstrap(member=obs.me.member_name, token=new_token)
    return Wait(say("unit.await-plan"))


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
        return Wait(say("cluster.no-answer"))
    if obs.app.cluster_id is None:
        return RecordCluster(cluster_id=view.cluster_id)
    if obs.app.cluster_id != view.cluster_id:
        return Blocked(
            say("cluster.id-mismatch", live=view.cluster_id, recorded=obs.app.cluster_id)
        )
    return _membership_step(obs, view)


def _membership_step(obs: Observation, view: ClusterView) -> ClusterStep:
    """The recorded cluster answers: clean up, finish a join, or start the next one."""
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
        return Wait(
            say("cluster.not-adding", unit=joiner.unit, members=", ".join(sorted(unhealthy)))
        )
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
            return Wait(say("cluster.orphan-healthy", member=label))
        if not removal_keeps_quorum(view, member):
            return Blocked(say("cluster.orphan-blocked", member=label))
        return RemoveMember(member=member, reason=f"member {label} has no unit behind it")
    return None


def _learner_step(obs: Observation, view: ClusterView, learner: Member) -> ClusterStep:
    if learner.started:
        return Promote(member=learner)
    unit = next((u for u in obs.units if u.peer_url in learner.peer_urls), None)
    if unit is None:
        return Wait(say("cluster.learner-orphan", member_id=learner.id))
    ticket = ticket_for(unit, learner.id, view)
    if obs.app.join != ticket:
        return PublishTicket(ticket=ticket)
    return Wait(say("cluster.await-learner", unit=unit.unit))


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
        return Wait(say("leave.no-answer"))
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
        return Blocked(say("leave.blocked"))
    return RemoveMember(member=member, reason="this unit is being removed")
