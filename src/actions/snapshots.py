"""Snapshots on this unit's storage: take one, list them, remove one. A snapshot is a copy on
the same volume as the data: it survives etcd's mistakes, not the volume's loss."""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actions.common import seconds, url, view_with_quorum
from actions.registry import Kit, NoParams, action, required, text, whole
from core import actions as toolbox
from core.actions import ActionRefused
from core.model import ClusterView, Member
from workload import clock
from workload import snapshots as bk
from workload.digest import Digest, digest_file, follow
from workload.etcdctl import EndpointStatus, Etcdctl, EtcdctlError
from workload.snapshot_tool import SnapshotTool

logger = logging.getLogger(__name__)

SAVE_TIMEOUT = 1800.0  # a snapshot streams the whole db


@dataclass(frozen=True)
class SnapshotParams:
    """snapshot [name=] [keep=]"""

    name: str | None = None
    keep: int = 0

    def __post_init__(self) -> None:
        text("name", self.name)
        whole("keep", self.keep)


@dataclass(frozen=True)
class RemoveParams:
    """remove-snapshot name="""

    name: str = ""

    def __post_init__(self) -> None:
        required("name", self.name)


def default_name(now: datetime.datetime | None = None) -> str:
    now = now or clock.now()
    return now.strftime("snapshot-%Y%m%d-%H%M%S")


def _free_name(store: bk.Backups, name: str | None) -> str:
    if not name:
        name = taken = default_name()
        for count in range(2, 100):
            if not store.exists(name):
                break
            name = f"{taken}-{count}"  # several in one second
    name = bk.check_name(name)
    if store.exists(name):
        raise ActionRefused(f"a snapshot named {name!r} exists already on this unit")
    return name


def _source(view: ClusterView, mine: Member | None) -> Member:
    """This unit's own member when it is a healthy voter (no network hop), else the leader."""
    healthy = [m for m in view.healthy_voters if m.client_urls]
    source = next((m for m in healthy if mine and m.id == mine.id), None) or next(
        (m for m in healthy if m.id == view.leader_id), None
    )
    if source is None:
        raise ActionRefused("no healthy voter to take the snapshot from")
    return source


def _check_space(store: bk.Backups, status: EndpointStatus) -> None:
    need = bk.space_needed(status.db_size)
    free = store.free_bytes()
    if free < need:
        raise ActionRefused(
            f"not enough space on this unit's storage for a snapshot of a "
            f"{bk.human_bytes(status.db_size)} database: {bk.human_bytes(free)} free, "
            f"{bk.human_bytes(need)} needed; remove old snapshots (remove-snapshot) first"
        )


@action("snapshot", SnapshotParams)
def snapshot(kit: Kit, params: SnapshotParams) -> dict[str, Any]:
    store = kit.backups()
    name = _free_name(store, params.name)
    started = time.monotonic()
    meta = take(kit, store, name)
    # Never the one just taken, whatever the clock says.
    keep = params.keep
    removed = [n for n in store.beyond_retention(keep) if n != name] if keep else []
    for old in removed:
        logger.info("decision: remove-snapshot name=%s (keep=%s)", old, keep)
        store.remove(old)
    results: dict[str, Any] = meta.as_results()
    results.update(
        path=store.workload_file(name), took=seconds(started), removed=", ".join(removed) or "none"
    )
    return results


def take(kit: Kit, store: bk.Backups, name: str) -> bk.SnapshotMeta:
    """A verified snapshot `name` on this unit's storage, from a healthy voter (the snapshot
    action's path, which create-backup shares): quorum, space and hashes checked."""
    tools = kit.etcd
    view = view_with_quorum(tools, "snapshot")
    client = tools.driver.voters_client(view)
    source = _source(view, view.find(tools.ctx.me.member_name, tools.ctx.me.peer_url))
    status = client.endpoint_status([url(source)])
    if not status:
        raise ActionRefused(f"member {toolbox.label(source)} did not answer a status call")
    _check_space(store, status[0])
    logger.info("decision: snapshot name=%s from member=%s", name, toolbox.label(source))
    return _save(kit, client, store, name, source, view, status[0])


def _save(
    kit: Kit,
    client: Etcdctl,
    store: bk.Backups,
    name: str,
    source: Member,
    view: ClusterView,
    status: EndpointStatus,
) -> bk.SnapshotMeta:
    """Stream the snapshot in, check it (etcd's appended hash, then snapshot status) and only
    then list it; any failure leaves no file."""
    tools = kit.etcd
    store.prepare_incoming()
    path = store.incoming(name)
    try:
        client.catch_up(url(source))
        digest = _save_hashing(client, url(source), path, store.workload_incoming(name))
        if not digest.embedded_ok:
            raise ActionRefused("the saved file fails the hash etcd appended to it")
        tool = SnapshotTool(tools.ctx.workload.run, tools.ctx.etcd_version())
        verified = tool.status(store.workload_incoming(name))
        meta = bk.SnapshotMeta(
            name=name,
            size=digest.size,
            sha256=digest.sha256,
            revision=verified.revision,
            keys=verified.total_keys,
            etcd_version=status.version,
            member=toolbox.label(source),
            cluster_id=view.cluster_id,
            created=clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        )
        store.publish(meta)
    except EtcdctlError as error:
        raise ActionRefused(f"snapshot failed, no file kept: {error.reason}") from error
    except OSError as error:
        raise ActionRefused(f"snapshot failed, no file kept: {error}") from error
    finally:
        store.discard_incoming()
    return meta


def _save_hashing(client: Etcdctl, source: str, path: Path, workload_path: str) -> Digest:
    """etcdctl saves into the workload's view of `path` while this container hashes the same
    file as it grows (one read, overlapped with the save); hashed again at rest only when what
    was followed is not the file etcdctl left."""
    follower = follow(path)
    try:
        client.snapshot_save(source, workload_path, SAVE_TIMEOUT)
    except BaseException:
        follower.stop()
        raise
    digest = follower.result()
    if digest is None:
        logger.info("snapshot %s hashed at rest (the file followed was replaced)", path.name)
        digest = digest_file(path)
    return digest


@action("list-snapshots", NoParams, needs_etcd=False)
def list_snapshots(kit: Kit, _: NoParams) -> dict[str, Any]:
    store = kit.backups()
    rows = store.listing()
    return {
        "count": str(len(rows)),
        "snapshots": bk.table(rows) if rows else "none",
        "folder": store.workload_file("x").rsplit("/", 1)[0],
        "free-space": bk.human_bytes(store.free_bytes()),
    }


@action("remove-snapshot", RemoveParams, needs_etcd=False)
def remove_snapshot(kit: Kit, params: RemoveParams) -> dict[str, Any]:
    store = kit.backups()
    name = bk.check_name(params.name)
    if not store.exists(name):
        raise ActionRefused(f"no snapshot named {name!r} on this unit; see list-snapshots")
    store.remove(name)
    logger.info("decision: remove-snapshot name=%s", name)
    return {"removed": name, "left": str(len(store.names()))}
