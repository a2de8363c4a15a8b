"""Operations figures, measured on the bench with real etcd (a script, not a test).

For each etcd version, on a fresh 3-unit deploy loaded with about `--mb` MB of values:
- snapshot: the `snapshot` action (save + hash check + `snapshot status` + sha256 + sidecar)
  against a raw `etcdctl snapshot save` of the same data from the same member; the ratio;
- restore: the `restore` action alone, then until every unit is a healthy voter again
  (`settle`), with the keys checked against the snapshot;
- defrag: the db fragmented (every value overwritten, then deleted down to a quarter, then
  compacted), the `defrag` action's per-member db size before/after and time.

    sudo .venv/bin/python -m benchmarks.operations [--versions 3.4,3.5] [--mb 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src")]

from tests.bench.binaries import etcdctl, installed  # noqa: E402
from tests.bench.checks import assert_formed, client, wait_healthy  # noqa: E402
from tests.bench.juju import Juju  # noqa: E402
from tests.bench.network import can_run  # noqa: E402

VALUE_BYTES = 256 * 1024


def load(j: Juju, megabytes: int, prefix: str = "/load/") -> int:
    c = client(j)
    count = megabytes * 1024 * 1024 // VALUE_BYTES
    value = os.urandom(VALUE_BYTES // 2).hex()  # hex: printable, VALUE_BYTES long
    for i in range(count):
        c.put(f"{prefix}{i:06d}", value)
    c.close()
    return count


def settle_all(j: Juju) -> None:
    j.settle()
    j.update_status()
    j.settle()


def raw_snapshot(j: Juju, unit: str, target: Path) -> float:
    started = time.monotonic()
    subprocess.run(
        [etcdctl(j.version), f"--endpoints=http://{j.address(unit)}:2379", "snapshot", "save"]
        + [str(target)],
        check=True,
        capture_output=True,
        timeout=600,
        env={**os.environ, "ETCDCTL_API": "3"},
    )
    return time.monotonic() - started


def timed_action(j: Juju, unit: str, action: str, **params: object) -> tuple[float, dict]:
    started = time.monotonic()
    result = j.run_action(unit, action, **params)
    took = time.monotonic() - started
    if result.failure:
        raise RuntimeError(f"{action} failed: {result.failure}")
    return took, result.results


def measure(version: str, megabytes: int, repeat: int) -> None:
    print(f"\n== etcd {version}: 3 units, ~{megabytes} MB of {VALUE_BYTES // 1024} KiB values")
    with Juju.start(version) as j:
        j.deploy(3)
        j.settle()
        leader = j.leader
        assert leader is not None
        started = time.monotonic()
        count = load(j, megabytes)
        print(f"loaded {count} keys in {time.monotonic() - started:.1f}s")

        # -- snapshot vs raw etcdctl, same member (the leader unit's own), alternating
        action_times, raw_times = [], []
        with tempfile.TemporaryDirectory() as scratch:
            for i in range(repeat):
                raw_times.append(raw_snapshot(j, leader, Path(scratch) / f"raw{i}.db"))
                took, results = timed_action(j, leader, "snapshot", name=f"bench-{i}")
                action_times.append(took)
        size = int(results["size"])
        raw, act = statistics.median(raw_times), statistics.median(action_times)
        print(
            f"snapshot of {size / 1e6:.1f} MB: action median {act:.2f}s "
            f"(all {', '.join(f'{t:.2f}' for t in action_times)}), raw etcdctl median "
            f"{raw:.2f}s (all {', '.join(f'{t:.2f}' for t in raw_times)}), ratio {act / raw:.2f}"
        )

        # -- restore of the whole cluster from the last snapshot
        c = client(j)
        expected = sum(1 for _ in c.get_prefix("/load/", keys_only=True))
        c.close()
        took, results = timed_action(j, leader, "restore", name=f"bench-{repeat - 1}")
        started = time.monotonic()
        settle_all(j)
        assert_formed(j, 3)
        wait_healthy(j)
        rejoin = time.monotonic() - started
        c = client(j)
        found = sum(1 for _ in c.get_prefix("/load/", keys_only=True))
        c.close()
        assert found == expected, (found, expected)
        print(
            f"restore: action {took:.2f}s (leader member serving the restored data), other "
            f"2 units rejoined as voters {rejoin:.2f}s later, total {took + rejoin:.2f}s; "
            f"{found} keys back"
        )

        # -- defrag of a fragmented db
        c = client(j)
        value = "x" * VALUE_BYTES
        for i in range(count):  # every value replaced: the old pages become free space later
            c.put(f"/load/{i:06d}", value)
        for i in range(count):
            if i % 4:
                c.delete(f"/load/{i:06d}")
        c.close()
        compact_took, compacted = timed_action(j, leader, "compact")
        took, results = timed_action(j, leader, "defrag")
        print(
            f"compact at revision {compacted['compacted-revision']}: {compact_took:.2f}s; "
            f"defrag action (3 members, one at a time): {took:.2f}s"
        )
        for member, entry in results.items():
            if isinstance(entry, dict):
                before, after = int(entry["db-size-before"]), int(entry["db-size-after"])
                print(
                    f"  {member}: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB "
                    f"({100 * (before - after) / before:.0f}% reclaimed) in {entry['took']}"
                )
        print(f"  reclaimed in total: {int(results['reclaimed']) / 1e6:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", default="3.4,3.5")
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    why = can_run()
    if why:
        sys.exit(why)
    for version in args.versions.split(","):
        if installed(version) is None:
            sys.exit(f"etcd {version} is not installed: run tools/setup.sh")
        measure(version, args.mb, args.repeat)


if __name__ == "__main__":
    main()
