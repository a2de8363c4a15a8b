"""The operator's actions, except restore: snapshots, defrag, promote, move-leader, compact,
alarms, cluster-status. Each observes, asks `toolbox` what to do, does it with etcdctl, and
returns a dict for `juju run` output. `ActionRefused` carries the reason an action fails with."""

from __future__ import annotations

import datetime
import logging
import time
from typing import TYPE_CHECKING, Any

import backups as bk
import toolbox
from etcdctl import EndpointStatus, Etcdctl, EtcdctlError
from observed import ClusterView, Member
from recovery import has_quorum
from snapshot_tool import SnapshotTool
from toolbox import ActionRefused, PartialFailure

if TYPE_CHECKING:
    from reconciler import Reconciler

logger = logging.getLogger(__name__)

SAVE_TIMEOUT = 1800.0  # a snapshot streams the whole db
DEFRAG_TIMEOUT = 600.0  # defrag rewrites the whole db; 3.5 needs ~1 s per 100 MB here
COMPACT_TIMEOUT = 300.0
BACK_PATIENCE = 30.0  # a defragmented member must answer again within this


def _seconds(started: float) -> str:
    return f"{time.monotonic() - started:.2f}s"


def _view(rec: Reconciler, action: str) -> ClusterView:
    return toolbox.require_quorum(rec.live_view(), action)


def _url(member: Member) -> str:
    if not member.client_urls:
        raise ActionRefused(f"member {toolbox.label(member)} has not started: it has no client URL")
    return member.client_urls[0]


def _statuses(client: Etcdctl, view: ClusterView) -> dict[str, EndpointStatus]:
    urls = [m.client_urls[0] for m in view.members if m.client_urls]
    return {s.member_id: s for s in client.endpoint_status(urls)}


# ---- snapshots ----------------------------------------------------------------------------------


def default_name(now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.UTC)
    return now.strftime("snapshot-%Y%m%d-%H%M%S")


