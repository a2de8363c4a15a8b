"""Keeping the database in shape: defragment, compact the history, list and disarm alarms
(NOSPACE recovery: compact, defragment every member, then disarm). One member at a time,
learners and followers first, the etcd leader last; each needs quorum."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from actions.common import seconds, statuses, url, view_with_quorum
from actions.registry import Kit, NoParams, action, text, whole
from core import actions as toolbox
from core.actions import ActionRefused, PartialFailure
from core.model import ClusterView, Member
from engine.tools import Tools
from workload.etcdctl import EndpointStatus, Etcdctl, EtcdctlError

logger = logging.getLogger(__name__)

DEFRAG_TIMEOUT = 600.0  # defrag rewrites the whole db; 3.5 needs ~1 s per 100 MB here
COMPACT_TIMEOUT = 300.0
BACK_PATIENCE = 30.0  # a defragmented member must answer again within this


@dataclass(frozen=True)
class DefragParams:
    """defrag [member=] [threshold=]"""

    member: str | None = None
    threshold: int = 0

    def __post_init__(self) -> None:
        text("member", self.member)
        whole("threshold", self.threshold)


@dataclass(frozen=True)
class CompactParams:
    """compact [revision=] [keep=]"""

    revision: int | None = None
    keep: int = 0

    def __post_init__(self) -> None:
        whole("revision", self.revision, optional=True)
        whole("keep", self.keep)


@action("defrag", DefragParams, leader_only=True)
def defrag(kit: Kit, params: DefragParams) -> dict[str, Any]:
    view = view_with_quorum(kit.etcd, "defrag")
    only = toolbox.find_member(view, params.member) if params.member else None
    return _defrag(kit.etcd, view, only, params.threshold)


def _defrag(tools: Tools, view: ClusterView, only: Member | None, threshold: int) -> dict:
    client = tools.driver.voters_client(view)
    answers = statuses(client, view)
    free = {i: s.db_size - s.db_size_in_use for i, s in answers.items()}
    results: dict[str, Any] = {}
    reclaimed = 0
    for item in toolbox.defrag_plan(view, free, only, threshold):
        key = toolbox.label(item.member)
        if item.skip:
            results[key] = {"result": item.skip}
            continue
        endpoint = url(item.member)
        before = answers[item.member.id]
        logger.info("decision: defrag member=%s db-size=%s", key, before.db_size)
        started = time.monotonic()
        try:
            client.defrag(endpoint, DEFRAG_TIMEOUT)
        except EtcdctlError as error:
            results[key] = {"result": f"failed: {error.reason}"}
            raise PartialFailure(f"defrag of {key} failed: {error.reason}", results) from error
        took = seconds(started)
        patience = tools.ctx.deadline.budget(BACK_PATIENCE, f"{key} answering after its defrag")
        after = _await_answer(client, endpoint, patience)
        reclaimed += before.db_size - after.db_size
        results[key] = {
            "result": "defragmented",
            "db-size-before": str(before.db_size),
            "db-size-after": str(after.db_size),
            "in-use": str(after.db_size_in_use),
            "took": took,
        }
    results["reclaimed"] = str(reclaimed)
    return results


def _await_answer(client: Etcdctl, endpoint: str, patience: float) -> EndpointStatus:
    deadline = time.monotonic() + patience
    while True:
        found = client.endpoint_status([endpoint])
        if found:
            return found[0]
        if time.monotonic() >= deadline:
            raise ActionRefused(
                f"{endpoint} did not answer within {patience:.0f}s after its defrag"
            )
        time.sleep(0.2)


# ---- history and alarms -------------------------------------------------------------------------


@action("compact", CompactParams, leader_only=True)
def compact(kit: Kit, params: CompactParams) -> dict[str, Any]:
    tools, revision, keep = kit.etcd, params.revision, params.keep
    view = view_with_quorum(tools, "compact")
    client = tools.driver.voters_client(view)
    leader = _leader_status(client, view)
    target = toolbox.compact_revision(leader.revision, revision, keep)
    logger.info("decision: compact revision=%s (current %s)", target, leader.revision)
    started = time.monotonic()
    try:
        client.compact(target, COMPACT_TIMEOUT)
    except EtcdctlError as error:
        if error.compacted:
            raise ActionRefused(f"revision {target} is compacted already") from error
        raise ActionRefused(f"etcd refused the compaction: {error.reason}") from error
    return {
        "compacted-revision": str(target),
        "current-revision": str(leader.revision),
        "took": seconds(started),
        "next": "run defrag to give the freed space back to the filesystem",
    }


def _leader_status(client: Etcdctl, view: ClusterView) -> EndpointStatus:
    leader = next((m for m in view.members if m.id == view.leader_id), None)
    found = client.endpoint_status([url(leader)]) if leader else []
    if not found:
        raise ActionRefused("the leader did not answer a status call")
    return found[0]


def alarm_lines(view: ClusterView, alarms: list[tuple[str, str]]) -> str:
    names = {m.id: toolbox.label(m) for m in view.members}
    return "; ".join(f"{kind} on {names.get(i, i)} ({i})" for i, kind in alarms) or "none"


@action("alarm-list", NoParams)
def alarm_list(kit: Kit, _: NoParams) -> dict[str, Any]:
    tools = kit.etcd
    view = view_with_quorum(tools, "alarm-list")
    alarms = tools.driver.voters_client(view).alarm_list()
    return {"count": str(len(alarms)), "alarms": alarm_lines(view, alarms)}


@action("alarm-disarm", NoParams, leader_only=True)
def alarm_disarm(kit: Kit, _: NoParams) -> dict[str, Any]:
    """NOSPACE: the db hit its quota. Compact the history, defragment every member, then disarm:
    disarming alone would only let writes hit the quota again at once."""
    tools = kit.etcd
    view = view_with_quorum(tools, "alarm-disarm")
    client = tools.driver.voters_client(view)
    alarms = client.alarm_list()
    if not alarms:
        return {"alarms": "none", "result": "nothing to disarm"}
    corrupt = [a for a in alarms if a[1] != "NOSPACE"]
    if corrupt:
        raise ActionRefused(
            f"refusing to disarm {alarm_lines(view, corrupt)}: a CORRUPT member's data differs "
            "from the others'; replace that unit's member (remove its data or the unit) instead"
        )
    results: dict[str, Any] = {"alarms": alarm_lines(view, alarms)}
    leader = _leader_status(client, view)
    logger.info("decision: nospace-recovery compact=%s then defrag, disarm", leader.revision)
    try:
        client.compact(leader.revision, COMPACT_TIMEOUT)
        results["compacted-revision"] = str(leader.revision)
    except EtcdctlError as error:
        if not error.compacted:
            raise ActionRefused(f"compaction failed, nothing disarmed: {error.reason}") from error
        results["compacted-revision"] = "already compacted"
    results["defrag"] = _defrag(tools, view, None, 0)
    client.alarm_disarm()
    left = client.alarm_list()
    if left:
        raise PartialFailure(f"alarms still active: {alarm_lines(view, left)}", results)
    quota = tools.ctx.options.quota_backend_bytes
    biggest = max(s.db_size for s in statuses(client, view).values())
    results["result"] = "disarmed"
    results["db-size"] = str(biggest)
    results["quota-backend-bytes"] = str(quota)
    if biggest > quota * 0.8:
        results["warning"] = "the db is still above 80% of its quota: raise quota-backend-bytes"
    return results


# ---- status -------------------------------------------------------------------------------------
