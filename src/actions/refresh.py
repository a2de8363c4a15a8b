"""pre-refresh-check: run before `juju refresh`. Refuses, with the reason, while a roll would
cut across something (core/refresh.py, core/actions.py); otherwise moves etcd leadership to
the unit Kubernetes' roll reaches last (the lowest ordinal), takes a backup (S3 when
s3-credentials is related, else a snapshot on this unit) and says what the roll will do."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from actions.backups import CreateParams, create_backup
from actions.common import view_with_quorum
from actions.registry import Kit, NoParams, action
from actions.snapshots import take
from core import actions as toolbox
from core import refresh
from core.actions import ActionRefused
from workload.etcdctl import EtcdctlError

logger = logging.getLogger(__name__)


@action("pre-refresh-check", NoParams, leader_only=True)
def pre_refresh_check(kit: Kit, _: NoParams) -> dict[str, Any]:
    tools = kit.etcd
    view = view_with_quorum(tools, "pre-refresh-check")
    obs = tools.observer.observe()
    client = tools.driver.voters_client(view)
    try:
        alarms = tuple(f"{member} {alarm}" for member, alarm in client.alarm_list())
    except EtcdctlError as error:
        raise ActionRefused(f"cannot list etcd's alarms: {error.reason}") from error
    busy = list(toolbox.refresh_busy(obs))
    if kit.storage is not None and kit.backups().incoming_in_use():
        busy.append("a snapshot or backup")
    facts = refresh.ClusterFacts(
        voters=len(view.voters),
        healthy_voters=len(view.healthy_voters),
        has_leader=view.leader_id is not None,
        learners=tuple(toolbox.label(m) for m in view.learners),
        alarms=alarms,
        busy=tuple(busy),
    )
    refusal = refresh.pre_refresh_refusal(facts)
    if refusal:
        logger.info("decision: pre-refresh-check refused (%s)", refusal)
        raise ActionRefused(refusal)
    order = refresh.roll_order(u.unit for u in obs.units)
    last = order[-1].replace("/", "-")
    target = toolbox.find_member(view, last)
    if target.id != view.leader_id:
        tools.driver.move_leader(view, target, "pre-refresh-check")
    kit.log(f"etcd leadership on {toolbox.label(target)}, the unit the roll reaches last")
    backup = _backup(kit)
    releases = sorted({r for _, r in view.releases})
    cluster = obs.versions.cluster if obs.versions else None
    logger.info(
        "decision: pre-refresh-check passed leader=%s backup=%s", toolbox.label(target), backup
    )
    return {
        "backup-id": backup,
        "leader": toolbox.label(target),
        "order": ", ".join(order),
        "etcd": f"{', '.join(releases) or '?'} (cluster version {cluster or '?'})",
        "roll": (
            f"Kubernetes recreates the pods one at a time, {', '.join(order)}, each once the "
            "previous one is a healthy voter (its ready check); each new pod checks its image's "
            "etcd against the cluster version before it starts, and refuses a skipped minor, a "
            "downgrade or 3.4 -> 3.5 with auth on (blocked, the roll halts there)"
        ),
        "rollback": refresh.rollback(releases[0]) if releases else "see juju status",
    }


def _backup(kit: Kit) -> str:
    """To S3 when related (create-backup's path), else a snapshot on this unit."""
    if kit.s3 is not None and kit.s3.relation is not None:
        kit.log("backup to S3 (create-backup)")
        return str(create_backup(kit, CreateParams())["backup-id"])
    now = datetime.datetime.now(datetime.UTC)
    name = f"pre-refresh-{now:%Y%m%d-%H%M%S}"
    kit.log(f"no s3-credentials relation: snapshot {name} on this unit")
    return take(kit, kit.backups(), name).name