def snapshot(rec: Reconciler, store: bk.Backups, name: str | None, keep: int) -> dict[str, Any]:
    if not name:
        name = default_name()
        taken = name
        for count in range(2, 100):
            if not store.exists(name):
                break
            name = f"{taken}-{count}"  # several in one second
    name = bk.check_name(name)
    if store.exists(name):
        raise ActionRefused(f"a snapshot named {name!r} exists already on this unit")
    view = _view(rec, "snapshot")
    client = rec.voters_client(view)
    mine = view.find(rec.me.member_name, rec.me.peer_url)
    healthy = [m for m in view.healthy_voters if m.client_urls]
    # This unit's own member when it is a healthy voter (no network hop), else the leader.
    source = next((m for m in healthy if mine and m.id == mine.id), None) or next(
        (m for m in healthy if m.id == view.leader_id), None
    )
    if source is None:
        raise ActionRefused("no healthy voter to take the snapshot from")
    status = client.endpoint_status([_url(source)])
    if not status:
        raise ActionRefused(f"member {toolbox.label(source)} did not answer a status call")
    need = bk.space_needed(status[0].db_size)
    free = store.free_bytes()
    if free < need:
        raise ActionRefused(
            f"not enough space on this unit's storage for a snapshot of a "
            f"{bk.human_bytes(status[0].db_size)} database: {bk.human_bytes(free)} free, "
            f"{bk.human_bytes(need)} needed; remove old snapshots (remove-snapshot) first"
        )
    logger.info("decision: snapshot name=%s from member=%s", name, toolbox.label(source))
    started = time.monotonic()
    store.prepare_incoming()
    try:
        client.catch_up(_url(source))
        client.snapshot_save(_url(source), store.workload_incoming(name), SAVE_TIMEOUT)
        path = store.incoming(name)
        if not bk.embedded_hash_ok(path):
            raise ActionRefused("the saved file fails the hash etcd appended to it")
        tool = SnapshotTool(rec.workload.run, rec.etcd_version())
        verified = tool.status(store.workload_incoming(name))
        meta = bk.SnapshotMeta(
            name=name,
            size=path.stat().st_size,
            sha256=bk.file_sha256(path),
            revision=verified.revision,
            keys=verified.total_keys,
            etcd_version=status[0].version,
            member=toolbox.label(source),
            cluster_id=view.cluster_id,
            created=datetime.datetime.now(datetime.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        )
        store.publish(meta)
    except EtcdctlError as error:
        raise ActionRefused(f"snapshot failed, no file kept: {error.reason}") from error
    except OSError as error:
        raise ActionRefused(f"snapshot failed, no file kept: {error}") from error
    finally:
        store.discard_incoming()
    # Never the one just taken, whatever the clock says.
    removed = [n for n in store.beyond_retention(keep) if n != name] if keep else []
    for old in removed:
        logger.info("decision: remove-snapshot name=%s (keep=%s)", old, keep)
        store.remove(old)
    results: dict[str, Any] = meta.as_results()
    results.update(
        path=store.workload_file(name),
        took=_seconds(started),
        removed=", ".join(removed) or "none",
    )
    return results


def list_snapshots(store: bk.Backups) -> dict[str, Any]:
    rows = store.listing()
    return {
        "count": str(len(rows)),
        "snapshots": bk.table(rows) if rows else "none",
        "folder": store.workload_file("x").rsplit("/", 1)[0],
        "free-space": bk.human_bytes(store.free_bytes()),
    }


def remove_snapshot(store: bk.Backups, name: str) -> dict[str, Any]:
    name = bk.check_name(name)
    if not store.exists(name):
        raise ActionRefused(f"no snapshot named {name!r} on this unit; see list-snapshots")
    store.remove(name)
    logger.info("decision: remove-snapshot name=%s", name)
    return {"removed": name, "left": str(len(store.names()))}


# ---- member operations --------------------------------------------------------------------------


def promote(rec: Reconciler, ref: str | None) -> dict[str, Any]:
    view = _view(rec, "promote")
    target = toolbox.promote_target(view, ref)
    logger.info("decision: promote member=%s id=%s (action)", target.name, target.id)
    try:
        rec.leader_client(view).member_promote(target.id)
    except EtcdctlError as error:
        if error.learner_not_in_sync:
            raise ActionRefused(
                f"learner {toolbox.label(target)} is not in sync with the leader yet (has its "
                "unit started it?); nothing changed, try again once it has caught up"
            ) from error
        raise ActionRefused(f"etcd refused the promotion: {error.reason}") from error
    return {"promoted": toolbox.label(target), "member-id": target.id}


def move_leader(rec: Reconciler, ref: str) -> dict[str, Any]:
    if not ref:
        raise ActionRefused("say which member leads next: to=<unit, member name or id>")
    view = _view(rec, "move-leader")
    target = toolbox.move_leader_target(view, ref)
    before = next((m for m in view.members if m.id == view.leader_id), None)
    if target.id == view.leader_id:
        return {"leader": toolbox.label(target), "changed": "false"}
    started = time.monotonic()
    rec.move_leader(view, target, "action")
    return {
        "from": toolbox.label(before) if before else "none",
        "leader": toolbox.label(target),
        "changed": "true",
        "took": _seconds(started),
    }


def defrag(rec: Reconciler, ref: str | None, threshold: int) -> dict[str, Any]:
    view = _view(rec, "defrag")
    only = toolbox.find_member(view, ref) if ref else None
    return _defrag(rec, view, only, threshold)


def _defrag(rec: Reconciler, view: ClusterView, only: Member | None, threshold: int) -> dict:
    client = rec.voters_client(view)
    statuses = _statuses(client, view)
    free = {i: s.db_size - s.db_size_in_use for i, s in statuses.items()}
    results: dict[str, Any] = {}
    reclaimed = 0
    for item in toolbox.defrag_plan(view, free, only, threshold):
        key = toolbox.label(item.member)
        if item.skip:
            results[key] = {"result": item.skip}
            continue
        url = _url(item.member)
        before = statuses[item.member.id]
        logger.info("decision: defrag member=%s db-size=%s", key, before.db_size)
        started = time.monotonic()
        try:
            client.defrag(url, DEFRAG_TIMEOUT)
        except EtcdctlError as error:
            results[key] = {"result": f"failed: {error.reason}"}
            raise PartialFailure(f"defrag of {key} failed: {error.reason}", results) from error
        took = _seconds(started)
        after = _await_answer(client, url)
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


def _await_answer(client: Etcdctl, url: str) -> EndpointStatus:
    deadline = time.monotonic() + BACK_PATIENCE
    while time.monotonic() < deadline:
        found = client.endpoint_status([url])
        if found:
            return found[0]
        time.sleep(0.2)
    raise ActionRefused(f"{url} did not answer within {BACK_PATIENCE:.0f}s after its defrag")


# ---- history and alarms -------------------------------------------------------------------------


def compact(rec: Reconciler, revision: int | None, keep: int) -> dict[str, Any]:
    view = _view(rec, "compact")
    client = rec.voters_client(view)
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
        "took": _seconds(started),
        "next": "run defrag to give the freed space back to the filesystem",
    }


