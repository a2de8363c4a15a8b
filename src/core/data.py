"""What the data on this unit's volume is, judged against the peer data and the live cluster:
of a cluster a restore replaced, a failed learner start's leftovers, stale (its member gone),
or ahead of a cluster that dropped it. A wipe is decided here only where it loses nothing."""

from __future__ import annotations

from core.messages import say
from core.model import ClusterView, Marker, Observation
from core.steps import HoldData, LocalStep, StartMember, Wait, WipeStaleData


def superseded(obs: Observation) -> str | None:
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


def unjoined(obs: Observation, marker: Marker) -> LocalStep:
    """etcd was started as learner `marker.member_id` and never published itself: whatever
    it left in the data dir is a failed start's, not a member's log, unless the live cluster
    shows the learner started after all (the hook ended before it could say so)."""
    view = obs.cluster
    if view is None:
        return Wait(say("data.unjoined-wait", member_id=marker.member_id))
    listed = next((m for m in view.members if m.id == marker.member_id), None)
    if listed is not None and listed.started:
        return StartMember()
    return WipeStaleData(
        reason=f"etcd was started as learner {marker.member_id} but never joined: nothing to keep"
    )


def stale(obs: Observation) -> LocalStep | None:
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
    return say(
        "data.hold",
        member_id=marker.member_id,
        index=marker.raft_index,
        what=what,
        reference=reference,
        unit=obs.me.unit,
    )


def member_gone(obs: Observation, view: ClusterView) -> bool:
    """The member whose data is on disk is not in the live cluster's list."""
    marker = obs.disk.marker
    return (
        marker is not None
        and not marker.joining
        and obs.disk.has_member_data
        and not any(m.id == marker.member_id for m in view.members)
    )
