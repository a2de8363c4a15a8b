"""The bench's parallel scheduler and Pebble checks, on a model of fakes (no etcd, no root):
hooks of different units overlap, one unit's never do; a hook sees the data as it began and
publishes at its end; leadership moves under a running hook; failures retry; a seed repeats
its dispatch order; checks count to their threshold and recover; a hook thread has its own
os.environ."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from ops import pebble

from tests.bench import health, scheduler, threads
from tests.bench.juju import HookQueue


@dataclass
class FakeCtx:
    """A unit's charm: each hook takes `durations[kind]` seconds and writes one key."""

    juju: FakeJuju
    unit_name: str
    durations: dict[str, float] = field(default_factory=dict)
    fail_first: set[str] = field(default_factory=set)

    def run(self, trigger: tuple[str, ...], state: Any) -> Any:
        juju = self.juju
        with juju.lock:
            juju.active.add(self.unit_name)
            juju.max_overlap = max(juju.max_overlap, len(juju.active))
            assert self.unit_name not in juju.inside, "two hooks of one unit at once"
            juju.inside.add(self.unit_name)
        try:
            time.sleep(self.durations.get(trigger[0], 0.05))
            if trigger[0] in self.fail_first:
                self.fail_first.discard(trigger[0])
                raise RuntimeError("hook error")
            seen = dict(state.data)
            return SimpleNamespace(unit_status=f"ok {trigger[0]}", seen=seen, trigger=trigger)
        finally:
            with juju.lock:
                juju.active.discard(self.unit_name)
                juju.inside.discard(self.unit_name)


@dataclass
class FakeUnit:
    name: str
    ctx: FakeCtx
    queue: HookQueue = field(default_factory=HookQueue)
    leaving: bool = False
    runs: int = 0
    failures: int = 0
    run_starts: list[float] = field(default_factory=list)
    status: Any = None
    pod: Any = None
    clients_broken: set[int] = field(default_factory=set)
    tls_broken: set[str] = field(default_factory=set)


