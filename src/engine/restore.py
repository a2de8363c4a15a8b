"""The restore action: the whole cluster back to one snapshot.

How, and why this way:
1. Verify the file before anything is touched: the sha256 recorded when it was taken, the
   sha256 etcd appended to it, `snapshot status`, and a real `snapshot restore` into a staging
   directory (which checks the hash once more). Any failure ends the action; nothing changed.
2. Take the old cluster down member by member from the leader unit: leadership moves here,
   then every other member is removed (one change at a time, quorum kept), so no other member
   goes on serving old data as a cluster of its own while the restore runs.
3. Swap the staged data in (the previous data is kept aside), start it as a one-member cluster
   with a new token, wait until it is a healthy voter.
4. Record the restore in peer app data: the new cluster id, and that data of the old cluster is
   superseded. Every other unit, on whatever hook it runs next (or after its pod restarts),
   finds its data superseded, wipes it, and joins the restored cluster as a learner through the
   usual path, one at a time, and is promoted once in sync: the snapshot reaches the other units
   through etcd's own replication rather than a file copy between pods, which a distroless
   etcd image has no tool for. CoreOS's etcd-operator restored the same way (a seed member,
   then scale-up), and it keeps "learner before voter" for every member that returns.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from core import actions as toolbox
from core.actions import ActionRefused
from core.backups import newer_minor
from core.model import ClusterView, RestoreRecord
from core.steps import CutDone, MoveLeader, RemoveMember
from engine import restored_access
from engine.tools import Tools
from literals import DATA_DIR, STORAGE_ROOT
from workload import snapshots as bk
from workload.digest import Digest, digest_file
from workload.etcdctl import EtcdctlError
from workload.snapshot_tool import SnapshotTool

logger = logging.getLogger(__name__)

SERVE_PATIENCE = 60.0  # seconds for the restored member to serve; a big db takes longer to load
CUT_STEPS = 16  # one leader move plus one removal per member, with room for retries
DATA_NAME = DATA_DIR.removeprefix(f"{STORAGE_ROOT}/")
ASIDE_PREFIX = "pre-restore-"


def restore(
    tools: Tools, store: bk.Backups, name: str, force: bool, fetched: Digest | None = None
) -> dict[str, Any]:
    """`fetched`: what hashing the file as it was downloaded found, moments ago."""
    started = time.monotonic()
    name = bk.check_name(name)
    path = store.file(name)
    verified = _verify(tools, store, name, path, fetched)
    checked = time.monotonic() - started
    restore_id = uuid.uuid4().hex[:12]
    token = f"{tools.ctx.app}-restore-{restore_id}"
    staging = f"restore-{restore_id}"
    tool = SnapshotTool(tools.ctx.workload.run, tools.ctx.etcd_version())
    logger.warning("decision: restore id=%s snapshot=%s (staging)", restore_id, name)
    try:
        tool.restore(
            store.workload_file(name),
            f"{STORAGE_ROOT}/{staging}",
            name=tools.ctx.me.member_name,
            initial_cluster=tools.ctx.solo_cluster,
            peer_url=tools.ctx.me.peer_url,
            token=token,
        )
    except EtcdctlError as error:
        shutil.rmtree(store.root / staging, ignore_errors=True)
        raise ActionRefused(f"{tool.binary} cannot restore {name!r}: {error.reason}") from error
    password = tools.ctx.root.password() if tools.ctx.peers.app().auth_on else None
    try:
        settled = restored_access.settle(tools.ctx, store.root, staging, password)
    except (EtcdctlError, RuntimeError, OSError) as error:
        shutil.rmtree(store.root / staging, ignore_errors=True)
        raise ActionRefused(
            f"the restored data could not be brought under this application's access "
            f"({error}); nothing changed"
        ) from error

    try:
        old_cluster, removed = _cut(tools, force)
    except (ActionRefused, EtcdctlError) as error:
        shutil.rmtree(store.root / staging, ignore_errors=True)
        raise ActionRefused(f"{error} (staged restore discarded)") from error

    aside = _swap_in(tools, store.root, staging, restore_id)
    try:
        tools.driver.write_config("new", tools.ctx.solo_cluster, token)
        tools.ctx.workload.start(tools.driver.check_command())
        view = tools.driver.await_healthy_voter(local_only=True, patience=SERVE_PATIENCE)
    except Exception as error:
        _roll_back(tools, store.root, aside, restore_id)
        raise ActionRefused(
            f"the restored member did not come up ({error}); the previous data is back and "
            "running as a one-member cluster, and the other units rejoin it"
        ) from error

    member = view.find(tools.ctx.me.member_name, tools.ctx.me.peer_url)
    assert member is not None
    record = RestoreRecord(
        id=restore_id,
        snapshot=name,
        superseded=old_cluster or "0",
        cluster_id=view.cluster_id,
        seed=tools.ctx.me.member_name,
    )
    # restored_access made auth what it is now; client roles were swept, and the leader
    # grants the relations that exist now again (idempotently).
    tools.ctx.peers.record_restore(record, token, auth_on=password is not None)
    tools.ctx.me = dataclasses.replace(tools.ctx.me, member_id=member.id)
    tools.driver.publish_view(view)
    logger.warning(
        "decision: restored id=%s cluster=%s member=%s", restore_id, view.cluster_id, member.id
    )
    units: dict[str, str] = {
        tools.ctx.me.member_name: f"restored; member {member.id}, the first of the new cluster"
    }
    for other in tools.ctx.peers.peers():
        gone = "removed from the old cluster; " if other.member_name in removed else ""
        units[other.member_name] = f"{gone}wipes its data and rejoins as a learner next"
    return {
        "restore-id": restore_id,
        "snapshot": name,
        "sha256": verified["sha256"],
        "revision": verified["revision"],
        "keys": verified["keys"],
        "cluster-id": view.cluster_id,
        "previous-cluster-id": old_cluster or "none",
        "previous-data": f"{STORAGE_ROOT}/{aside.name}" if aside else "none",
        "access": settled,
        "took": f"{time.monotonic() - started:.2f}s",
        "verify": f"{checked:.2f}s",
        "units": units,
        "next": "the other units rejoin one at a time; juju status shows k/N healthy voters",
    }


def _verify(
    tools: Tools, store: bk.Backups, name: str, path: Path, fetched: Digest | None
) -> dict[str, str]:
    if not path.exists():
        known = ", ".join(store.names()) or "none"
        raise ActionRefused(
            f"no snapshot {name!r} on {tools.ctx.me.unit} (snapshots are kept per unit; "
            f"here: {known})"
        )
    size = path.stat().st_size
    if size == 0:
        raise ActionRefused(f"snapshot {name!r} is an empty file")
    meta = store.meta(name)
    too_new = newer_minor(meta.etcd_version, tools.ctx.etcd_version()) if meta else None
    if too_new:
        raise ActionRefused(f"snapshot {name!r} cannot be restored here: {too_new}")
    digest = fetched if fetched is not None and fetched.size == size else digest_file(path)
    sha = digest.sha256
    if meta is not None and meta.sha256 != sha:
        raise ActionRefused(
            f"snapshot {name!r} changed since it was taken: sha256 {sha[:12]}..., "
            f"recorded {meta.sha256[:12]}...; nothing was changed"
        )
    if not digest.embedded_ok:
        raise ActionRefused(
            f"{name!r} is not an intact etcd snapshot: its contents do not match the sha256 "
            "etcd appends when saving (truncated, corrupted, or not a snapshot); nothing changed"
        )
    try:
        status = SnapshotTool(tools.ctx.workload.run, tools.ctx.etcd_version()).status(
            store.workload_file(name)
        )
    except EtcdctlError as error:
        raise ActionRefused(f"etcd cannot read snapshot {name!r}: {error.reason}") from error
    need = bk.space_needed(size)
    free = store.free_bytes()
    if free < need:
        raise ActionRefused(
            f"not enough space to restore: {bk.human_bytes(free)} free, {bk.human_bytes(need)} "
            "needed; remove old snapshots first"
        )
    return {"sha256": sha, "revision": str(status.revision), "keys": str(status.total_keys)}


def _cut(tools: Tools, force: bool) -> tuple[str | None, list[str]]:
    """Shrink the old cluster to this unit's member. Returns the old cluster id and who went."""
    view = tools.observer.live_view()
    old_cluster = tools.ctx.peers.app().cluster_id or (view.cluster_id if view else None)
    removed: list[str] = []
    for _ in range(CUT_STEPS):
        step = toolbox.next_cut_step(view, tools.ctx.me.member_name, force)
        if isinstance(step, CutDone):
            return old_cluster, removed
        assert view is not None
        if isinstance(step, MoveLeader):
            tools.driver.move_leader(view, step.to, "restore")
        else:
            # Never ask the member being removed: it stops as it applies its own removal and
            # answers "server stopped" to a change that did happen.
            tools.driver.remove(view, step)
            removed.append(step.member.name or step.member.id)
        view = _remaining(tools, view, step)
    raise ActionRefused(f"the old cluster did not shrink to one member (removed: {removed})")


