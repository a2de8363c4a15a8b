"""The whole cluster back to one snapshot on the leader's storage (engine/restore.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from actions.common import seconds
from actions.registry import Kit, action, flag, text
from core.backups import check_backup_id
from engine.restore import restore as restore_cluster


@dataclass(frozen=True)
class RestoreParams:
    """restore name= | backup-id= [force=]"""

    name: str = ""
    backup_id: str = ""
    force: bool = False

    def __post_init__(self) -> None:
        text("name", self.name)
        text("backup-id", self.backup_id)
        if bool(self.name) == bool(self.backup_id):
            raise ValueError(
                "give name= (a snapshot on this unit) or backup-id= (a backup in S3), one of them"
            )
        if self.backup_id:
            check_backup_id(self.backup_id)
        flag("force", self.force)


@action("restore", RestoreParams, leader_only=True, reconcile_after=True)
def restore(kit: Kit, params: RestoreParams) -> dict[str, Any]:
    name = params.name
    fetched, digest = "", None
    if params.backup_id:
        from actions.backups import fetch  # boto3's import only when restoring from S3

        started = time.monotonic()
        name, digest = fetch(kit, params.backup_id)
        fetched = seconds(started)
    results = restore_cluster(kit.etcd, kit.backups(), name, params.force, digest)
    if fetched:
        results.update({"backup-id": params.backup_id, "download": fetched})
    return results
