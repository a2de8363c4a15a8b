"""Every action: its name, its parameters (a class `ActionEvent.load_params` builds, whose
checks name the parameter), its handler, and what it needs. The charm observes each one and
runs it through `run`: leader-only actions say where to run them, bad parameters fail with the
reason, nothing is changed when an action refuses."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.actions import ActionRefused
from engine.tools import Tools
from literals import STORAGE_ROOT
from workload.snapshots import Backups

if TYPE_CHECKING:
    from relations.s3 import S3Relation

logger = logging.getLogger(__name__)


@dataclass
class Kit:
    """What an action works with: the unit's tools (when it needs etcd) and its storage."""

    tools: Tools | None
    storage: Path | None
    app: str = ""
    is_leader: bool = False
    s3: S3Relation | None = None  # the s3-credentials relation, for the backup actions
    log: Callable[[str], None] = logger.info  # a progress line `juju run` shows as it comes

    @property
    def etcd(self) -> Tools:
        assert self.tools is not None, "registered with needs_etcd=False"
        return self.tools

    def backups(self) -> Backups:
        if self.storage is None:
            raise ActionRefused("the data storage is not attached to this unit yet")
        return Backups(self.storage, STORAGE_ROOT)


Handler = Callable[[Kit, Any], dict[str, Any]]


@dataclass(frozen=True)
class Action:
    """One action of actions.yaml."""

    name: str
    params: type
    handler: Handler
    leader_only: bool = False
    needs_etcd: bool = True
    reconcile_after: bool = False  # the action changed the cluster: run the reconcile after


REGISTRY: dict[str, Action] = {}


def action(
    name: str,
    params: type,
    *,
    leader_only: bool = False,
    needs_etcd: bool = True,
    reconcile_after: bool = False,
) -> Callable[[Handler], Handler]:
    """Register the decorated handler as action `name`."""

    def register(handler: Handler) -> Handler:
        REGISTRY[name] = Action(name, params, handler, leader_only, needs_etcd, reconcile_after)
        return handler

    return register


@dataclass(frozen=True)
class NoParams:
    """An action without parameters."""


# ---- parameter checks, for the params classes' __post_init__ ----------------------------------


def whole(name: str, value: object, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number, 0 or more, not {value!r}")


def required(name: str, value: object) -> None:
    if value is None or value == "":
        raise ValueError(f"{name}= is required")
    text(name, value)


def text(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {value!r}")


def flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, not {value!r}")


# Which module registers each action: the charm observes them all, but a hook imports none of
# them (hooks must start cheaply); an action imports only its own family.
MODULES = {
    "snapshot": "actions.snapshots",
    "list-snapshots": "actions.snapshots",
    "remove-snapshot": "actions.snapshots",
    "restore": "actions.restore",
    "create-backup": "actions.backups",
    "list-backups": "actions.backups",
    "defrag": "actions.maintenance",
    "compact": "actions.maintenance",
    "alarm-list": "actions.maintenance",
    "alarm-disarm": "actions.maintenance",
    "promote": "actions.members",
    "move-leader": "actions.members",
    "cluster-status": "actions.members",
    "rebuild-cluster": "actions.rebuild",
    "discard-data": "actions.rebuild",
    "get-root-password": "actions.passwords",
    "rotate-root-password": "actions.passwords",
    "pre-refresh-check": "actions.refresh",
}


def get(name: str) -> Action:
    """The action `name`, its module imported (which registers it)."""
    importlib.import_module(MODULES[name])
    return REGISTRY[name]
