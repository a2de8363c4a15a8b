"""Ends and new beginnings of a member: leaving the cluster when the unit is removed, rebuilding
a one-member cluster from the survivor when the majority is lost, and setting aside data the
cluster dropped. Driven by the pure decisions in core/membership.py and core/recovery.py."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from core import membership, recovery
from core import steps as s
from core.model import RebuildRecord
from engine.tools import Tools
from literals import DATA_DIR, STORAGE_ROOT

logger = logging.getLogger(__name__)

LEAVE_STEPS = 4  # move leadership, remove, confirm gone: anything more fails the hook


def leave(tools: Tools) -> None:
    """This unit is being removed: hand leadership over, remove its member, stop etcd.
    Fails the hook (Juju retries it) rather than leave the cluster in doubt."""
    ctx = tools.ctx
    for _ in range(LEAVE_STEPS):
        obs = tools.observer.observe()
        step = membership.next_departure_step(obs)
        if isinstance(step, s.MoveLeader):
            assert obs.cluster is not None
            tools.driver.move_leader(obs.cluster, step.to, "leaving")
            continue
        if isinstance(step, s.RemoveMember):
            assert obs.cluster is not None
            tools.driver.remove(obs.cluster, step)
            continue
        if isinstance(step, s.Left):
            logger.info("decision: stop member=%s (not in the cluster)", ctx.me.member_name)
            ctx.workload.stop()
            return
        if isinstance(step, s.LastVoter):
            logger.warning(
                "decision: stop member=%s (last voter; the application goes)", ctx.me.member_name
            )
            ctx.workload.stop()
            return
        raise RuntimeError(f"cannot leave the cluster yet: {step.reason}")
    raise RuntimeError("still a member after leaving steps; Juju will retry this hook")


def rebuild(tools: Tools, force: bool) -> dict[str, str]:
    """The rebuild-cluster action: a one-member cluster from this unit's member
    (--force-new-cluster keeps the data and the cluster id), then back to a normal start.
    The other units rejoin as learners through the usual path."""
    ctx, driver = tools.ctx, tools.driver
    if not ctx.workload.has_member_data():
        raise recovery.RebuildRefused("this unit holds no etcd data to rebuild from")
    obs = tools.observer.observe()
    reports = tools.observer.reports()
    reports[ctx.me.unit] = membership.member_state(obs)  # what it is now, not what it said
    mine = recovery.check_rebuild(ctx.me.unit, tools.observer.survivors(), reports, force)
    dropped = tuple(sorted(u.member_id for u in ctx.peers.peers() if u.member_id))
    logger.warning(
        "decision: rebuild-cluster from member=%s id=%s raft-index=%s force=%s",
        ctx.me.member_name,
        mine.member_id,
        mine.raft_index,
        force,
    )
    own = ctx.solo_cluster
    ctx.workload.stop()
    driver.write_config("existing", own, "existing", force_new_cluster=True)
    ctx.workload.start(driver.check_command())
    driver.await_started()
    driver.write_config("existing", own, "existing")  # never keep force-new-cluster
    driver.restart()
    driver.await_healthy_voter()
    view = ctx.client([ctx.me.client_url]).view()
    # Every peer wakes to this: they find themselves gone and rejoin, unless their data is
    # ahead of the point this member carried on from (core/membership: data ahead is held).
    ctx.peers.record_rebuild(
        RebuildRecord(mine.member_id, view.cluster_id, mine.raft_index, dropped)
    )
    return {
        "member": ctx.me.member_name,
        "member-id": mine.member_id,
        "raft-index": str(mine.raft_index),
        "cluster-id": view.cluster_id,
        "members-now": str(len(view.members)),
        "next": "the other units rejoin as learners, one at a time; watch juju status",
    }


def discard(tools: Tools, storage: Path) -> dict[str, str]:
    """The discard-data action: this unit's data is of a member the live cluster no longer
    lists; move it aside (never delete it) so that the unit joins anew."""
    ctx = tools.ctx
    obs = tools.observer.observe()
    if not obs.disk.has_member_data:
        raise recovery.RebuildRefused("this unit holds no etcd data; nothing to discard")
    view = obs.cluster
    if view is None:
        raise recovery.RebuildRefused(
            "no etcd member answers, so nothing can tell whether this data is still needed; "
            "nothing was changed"
        )
    marker = obs.disk.marker
    listed = view.find(ctx.me.member_name, ctx.me.peer_url)
    in_use = marker is not None and any(m.id == marker.member_id for m in view.members)
    if in_use or (marker is None and listed is not None and listed.started):
        raise recovery.RebuildRefused(
            "the cluster lists this unit's member: its data is in use; nothing was changed"
        )
    ctx.workload.stop()
    aside = storage / f"discarded-{time.strftime('%Y%m%d-%H%M%S')}"
    os.rename(storage / DATA_DIR.removeprefix(f"{STORAGE_ROOT}/"), aside)
    ctx.workload.clear_marker()
    logger.warning("decision: discard-data member=%s kept-at=%s", ctx.me.member_name, aside.name)
    return {
        "discarded": f"member {marker.member_id}" if marker else "unmarked data",
        "kept-at": f"{STORAGE_ROOT}/{aside.name}",
        "next": "this unit joins the cluster as a new learner; remove the copy once not needed",
    }
