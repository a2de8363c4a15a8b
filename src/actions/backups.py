"""Backups in S3 (the s3-credentials relation): take one, list them with this unit's local
snapshots, and fetch one back for `restore backup-id=`. A backup is a verified snapshot
(the snapshot action's path) streamed to `<path>/<app>/<backup-id>` in the bucket; it is
listed only once the store holds exactly what was read, with its manifest beside it."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actions.common import seconds
from actions.registry import Kit, NoParams, action, whole
from actions.snapshots import take
from core import backups as core
from core import retention, schedule
from core.actions import ActionRefused
from workload import backup_lock, clock
from workload import snapshots as bk
from workload.digest import Digest
from workload.object_store import BackupMeta, Listed, ObjectStore, StoreError

logger = logging.getLogger(__name__)

PROGRESS_STEP = 10  # percent between progress lines


def _settings(kit: Kit) -> core.S3Settings:
    if kit.s3 is None or kit.s3.relation is None:
        raise ActionRefused(
            "no S3 storage: relate s3-credentials (juju integrate ... s3-integrator)"
        )
    try:
        settings = kit.s3.settings()
    except core.InvalidS3Data as error:
        raise ActionRefused(f"the s3-credentials data is refused: {error}") from error
    if settings is None:
        raise ActionRefused("the S3 provider has not sent its bucket and credentials yet")
    return settings


def open_store(kit: Kit) -> ObjectStore:
    settings = _settings(kit)
    try:
        return ObjectStore(settings, Path(tempfile.gettempdir()))
    except (StoreError, ValueError) as error:
        raise ActionRefused(f"cannot use {settings.describe()}: {error}") from error


def _progress(kit: Kit, what: str, total: int) -> Callable[[int], None]:
    """A callback that tells `juju run` every PROGRESS_STEP percent of `total` bytes."""
    said = [-PROGRESS_STEP]

    def report(done: int) -> None:
        percent = 100 * done // max(total, 1)
        if percent >= said[0] + PROGRESS_STEP:
            said[0] = percent - percent % PROGRESS_STEP
            kit.log(f"{what}: {said[0]}% ({bk.human_bytes(done)} of {bk.human_bytes(total)})")

    return report


def _now() -> datetime.datetime:
    return clock.now()


@dataclass(frozen=True)
class CreateParams:
    """create-backup [keep=]"""

    keep: int = 0

    def __post_init__(self) -> None:
        whole("keep", self.keep)


@action("create-backup", CreateParams, leader_only=True)
def create_backup(kit: Kit, params: CreateParams) -> dict[str, Any]:
    results = create(kit, keep=params.keep)
    peers = kit.etcd.ctx.peers
    peers.record_backups(schedule.succeeded(peers.backups(), results["backup-id"], _now(), ""))
    return results


def create(kit: Kit, keep: int = 0, policy: retention.Retention | None = None) -> dict[str, Any]:
    """Take one backup to S3 under the bucket's backup lock (one at a time, whichever unit
    asks), then apply `keep` (the action's count) or `policy` (backup-retention). Raises
    ActionRefused with the reason, or backup_lock.Busy while another backup runs."""
    store = open_store(kit)
    local = kit.backups()
    prefix = store.settings.prefix(kit.app)
    try:
        store.ensure_bucket()
        taken = {row.id for row in store.listing(prefix)}
        ident = core.backup_id(_now(), taken | set(local.names()))
        lock = backup_lock.take(store, kit.app, kit.etcd.ctx.unit, ident)
    except StoreError as error:
        raise ActionRefused(f"{error}; nothing was taken") from error
    try:
        # Only the lock's holder may abort uploads in flight: any left now are dead ones.
        store.abort_stale(prefix)
        results = _upload(kit, store, local, ident)
    except StoreError as error:
        raise ActionRefused(f"{error}; nothing was taken") from error
    finally:
        backup_lock.release(store, kit.app, lock)
    removed: list[str] = []
    orphans: list[str] = []
    try:  # one listing for both clean-ups; a failure is reported, not a failed backup
        rows = store.listing(prefix)
    except StoreError as error:
        rows, removed, orphans = [], [f"retention not applied: {error}"], [f"not removed: {error}"]
    if rows:
        if policy is not None:
            removed = _apply_policy(store, prefix, rows, policy, ident)
        else:
            removed = _apply_retention(store, prefix, rows, keep, ident)
        orphans = _remove_orphans(store, prefix, rows)
    return {
        "removed": ", ".join(removed) or "none",
        "orphans-removed": ", ".join(orphans) or "none",
        **results,
    }


def _upload(kit: Kit, store: ObjectStore, local: bk.Backups, ident: str) -> dict[str, Any]:
    key = store.settings.key(kit.app, ident)
    started = time.monotonic()
    kit.log(f"snapshot {ident}: saving from a healthy voter")
    snap = take(kit, local, ident)
    snapshot_took = seconds(started)
    kit.log(f"snapshot {ident}: {bk.human_bytes(snap.size)} verified; uploading to {key}")
    meta = BackupMeta(
        id=ident,
        key=key,
        size=snap.size,
        sha256=snap.sha256,
        revision=snap.revision,
        keys=snap.keys,
        etcd_version=snap.etcd_version,
        cluster_id=snap.cluster_id,
        member=snap.member,
        app=kit.app,
        created=snap.created,
    )
    logger.info("decision: create-backup id=%s to s3://%s/%s", ident, store.settings.bucket, key)
    uploading = time.monotonic()
    try:
        verified = store.upload(
            local.file(ident), meta, _progress(kit, f"upload {ident}", snap.size)
        )
    except StoreError as error:
        raise ActionRefused(f"backup {ident} failed, nothing listed: {error}") from error
    finally:
        local.remove(ident)  # the snapshot was taken for the upload; S3 holds it now, or none
    kit.log(f"backup {ident}: the store's copy verified, manifest written")
    return {
        "backup-id": ident,
        "key": key,
        "bucket": store.settings.bucket,
        "size": str(verified.size),
        "sha256": verified.sha256,
        "revision": str(verified.revision),
        "keys": str(verified.keys),
        "etcd-version": verified.etcd_version,
        "seconds": f"snapshot {snapshot_took} / upload {seconds(uploading)}",
    }


@action("list-backups", NoParams, needs_etcd=False)
def list_backups(kit: Kit, _: NoParams) -> dict[str, Any]:
    records: list[core.BackupRecord] = []
    for name, size, snap in kit.backups().listing():
        records.append(
            core.BackupRecord(
                id=name,
                where="local",
                size=size,
                revision=snap.revision if snap else None,
                etcd_version=snap.etcd_version if snap else "",
                created=snap.created if snap else "",
                state="complete" if snap else "no sidecar",
            )
        )
    s3_note = "not related"
    if kit.s3 is not None and kit.s3.relation is not None:
        store = open_store(kit)
        try:
            rows = store.listing(store.settings.prefix(kit.app))
        except StoreError as error:
            raise ActionRefused(str(error)) from error
        records += [_record(row.id, row.size, row.meta) for row in rows]
        s3_note = store.settings.describe()
    return {
        "count": str(len(records)),
        "backups": core.table(records, _now()) if records else "none",
        "s3": s3_note,
    }


def _apply_retention(
    store: ObjectStore, prefix: str, rows: list[Listed], keep: int, ident: str
) -> list[str]:
    """Delete the oldest complete backups beyond `keep`. The new backup is made already: a
    failure here is reported, not a failed backup."""
    if keep <= 0:
        return []
    try:
        doomed = core.beyond_retention([_record(r.id, r.size, r.meta) for r in rows], keep, ident)
        for old in doomed:
            logger.info("decision: delete backup %s (keep=%s)", old, keep)
            store.delete(prefix + old)
    except StoreError as error:
        return [f"retention not applied: {error}"]
    return doomed


def _apply_policy(
    store: ObjectStore, prefix: str, rows: list[Listed], policy: retention.Retention, ident: str
) -> list[str]:
    """backup-retention after a scheduled backup: what core.retention says, deleted. A
    failure here is reported, not a failed backup."""
    try:
        records = [_record(r.id, r.size, r.meta) for r in rows]
        doomed = retention.to_delete(records, policy, _now(), protect=frozenset({ident}))
        for old in doomed:
            logger.info("decision: delete backup %s (backup-retention)", old)
            store.delete(prefix + old)
    except StoreError as error:
        return [f"retention not applied: {error}"]
    return doomed


def _remove_orphans(store: ObjectStore, prefix: str, rows: list[Listed]) -> list[str]:
    """Objects a failed backup left without a manifest (its clean-up never reached the store),
    once they are old enough not to be an upload finishing. Reported, never a failed backup."""
    try:
        found = [(r.id, r.modified) for r in rows if r.modified is not None]
        doomed = core.orphans(found, {r.id for r in rows if r.meta}, _now())
        for ident in doomed:
            logger.info("decision: delete orphan S3 object %s%s (no manifest)", prefix, ident)
            store.delete(prefix + ident)
    except StoreError as error:
        return [f"not removed: {error}"]
    return doomed


def _record(ident: str, size: int, meta: BackupMeta | None) -> core.BackupRecord:
    return core.BackupRecord(
        id=ident,
        where="s3",
        size=size,
        revision=meta.revision if meta else None,
        etcd_version=meta.etcd_version if meta else "",
        created=meta.created if meta else "",
        state="complete" if meta else "incomplete (no verified manifest)",
    )


def fetch(kit: Kit, backup_id: str) -> tuple[str, Digest | None]:
    """Download backup `backup_id` to this unit's storage as a local snapshot of the same name
    (checked against the sha256 its manifest recorded). Returns the snapshot's name and what
    hashing the download found (None when it was on this unit already)."""
    app, ident = core.check_backup_id(backup_id)
    store, local = open_store(kit), kit.backups()
    key = store.settings.key(app or kit.app, ident)
    meta = store.manifest(key)
    if meta is None:
        raise ActionRefused(
            f"no complete backup {backup_id!r} in s3://{store.settings.bucket}/"
            f"{store.settings.prefix(app or kit.app)} (see list-backups)"
        )
    # The object is the one beside the manifest that was read, whatever key the manifest
    # recorded (a copied or moved backup's manifest names its old place).
    meta = dataclasses.replace(meta, key=key)
    too_new = core.newer_minor(meta.etcd_version, kit.etcd.ctx.etcd_version())
    if too_new:
        raise ActionRefused(f"backup {backup_id} cannot be restored here: {too_new}")
    name = ident if app is None or app == kit.app else f"{app}-{ident}"
    known = local.meta(name)
    if known is not None and known.sha256 == meta.sha256 and local.file(name).exists():
        return name, None  # fetched before
    if local.exists(name):
        raise ActionRefused(f"a different local snapshot named {name!r} exists: remove it first")
    need, free = bk.space_needed(meta.size), local.free_bytes()
    if free < need:
        raise ActionRefused(
            f"not enough space to download {backup_id}: {bk.human_bytes(free)} free, "
            f"{bk.human_bytes(need)} needed"
        )
    local.prepare_incoming()
    try:
        digest = store.download(
            meta, local.incoming(name), _progress(kit, f"download {ident}", meta.size)
        )
        sha, size = digest.sha256, os.path.getsize(local.incoming(name))
        if sha != meta.sha256 or size != meta.size:
            raise ActionRefused(
                f"backup {backup_id} in S3 is not what was uploaded: sha256 {sha[:12]}... "
                f"({size} bytes), recorded {meta.sha256[:12]}... ({meta.size} bytes); "
                "nothing changed"
            )
        local.publish(
            bk.SnapshotMeta(
                name=name,
                size=size,
                sha256=sha,
                revision=meta.revision,
                keys=meta.keys,
                etcd_version=meta.etcd_version,
                member=meta.member,
                cluster_id=meta.cluster_id,
                created=meta.created,
            )
        )
    except StoreError as error:
        raise ActionRefused(f"{error}; nothing changed") from error
    finally:
        local.discard_incoming()
    logger.info("decision: fetched backup %s as local snapshot %s", backup_id, name)
    return name, digest
