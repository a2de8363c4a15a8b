"""Availability figures, measured on the bench with real etcd (a script, not a test).

For each etcd version and each operation: a fresh 3-unit deploy, an independent failover etcd3
writer running through the operation, and what the writer saw (attempted, acknowledged, failed,
retries on another member, acknowledged-but-lost, longest gap between two acknowledgements),
the raft term changes split into handovers (the charm's `decision: move-leader`) and elections
(every other term bump), and the wall time of the operation until the cluster is healthy again.

Planned operations (what an operator does on purpose) should cost no failed write, no election
and no stall over 500 ms; faults may cost some, but never an acknowledged write.

    sudo .venv/bin/python -m benchmarks.availability [--versions 3.4,3.5] [--repeat 1]
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src")]

from tests.bench.binaries import installed  # noqa: E402
from tests.bench.checks import (  # noqa: E402
    assert_formed,
    etcd_leader,
    make_etcd_leader,
    raft_term,
    wait_healthy,
)
from tests.bench.juju import Juju  # noqa: E402
from tests.bench.network import can_run  # noqa: E402
from tests.bench.writer import Writer  # noqa: E402

STALL_BUDGET_MS = 500.0
CUT_SECONDS = 3.0


def settle_and_refresh(j: Juju) -> None:
    """Run what Juju queued, then one update-status round (as the cluster tests do)."""
    j.settle()
    j.update_status()
    j.settle()


def follower(j: Juju) -> str:
    """The lowest-numbered unit whose member is not the raft leader."""
    leader = etcd_leader(j)
    return next(name for name in sorted(j.units) if name != leader)


# ---- operations -------------------------------------------------------------------------------
# Each has an optional `prepare` (before the writer starts, outside the measured window) and an
# `act` (inside it). `act` returns a short note (which unit it hit).


def prepare_follower_is_highest_not_leader(j: Juju) -> str:
    if etcd_leader(j) == "etcd-k8s/2":
        make_etcd_leader(j, "etcd-k8s/0")
    return ""


def prepare_highest_is_leader(j: Juju) -> str:
    make_etcd_leader(j, "etcd-k8s/2")
    leader = etcd_leader(j)
    if leader != "etcd-k8s/2":
        raise RuntimeError(f"move-leader to etcd-k8s/2 did not take: {leader} leads")
    return ""


def scale_down(j: Juju) -> str:
    (gone,) = j.remove_unit(1)
    return f"removed {gone}"


def add_unit(j: Juju) -> str:
    (unit,) = j.add_unit(1)
    return f"added {unit.name}"


def scale_down_up_old_pvc(j: Juju) -> str:
    (gone,) = j.remove_unit(1)
    settle_and_refresh(j)
    (back,) = j.add_unit(1)
    return f"{gone} out, {back.name} back on its old PVC"


def churn_one(j: Juju) -> str:
    victim = follower(j)
    j.churn([victim])
    return f"churned {victim} (follower)"


def kill9_leader(j: Juju) -> str:
    victim = etcd_leader(j)
    j.kill9(victim)
    wait_healthy(j)
    return f"killed {victim}"


def kill9_follower(j: Juju) -> str:
    victim = follower(j)
    j.kill9(victim)
    wait_healthy(j)
    return f"killed {victim}"


def cut_follower(j: Juju) -> str:
    victim = follower(j)
    pod = j.units[victim].pod_name
    j.network.cut(pod)
    try:
        time.sleep(CUT_SECONDS)
    finally:
        j.network.heal(pod)
    wait_healthy(j)
    return f"cut {victim}"


def lost_pvc(j: Juju) -> str:
    role = "leader" if etcd_leader(j) == "etcd-k8s/1" else "follower"
    j.lose_storage("etcd-k8s/1")
    return f"wiped etcd-k8s/1 ({role})"


def churn_all(j: Juju) -> str:
    j.churn(sorted(j.units))
    return "churned all 3"


def rolling_restart(j: Juju) -> str:
    j.set_config(**{"heartbeat-interval": 200, "election-timeout": 2000})
    return "heartbeat 200 ms, election 2000 ms: 3 restarts"


def majority_loss_rebuild(j: Juju) -> str:
    j.churn(["etcd-k8s/1", "etcd-k8s/2"], lose_storage=True)
    settle_and_refresh(j)
    result = j.run_action("etcd-k8s/0", "rebuild-cluster")
    if result.failure:
        raise RuntimeError(f"rebuild-cluster failed: {result.failure}")
    return "2 PVCs lost, rebuilt from etcd-k8s/0"


@dataclass(frozen=True)
class Operation:
    name: str
    kind: str  # planned | fault
    act: Callable[[Juju], str]
    prepare: Callable[[Juju], str] | None = None


OPERATIONS = [
    Operation(
        "scale-down 3->2 (follower)", "planned", scale_down, prepare_follower_is_highest_not_leader
    ),
    Operation("scale-down 3->2 (etcd leader)", "planned", scale_down, prepare_highest_is_leader),
    Operation("add-unit 3->4", "planned", add_unit),
    Operation("scale 3->2->3 (old PVC)", "planned", scale_down_up_old_pvc),
    Operation("pod churn, one unit", "planned", churn_one),
    Operation("rolling restart (config)", "planned", rolling_restart),
    Operation("kill -9 leader", "fault", kill9_leader),
    Operation("kill -9 follower", "fault", kill9_follower),
    Operation(f"cut off a follower {CUT_SECONDS:.0f} s", "fault", cut_follower),
    Operation("lost PVC", "fault", lost_pvc),
    Operation("pod churn, all units", "fault", churn_all),
    Operation("majority lost + rebuild", "fault", majority_loss_rebuild),
]


# ---- measuring --------------------------------------------------------------------------------


@dataclass
class Row:
    op: Operation
    attempted: int = 0
    acknowledged: int = 0
    failed: int = 0
    retries: int = 0
    lost: int = 0
    handovers: int = 0
    elections: int = 0
    stall_ms: float = 0.0
    wall: float = 0.0
    note: str = ""
    error: str | None = None
    phase: str = "start"
    misses: list[str] = field(default_factory=list)


def measure(version: str, op: Operation, row: Row) -> None:
    """Fill `row`; `row.phase` says how far it got if this raises."""
    with Juju.start(version) as j:
        try:
            _measure(j, op, row)
        except Exception:
            diagnose(j, row)
            raise


def diagnose(j: Juju, row: Row) -> None:
    """On stderr (stdout stays the table): the model's last lines and each pod's log tail."""
    print(f"--- {j.version} {row.op.name}: failed in {row.phase}; model log:", file=sys.stderr)
    for line in j.log[-15:]:
        print(f"    {line}", file=sys.stderr)
    for unit in j.units.values():
        try:
            tail = unit.pod.log_path.read_text(errors="replace").splitlines()[-6:]
        except OSError:
            continue
        print(f"  {unit.pod_name} log tail:", file=sys.stderr)
        for line in tail:
            print(f"    {line[:220]}", file=sys.stderr)


def _measure(j: Juju, op: Operation, row: Row) -> None:
    row.phase = "deploy"
    j.deploy(3)
    j.settle()
    assert_formed(j, 3)
    row.phase = "prepare"
    if op.prepare is not None:
        op.prepare(j)
    writer = Writer(j)
    with writer:
        term_before = raft_term(j)
        mark = len(j.log)
        started = time.monotonic()
        row.phase = "operation"
        try:
            row.note = op.act(j)
            settle_and_refresh(j)
            wait_healthy(j)
        finally:
            row.wall = time.monotonic() - started
    row.phase = "report"
    term_after = raft_term(j)
    report = writer.report()
    row.attempted, row.acknowledged = report.attempted, report.acknowledged
    row.failed, row.retries, row.lost = report.failed, report.retries, report.lost
    row.stall_ms = report.longest_stall * 1000
    row.handovers = sum("decision: move-leader" in line for line in j.log[mark:])
    row.elections = max(0, term_after - term_before - row.handovers)
    extras = []
    try:
        assert_formed(j, len(j.units))
    except (AssertionError, RuntimeError) as error:
        extras.append(f"NOT FORMED: {str(error).splitlines()[0][:80]}")
    if report.lost_keys:
        extras.append(f"lost e.g. {report.lost_keys[:3]}")
    row.note = "; ".join([row.note, *extras]) if extras else row.note


def judge(row: Row) -> None:
    """What a planned row misses of its budget (faults are only held to no loss)."""
    if row.error is not None:
        row.misses.append("error")
        return
    if row.lost:
        row.misses.append(f"lost={row.lost}")
    if row.op.kind != "planned":
        return
    if row.failed:
        row.misses.append(f"failed={row.failed}")
    if row.elections:
        row.misses.append(f"elections={row.elections}")
    if row.stall_ms > STALL_BUDGET_MS:
        row.misses.append(f"stall={row.stall_ms:.0f}ms")


HEADER = (
    f"  {'operation':<30} {'kind':<7} {'attempted':>9} {'acked':>6} {'failed':>6} "
    f"{'retries':>7} {'lost':>4} {'handover':>8} {'election':>8} {'stall ms':>8} "
    f"{'wall s':>6}  note"
)


def format_row(row: Row) -> str:
    head = f"  {row.op.name:<30} {row.op.kind:<7}"
    if row.error is not None:
        return f"{head} ERROR {row.error} ({row.wall:.1f} s)"
    return (
        f"{head} {row.attempted:>9} {row.acknowledged:>6} {row.failed:>6} {row.retries:>7} "
        f"{row.lost:>4} {row.handovers:>8} {row.elections:>8} {row.stall_ms:>8.0f} "
        f"{row.wall:>6.1f}  {row.note}"
    )


def brief(error: Exception) -> str:
    """One line: the start of the message and, for etcdctl's multi-line stderr, its last line."""
    lines = [line for line in str(error).splitlines() if line.strip()] or [""]
    if len(lines) == 1:
        return lines[0][:160]
    return f"{lines[0][:70]} ... {lines[-1][-90:]}"


