"""Refresh figures, measured on the bench with real etcd (a script, not a test).

For each version pair (from -> to; "charm" is a charm-only refresh on the same image): a fresh
3-unit deploy on `from`, `pre-refresh-check`, then `juju refresh` with an independent failover
etcd3 writer running through the roll. Prints the roll's seconds (first SIGTERM to the last pod
Ready), each pod's seconds to Ready, the longest gap between two acknowledged writes, failed
and lost writes, raft term changes, and where the roll halted if a pod refused (a downgrade
after the cluster version moved is refused by design: its row says so).

    sudo .venv/bin/python -m benchmarks.refresh [--pairs 3.4-3.5,3.5-charm,3.5-3.4]
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src")]

from tests.bench.binaries import VERSIONS, installed  # noqa: E402
from tests.bench.checks import assert_formed, raft_term, wait_healthy  # noqa: E402
from tests.bench.juju import Juju  # noqa: E402
from tests.bench.network import can_run  # noqa: E402
from tests.bench.writer import Writer  # noqa: E402

HEADER = (
    f"{'pair':<12} {'roll s':>7} {'per pod s':<18} {'stall ms':>8} {'acked':>6} {'failed':>6} "
    f"{'lost':>4} {'terms':>5}  result"
)


def parse_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in (p.strip() for p in text.split(",") if p.strip()):
        start, _, to = item.partition("-")
        if start not in VERSIONS or (to not in VERSIONS and to != "charm"):
            raise SystemExit(
                f"--pairs: {item!r} is not <from>-<to> with from in {VERSIONS} and to in "
                f"{VERSIONS} or 'charm'"
            )
        pairs.append((start, to))
    return pairs


def measure(start: str, to: str) -> str:
    with Juju.start(start) as j:
        j.deploy(3)
        j.settle()
        assert_formed(j, 3)
        leader = j.leader
        assert leader is not None
        checked = j.run_action(leader, "pre-refresh-check")
        if checked.failure:
            return f"{start}-{to:<8} pre-refresh-check refused: {checked.failure}"
        wait_healthy(j)
        term = raft_term(j)
        with Writer(j) as writer:
            roll = j.refresh(None if to == "charm" else to, timeout=90)
        report = writer.report()
        terms = raft_term(j) - term
    per_pod = "/".join(f"{s.ready_after:.1f}" if s.ready_after else "-" for s in roll.steps)
    result = "done" if roll.completed else f"halted at {roll.halted_at}: {roll.why[:90]}"
    return (
        f"{start + '-' + to:<12} {roll.seconds:>7.1f} {per_pod:<18} "
        f"{report.longest_stall * 1000:>8.0f} {report.acknowledged:>6} {report.failed:>6} "
        f"{report.lost:>4} {terms:>5}  {result}"
    )


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pairs",
        default="3.4-3.5,3.5-charm,3.5-3.4",
        help="comma-separated <from>-<to>; to = a version, or 'charm' for a charm-only refresh",
    )
    args = parser.parse_args()
    pairs = parse_pairs(args.pairs)
    logging.getLogger().setLevel(logging.WARNING)
    for noisy in ("ops", "scenario"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    why = can_run()
    if why:
        print(why, file=sys.stderr)
        return 2
    missing = sorted({v for p in pairs for v in p if v != "charm" and installed(v) is None})
    if missing:
        print(f"etcd {', '.join(missing)} not installed", file=sys.stderr)
        return 2
    started = time.monotonic()
    print(HEADER, flush=True)
    for start, to in pairs:
        print(measure(start, to), flush=True)
    print(f"(total {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
