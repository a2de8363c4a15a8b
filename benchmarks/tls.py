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

from pathlib import Path

from benchmarks.steps import Steps, main
from tests.bench.binaries import installed
from tests.bench.juju import Juju
from tests.bench.writer import Writer


def run(version: str) -> None:
    j = Juju.start(version)
    try:
        j.deploy(3, leader=0)
        j.settle()
        ids = Path(j.workdir) / "ids"
        first = j.provider.authority.client_identity(ids, "bench-writer", cn="root")
        print(f"\netcd {installed(version)}: 3 units, etcd3 writer running")
        with Writer(j) as writer:
            writer.identities.append(first)
            steps = Steps(j, writer, width=26)
            steps.run("peer TLS on", lambda: j.relate_certificates("peer-certificates"))
            steps.run(
                "client TLS on", lambda: j.relate_certificates("client-certificates"), lambda: first
            )
            steps.run("renewal (same CA)", j.renew_certificates, lambda: first)
            holder: dict[str, object] = {}

            def rotate() -> None:
                authority = j.rotate_ca_authority("bench-ca-2")
                second = authority.client_identity(ids, "bench-writer-2", cn="root")
                both = ids / "both.pem"
                both.write_text(first.ca.read_text() + second.ca.read_text())
                writer.identities[:] = [first.with_ca(both), second.with_ca(both)]
                holder["second"] = second

            steps.run("new CA", rotate, lambda: holder["second"])  # type: ignore[arg-type,return-value]

            def remove() -> None:
                j.remove_certificates("client-certificates")
                j.remove_certificates("peer-certificates")

            steps.run("TLS removed (both)", remove)
        steps.summary()
    finally:
        j.close()


if __name__ == "__main__":
    main(run, __doc__ or "")
