"""The charm's action wiring with ops.testing (no etcd): refusals name the reason and the fix,
and change nothing; storage-only actions work without a workload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from charm import EtcdK8sCharm

PEERS = testing.PeerRelation("etcd-peers")


def run(
    action: str,
    params: dict[str, Any] | None = None,
    *,
    leader: bool = True,
    can_connect: bool = True,
    storage_root: Path | None = None,
) -> testing.Context:
    ctx = testing.Context(EtcdK8sCharm)
    storages = set()
    if storage_root is not None:
        storages = {testing.Storage("data")}
        ctx._get_storage_root = lambda name, index: storage_root  # type: ignore[method-assign]
    state = testing.State(
        leader=leader,
        relations={PEERS},
        containers={testing.Container("etcd", can_connect=can_connect)},
        storages=storages,
    )
    ctx.run(ctx.on.action(action, params=params or {}), state)
    return ctx


def failure(action: str, params: dict[str, Any] | None = None, **kwargs: Any) -> str:
    with pytest.raises(testing.ActionFailed) as failed:
        run(action, params, **kwargs)
    return failed.value.message


@pytest.mark.parametrize(
    "action",
    [
        "restore",
        "create-backup",
        "defrag",
        "promote",
        "move-leader",
        "compact",
        "alarm-disarm",
        "rotate-root-password",
        "pre-refresh-check",
    ],
)
def test_leader_only_actions_refuse_elsewhere(action: str) -> None:
    params = (
        {"name": "x"} if action == "restore" else {"to": "x"} if action == "move-leader" else {}
    )
    message = failure(action, params, leader=False)
    assert f"run {action} on the leader unit" in message
    assert f"juju run etcd-k8s/leader {action}" in message


@pytest.mark.parametrize(
    "action", ["snapshot", "cluster-status", "alarm-list", "defrag", "rebuild-cluster"]
)
def test_actions_need_the_workload(action: str) -> None:
    assert "not ready" in failure(action, can_connect=False)


@pytest.mark.parametrize(
    ("action", "params", "fragment"),
    [
        ("snapshot", {"keep": -1}, "keep must be a whole number"),
        ("compact", {"revision": True}, "revision must be a whole number"),
        ("restore", {}, "give name= (a snapshot on this unit) or backup-id="),
        ("restore", {"name": "a", "backup-id": "backup-20261202-073000"}, "one of them"),
        ("restore", {"backup-id": "../x"}, "invalid backup-id '../x'"),
        ("create-backup", {"keep": -1}, "keep must be a whole number"),
        ("move-leader", {}, "to= is required"),
    ],
)
def test_bad_parameters_fail_with_the_reason(action: str, params: dict, fragment: str) -> None:
    """What Juju's schema check lets through (it checks types, as ops.testing does here)."""
    # Storage attached and the container reachable: only the parameter can be the reason.
    message = failure(action, params, storage_root=Path("/nonexistent-etcd-k8s-test"))
    assert fragment in message


def test_list_snapshots_reads_the_storage_without_etcd(tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / "a.db").write_bytes(b"x" * 100)
    meta = {
        "name": "a",
        "size": 100,
        "sha256": "0" * 64,
        "revision": 9,
        "keys": 3,
        "etcd_version": "3.5.1",
        "member": "etcd-k8s-0",
        "cluster_id": "1",
        "created": "2026-11-21T10:00:00.000Z",
    }
    (folder / "a.json").write_text(json.dumps(meta))
    ctx = run("list-snapshots", can_connect=False, storage_root=tmp_path)
    results = ctx.action_results or {}
    assert results["count"] == "1"
    assert "a " in results["snapshots"] and " 9 " in results["snapshots"]


def test_remove_snapshot_refuses_a_bad_or_missing_name(tmp_path: Path) -> None:
    assert "invalid snapshot name" in failure(
        "remove-snapshot", {"name": "../etc"}, storage_root=tmp_path
    )
    assert "no snapshot named 'nope'" in failure(
        "remove-snapshot", {"name": "nope"}, storage_root=tmp_path
    )


def test_snapshot_actions_without_storage_say_so() -> None:
    assert "storage is not attached" in failure("list-snapshots", can_connect=False)


def test_root_password_actions_refuse_while_auth_is_off() -> None:
    """Plaintext clusters run without etcd auth: no root password exists to show or rotate."""
    assert "auth is turned on" in failure("get-root-password", leader=False)
    assert "no root password to rotate" in failure("rotate-root-password")


def test_backup_actions_without_s3(tmp_path: Path) -> None:
    """No s3-credentials relation: create-backup refuses saying what to relate; list-backups
    lists this unit's snapshots alone."""
    message = failure("create-backup", storage_root=tmp_path)
    assert "no S3 storage: relate s3-credentials" in message
    ctx = run("list-backups", storage_root=tmp_path)
    assert ctx.action_results == {"count": "0", "backups": "none", "s3": "not related"}


def test_root_password_shown_while_auth_is_off_says_it_is_idle() -> None:
    """The secret outlives auth (client TLS turned off): the password is shown, with a line
    saying etcd asks for none now, so an operator does not chase a failing login."""
    secret = testing.Secret({"password": "s3cret"}, owner="app", label="etcd-root-password")
    peers = testing.PeerRelation("etcd-peers", local_app_data={"root-secret": secret.id})
    ctx = testing.Context(EtcdK8sCharm)
    state = testing.State(
        leader=False,
        relations={peers},
        secrets={secret},
        containers={testing.Container("etcd", can_connect=True)},
    )
    ctx.run(ctx.on.action("get-root-password"), state)
    assert ctx.action_results is not None
    assert ctx.action_results["password"] == "s3cret"
    assert ctx.action_results["auth"].startswith("off: etcd asks for no password now")
