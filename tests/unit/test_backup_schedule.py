"""actions/backup_schedule.py, the adapter around core/schedule.py, with fakes for the store
and the backup path (the real ones run in tests/cluster/test_backup_schedule.py): what it
records in peer data for each outcome, and that a hook with no schedule loads no croniter."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from actions import backup_schedule as bs
from core.actions import ActionRefused
from core.schedule import BackupHistory
from core.status import Status, app_status
from tests.unit.loaded import loaded
from workload.backup_lock import Busy
from workload.object_store import BackupMeta, Listed, StoreError

NOW = datetime.datetime(2026, 12, 2, 10, 2, tzinfo=datetime.UTC)
HOURLY = "0 * * * *"


class Peers:
    def __init__(self, history: BackupHistory | None = None):
        self.history = history or BackupHistory()
        self.written: list[BackupHistory] = []

    def backups(self) -> BackupHistory:
        return self.history

    def record_backups(self, history: BackupHistory) -> None:
        self.written.append(history)


class Store:
    def __init__(self, rows: list[Listed] | Exception):
        self.rows = rows
        self.settings = type("S", (), {"prefix": lambda self, app: f"{app}/"})()

    def listing(self, prefix: str) -> list[Listed]:
        if isinstance(self.rows, Exception):
            raise self.rows
        return self.rows


def listed(ident: str, created: str) -> Listed:
    meta = BackupMeta(ident, f"app/{ident}", 1, "0" * 64, 1, 1, "3.5.1", "c", "m", "app", created)
    return Listed(ident, meta.key, 1, meta)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    state: dict[str, Any] = {"rows": [], "create": {"backup-id": "backup-new", "removed": "none"}}
    monkeypatch.setattr(bs.clock, "now", lambda: NOW)
    monkeypatch.setattr(bs, "open_store", lambda kit: Store(state["rows"]))

    def create(kit: Any, policy: Any = None) -> dict[str, str]:
        state["created"] = policy
        outcome = state["create"]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(bs, "create", create)
    return state


KIT: Any = type("Kit", (), {"app": "app"})()


def test_due_backup_is_taken_and_recorded(world: dict[str, Any]) -> None:
    peers = Peers()
    bs.run_if_due(KIT, peers, HOURLY, "gfs,last=3")  # type: ignore[arg-type]
    assert world["created"].gfs and world["created"].last == 3
    assert peers.written == [
        BackupHistory("backup-new", "2026-12-02T10:02:00Z", "2026-12-02T10:00:00Z")
    ]


def test_not_due_does_nothing(world: dict[str, Any]) -> None:
    peers = Peers(BackupHistory("b", "2026-12-02T10:01:00Z", "2026-12-02T10:00:00Z"))
    bs.run_if_due(KIT, peers, HOURLY, "gfs")  # type: ignore[arg-type]
    assert "created" not in world and peers.written == []


def test_a_backup_in_the_bucket_since_the_window_serves_it(world: dict[str, Any]) -> None:
    world["rows"] = [
        listed("backup-20261202-095000", "2026-12-02T09:50:00Z"),
        listed("backup-20261202-100100", "2026-12-02T10:01:00.250Z"),
        Listed("backup-20261202-100130", "app/backup-20261202-100130", 1, None),  # in flight
    ]
    peers = Peers()
    bs.run_if_due(KIT, peers, HOURLY, "gfs")  # type: ignore[arg-type]
    assert "created" not in world
    assert peers.written == [
        BackupHistory("backup-20261202-100100", "2026-12-02T10:01:00Z", "2026-12-02T10:00:00Z")
    ]


@pytest.mark.parametrize(
    "failure",
    [ActionRefused("no quorum"), StoreError("S3 list-objects failed: down")],
)
def test_failures_are_recorded_with_the_reason(world: dict[str, Any], failure: Exception) -> None:
    if isinstance(failure, StoreError):
        world["rows"] = failure
    else:
        world["create"] = failure
    peers = Peers()
    bs.run_if_due(KIT, peers, HOURLY, "gfs")  # type: ignore[arg-type]
    (written,) = peers.written
    assert written.failed_why == str(failure) and written.tries == 1
    assert written.window == "2026-12-02T10:00:00Z" and written.failed_at == "2026-12-02T10:02:00Z"


def test_another_backup_running_is_no_failure(world: dict[str, Any]) -> None:
    world["create"] = Busy("backup b is running on etcd-k8s/0 (since ...)")
    peers = Peers()
    bs.run_if_due(KIT, peers, HOURLY, "gfs")  # type: ignore[arg-type]
    assert peers.written == []
    assert str(world["create"]).startswith("another backup is under way: backup b is running")


def test_a_leader_that_lost_its_lease_records_nothing(world: dict[str, Any]) -> None:
    peers = Peers()
    bs.run_if_due(KIT, peers, HOURLY, "gfs", still_leader=lambda: False)  # type: ignore[arg-type]
    assert "created" in world and peers.written == []


def test_the_backup_note_is_part_of_the_app_status(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.status as status

    monkeypatch.setattr(status, "_app_status", lambda outcome, units: Status("active", "3/3"))
    said = app_status(None, 3, backups_refused="x: y", backups="last backup b 5m ago")  # type: ignore[arg-type]
    assert said == Status("active", "3/3; backups off: s3-credentials x: y; last backup b 5m ago")


def test_a_hook_without_a_schedule_does_not_import_croniter() -> None:
    code = (
        "import charm, actions.backup_schedule\nfrom state.config import EtcdOptions\n"
        "EtcdOptions.from_charm_config({'backup-schedule': ''})"
    )
    assert loaded(code, ("croniter", "boto3")) == []
