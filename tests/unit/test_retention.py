"""core/retention.py: the backup-retention option and which S3 backups it deletes, with the
clock passed in: gfs (etcd-backup-restore's exponential GC), last=N, max-age, all, and what
is never deleted (in flight, not ours, undatable, the newest)."""

from __future__ import annotations

import datetime

import pytest

from core import retention as rt
from core.backups import BackupRecord
from core.retention import Retention

UTC = datetime.UTC
NOW = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # a Wednesday


def ago(**delta: float) -> datetime.datetime:
    return NOW - datetime.timedelta(**delta)


def rec(at: datetime.datetime | None, ident: str | None = None, **kw: str) -> BackupRecord:
    if ident is None:
        assert at is not None
        ident = at.strftime("backup-%Y%m%d-%H%M%S")
    created = at.isoformat().replace("+00:00", "Z") if at else ""
    fields = {"where": "s3", "state": "complete", **kw}
    return BackupRecord(ident, fields["where"], 1, 1, "3.5.1", created, fields["state"])


def every(step: datetime.timedelta, span: datetime.timedelta) -> list[BackupRecord]:
    """A backup every `step` over the last `span`, the newest at NOW."""
    count = int(span / step)
    return [rec(NOW - i * step) for i in range(count + 1)]


class TestParse:
    @pytest.mark.parametrize(
        "text, policy",
        [
            ("gfs", Retention(gfs=True)),
            (" gfs , last=3 ", Retention(gfs=True, last=3)),
            ("last=10", Retention(last=10)),
            ("max-age=30d", Retention(max_age=datetime.timedelta(days=30))),
            ("max-age=90m", Retention(max_age=datetime.timedelta(minutes=90))),
            ("max-age=12h,last=2", Retention(last=2, max_age=datetime.timedelta(hours=12))),
            ("max-age=2w", Retention(max_age=datetime.timedelta(weeks=2))),
            ("all", Retention(keep_all=True)),
        ],
    )
    def test_good(self, text: str, policy: Retention) -> None:
        assert rt.parse(text) == policy
        assert rt.check(f" {text} ") == text.strip()

    @pytest.mark.parametrize(
        "text, why",
        [
            ("", "empty"),
            (" , ", "empty"),
            ("last=0", "'last=0' is not a retention term"),
            ("last=-1", "not a retention term"),
            ("last=x", "not a retention term"),
            ("max-age=30", "not a retention term"),
            ("max-age=0d", "not a retention term"),
            ("max-age=1y", "not a retention term"),
            ("weekly", "not a retention term"),
            ("gfs,gfs", "given twice"),
            ("last=1,last=2", "given twice"),
            ("all,last=3", "'all' keeps everything"),
        ],
    )
    def test_bad_names_the_term(self, text: str, why: str) -> None:
        with pytest.raises(ValueError, match=why):
            rt.parse(text)


def kept(records: list[BackupRecord], text: str, **kw: frozenset[str]) -> set[str]:
    doomed = rt.to_delete(records, rt.parse(text), NOW, **kw)
    assert len(doomed) == len(set(doomed))
    return {r.id for r in records} - set(doomed)