def _remaining(tools: Tools, view: ClusterView, step: MoveLeader | RemoveMember) -> ClusterView:
    """The view again, asked only of the members still in it: a removed member may linger."""
    gone = step.member.id if isinstance(step, RemoveMember) else None
    urls = [m.client_urls[0] for m in view.members if m.client_urls and m.id != gone]
    try:
        return tools.ctx.client(urls).view()
    except EtcdctlError as error:
        raise ActionRefused(f"the old cluster stopped answering: {error.reason}") from error


def _swap_in(tools: Tools, root: Path, staging: str, restore_id: str) -> Path | None:
    """Stop etcd; the previous data goes aside (one generation kept), the staged data in."""
    tools.ctx.workload.stop()
    for old in root.glob(f"{ASIDE_PREFIX}*"):
        shutil.rmtree(old, ignore_errors=True)
    data = root / DATA_NAME
    aside = None
    if data.exists():
        aside = root / f"{ASIDE_PREFIX}{restore_id}"
        os.rename(data, aside)
    os.rename(root / staging, data)
    tools.ctx.workload.clear_marker()
    return aside


def _roll_back(tools: Tools, root: Path, aside: Path | None, restore_id: str) -> None:
    logger.error("decision: restore id=%s failed; putting the previous data back", restore_id)
    tools.ctx.workload.stop()
    data = root / DATA_NAME
    if data.exists():
        os.rename(data, root / f"failed-restore-{restore_id}")
    if aside is not None:
        os.rename(aside, data)
        tools.driver.write_config("existing", tools.ctx.solo_cluster, "existing")
        tools.ctx.workload.start(tools.driver.check_command())