def _leader_status(client: Etcdctl, view: ClusterView) -> EndpointStatus:
    leader = next((m for m in view.members if m.id == view.leader_id), None)
    found = client.endpoint_status([_url(leader)]) if leader else []
    if not found:
        raise ActionRefused("the leader did not answer a status call")
    return found[0]


def _alarm_lines(view: ClusterView, alarms: list[tuple[str, str]]) -> str:
    names = {m.id: toolbox.label(m) for m in view.members}
    return "; ".join(f"{kind} on {names.get(i, i)} ({i})" for i, kind in alarms) or "none"


def alarm_list(rec: Reconciler) -> dict[str, Any]:
    view = _view(rec, "alarm-list")
    alarms = rec.voters_client(view).alarm_list()
    return {"count": str(len(alarms)), "alarms": _alarm_lines(view, alarms)}


def alarm_disarm(rec: Reconciler) -> dict[str, Any]:
    """NOSPACE: the db hit its quota. Compact the history, defragment every member, then disarm:
    disarming alone would only let writes hit the quota again at once."""
    view = _view(rec, "alarm-disarm")
    client = rec.voters_client(view)
    alarms = client.alarm_list()
    if not alarms:
        return {"alarms": "none", "result": "nothing to disarm"}
    corrupt = [a for a in alarms if a[1] != "NOSPACE"]
    if corrupt:
        raise ActionRefused(
            f"refusing to disarm {_alarm_lines(view, corrupt)}: a CORRUPT member's data differs "
            "from the others'; replace that unit's member (remove its data or the unit) instead"
        )
    results: dict[str, Any] = {"alarms": _alarm_lines(view, alarms)}
    leader = _leader_status(client, view)
    logger.info("decision: nospace-recovery compact=%s then defrag, disarm", leader.revision)
    try:
        client.compact(leader.revision, COMPACT_TIMEOUT)
        results["compacted-revision"] = str(leader.revision)
    except EtcdctlError as error:
        if not error.compacted:
            raise ActionRefused(f"compaction failed, nothing disarmed: {error.reason}") from error
        results["compacted-revision"] = "already compacted"
    results["defrag"] = _defrag(rec, view, None, 0)
    client.alarm_disarm()
    left = client.alarm_list()
    if left:
        raise PartialFailure(f"alarms still active: {_alarm_lines(view, left)}", results)
    quota = rec.options.quota_backend_bytes
    biggest = max(s.db_size for s in _statuses(client, view).values())
    results["result"] = "disarmed"
    results["db-size"] = str(biggest)
    results["quota-backend-bytes"] = str(quota)
    if biggest > quota * 0.8:
        results["warning"] = "the db is still above 80% of its quota: raise quota-backend-bytes"
    return results


# ---- status -------------------------------------------------------------------------------------


def cluster_status(rec: Reconciler) -> dict[str, Any]:
    view = rec.live_view()
    units = {u.client_url: u for u in (rec.me, *rec.peer_units())}
    client = rec.client(list(units))
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
    statuses = _statuses(client, view)
    health = client.endpoint_health([m.client_urls[0] for m in view.voters if m.client_urls])
    alarms = "unknown: no quorum to ask"
    if has_quorum(view):
        try:
            alarms = _alarm_lines(view, rec.voters_client(view).alarm_list())
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
        answer = statuses.get(member.id)
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
