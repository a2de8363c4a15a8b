"""TLS figures, measured on the bench with real etcd (a script, not a test).

For each etcd version: a fresh 3-unit deploy with an etcd3 writer running (plaintext, and with
a client certificate of each CA in turn: it fails over between members and ways of connecting),
then each TLS step of issue 5 in order. Per step: wall time until the model settles, hooks run,
member restarts, planned leader handovers, raft term bumps besides them (elections), and what
the writer saw in that step (acknowledged, failed, longest gap between acknowledgements).
At the end: acknowledged writes lost over the whole run.

    sudo .venv/bin/python -m benchmarks.tls [--versions 3.4,3.5]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src")]

from tests.bench.binaries import installed  # noqa: E402
from tests.bench.checks import assert_formed, raft_term  # noqa: E402
from tests.bench.juju import Juju  # noqa: E402
from tests.bench.network import can_run  # noqa: E402
from tests.bench.writer import Writer  # noqa: E402


def count(j: Juju, since: int, text: str) -> int:
    return sum(1 for line in j.log[since:] if text in line)


def run(version: str) -> None:
    j = Juju.start(version)
    try:
        j.deploy(3, leader=0)
        j.settle()
        ids = Path(j.workdir) / "ids"
        first = j.provider.authority.client_identity(ids, "bench-writer", cn="root")
        print(f"\netcd {installed(version)}: 3 units, etcd3 writer running")
        print(
            f"{'step':<26}{'seconds':>8}{'hooks':>7}{'restarts':>9}{'handovers':>10}"
            f"{'elections':>10}{'acked':>7}{'failed':>7}{'max gap ms':>11}"
        )
        with Writer(j) as writer:
            writer.identities.append(first)

            def step(name: str, act, identity=lambda: None) -> None:  # type: ignore[no-untyped-def]
                mark, term, acked, failed = (
                    len(j.log),
                    raft_term(j),
                    len(writer.acked),
                    writer.failed,
                )
                writer.longest_stall = 0.0
                started = time.monotonic()
                act()
                hooks = j.settle()
                seconds = time.monotonic() - started
                j.client_identity = identity()  # how the checks reach the members now
                assert_formed(j, 3)
                handovers = count(j, mark, "decision: move-leader")
                elections = raft_term(j) - term - handovers
                print(
                    f"{name:<26}{seconds:>8.1f}{hooks:>7}{count(j, mark, 'decision: restart '):>9}"
                    f"{handovers:>10}{elections:>10}{len(writer.acked) - acked:>7}"
                    f"{writer.failed - failed:>7}{writer.longest_stall * 1000:>11.0f}"
                )

            step("peer TLS on", lambda: j.relate_certificates("peer-certificates"))
            step(
                "client TLS on", lambda: j.relate_certificates("client-certificates"), lambda: first
            )
            step("renewal (same CA)", j.renew_certificates, lambda: first)
            holder: dict[str, object] = {}

            def rotate() -> None:
                authority = j.rotate_ca_authority("bench-ca-2")
                second = authority.client_identity(ids, "bench-writer-2", cn="root")
                both = ids / "both.pem"
                both.write_text(first.ca.read_text() + second.ca.read_text())
                writer.identities[:] = [first.with_ca(both), second.with_ca(both)]
                holder["second"] = second

            step("new CA", rotate, lambda: holder["second"])

            def remove() -> None:
                j.remove_certificates("client-certificates")
                j.remove_certificates("peer-certificates")

            step("TLS removed (both)", remove)
        report = writer.report()
        print(
            f"whole run: {report.acknowledged} writes acknowledged, {report.failed} failed, "
            f"{report.lost} acknowledged writes lost"
        )
    finally:
        j.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", default="3.4,3.5")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    why = can_run()
    if why:
        sys.exit(why)
    for version in args.versions.split(","):
        run(version.strip())


if __name__ == "__main__":
    main()
