"""What the TLS and client benchmarks share: a table of steps, each run until the model
settles while an etcd3 writer runs, and the command line that runs them per etcd version."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / p) for p in ("src", "lib")]

from tests.bench.ca import Identity  # noqa: E402
from tests.bench.checks import assert_formed, log_count, raft_term  # noqa: E402
from tests.bench.juju import Juju  # noqa: E402
from tests.bench.network import can_run  # noqa: E402
from tests.bench.writer import Writer  # noqa: E402


class Steps:
    """Per step: wall time until the model settles, hooks run, member restarts, planned leader
    handovers, raft term bumps besides them (elections), and what the writer saw."""

    def __init__(self, j: Juju, writer: Writer, width: int = 30):
        self.j, self.writer, self.width = j, writer, width
        print(
            f"{'step':<{width}}{'seconds':>8}{'hooks':>7}{'restarts':>9}{'handovers':>10}"
            f"{'elections':>10}{'acked':>7}{'failed':>7}{'max gap ms':>11}"
        )

    def run(
        self,
        name: str,
        act: Callable[[], object],
        identity: Callable[[], Identity | None] = lambda: None,
        units: int = 3,
    ) -> None:
        j, writer = self.j, self.writer
        mark, term, acked, failed = len(j.log), raft_term(j), len(writer.acked), writer.failed
        writer.longest_stall = 0.0
        started = time.monotonic()
        act()
        hooks = j.settle()
        seconds = time.monotonic() - started
        j.client_identity = identity()  # how the checks reach the members now
        assert_formed(j, units)
        handovers = log_count(j, mark, "decision: move-leader")
        elections = raft_term(j) - term - handovers
        print(
            f"{name:<{self.width}}{seconds:>8.1f}{hooks:>7}"
            f"{log_count(j, mark, 'decision: restart '):>9}{handovers:>10}{elections:>10}"
            f"{len(writer.acked) - acked:>7}{writer.failed - failed:>7}"
            f"{writer.longest_stall * 1000:>11.0f}"
        )

    def summary(self) -> None:
        report = self.writer.report()
        print(
            f"whole run: {report.acknowledged} writes acknowledged, {report.failed} failed, "
            f"{report.lost} acknowledged writes lost"
        )


def main(run: Callable[[str], None], doc: str) -> None:
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--versions", default="3.4,3.5")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    why = can_run()
    if why:
        sys.exit(why)
    for version in args.versions.split(","):
        run(version.strip())