def run_version(version: str, repeat: int) -> list[Row]:
    rows: list[Row] = []
    print(f"== etcd {installed(version)}", flush=True)
    print(HEADER, flush=True)
    for _ in range(repeat):
        for op in OPERATIONS:
            row = Row(op)
            started = time.monotonic()
            try:
                measure(version, op, row)
            except Exception as error:  # one operation failing must not stop the others
                row.wall = time.monotonic() - started
                row.error = f"in {row.phase}: {type(error).__name__}: {brief(error)}"
            judge(row)
            rows.append(row)
            print(format_row(row), flush=True)
    return rows


def verdict(version: str, rows: list[Row]) -> str:
    lost = sum(r.lost for r in rows)
    planned = [r for r in rows if r.op.kind == "planned"]
    planned_misses = [f"{r.op.name} [{', '.join(r.misses)}]" for r in planned if r.misses]
    fault_errors = [r.op.name for r in rows if r.op.kind == "fault" and r.error is not None]
    parts = [f"lost {lost} (target 0) {'OK' if lost == 0 else 'MISS'}"]
    if planned_misses:
        parts.append(
            f"planned: {len(planned) - len(planned_misses)}/{len(planned)} within "
            f"failed=0, elections=0, stall<={STALL_BUDGET_MS:.0f}ms; missed: "
            + "; ".join(planned_misses)
        )
    else:
        parts.append(
            f"planned: all {len(planned)} within failed=0, elections=0, "
            f"stall<={STALL_BUDGET_MS:.0f}ms"
        )
    if fault_errors:
        parts.append("fault rows in error: " + ", ".join(fault_errors))
    return f"verdict etcd {version}: " + " | ".join(parts)


def main() -> int:
    # A SIGTERM unwinds like Ctrl-C, so the bench stops its processes and removes its namespaces.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", default="3.4,3.5")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.WARNING)
    for noisy in ("ops", "scenario"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    why = can_run()
    if why:
        print(why, file=sys.stderr)
        return 2
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    missing = [v for v in versions if installed(v) is None]
    if missing:
        print(f"etcd {', '.join(missing)} not installed", file=sys.stderr)
        return 2
    started = time.monotonic()
    verdicts = []
    for version in versions:
        rows = run_version(version, args.repeat)
        verdicts.append(verdict(version, rows))
    print()
    for line in verdicts:
        print(line)
    print(f"(total {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
