"""Client-relation figures, measured on the bench with real etcd (a script, not a test).

For each etcd version: 3 units with client TLS, an etcd3 writer running as root (certificate
CN root), then the client steps of issue 6 in order. Per step: wall time until the model
settles, hooks, member restarts, planned leader handovers, elections (raft term bumps besides
them), and what the writer saw (acknowledged, failed, longest gap). At the end: writes lost.

    .venv/bin/python -m benchmarks.clients [--versions 3.4,3.5]   (as root)
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / p) for p in ("src", "lib")]

from tests.bench.binaries import installed  # noqa: E402
from tests.bench.ca import self_signed_client  # noqa: E402
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
        work = Path(j.workdir) / "clients"
        root = j.provider.authority.client_identity(work, "bench-writer", cn="root")
        print(f"\netcd {installed(version)}: 3 units, etcd3 writer running (as root)")
        print(
            f"{'step':<30}{'seconds':>8}{'hooks':>7}{'restarts':>9}{'handovers':>10}"
            f"{'elections':>10}{'acked':>7}{'failed':>7}{'max gap ms':>11}"
        )
        with Writer(j) as writer:
            writer.identities.append(root)

            def step(name: str, act: Callable[[], object], units: int = 3) -> None:
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
                j.client_identity = root
                assert_formed(j, units)
                handovers = count(j, mark, "decision: move-leader")
                elections = raft_term(j) - term - handovers
                print(
                    f"{name:<30}{seconds:>8.1f}{hooks:>7}{count(j, mark, 'decision: restart '):>9}"
                    f"{handovers:>10}{elections:>10}{len(writer.acked) - acked:>7}"
                    f"{writer.failed - failed:>7}{writer.longest_stall * 1000:>11.0f}"
                )

            step("client TLS on, auth on", lambda: j.relate_certificates("client-certificates"))

            def relate_two() -> None:
                for name in ("client-a", "client-b"):
                    pem = self_signed_client(work, name).cert.read_text()
                    j.relate_client(name, f"/{name}/", pem, work / f"{name}.json")

            step("2 clients related, served", relate_two)
            assert all(app.report.get("connection") for app in j.client_apps.values())

            def refused() -> None:
                pem = self_signed_client(work / "x", "x").cert.read_text()
                j.relate_client("overlapping", "/client-a/x/", pem, work / "o.json")

            step("1 client refused (overlap)", refused)
            step(
                "rotate-root-password", lambda: j.run_action(j.leader or "", "rotate-root-password")
            )
            step("client-a removed", lambda: j.remove_client("client-a"))
            step("scale 3 -> 5", lambda: j.add_unit(2), units=5)
            step("scale 5 -> 3", lambda: j.remove_unit(2))
            served = j.client_apps["client-b"].report["connection"]
            assert served and len(served["endpoints"]) == 3, served
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
