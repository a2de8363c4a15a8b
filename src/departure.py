"""Ends and new beginnings of a member: leaving the cluster when the unit is removed, and
rebuilding a one-member cluster from the survivor when the majority is lost. Both are driven by
the pure decisions in `membership` and `recovery`; this module carries them out."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import membership as core
import peers
import recovery
from workload import DATA_DIR, STORAGE_ROOT

if TYPE_CHECKING:
    from reconciler import Reconciler

logger = logging.getLogger(__name__)

LEAVE_STEPS = 4  # move leadership, remove, confirm gone: anything more fails the hook


def leave(rec: Reconciler) -> None:
    """This unit is being removed: hand leadership over, remove its member, stop etcd.
    Fails the hook (Juju retries it) rather than leave the cluster in doubt."""
    for _ in range(LEAVE_STEPS):
        obs = rec.observe()
        step = core.next_departure_step(obs)
        if isinstance(step, core.MoveLeader):
            assert obs.cluster is not None
            rec.move_leader(obs.cluster, step.to, "leaving")
            continue
        if isinstance(step, core.RemoveMember):
            assert obs.cluster is not None
            rec.remove_member(obs.cluster, step)
            continue
        if isinstance(step, core.Left):
            logger.info("decision: stop member=%s (not in the cluster)", rec.me.member_name)
            rec.workload.stop()
            return
        if isinstance(step, core.LastVoter):
            logger.warning(
                "decision: stop member=%s (last voter; the application goes)",
                rec.me.member_name,
            )
            rec.workload.stop()
            return
        raise RuntimeError(f"cannot leave the cluster yet: {step.reason}")  # type: ignore[union-attr]
    raise RuntimeError("still a member after leaving steps; Juju will retry this hook")


def survivors(rec: Reconciler) -> list[recovery.Survivor]:
    """Members answering `endpoint status`, which needs no quorum."""
    units = {u.client_url: u.unit for u in (rec.me, *rec.peer_units())}
    statuses = rec.client(list(units)).endpoint_status(list(units))
    return [
        recovery.Survivor(
            unit=units.get(s.endpoint, s.endpoint),
            member_id=s.member_id,
            raft_index=s.raft_index,
            has_leader=s.leader_id != "0",
        )
        for s in statuses
    ]


def rebuild(rec: Reconciler, force: bool) -> dict[str, str]:
    """The rebuild-cluster action: a one-member cluster from this unit's member
    (--force-new-cluster keeps the data and the cluster id), then back to a normal start.
    The other units rejoin as learners through the usual path."""
    if not rec.workload.has_member_data():
        raise recovery.RebuildRefused("this unit holds no etcd data to rebuild from")
    obs = rec.observe()
    reports = rec.reports()
    reports[rec.me.unit] = core.member_state(obs)  # what it is now, not what it last said
    mine = recovery.check_rebuild(rec.me.unit, survivors(rec), reports, force)
    dropped = tuple(sorted(u.member_id for u in rec.peer_units() if u.member_id))
    logger.warning(
        "decision: rebuild-cluster from member=%s id=%s raft-index=%s force=%s",
        rec.me.member_name,
        mine.member_id,
        mine.raft_index,
        force,
    )
    own = rec.solo_cluster
    rec.workload.stop()
    rec.write_config("existing", own, "existing", force_new_cluster=True)
    rec.start_member()
    rec.await_started()
    rec.write_config("existing", own, "existing")  # never keep force-new-cluster
    rec.restart_member()
    rec.await_healthy_voter()
    view = rec.client([rec.me.client_url]).view()
    assert rec.relation is not None
    # A change in this databag wakes every peer: they find themselves gone and rejoin, unless
    # their data is ahead of the point this member carried on from (core: _newer_than_cluster).
    record = core.RebuildRecord(mine.member_id, view.cluster_id, mine.raft_index, dropped)
    peers.write_rebuild(rec.relation.data[rec.charm.unit], record)
    return {
        "member": rec.me.member_name,
        "member-id": mine.member_id,
        "raft-index": str(mine.raft_index),
        "cluster-id": view.cluster_id,
        "members-now": str(len(view.members)),
        "next": "the other units rejoin as learners, one at a time; watch juju status",
    }


def discard(rec: Reconciler, storage: Path) -> dict[str, str]:
    """The discard-data action: this unit's data is of a member the live cluster no longer
    lists; move it aside (never delete it) so that the unit joins anew."""
    obs = rec.observe()
    if not obs.disk.has_member_data:
        raise recovery.RebuildRefused("this unit holds no etcd data; nothing to discard")
    view = obs.cluster
    if view is None:
        raise recovery.RebuildRefused(
            "no etcd member answers, so nothing can tell whether this data is still needed; "
            "nothing was changed"
        )
    marker = obs.disk.marker
    listed = view.find(rec.me.member_name, rec.me.peer_url)
    in_use = marker is not None and any(m.id == marker.member_id for m in view.members)
    if in_use or (marker is None and listed is not None and listed.started):
        raise recovery.RebuildRefused(
            "the cluster lists this unit's member: its data is in use; nothing was changed"
        )
    rec.workload.stop()
    aside = storage / f"discarded-{time.strftime('%Y%m%d-%H%M%S')}"
    os.rename(storage / DATA_DIR.removeprefix(f"{STORAGE_ROOT}/"), aside)
    rec.workload.clear_marker()
    logger.warning("decision: discard-data member=%s kept-at=%s", rec.me.member_name, aside.name)
    return {
        "discarded": f"member {marker.member_id}" if marker else "unmarked data",
        "kept-at": f"{STORAGE_ROOT}/{aside.name}",
        "next": "this unit joins the cluster as a new learner; remove the copy once not needed",
    }