@dataclass
class FakeJuju:
    """What the scheduler asks of the model, with the databags as one dict of writes."""

    units: dict[str, FakeUnit] = field(default_factory=dict)
    client_apps: dict[str, Any] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)
    lock: threading.Condition = field(default_factory=threading.Condition)
    interleaving: list[str] = field(default_factory=list)
    leader: str = "u/0"
    data: dict[str, str] = field(default_factory=dict)
    commits: list[tuple[str, str, bool, dict[str, str]]] = field(default_factory=list)
    records: list[str] = field(default_factory=list)
    active: set[str] = field(default_factory=set)
    inside: set[str] = field(default_factory=set)
    max_overlap: int = 0
    tls_relations: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, *events: tuple[str, ...], **durations: float) -> FakeUnit:
        unit = FakeUnit(name, FakeCtx(self, name, durations))
        unit.queue.extend(events)
        self.units[name] = unit
        return unit

    def _state_for(self, unit: FakeUnit) -> Any:
        return SimpleNamespace(leader=self.leader == unit.name, data=dict(self.data))

    def _event(self, unit: FakeUnit, event: tuple[str, ...], state: Any) -> Any:
        return event

    def _record(self, unit: FakeUnit, event: tuple[str, ...], outcome: str) -> None:
        self.records.append(f"{unit.name} {event[0]}: {outcome}")

    def _commit(self, unit: FakeUnit, out: Any, leader: bool) -> None:
        self.data[unit.name] = out.trigger[0]
        unit.status = out.unit_status
        self.commits.append((unit.name, out.trigger[0], leader, out.seen))

    def _finish_removal(self, unit: FakeUnit) -> None:
        del self.units[unit.name]

    def resolve(self, name: str) -> str | None:
        return None

    def fqdn(self, unit: FakeUnit) -> str:
        return f"{unit.name}.bench"

    def _charm_code(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def parallel(juju: FakeJuju, seed: int = 1) -> scheduler.Parallel:
    return scheduler.Parallel(juju, seed)  # type: ignore[arg-type]


def test_units_run_at_once_and_each_unit_one_hook_at_a_time() -> None:
    juju = FakeJuju()
    for n in range(3):
        juju.add(f"u/{n}", ("install",), ("start",), install=0.3, start=0.1)
    runs = parallel(juju).settle(100, None)
    assert runs == 6
    assert juju.max_overlap >= 2  # different units overlapped
    order = [(c[0], c[1]) for c in juju.commits]
    for n in range(3):  # and each unit's hooks stayed in its queue's order
        mine = [kind for name, kind in order if name == f"u/{n}"]
        assert mine == ["install", "start"]
    assert sum(" start u/" in line for line in juju.interleaving) == 6


def test_a_hook_sees_the_data_as_it_began_and_publishes_at_its_end() -> None:
    juju = FakeJuju()
    juju.add("u/0", ("slow",), slow=0.4)
    juju.add("u/1", ("quick",), ("after",), quick=0.05, after=0.05)
    parallel(juju).settle(100, None)
    seen = {(name, kind): s for name, kind, _, s in juju.commits}
    # u/1's first hook began while u/0's ran: it saw nothing of u/0's write...
    assert "u/0" not in seen[("u/1", "quick")]
    # ...and u/0, which began before u/1 wrote anything, never saw that write either.
    assert "u/1" not in seen[("u/0", "slow")]
    # The order of commits is the order of ends: the quick hook published first.
    assert [c[1] for c in juju.commits].index("quick") < [c[1] for c in juju.commits].index("slow")


def test_leadership_moves_while_the_old_leaders_hook_runs() -> None:
    juju = FakeJuju(leader="u/0")
    juju.add("u/0", ("config-changed",), **{"config-changed": 0.5})
    new = juju.add("u/1")
    sched = parallel(juju)
    moved = threading.Event()

    def move() -> None:
        time.sleep(0.15)  # the old leader's hook has begun
        with juju.lock:
            juju.leader = "u/1"
            new.queue.append(("leader-elected",))
            juju.lock.notify_all()
        moved.set()

    threading.Thread(target=move).start()
    sched.settle(100, None)
    assert moved.is_set()
    by_kind = {c[1]: c for c in juju.commits}
    assert by_kind["config-changed"][2] is True  # it still believed it led, to its end
    assert by_kind["leader-elected"][0] == "u/1" and by_kind["leader-elected"][2] is True


def test_a_failed_hook_is_retried_first() -> None:
    juju = FakeJuju()
    unit = juju.add("u/0", ("start",), ("pebble-ready",))
    unit.ctx.fail_first = {"start"}
    parallel(juju).settle(100, None)
    assert [c[1] for c in juju.commits] == ["start", "pebble-ready"]
    assert unit.failures == 1 and any("FAILED" in r for r in juju.records)


def test_paused_units_wait_and_leaving_units_go_once_idle() -> None:
    juju = FakeJuju()
    juju.add("u/0", ("update-status",))
    leaving = juju.add("u/1", ("stop",))
    leaving.leaving = True
    juju.paused.add("u/0")
    parallel(juju).settle(100, None)
    assert "u/1" not in juju.units and juju.units["u/0"].queue  # removed; the paused one waits


def test_until_stops_dispatching_and_waits_for_running_hooks() -> None:
    juju = FakeJuju()
    juju.add("u/0", ("a",), ("b",), ("c",), a=0.2)
    juju.add("u/1", ("a",), a=0.3)
    runs = parallel(juju).settle(100, lambda: "u/0" in juju.data)
    assert runs >= 2 and not juju.active  # nothing left running when settle returns


def test_the_same_seed_dispatches_in_the_same_order() -> None:
    def first_round(seed: int) -> list[str]:
        juju = FakeJuju()
        for n in range(5):
            juju.add(f"u/{n}", ("install",), install=0.01)
        parallel(juju, seed).settle(100, None)
        return [line.split(" start ")[1] for line in juju.interleaving if " start " in line]

    assert first_round(7) == first_round(7)
    assert len({tuple(first_round(s)) for s in range(6)}) > 1


def test_a_crash_of_the_bench_itself_is_raised() -> None:
    juju = FakeJuju()
    juju.add("u/0", ("install",))

    def broken(*_: Any, **__: Any) -> None:
        raise KeyError("bench bug")

    juju._commit = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="a bench worker failed"):
        parallel(juju).settle(100, None)


# ---- Pebble checks ----------------------------------------------------------------------------

SPEC = health.CheckSpec("ready", "ready", period=10.0, timeout=3.0, threshold=3, argv=("true",))


def test_a_check_goes_down_at_its_threshold_and_recovers_on_one_success() -> None:
    state = health.CheckState(SPEC)
    assert [state.record(False, "no") for _ in range(2)] == [None, None]
    assert state.status == "up" and state.failures == 2
    assert state.record(False, "no") == "failed" and state.status == "down"
    assert state.record(False, "no") is None  # reported once
    assert state.record(True) == "recovered" and state.failures == 0
    assert state.record(True) is None


