"""Client-relation figures, measured on the bench with real etcd (a script, not a test).

For each etcd version: 3 units with client TLS, an etcd3 writer running as root (certificate
CN root), then the client steps of issue 6 in order. Per step: wall time until the model
settles, hooks, member restarts, planned leader handovers, elections (raft term bumps besides
them), and what the writer saw (acknowledged, failed, longest gap). At the end: writes lost.

    .venv/bin/python -m benchmarks.clients [--versions 3.4,3.5]   (as root)
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.steps import Steps, main
from tests.bench.binaries import installed
from tests.bench.ca import self_signed_client
from tests.bench.juju import Juju
from tests.bench.writer import Writer


def run(version: str) -> None:
    j = Juju.start(version)
    try:
        j.deploy(3, leader=0)
        j.settle()
        work = Path(j.workdir) / "clients"
        root = j.provider.authority.client_identity(work, "bench-writer", cn="root")
        print(f"\netcd {installed(version)}: 3 units, etcd3 writer running (as root)")
        with Writer(j) as writer:
            writer.identities.append(root)
            steps = Steps(j, writer)
            as_root = lambda: root  # noqa: E731

            relate_tls = lambda: j.relate_certificates("client-certificates")  # noqa: E731
            steps.run("client TLS on, auth on", relate_tls, as_root)

            def relate_two() -> None:
                for name in ("client-a", "client-b"):
                    pem = self_signed_client(work, name).cert.read_text()
                    j.relate_client(name, f"/{name}/", pem, work / f"{name}.json")

            steps.run("2 clients related, served", relate_two, as_root)
            assert all(app.report.get("connection") for app in j.client_apps.values())

            def refused() -> None:
                pem = self_signed_client(work / "x", "x").cert.read_text()
                j.relate_client("overlapping", "/client-a/x/", pem, work / "o.json")

            steps.run("1 client refused (overlap)", refused, as_root)
            rotate = lambda: j.run_action(j.leader or "", "rotate-root-password")  # noqa: E731
            steps.run("rotate-root-password", rotate, as_root)
            steps.run("client-a removed", lambda: j.remove_client("client-a"), as_root)
            steps.run("scale 3 -> 5", lambda: j.add_unit(2), as_root, units=5)
            steps.run("scale 5 -> 3", lambda: j.remove_unit(2), as_root)
            served = j.client_apps["client-b"].report["connection"]
            assert served and len(served["endpoints"]) == 3, served
        steps.summary()
    finally:
        j.close()


if __name__ == "__main__":
    main(run, __doc__ or "")
