"""The scheduled backup: after the leader's reconcile, when `backup-schedule` says a backup
is due (core.schedule.due), take it as create-backup does (under the bucket's lock), apply
`backup-retention`, and record the outcome in peer app data for the status.

It runs after the reconcile rather than as a step of core/flow.py's FLOW: it needs the S3
relation and the snapshot path of the actions, it changes nothing that the next observation
of the cluster would see, and it must never hold up membership, TLS or auth work."""

from __future__ import annotations

import logging
from collections.abc import Callable

from actions.backups import create, open_store
from actions.registry import Kit
from core import retention, schedule
from core.actions import ActionRefused
from state.peers import PeerData
from workload import clock
from workload.backup_lock import Busy
from workload.object_store import StoreError

logger = logging.getLogger(__name__)


def run_if_due(
    kit: Kit,
    peers: PeerData,
    expr: str,
    policy_text: str,
    still_leader: Callable[[], bool] = lambda: True,
) -> None:
    """Take the due backup, if one is. Never raises for S3's sake: a failure is recorded
    (and shown in the status), the hook goes on. `still_leader`: asked before recording the
    outcome of an upload that took long; a unit whose lease lapsed meanwhile may not write
    the application's data (the new leader finds the backup in the bucket instead)."""
    now = clock.now()
    history = peers.backups()
    due = schedule.due(expr, history, now)
    if due is None:
        return
    window = schedule.iso(due.window)
    try:
        store = open_store(kit)
        rows = store.listing(store.settings.prefix(kit.app))
    except (ActionRefused, StoreError) as error:
        return _failed(peers, history, str(error), window)
    done = schedule.covered(due.window, [(r.id, r.meta.created) for r in rows if r.meta])
    if done is not None:
        logger.info("decision: scheduled backup of %s served by %s (in S3)", window, done[0])
        peers.record_backups(schedule.succeeded(history, done[0], done[1], window))
        return None
    logger.info(
        "decision: scheduled backup due (window %s%s)", window, ", retry" if due.retry else ""
    )
    try:
        results = create(kit, policy=retention.parse(policy_text))
    except Busy as busy:
        logger.info("decision: scheduled backup waits: %s", busy.why)
        return None
    except ActionRefused as error:
        return _failed(peers, history, str(error), window)
    logger.info(
        "decision: scheduled backup %s done; retention removed %s",
        results["backup-id"],
        results["removed"],
    )
    if not still_leader():
        logger.info("decision: leadership moved during the backup; the new leader reads S3")
        return None
    peers.record_backups(schedule.succeeded(history, results["backup-id"], clock.now(), window))
    return None


def _failed(peers: PeerData, history: schedule.BackupHistory, why: str, window: str) -> None:
    logger.warning("decision: scheduled backup of %s failed: %s", window, why)
    peers.record_backups(schedule.failed(history, why, clock.now(), window))