def test_checks_come_from_the_merged_plan() -> None:
    base = pebble.Layer(
        {"checks": {"ready": {"override": "replace", "level": "ready", "period": "2s",
                              "threshold": 2, "exec": {"command": "etcdctl endpoint health"}}}}
    )  # fmt: skip
    extra = {"checks": {"web": {"override": "replace", "http": {"url": "http://x:1/h"}},
                        "port": {"override": "replace", "level": "alive",
                                 "tcp": {"port": 2379}}}}  # fmt: skip
    specs = health.plan_checks({"etcd": base, "extra": extra})
    assert specs["ready"].argv == ("etcdctl", "endpoint", "health")
    assert (specs["ready"].period, specs["ready"].threshold) == (2.0, 2)
    assert specs["web"].argv[:2] == ("python3", "-c") and specs["web"].argv[3] == "http://x:1/h"
    assert specs["port"].argv[-2:] == ("localhost", "2379") and specs["port"].level == "alive"
    assert specs["web"].level == "unset" and specs["web"].timeout == 3.0
    with pytest.raises(ValueError, match="neither exec"):
        health.CheckSpec.of("bad", {"level": "ready"})


def test_a_changed_check_starts_over_and_a_removed_one_goes() -> None:
    checks: dict[str, health.CheckState] = {}
    health.sync(checks, {"ready": SPEC}, now=100.0)
    checks["ready"].record(False)
    health.sync(checks, {"ready": SPEC}, now=200.0)
    assert checks["ready"].failures == 1  # same definition: kept
    changed = health.CheckSpec("ready", "ready", 5.0, 3.0, 3, ("false",))
    health.sync(checks, {"ready": changed}, now=300.0)
    assert checks["ready"].failures == 0 and checks["ready"].next_run == 305.0
    health.sync(checks, {}, now=400.0)
    assert not checks


def test_readiness_follows_ready_and_alive_checks_only() -> None:
    unset = health.CheckSpec("other", "unset", 10.0, 3.0, 1, ("true",))
    checks = {"ready": health.CheckState(SPEC), "other": health.CheckState(unset)}
    assert health.is_ready(checks) and health.is_ready({})
    checks["other"].record(False)
    assert checks["other"].status == "down" and health.is_ready(checks)
    for _ in range(3):
        checks["ready"].record(False)
    assert not health.is_ready(checks)
    (info,) = [i for i in health.infos(checks) if i.name == "ready"]
    assert info.status == pebble.CheckStatus.DOWN and info.failures == 3


def test_durations() -> None:
    assert health.parse_duration("500ms", 1) == 0.5
    assert health.parse_duration("1m", 1) == 60
    assert health.parse_duration("7", 1) == 7
    assert health.parse_duration(None, 4) == 4


# ---- a hook thread's own environment ----------------------------------------------------------


def test_each_hook_thread_has_its_own_environment() -> None:
    threads.install()
    seen: dict[str, str | None] = {}
    barrier = threading.Barrier(2)

    def hook(name: str) -> None:
        with threads.hook_environment():
            os.environ["JUJU_UNIT_NAME"] = name
            barrier.wait()
            seen[name] = os.environ.get("JUJU_UNIT_NAME")
            del os.environ["JUJU_UNIT_NAME"]

    before = os.environ.get("JUJU_UNIT_NAME")
    workers = [threading.Thread(target=hook, args=(n,)) for n in ("u/0", "u/1")]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert seen == {"u/0": "u/0", "u/1": "u/1"}
    assert os.environ.get("JUJU_UNIT_NAME") == before
    assert "PATH" in os.environ.copy() and len(os.environ) > 0


def test_the_monitor_runs_due_checks_and_reports_failure_and_recovery() -> None:
    failing = health.CheckSpec("ready", "ready", period=0.05, timeout=2.0, threshold=2,
                               argv=("false",))  # fmt: skip
    pod = SimpleNamespace(name="p", net=object(), checks={}, launcher=lambda: [])
    health.sync(pod.checks, {"ready": failing}, now=0.0)
    lock = threading.Condition()
    seen: list[tuple[str, str]] = []
    monitor = health.Monitor(lambda: [("u/0", pod)], lambda u, c, n: seen.append((c, n)), lock)
    monitor.start()
    try:
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == [("failed", "ready")]
        with lock:
            pod.checks["ready"].spec = dataclasses.replace(failing, argv=("true",))
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == [("failed", "ready"), ("recovered", "ready")]
    finally:
        monitor.stop()
