"""The members themselves: promote a learner, move raft leadership, and the cluster's status
as every member reports it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from actions.common import seconds, statuses, view_with_quorum
from actions.maintenance import alarm_lines
from actions.registry import Kit, NoParams, action, required, text
from core import actions as toolbox
from core.actions import ActionRefused
from core.recovery import has_quorum
from workload.etcdctl import EndpointStatus, EtcdctlError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromoteParams:
    """promote [member=]"""

    member: str | None = None

    def __post_init__(self) -> None:
        text("member", self.member)


@dataclass(frozen=True)
class MoveLeaderParams:
    """move-leader to="""

    to: str = ""

    def __post_init__(self) -> None:
        required("to", self.to)


@action("promote", PromoteParams, leader_only=True)
def promote(kit: Kit, params: PromoteParams) -> dict[str, Any]:
    tools = kit.etcd
    view = view_with_quorum(tools, "promote")
    target = toolbox.promote_target(view, params.member or None)
    logger.info("decision: promote member=%s id=%s (action)", target.name, target.id)
    try:
        tools.driver.leader_client(view).member_promote(target.id)
    except EtcdctlError as error:
        if error.learner_not_in_sync:
            raise ActionRefused(
                f"learner {toolbox.label(target)} is not in sync with the leader yet (has its "
                "unit started it?); nothing changed, try again once it has caught up"
            ) from error
        raise ActionRefused(f"etcd refused the promotion: {error.reason}") from error
    return {"promoted": toolbox.label(target), "member-id": target.id}


@action("move-leader", MoveLeaderParams, leader_only=True)
def move_leader(kit: Kit, params: MoveLeaderParams) -> dict[str, Any]:
    tools = kit.etcd
    view = view_with_quorum(tools, "move-leader")
    target = toolbox.move_leader_target(view, params.to)
    before = next((m for m in view.members if m.id == view.leader_id), None)
    if target.id == view.leader_id:
        return {"leader": toolbox.label(target), "changed": "false"}
    started = time.monotonic()
    tools.driver.move_leader(view, target, "action")
    return {
        "from": toolbox.label(before) if before else "none",
        "leader": toolbox.label(target),
        "changed": "true",
        "took": seconds(started),
    }


@action("cluster-status", NoParams)
def cluster_status(kit: Kit, _: NoParams) -> dict[str, Any]:
    tools = kit.etcd
    view = tools.observer.live_view()
    units = {u.client_url: u for u in (tools.ctx.me, *tools.ctx.peers.peers())}
    client = tools.ctx.client(list(units))
    if view is None:
        # No member list without quorum (3.5): say what each reachable member says of itself.
        found = client.endpoint_status(list(units))
        results: dict[str, Any] = {"quorum": "no", "members-answering": str(len(found))}
        for status in found:
            unit = units.get(status.endpoint)
            key = unit.member_name if unit else status.endpoint
            results[key] = {
                **_status_fields(status),
                "leader-seen": "yes" if status.leader_id != "0" else "no",
            }
        return results
    answers = statuses(client, view)
    health = client.endpoint_health([m.client_urls[0] for m in view.voters if m.client_urls])
    alarms = "unknown: no quorum to ask"
    if has_quorum(view):
        try:
            alarms = alarm_lines(view, tools.driver.voters_client(view).alarm_list())
        except EtcdctlError as error:
            alarms = f"unknown: {error.reason}"
    leader = next((m for m in view.members if m.id == view.leader_id), None)
    results = {
        "cluster-id": view.cluster_id,
        "quorum": "yes" if has_quorum(view) else "no",
        "leader": toolbox.label(leader) if leader else "none",
        "voters": str(len(view.voters)),
        "learners": str(len(view.learners)),
        "alarms": alarms,
    }
    for member in view.members:
        role = "learner" if member.is_learner else "follower"
        if member.id == view.leader_id:
            role = "leader"
        entry: dict[str, str] = {
            "id": member.id,
            "role": role,
            "peer-url": ",".join(member.peer_urls),
            "client-url": ",".join(member.client_urls) or "not started",
        }
        answer = answers.get(member.id)
        if answer is not None:
            entry.update(_status_fields(answer))
        url = member.client_urls[0] if member.client_urls else ""
        if member.is_learner:
            entry["health"] = "learner (serves no quorum reads)" if answer else "not answering"
        else:
            entry["health"] = health.get(url, "not answering")
        results[member.name or f"unstarted-{member.id}"] = entry
    return results


def _status_fields(status: EndpointStatus) -> dict[str, str]:
    return {
        "db-size": str(status.db_size),
        "db-size-in-use": str(status.db_size_in_use),
        "revision": str(status.revision),
        "raft-term": str(status.raft_term),
        "raft-index": str(status.raft_index),
        "version": status.version,
        "errors": "; ".join(status.errors) or "none",
    }
