"""When the cluster itself is in question: rebuild a one-member cluster from this unit's member
(majority lost), or set aside data the cluster dropped (held, it holds writes the cluster
lacks). The work is in engine/departure.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actions.registry import Kit, NoParams, action, flag
from engine import departure


@dataclass(frozen=True)
class RebuildParams:
    """rebuild-cluster [force=]"""

    force: bool = False

    def __post_init__(self) -> None:
        flag("force", self.force)


@action("rebuild-cluster", RebuildParams, reconcile_after=True)
def rebuild_cluster(kit: Kit, params: RebuildParams) -> dict[str, Any]:
    return departure.rebuild(kit.etcd, params.force)


@action("discard-data", NoParams, reconcile_after=True)
def discard_data(kit: Kit, _: NoParams) -> dict[str, Any]:
    return departure.discard(kit.etcd, kit.backups().root)