class TestGfs:
    def test_every_backup_of_the_last_hour_stays(self) -> None:
        records = every(datetime.timedelta(minutes=5), datetime.timedelta(hours=1))
        assert kept(records, "gfs") == {r.id for r in records}

    def test_a_day_of_backups_every_5_minutes(self) -> None:
        records = every(datetime.timedelta(minutes=5), datetime.timedelta(hours=24))
        left = kept(records, "gfs")
        # All 13 of the last hour (12:00 back to 11:00), then the newest of each earlier hour.
        last_hour = {r.id for r in records if NOW - ago(hours=1) >= NOW - _at(r)}
        assert len(last_hour) == 13 and last_hour <= left
        older = sorted(left - last_hour)
        # The newest of each earlier hour (hh:55), back to yesterday's 12:xx: 12 + 11 hours.
        assert len(older) == 23 and all(i.endswith("5500") for i in older)
        assert len(left) == 36

    def test_a_month_of_hourly_backups(self) -> None:
        records = every(datetime.timedelta(hours=1), datetime.timedelta(days=40))
        left = kept(records, "gfs")
        ats = sorted((_at(r) for r in records if r.id in left), reverse=True)
        # The last hour: 12:00 and 11:00; each hour of the last day; each day of the week; each
        # ISO week of the last 4; nothing older than 4 weeks.
        assert ats[0] == NOW and ago(hours=1) in ats
        day = [a for a in ats if NOW - a <= datetime.timedelta(hours=24)]
        assert len(day) == 25  # 12:00 today back to 12:00 yesterday, one per hour
        week = [
            a for a in ats if datetime.timedelta(hours=24) < NOW - a <= datetime.timedelta(days=7)
        ]
        days = {a.date() for a in week}
        assert len(week) == len(days)  # one per day: the newest of each, 23:00
        assert all(a.hour == 23 for a in week if a.date() != ago(days=7).date())
        month = [a for a in ats if NOW - a > datetime.timedelta(days=7)]
        assert len(month) == len({a.isocalendar()[:2] for a in month}) <= 4
        assert all(a.weekday() == 6 and a.hour == 23 for a in month)  # Sunday 23:00: week's last
        assert all(NOW - a <= datetime.timedelta(weeks=4) for a in ats)
        assert len(left) == len(ats)

    def test_gfs_with_last_keeps_both(self) -> None:
        records = [rec(ago(days=d)) for d in (40, 50, 60)]
        assert kept(records, "gfs") == {records[0].id}  # only the newest: never emptied
        assert kept(records, "gfs,last=2") == {records[0].id, records[1].id}


class TestLastAndAge:
    RECORDS = [rec(ago(days=d)) for d in range(10)]

    def test_last(self) -> None:
        assert kept(self.RECORDS, "last=3") == {r.id for r in self.RECORDS[:3]}
        assert kept(self.RECORDS, "last=100") == {r.id for r in self.RECORDS}

    def test_max_age_alone_keeps_everything_younger(self) -> None:
        assert kept(self.RECORDS, "max-age=3d") == {r.id for r in self.RECORDS[:4]}

    def test_max_age_cuts_what_last_keeps(self) -> None:
        assert kept(self.RECORDS, "last=8,max-age=2d") == {r.id for r in self.RECORDS[:3]}

    def test_the_newest_stays_whatever_the_age(self) -> None:
        records = [rec(ago(days=d)) for d in (100, 200)]
        assert kept(records, "max-age=1d") == {records[0].id}

    def test_all_deletes_nothing(self) -> None:
        assert rt.to_delete(self.RECORDS, rt.parse("all"), NOW) == []

    def test_deleted_oldest_first(self) -> None:
        doomed = rt.to_delete(self.RECORDS, rt.parse("last=7"), NOW)
        assert doomed == [r.id for r in reversed(self.RECORDS[7:])]


class TestNeverDeleted:
    def test_protected_in_flight_foreign_undatable_future(self) -> None:
        old = [rec(ago(days=d)) for d in (1, 2, 3)]
        incomplete = rec(ago(days=9), state="incomplete (no verified manifest)")
        local = rec(ago(days=8), where="local")
        foreign = rec(ago(days=7), ident="my-own-dump.db")
        undated = rec(None, ident="backup-20200101-000000")
        future = rec(NOW + datetime.timedelta(days=1))
        protected = rec(ago(days=6))
        records = [*old, incomplete, local, foreign, undated, future, protected]
        doomed = rt.to_delete(records, rt.parse("last=1"), NOW, protect=frozenset({protected.id}))
        assert doomed == [old[2].id, old[1].id]

    def test_nothing_to_judge(self) -> None:
        assert rt.to_delete([], rt.parse("last=1"), NOW) == []
        assert rt.to_delete([rec(None, ident="backup-20200101-000000")], rt.parse("gfs"), NOW) == []


def _at(record: BackupRecord) -> datetime.datetime:
    return datetime.datetime.fromisoformat(record.created.replace("Z", "+00:00"))
