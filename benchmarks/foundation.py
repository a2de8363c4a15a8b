"""Foundation figures, measured on the bench with real etcd (a script, not a test):

- charm runs (hooks) per unit until a 3-unit deploy is a 3-voter cluster, per event order;
- seconds from a new unit's etcd start to its promotion to voter (add-unit 3 -> 5);
- wall time of a no-op update-status on a healthy unit, and the etcdctl calls it makes.

    sudo .venv/bin/python -m benchmarks.foundation [--versions 3.4,3.5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import signal
import statistics
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src")]

from tests.bench.binaries import installed  # noqa: E402
from tests.bench.checks import assert_formed  # noqa: E402
from tests.bench.juju import Juju  # noqa: E402


def promoted_at(j: Juju, member_id: str) -> float:
    """When the first successful `member promote` of `member_id` ended, on any pod."""
    return min(
        record.ended
        for u in j.units.values()
        for record in u.pod.execs
        if "promote" in record.argv and member_id in record.argv and record.exit_code == 0
    )


def runs_to_form(version: str, scheduler: str, seed: int) -> tuple[list[int], list[int], float]:
    """Hooks per unit started until the last voter was promoted, hooks per unit until the model
    is quiet, and the wall time from `juju deploy` to 3 voters."""
    with Juju.start(version, scheduler=scheduler, seed=seed) as j:
        started = time.time()
        j.deploy(3)
        j.settle()
        assert_formed(j, 3)
        bootstrapper = j.app_data["bootstrap-member"].replace("etcd-k8s-", "etcd-k8s/")
        joiners = [n for n in j.units if n != bootstrapper]
        formed = max(promoted_at(j, j.databags[n]["member-id"]) for n in joiners)
        to_form = [sum(1 for t in u.run_starts if t <= formed) for u in j.units.values()]
        return to_form, [u.runs for u in j.units.values()], formed - started


def promotion_delays(version: str) -> list[float]:
    """For each unit added: its etcd process start -> the end of the promote call that succeeded."""
    delays = []
    with Juju.start(version) as j:
        j.deploy(3)
        j.settle()
        for _ in range(2):
            (unit,) = j.add_unit(1)
            j.settle()
            assert_formed(j, len(j.units))
            member_id = j.databags[unit.name]["member-id"]
            etcd_start = unit.pod.services["etcd"].started_at
            delays.append(promoted_at(j, member_id) - etcd_start)
    return delays


def update_status_cost(version: str, samples: int) -> tuple[list[float], float]:
    with Juju.start(version) as j:
        j.deploy(3)
        j.settle()
        assert_formed(j, 3)
        unit = j.units["etcd-k8s/0"]
        times, execs = [], []
        for _ in range(samples):
            before = len(unit.pod.execs)
            unit.queue.append(("update-status",))
            started = time.monotonic()
            j.settle()
            times.append(time.monotonic() - started)
            execs.append(len(unit.pod.execs) - before)
        assert j.failures() == []
        return times, statistics.mean(execs)


def main() -> int:
    # A SIGTERM unwinds like Ctrl-C, so the bench stops its processes and removes its namespaces.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", default="3.4,3.5")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.WARNING)
    for version in args.versions.split(","):
        print(f"== etcd {installed(version)}")
        for scheduler in ("ordered", "reverse", "random", "leader-last"):
            formed, quiet, walls = [], [], []
            for seed in range(args.repeat):
                to_form, to_quiet, wall = runs_to_form(version, scheduler, seed)
                formed += to_form
                quiet += to_quiet
                walls.append(wall)
            print(
                f"  deploy -n 3 [{scheduler:<11}] hooks per unit until 3 voters: "
                f"min {min(formed)} median {statistics.median(formed)} max {max(formed)}; "
                f"until quiet: median {statistics.median(quiet)}; "
                f"wall to 3 voters: median {statistics.median(walls):.1f} s  (n={args.repeat})"
            )
        delays = [d for _ in range(args.repeat) for d in promotion_delays(version)]
        print(
            f"  etcd start -> promoted voter: median {statistics.median(delays):.2f} s, "
            f"max {max(delays):.2f} s  (n={len(delays)})"
        )
        times, execs = update_status_cost(version, args.samples)
        print(
            f"  no-op update-status on a healthy unit: median {statistics.median(times) * 1000:.0f}"
            f" ms, p90 {sorted(times)[int(len(times) * 0.9)] * 1000:.0f} ms, "
            f"{execs:.1f} etcdctl/etcd execs per hook  (n={len(times)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
