"""Which S3 backups to delete, decided over the bucket's listing and a clock passed in: the
`backup-retention` option, parsed and applied.

The policy is a comma-separated list of terms:

- `gfs`: grandfather-father-son, like etcd-backup-restore's exponential garbage collection:
  every backup of the last hour, the newest of each hour for a day, of each day for a week,
  of each week (ISO weeks) for four weeks; older ones go.
- `last=N`: the newest N.
- `max-age=D` (D: a whole number of m, h, d or w): none older than D, whatever keeps it.
- `all`: keep everything (no term but `max-age` keeps everything up to that age).

A backup is kept when any of `gfs` and `last` keeps it, and `max-age` then drops the older
ones. Whatever the terms say, the newest complete backup is always kept (a policy never
empties the store), and only complete backups of this application, with ids the charm gives,
are ever deleted: an incomplete object may be another unit's upload in flight, and anything
else under the prefix is not ours."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from core.backups import BACKUP_ID_PATTERN, BackupRecord, newest_first
from core.schedule import when

DEFAULT = "gfs"
_AGE = re.compile(r"^([1-9][0-9]{0,5})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
HOUR, DAY, WEEK = (datetime.timedelta(hours=1), datetime.timedelta(days=1),
                   datetime.timedelta(weeks=1))  # fmt: skip
# GFS tiers: (keep the newest per bucket, for backups younger than this)
TIERS = ((HOUR, 24 * HOUR), (DAY, 7 * DAY), (WEEK, 4 * WEEK))


@dataclass(frozen=True)
class Retention:
    """A parsed `backup-retention`."""

    gfs: bool = False
    last: int = 0  # 0: no such term
    max_age: datetime.timedelta | None = None
    keep_all: bool = False

    @property
    def keeps_by_rule(self) -> bool:
        return self.gfs or self.last > 0


def parse(text: str) -> Retention:
    """`backup-retention` as a policy; ValueError names the term that is wrong."""
    terms = [t.strip() for t in text.split(",") if t.strip()]
    if not terms:
        raise ValueError("empty: use 'gfs', 'last=N', 'max-age=30d' or 'all' (comma-separated)")
    found: dict[str, object] = {}
    for term in terms:
        name, _, value = term.partition("=")
        if name in found:
            raise ValueError(f"{name!r} given twice")
        if term in ("gfs", "all"):
            found[term] = True
        elif name == "last" and re.fullmatch(r"[1-9][0-9]{0,4}", value):
            found["last"] = int(value)
        elif name == "max-age" and (match := _AGE.fullmatch(value)):
            found["max-age"] = datetime.timedelta(**{_UNITS[match[2]]: int(match[1])})
        else:
            raise ValueError(
                f"{term!r} is not a retention term: 'gfs', 'last=N' (N >= 1), "
                "'max-age=<n>m|h|d|w' (e.g. 30d) or 'all'"
            )
    if "all" in found and len(found) > 1:
        raise ValueError("'all' keeps everything: it takes no other term")
    last = found.get("last", 0)
    max_age = found.get("max-age")
    return Retention(
        gfs="gfs" in found,
        last=last if isinstance(last, int) else 0,
        max_age=max_age if isinstance(max_age, datetime.timedelta) else None,
        keep_all="all" in found,
    )


def check(text: str) -> str:
    """The option's value as written, once it parses."""
    parse(text)
    return text.strip()


def _bucket(at: datetime.datetime, size: datetime.timedelta) -> tuple[int, ...]:
    utc = at.astimezone(datetime.UTC)
    if size == HOUR:
        return (utc.year, utc.month, utc.day, utc.hour)
    if size == DAY:
        return (utc.year, utc.month, utc.day)
    year, week, _ = utc.isocalendar()
    return (year, week)


def _gfs(dated: list[tuple[BackupRecord, datetime.datetime]], now: datetime.datetime) -> set[str]:
    """The ids GFS keeps, of backups dated and sorted newest first."""
    kept = {r.id for r, at in dated if now - at <= HOUR}
    for size, span in TIERS:
        seen: set[tuple[int, ...]] = set()
        for record, at in dated:
            if now - at > span:
                continue
            bucket = _bucket(at, size)
            if bucket not in seen:
                seen.add(bucket)
                kept.add(record.id)
    return kept


def to_delete(
    records: list[BackupRecord],
    policy: Retention,
    now: datetime.datetime,
    protect: frozenset[str] = frozenset(),
) -> list[str]:
    """The ids of the S3 backups the policy deletes, oldest first. Never `protect` (one just
    taken, one in flight), never an incomplete object or one whose id is not the charm's,
    never one whose time cannot be read or lies in the future (a clock ahead of this one's),
    never the newest complete backup."""
    if policy.keep_all:
        return []
    ours = [
        r
        for r in newest_first(records)
        if r.where == "s3" and r.state == "complete" and BACKUP_ID_PATTERN.fullmatch(r.id)
    ]
    dated = [(r, at) for r in ours if (at := when(r.created)) is not None and at <= now]
    if not dated:
        return []
    if policy.keeps_by_rule:
        kept = {r.id for r, _ in dated[: policy.last]}
        if policy.gfs:
            kept |= _gfs(dated, now)
    else:
        kept = {r.id for r, _ in dated}
    if policy.max_age is not None:
        kept = {r.id for r, at in dated if r.id in kept and now - at <= policy.max_age}
    kept |= {dated[0][0].id} | protect
    return [r.id for r, _ in reversed(dated) if r.id not in kept]
