"""The bench from the command line: watch the charm run a real etcd cluster.

    python -m tests.bench demo [--version 3.5] [--units 3] [--grow-to 5]

Deploys the charm on the bench, prints the member table from real etcdctl, adds units one at a
time, prints it again, writes and reads keys with an independent etcd3 client, and cleans up.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2] / "src")]

from tests.bench.binaries import installed  # noqa: E402
from tests.bench.network import can_run  # noqa: E402


def member_rows(j) -> list[str]:  # type: ignore[no-untyped-def]
    from tests.bench.checks import etcdctl_json

    endpoints = j.client_endpoints()
    members = etcdctl_json(j, ",".join(endpoints), "member", "list")
    statuses = etcdctl_json(j, ",".join(endpoints), "endpoint", "status")
    leader = f"{statuses[0]['Status']['leader']:x}" if statuses else ""
    rows = [f"{'ID':<17} {'NAME':<12} {'ROLE':<8} {'UNIT STATUS':<44} PEER URL"]
    for m in sorted(members["members"], key=lambda m: m.get("name", "")):
        member_id = f"{m['ID']:x}"
        role = "learner" if m.get("isLearner") else ("leader" if member_id == leader else "voter")
        unit = j.units.get(m.get("name", "").replace("etcd-k8s-", "etcd-k8s/"))
        status = f"{unit.status.name}: {unit.status.message}" if unit else "?"
        rows.append(
            f"{member_id:<17} {m.get('name', ''):<12} {role:<8} {status[:44]:<44} "
            + m["peerURLs"][0]
        )
    return rows


def demo(version: str, units: int, grow_to: int) -> int:
    from tests.bench.checks import assert_formed, assert_keys, write_keys
    from tests.bench.juju import Juju

    with Juju.start(version) as j:
        print(
            f"== juju deploy etcd-k8s -n {units}   (etcd {installed(version)}, bench {j.workdir})"
        )
        if j.artifact:
            print(f"   the charm as packed: {j.artifact.root} (ETCD_K8S_CHARM_DIR)")
        started = time.monotonic()
        j.deploy(units)
        hooks = j.settle()
        assert_formed(j, units)
        print(f"   {hooks} hooks, {time.monotonic() - started:.1f} s; leader unit: {j.leader}")
        print("\n".join(member_rows(j)))
        print(f"   app status: {j.app_status.message}")
        written = write_keys(j, "demo", 100)
        print(f"   wrote {len(written)} keys with etcd3")
        for count in range(units + 1, grow_to + 1):
            print(f"\n== juju add-unit etcd-k8s   (-> {count} units)")
            started = time.monotonic()
            j.add_unit(1)
            hooks = j.settle()
            assert_formed(j, count)
            print(f"   {hooks} hooks, {time.monotonic() - started:.1f} s")
        print("\n".join(member_rows(j)))
        print(f"   app status: {j.app_status.message}")
        assert_keys(j, written)
        print(f"   all {len(written)} keys read back from every member")
        print("\n== decisions, as `juju debug-log | grep decision:` would show them")
        print("\n".join(line for line in j.log if "decision:" in line))
    print("\ncleaned up: processes stopped, namespaces and bench directory removed")
    return 0


def main() -> int:
    # A SIGTERM unwinds like Ctrl-C, so the bench stops its processes and removes its namespaces.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("demo", help="deploy, grow and show a cluster through the charm")
    run.add_argument("--version", default="3.5", choices=["3.4", "3.5"])
    run.add_argument("--units", type=int, default=3)
    run.add_argument("--grow-to", type=int, default=5)
    run.add_argument("-v", "--verbose", action="store_true", help="print every hook")
    args = parser.parse_args()
    # ops sets the root logger to DEBUG on every charm run: filter on the handler instead.
    handler = logging.StreamHandler()
    handler.setLevel(logging.INFO if args.verbose else logging.WARNING)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(lambda record: record.name.startswith("tests.bench"))
    logging.getLogger().addHandler(handler)
    why = can_run()
    if why:
        print(f"cannot run the bench: {why}", file=sys.stderr)
        return 2
    if installed(args.version) is None:
        print(
            f"etcd {args.version} is not installed; run ./run-tests or see README", file=sys.stderr
        )
        return 2
    return demo(args.version, args.units, args.grow_to)


if __name__ == "__main__":
    sys.exit(main())
