"""One backup at a time, across units and across a leader change: a small object in the
bucket, `<prefix>backup-in-progress.json`, says who takes which backup since when. Every unit
reaches the bucket at once, whereas a Juju databag's writes land only when the hook ends:
too late to tell a new leader that the old one is still uploading.

Taking it: read it; if another live attempt holds it, refuse (core.schedule.held_by_other);
else write ours with a fresh token, conditionally: `If-None-Match: *` when there was none,
`If-Match: <its ETag>` when taking over a stale one, so of two units racing the store lets one
write (AWS S3, SeaweedFS, MinIO and Ceph RGW honour these; a store that ignores them is still
covered by reading ours back: the writer that wrote last wins, the other sees a token not its
own and backs off)."""

from __future__ import annotations

import functools
import json
import logging
import uuid

from core.actions import ActionRefused
from core.schedule import Lock, held_by_other, iso
from literals import S3_LOCK_OBJECT
from workload import clock
from workload.object_store import ObjectStore, StoreError

logger = logging.getLogger(__name__)


class Busy(ActionRefused):
    """Another backup is running; the message says which, where and since when."""

    def __init__(self, why: str):
        super().__init__(f"another backup is under way: {why}; try again once it ends")
        self.why = why


def _key(store: ObjectStore, app: str) -> str:
    return store.settings.prefix(app) + S3_LOCK_OBJECT


def read(store: ObjectStore, app: str) -> Lock | None:
    return _read(store, app)[0]


def _read(store: ObjectStore, app: str) -> tuple[Lock | None, str | None]:
    """The lock and its object's ETag (None, None: no lock object)."""
    import botocore.exceptions

    try:
        answer = store._client.get_object(Bucket=store.settings.bucket, Key=_key(store, app))
        etag = answer.get("ETag")
        raw = json.loads(answer["Body"].read().decode())
    except botocore.exceptions.ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404", "NotFound"):
            return None, None
        raise StoreError(f"S3 get-object (backup lock) refused: {code}") from error
    except botocore.exceptions.BotoCoreError as error:
        raise StoreError(f"S3 get-object (backup lock) failed: {error}") from error
    except ValueError:
        return None, etag  # unreadable: no one's lock, but an object to replace
    return (Lock.from_dict(raw) if isinstance(raw, dict) else None), etag


def _write(store: ObjectStore, app: str, lock: Lock, replacing: str | None) -> bool:
    """Put our lock only if the object is still what we read (absent, or `replacing`).
    False: another unit wrote it in between."""
    import botocore.exceptions

    condition = {"IfMatch": replacing} if replacing else {"IfNoneMatch": "*"}
    body = json.dumps(lock.to_dict(), sort_keys=True).encode()
    put = functools.partial(
        store._client.put_object,
        Bucket=store.settings.bucket,
        Key=_key(store, app),
        Body=body,
        ContentType="application/json",
    )
    try:
        put(**condition)
    except botocore.exceptions.ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
            return False
        if code not in ("NotImplemented", "501"):
            raise StoreError(f"S3 put-object (backup lock) refused: {code}") from error
        logger.info("the store has no conditional writes: the lock is checked by reading back")
        store._call("put-object (backup lock)", put)
    except botocore.exceptions.BotoCoreError as error:
        raise StoreError(f"S3 put-object (backup lock) failed: {error}") from error
    return True


def take(store: ObjectStore, app: str, unit: str, backup_id: str) -> Lock:
    """This attempt's lock, or Busy. Its owner being this very unit means it is stale: Juju
    runs one hook or action at a time per unit, so no attempt of ours is still running."""
    now = clock.now()
    mine = Lock(owner=unit, backup_id=backup_id, started=iso(now), token=uuid.uuid4().hex)
    held, etag = _read(store, app)
    stale = held
    if held is not None and held.owner == unit:
        held = None
    why = held_by_other(held, mine.token, now)
    if why:
        raise Busy(why)
    if not _write(store, app, mine, etag):
        raise Busy(held_by_other(read(store, app), mine.token, now) or "another unit took it")
    won = read(store, app)
    if won is None or won.token != mine.token:
        raise Busy(held_by_other(won, mine.token, now) or "another unit took the backup lock")
    if stale is not None:
        logger.info("decision: take over the stale backup lock of %s", stale.owner)
    return mine


def release(store: ObjectStore, app: str, lock: Lock) -> None:
    """Remove our lock (only ours: a stale-lock takeover may have replaced it). A store that
    is gone leaves it behind: it is stale to this unit at once, to the others after
    core.schedule.LOCK_STALE."""
    try:
        held = read(store, app)
        if held is not None and held.token == lock.token:
            store._client.delete_object(Bucket=store.settings.bucket, Key=_key(store, app))
    except Exception as error:
        logger.warning("could not remove the backup lock %s: %s", _key(store, app), error)
