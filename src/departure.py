"""Ends and new beginnings of a member: leaving the cluster when the unit is removed, and
rebuilding a one-member cluster from the survivor when the majority is lost. Both are driven by
the pure decisions in `membership` and `recovery`; this module carries them out."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING

import membership as core
import recovery

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
            others = dataclasses.replace(
                obs.cluster,
                members=tuple(m for m in obs.cluster.members if m.id != step.member.id),
            )
            rec.remove_member(rec.voters_client(others), step)
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
    mine = recovery.check_rebuild(rec.me.unit, survivors(rec), force)
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
    # A change in this databag wakes every peer: they find themselves gone and rejoin.
    rec.relation.data[rec.charm.unit]["rebuilt-at"] = f"{time.time():.0f}"
    return {
        "member": rec.me.member_name,
        "member-id": mine.member_id,
        "raft-index": str(mine.raft_index),
        "cluster-id": view.cluster_id,
        "members-now": str(len(view.members)),
        "next": "the other units rejoin as learners, one at a time; watch juju status",
    }
