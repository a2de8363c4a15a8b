"""The whole cluster back to one snapshot on the leader's storage (engine/restore.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actions.registry import Kit, action, flag, required
from engine.restore import restore as restore_cluster


@dataclass(frozen=True)
class RestoreParams:
    """restore name= [force=]"""

    name: str = ""
    force: bool = False

    def __post_init__(self) -> None:
        required("name", self.name)
        flag("force", self.force)


@action("restore", RestoreParams, leader_only=True, reconcile_after=True)
def restore(kit: Kit, params: RestoreParams) -> dict[str, Any]:
    return restore_cluster(kit.etcd, kit.backups(), params.name, params.force)
