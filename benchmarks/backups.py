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
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src")]

from benchmarks.operations import load, raw_snapshot, settle_all, timed_action  # noqa: E402
from tests.bench.binaries import installed  # noqa: E402
from tests.bench.checks import assert_formed, wait_healthy  # noqa: E402
from tests.bench.juju import Juju  # noqa: E402
from tests.bench.network import can_run  # noqa: E402
from tests.bench.s3 import ACCESS_KEY, SECRET_KEY, S3Integrator, SeaweedS3  # noqa: E402

BUCKET = "bench-backups"


def raw_backup(j: Juju, unit: str, server: SeaweedS3, scratch: Path, i: int) -> float:
    """What an operator would script: etcdctl snapshot save, then boto3's upload_file."""
    target = scratch / f"raw{i}.db"
    started = time.monotonic()
    raw_snapshot(j, unit, target)
    server.client().upload_file(str(target), BUCKET, f"raw/raw{i}.db")
    took = time.monotonic() - started
    target.unlink()
    return took


def measure(version: str, megabytes: int, repeat: int, server: SeaweedS3) -> None:
    print(f"\n== etcd {version}: 3 units, ~{megabytes} MB, S3 = SeaweedFS at {server.endpoint}")
    with Juju.start(version) as j:
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
        action_times, raw_times, splits = [], [], []
        with tempfile.TemporaryDirectory() as scratch:
            for i in range(repeat):
                raw_times.append(raw_backup(j, leader, server, Path(scratch), i))
                took, results = timed_action(j, leader, "create-backup")
                action_times.append(took)
                splits.append(results["seconds"])
        size = int(results["size"])
        raw, act = statistics.median(raw_times), statistics.median(action_times)
        print(
            f"create-backup of {size / 1e6:.1f} MB: action median {act:.2f}s "
            f"(all {', '.join(f'{t:.2f}' for t in action_times)}; {'; '.join(splits)}), "
            f"raw etcdctl snapshot save + boto3 upload_file median {raw:.2f}s "
            f"(all {', '.join(f'{t:.2f}' for t in raw_times)}), ratio {act / raw:.2f}"
        )
        took, restored = timed_action(j, leader, "restore", **{"backup-id": results["backup-id"]})
        started = time.monotonic()
        settle_all(j)
        assert_formed(j, 3)
        wait_healthy(j)
        print(
            f"restore backup-id=: action {took:.2f}s (download {restored['download']}), the "
            f"other 2 units voters {time.monotonic() - started:.2f}s later"
        )


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
    for noisy in ("ops", "scenario"):
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
