"""core/schedule.py: the cron option, when a scheduled backup is due (clock passed in), the
history it records, the backup lock's decision and the status note."""

from __future__ import annotations

import datetime

import pytest

from core import schedule as sc
from core.messages import known
from core.schedule import BackupHistory, Due, Lock

UTC = datetime.UTC


def t(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


class TestCheckSchedule:
    @pytest.mark.parametrize(
        "given, normal",
        [("", ""), ("   ", ""), ("0 3 * * *", "0 3 * * *"), (" 0  */6 * * * ", "0 */6 * * *"),
         ("15 2 * * mon-fri", "15 2 * * mon-fri"), ("0 0 1 1 *", "0 0 1 1 *")],
    )  # fmt: skip
    def test_good(self, given: str, normal: str) -> None:
        assert sc.check_schedule(given) == normal

    @pytest.mark.parametrize(
        "bad",
        ["daily", "@daily", "0 3 * *", "0 3 * * * *", "61 * * * *", "0 25 * * *",
         "* * 32 * *", "0 3 * * funday", "0 3 * * *; rm", "0 3 * 13 *"],
    )  # fmt: skip
    def test_bad_says_what_it_wants(self, bad: str) -> None:
        with pytest.raises(ValueError, match="cron expression"):
            sc.check_schedule(bad)


class TestWindows:
    def test_window_is_the_latest_at_or_before_now(self) -> None:
        assert sc.window("0 3 * * *", t("2026-12-02T10:00:00")) == t("2026-12-02T03:00:00")
        assert sc.window("0 3 * * *", t("2026-12-02T02:59:59")) == t("2026-12-01T03:00:00")
        assert sc.window("0 3 * * *", t("2026-12-02T03:00:00")) == t("2026-12-02T03:00:00")
        assert sc.window("*/5 * * * *", t("2026-12-02T10:07:30")) == t("2026-12-02T10:05:00")

    def test_window_of_an_aware_time_elsewhere_is_utc(self) -> None:
        paris = datetime.timezone(datetime.timedelta(hours=1))
        now = datetime.datetime(2026, 12, 2, 4, 30, tzinfo=paris)  # 03:30 UTC
        assert sc.window("0 3 * * *", now) == t("2026-12-02T03:00:00")

    def test_next_window(self) -> None:
        assert sc.next_window("0 3 * * *", t("2026-12-02T10:00:00")) == t("2026-12-03T03:00:00")


NOW = t("2026-12-02T10:02:00")
HOURLY = "0 * * * *"


class TestDue:
    def test_off(self) -> None:
        assert sc.due("", BackupHistory(), NOW) is None

    def test_first_hook_with_a_schedule_takes_the_latest_window(self) -> None:
        assert sc.due(HOURLY, BackupHistory(), NOW) == Due(t("2026-12-02T10:00:00"))

    def test_served_window_is_not_due_again(self) -> None:
        history = BackupHistory(last_at="2026-12-02T10:01:00Z", window="2026-12-02T10:00:00Z")
        assert sc.due(HOURLY, history, NOW) is None
        assert sc.due(HOURLY, history, t("2026-12-02T10:59:59")) is None
        assert sc.due(HOURLY, history, t("2026-12-02T11:00:00")) == Due(t("2026-12-02T11:00:00"))

    def test_missed_windows_are_taken_once_not_replayed(self) -> None:
        history = BackupHistory(last_at="2026-12-02T03:01:00Z", window="2026-12-02T03:00:00Z")
        # No hook ran for 7 hours: one backup for the latest window, none for the others.
        assert sc.due(HOURLY, history, NOW) == Due(t("2026-12-02T10:00:00"))
        served = sc.succeeded(history, "backup-x", NOW, "2026-12-02T10:00:00Z")
        assert sc.due(HOURLY, served, NOW + datetime.timedelta(minutes=5)) is None

    def test_a_backup_by_hand_in_the_window_covers_it(self) -> None:
        history = BackupHistory(last_at="2026-12-02T10:00:30Z", window="2026-12-02T09:00:00Z")
        assert sc.due(HOURLY, history, NOW) is None
        older = BackupHistory(last_at="2026-12-02T09:59:59Z", window="2026-12-02T09:00:00Z")
        assert sc.due(HOURLY, older, NOW) == Due(t("2026-12-02T10:00:00"))

    def test_a_failed_window_is_retried_after_a_while_a_few_times(self) -> None:
        window = "2026-12-02T10:00:00Z"
        history = sc.failed(BackupHistory(), "S3 unreachable", t("2026-12-02T10:01:00"), window)
        assert history.tries == 1 and history.failed_why == "S3 unreachable"
        assert sc.due(HOURLY, history, t("2026-12-02T10:05:00")) is None
        assert sc.due(HOURLY, history, t("2026-12-02T10:11:00")) == Due(
            t("2026-12-02T10:00:00"), retry=True
        )
        for attempt in (2, 3):
            history = sc.failed(history, "again", t(f"2026-12-02T10:{attempt}1:00"), window)
            assert history.tries == attempt
        assert sc.due(HOURLY, history, t("2026-12-02T10:55:00")) is None  # 3 tries: wait
        assert sc.due(HOURLY, history, t("2026-12-02T11:00:00")) == Due(t("2026-12-02T11:00:00"))

    def test_a_failure_in_a_new_window_counts_from_one(self) -> None:
        history = BackupHistory(window="2026-12-02T09:00:00Z", tries=3, failed_at="x")
        history = sc.failed(history, "why", NOW, "2026-12-02T10:00:00Z")
        assert history.tries == 1

    def test_success_clears_the_failure(self) -> None:
        history = sc.failed(BackupHistory(), "why", NOW, "2026-12-02T10:00:00Z")
        done = sc.succeeded(history, "backup-1", NOW, "")
        assert done == BackupHistory(
            last_id="backup-1", last_at="2026-12-02T10:02:00Z", window="2026-12-02T10:00:00Z"
        )

    def test_unreadable_history_times_count_as_absent(self) -> None:
        history = BackupHistory(last_at="yesterday", window="soon", failed_at="?")
        assert sc.due(HOURLY, history, NOW) == Due(t("2026-12-02T10:00:00"))
        assert sc.when("2026-12-02T10:00:00") == t("2026-12-02T10:00:00")  # naive: UTC

    def test_failure_reason_is_cut_short(self) -> None:
        assert len(sc.failed(BackupHistory(), "x" * 1000, NOW, "w").failed_why) == 300


class TestCovered:
    def test_newest_at_or_after_the_window(self) -> None:
        backups = [
            ("backup-a", "2026-12-02T09:59:00Z"),
            ("backup-b", "2026-12-02T10:00:00Z"),
            ("backup-c", "2026-12-02T10:01:00.500Z"),
            ("backup-d", ""),
        ]
        assert sc.covered(t("2026-12-02T10:00:00"), backups) == (
            "backup-c",
            datetime.datetime(2026, 12, 2, 10, 1, 0, 500000, tzinfo=UTC),
        )
        assert sc.covered(t("2026-12-02T10:02:00"), backups) is None
        assert sc.covered(t("2026-12-02T10:00:00"), []) is None


class TestLock:
    LOCK = Lock(owner="etcd-k8s/0", backup_id="backup-1", started="2026-12-02T10:00:00Z", token="a")

    def test_free_own_or_stale(self) -> None:
        assert sc.held_by_other(None, "b", NOW) is None
        assert sc.held_by_other(self.LOCK, "a", NOW) is None
        late = t("2026-12-02T10:00:00") + sc.LOCK_STALE + datetime.timedelta(seconds=1)
        assert sc.held_by_other(self.LOCK, "b", late) is None
        garbled = Lock("etcd-k8s/0", "backup-1", "whenever", "a")
        assert sc.held_by_other(garbled, "b", NOW) is None

    def test_held_says_who_and_since_when(self) -> None:
        assert sc.held_by_other(self.LOCK, "b", NOW) == (
            "backup backup-1 is running on etcd-k8s/0 (since 2026-12-02T10:00:00Z)"
        )

    def test_round_trip_and_garbage(self) -> None:
        assert Lock.from_dict(self.LOCK.to_dict()) == self.LOCK
        assert Lock.from_dict({"owner": "x"}) is None


class TestNote:
    def test_nothing_yet(self) -> None:
        assert sc.note(BackupHistory(), NOW) is None

    def test_last_backup_and_failure(self) -> None:
        history = BackupHistory(last_id="backup-1", last_at="2026-12-02T07:02:00Z")
        assert sc.note(history, NOW) == "last backup backup-1 3h ago"
        history = sc.failed(history, "S3 refused: AccessDenied", t("2026-12-02T09:57:00"), "w")
        said = sc.note(history, NOW)
        assert said == (
            "last backup backup-1 3h ago; last backup attempt failed 5m ago: "
            "S3 refused: AccessDenied"
        )
        assert all(known(part) for part in said.split("; "))

    def test_failure_without_reason(self) -> None:
        history = BackupHistory(failed_at="2026-12-02T10:01:00Z")
        assert sc.note(history, NOW) == "last backup attempt failed 1m ago: ?"
