"""Backup figures, measured on the bench with real etcd and a real S3 server (a script, not a
test).

For each etcd version, on a fresh 3-unit deploy loaded with about `--mb` MB of values and
related to a SeaweedFS S3 server (tests/bench/s3.py) through the s3-integrator stand-in:
- create-backup: the action (snapshot with its checks, multipart upload with per-part MD5 and
  sha256 in the same pass, the store's object checked, manifest) against, in the same run and
  from the same member, a raw `etcdctl snapshot save` followed by a plain boto3 `upload_file`
  of that file to the same server; the ratio, alternating runs, medians;
- restore backup-id=: download, verify and restore, then until every unit is a voter again.

    sudo .venv/bin/python -m benchmarks.backups [--versions 3.5] [--mb 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src")]

from benchmarks.operations import load, raw_snapshot, settle_all, timed_action  # noqa: E402
from benchmarks.raw_restore import documented_procedure, download_and_restore  # noqa: E402
from tests.bench.binaries import installed  # noqa: E402
from tests.bench.checks import assert_formed, member_table, wait_healthy  # noqa: E402
from tests.bench.juju import Juju  # noqa: E402
from tests.bench.network import can_run  # noqa: E402
from tests.bench.s3 import ACCESS_KEY, SECRET_KEY, S3Integrator, SeaweedS3  # noqa: E402

BUCKET = "bench-backups"


def raw_backup(j: Juju, unit: str, server: SeaweedS3, target: Path, i: int) -> tuple[float, float]:
    """What an operator would script: etcdctl snapshot save, then boto3's upload_file.
    Returns (snapshot seconds, total seconds); the file stays for the restore baselines."""
    started = time.monotonic()
    raw_snapshot(j, unit, target)
    saved = time.monotonic() - started
    server.client().upload_file(str(target), BUCKET, f"raw/raw{i}.db")
    return saved, time.monotonic() - started


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}s (all {', '.join(f'{t:.2f}' for t in values)})"


def measure(version: str, megabytes: int, repeat: int, server: SeaweedS3) -> None:
    print(f"\n== etcd {version}: 3 units, ~{megabytes} MB, S3 = SeaweedFS at {server.endpoint}")
    with Juju.start(version) as j, tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        j.deploy(3)
        config = {
            "endpoint": server.endpoint,
            "bucket": BUCKET,
            "path": "bench",
            "s3-uri-style": "path",
            "access-key": ACCESS_KEY,
            "secret-key": SECRET_KEY,
        }
        j.relate_s3(S3Integrator(config))
        settle_all(j)
        leader = j.leader
        assert leader is not None
        started = time.monotonic()
        count = load(j, megabytes)
        print(f"loaded {count} keys in {time.monotonic() - started:.1f}s")
        backups, raw_backups, splits, snapshots, raw_snapshots = [], [], [], [], []
        raw_file = scratch / "raw.db"
        for i in range(repeat):
            raw_file.unlink(missing_ok=True)
            saved, total = raw_backup(j, leader, server, raw_file, i)
            raw_snapshots.append(saved)
            raw_backups.append(total)
            took, results = timed_action(j, leader, "create-backup")
            backups.append(took)
            splits.append(results["seconds"])
            took, _ = timed_action(j, leader, "snapshot", name=f"bench-{i}")
            snapshots.append(took)
        size = int(results["size"])
        ratio = statistics.median(backups) / statistics.median(raw_backups)
        print(
            f"create-backup of {size / 1e6:.1f} MB: action median {median(backups)}; "
            f"{'; '.join(splits)}\n  raw etcdctl snapshot save + boto3 upload_file median "
            f"{median(raw_backups)}; ratio {ratio:.2f} (target <= 1.2)"
        )
        ratio = statistics.median(snapshots) / statistics.median(raw_snapshots)
        print(
            f"snapshot action median {median(snapshots)}\n  raw etcdctl snapshot save median "
            f"{median(raw_snapshots)}; ratio {ratio:.2f} (target <= 1.1)"
        )
        restore_table(j, leader, server, results["key"], version, raw_file, scratch)


def restore_table(
    j: Juju, leader: str, server: SeaweedS3, key: str, version: str, raw: Path, scratch: Path
) -> None:
    """The charm's restore from S3 until 3 voters, split, next to the raw tools' floor and to
    etcd's documented all-members procedure, in the same run."""
    downloaded, restored = download_and_restore(server.client(), BUCKET, key, version, scratch)
    floor = downloaded + restored
    all_restore, all_start = documented_procedure(version, raw, scratch)
    backup_id = key.rsplit("/", 1)[-1]
    took, results = timed_action(j, leader, "restore", **{"backup-id": backup_id})
    started = time.monotonic()
    voters = VotersWatch(j, 3)  # the cluster's own answer, while the hooks run on
    settle_all(j)
    assert_formed(j, 3)
    wait_healthy(j)
    settled = time.monotonic() - started
    rejoin = voters.seconds() - started
    download = float(results["download"].rstrip("s"))
    verify = float(results["verify"].rstrip("s"))
    total = took + rejoin
    rows = [
        ("charm: download (sha256 as it comes)", download),
        ("charm: verify (sha256 + etcd hash, snapshot status)", verify),
        ("charm: restore, the first member serving", took - download - verify),
        ("charm: the other 2 units rejoin as learners, promoted", rejoin),
        ("charm: total, until 3 healthy voters", total),
        ("charm: (until every unit's hooks settled)", took + settled),
        ("raw: boto3 download_file", downloaded),
        ("raw: one snapshot restore", restored),
        ("raw: download + restore (the goal's 1x)", floor),
        ("etcd's documented procedure: 3 restores at once", all_restore),
        ("etcd's documented procedure: start until 3 healthy", all_start),
    ]
    print("restore of 3 units from S3:")
    for label, seconds in rows:
        print(f"  {label:<56} {seconds:8.2f}s")
    print(f"  charm total / (raw download + restore): {total / floor:.2f} (goal <= 2)")


class VotersWatch:
    """When the cluster first lists `count` started voters and no learner, every member
    answering a linearizable health check: polled beside the hooks, which may run on after."""

    def __init__(self, j: Juju, count: int):
        self.j, self.count = j, count
        self.at: float | None = None
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while self.at is None:
            if self._formed():
                self.at = time.monotonic()
                return
            time.sleep(0.1)

    def _formed(self) -> bool:
        try:
            ids, listed = member_table(self.j)
            voters = [m for m in listed if m.name and not m.is_learner]
            if len(ids) != 1 or len(voters) != self.count or len(listed) != self.count:
                return False
            wait_healthy(self.j, seconds=0)
        except (AssertionError, RuntimeError, ValueError, OSError):
            return False
        return True

    def seconds(self) -> float:
        """The moment seen (waits for it, up to a minute: the caller saw the cluster formed)."""
        self.thread.join(60)
        assert self.at is not None, "3 healthy voters never seen"
        return self.at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", default="3.5", help="etcd versions, comma-separated")
    parser.add_argument("--mb", type=int, default=100, help="MB of values to load")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternating")
    args = parser.parse_args()
    why = can_run()
    if why:
        sys.exit(why)
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("ops", "scenario", "botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    server = SeaweedS3().start()
    try:
        for version in [v.strip() for v in args.versions.split(",") if v.strip()]:
            if installed(version) is None:
                sys.exit(f"etcd {version} is not installed: run tools/setup.sh")
            measure(version, args.mb, args.repeat, server)
    finally:
        server.close()


if __name__ == "__main__":
    main()
