"""Scheduled backups, decided over plain data: whether the `backup-schedule` option is a cron
expression, whether a backup is due now, who holds the one-backup-at-a-time lock, and what
the status says of the last backup. The clock is always passed in.

Juju has no timer: the leader asks `due` on each of its hooks (update-status comes every 5
minutes by default). Only the latest window the schedule names counts, so a window missed
while no hook ran (or several) is taken once, never replayed one by one."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

from core.backups import age
from core.messages import say

RETRY_AFTER = datetime.timedelta(minutes=10)  # a failed scheduled backup is tried again after
MAX_TRIES = 3  # failed attempts per window before it waits for the next window
LOCK_STALE = datetime.timedelta(hours=2)  # a lock older than this belongs to a dead upload
_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
_NAMES = re.compile(r"^[A-Za-z0-9*/,-]+$")


def check_schedule(expr: str) -> str:
    """The option's value normalised (single spaces), "" when off; ValueError says why not."""
    text = " ".join(expr.split())
    if not text:
        return ""
    from croniter import croniter  # here: a hook loads it only when a schedule is set

    fields = text.split(" ")
    if len(fields) != len(_FIELDS) or not all(_NAMES.match(f) for f in fields):
        raise ValueError(
            f"{expr!r} is not a cron expression of 5 fields ({', '.join(_FIELDS)}), "
            "e.g. '0 3 * * *' for 03:00 UTC daily; empty turns scheduled backups off"
        )
    if not croniter.is_valid(text):
        raise ValueError(f"{expr!r} is not a valid cron expression (see crontab(5))")
    return text


def _cron(expr: str, start: datetime.datetime) -> Any:
    from croniter import croniter

    return croniter(expr, start)


def window(expr: str, now: datetime.datetime) -> datetime.datetime:
    """The latest time at or before `now` that the schedule names (UTC)."""
    start = now.astimezone(datetime.UTC) + datetime.timedelta(seconds=1)
    found: datetime.datetime = _cron(expr, start).get_prev(datetime.datetime)
    return found.astimezone(datetime.UTC)


def next_window(expr: str, now: datetime.datetime) -> datetime.datetime:
    found: datetime.datetime = _cron(expr, now.astimezone(datetime.UTC)).get_next(datetime.datetime)
    return found.astimezone(datetime.UTC)


@dataclass(frozen=True)
class BackupHistory:
    """What the leader recorded of backups (peer app data): the last success, the window the
    last scheduled attempt served, and the last failure with its reason."""

    last_id: str = ""
    last_at: str = ""  # ISO 8601 UTC: when the last backup (scheduled or not) completed
    window: str = ""  # ISO 8601 UTC: the schedule window the last scheduled attempt was for
    failed_at: str = ""  # the last failed attempt, "" once a backup succeeded after it
    failed_why: str = ""
    tries: int = 0  # failed attempts in `window`


def when(text: str) -> datetime.datetime | None:
    """An ISO 8601 time as recorded ("Z" or an offset), None when absent or unreadable."""
    if not text:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Due:
    """A scheduled backup to take now, for `window`; `retry` when an earlier try failed."""

    window: datetime.datetime
    retry: bool = False


def due(expr: str, history: BackupHistory, now: datetime.datetime) -> Due | None:
    """Whether the leader takes a scheduled backup now. Due once per window (the latest one:
    older missed windows are not replayed); a backup completed in the window (create-backup
    by hand, or another leader's) covers it; a failed window is tried again after RETRY_AFTER,
    at most MAX_TRIES times."""
    if not expr:
        return None
    latest = window(expr, now)
    served, last = when(history.window), when(history.last_at)
    if last is not None and last >= latest:
        return None  # a backup completed since the window opened
    if served is None or latest > served:
        return Due(latest)
    failed = when(history.failed_at)
    retry = failed is not None and now - failed >= RETRY_AFTER and history.tries < MAX_TRIES
    return Due(latest, retry=True) if latest == served and retry else None


def covered(
    opened: datetime.datetime, backups: list[tuple[str, str]]
) -> tuple[str, datetime.datetime] | None:
    """The newest of the bucket's complete backups, (id, created), made at or after the window
    opened, if any: the window is served already (a leader that lost leadership while
    uploading finished it, or someone ran create-backup)."""
    dated = [(at, ident) for ident, c in backups if (at := when(c)) is not None and at >= opened]
    if not dated:
        return None
    at, ident = max(dated)
    return ident, at


def succeeded(
    history: BackupHistory, ident: str, at: datetime.datetime, for_window: str
) -> BackupHistory:
    """The history after backup `ident` completed at `at` (for a window, or "" by hand)."""
    return BackupHistory(
        last_id=ident,
        last_at=iso(at),
        window=for_window or history.window,
        failed_at="",
        failed_why="",
        tries=0,
    )


def failed(
    history: BackupHistory, why: str, at: datetime.datetime, for_window: str
) -> BackupHistory:
    """The history after an attempt for `for_window` failed with reason `why`."""
    tries = history.tries + 1 if history.window == for_window else 1
    return BackupHistory(
        last_id=history.last_id,
        last_at=history.last_at,
        window=for_window,
        failed_at=iso(at),
        failed_why=why[:300],
        tries=tries,
    )


# ---- one backup at a time ---------------------------------------------------------------------


@dataclass(frozen=True)
class Lock:
    """The marker a unit puts in the bucket while it takes a backup: who, which, since when.
    In the bucket because every unit can read and write it at once; a Juju databag's writes
    only land when the hook ends, too late to tell another leader an upload is under way."""

    owner: str  # the unit
    backup_id: str
    started: str  # ISO 8601 UTC
    token: str  # unique per attempt: the owner re-reads it to know it won

    def to_dict(self) -> dict[str, str]:
        return {
            "owner": self.owner,
            "backup-id": self.backup_id,
            "started": self.started,
            "token": self.token,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Lock | None:
        try:
            return cls(
                str(raw["owner"]), str(raw["backup-id"]), str(raw["started"]), str(raw["token"])
            )
        except (KeyError, TypeError):
            return None


def held_by_other(lock: Lock | None, token: str, now: datetime.datetime) -> str | None:
    """Why a new backup may not start (another one runs), or None: no lock, this attempt's
    own, or a stale one (older than LOCK_STALE, or unreadable: its owner died mid-upload)."""
    if lock is None or lock.token == token:
        return None
    started = when(lock.started)
    if started is None or now - started > LOCK_STALE:
        return None
    return f"backup {lock.backup_id} is running on {lock.owner} (since {lock.started})"


# ---- the status ------------------------------------------------------------------------------


def note(history: BackupHistory, now: datetime.datetime) -> str | None:
    """The app status's part on backups: the last one's age, and the last failure's reason
    while no backup succeeded after it."""
    parts = []
    last = when(history.last_at)
    if last is not None:
        parts.append(say("backup.last", id=history.last_id, age=age(history.last_at, now)))
    failed_at = when(history.failed_at)
    if failed_at is not None:
        parts.append(
            say("backup.failed", age=age(history.failed_at, now), why=history.failed_why or "?")
        )
    return "; ".join(parts) or None
