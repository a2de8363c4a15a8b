"""Pebble's health checks on the bench: each check of a unit's plan runs at its `period`, inside
the pod (its network namespace and mounts), with its `timeout`; `threshold` consecutive failures
take it down, one success brings it back up. Going down queues `pebble-check-failed` on that
unit, coming back `pebble-check-recovered`, as Juju does with what Pebble reports. The pod is
ready (Kubernetes' readiness, which Juju wires to Pebble's /v1/health?level=ready) while every
`ready` and `alive` check is up.

Pebble's semantics kept: a check starts up with no failures; a check whose definition changed
starts over; the checks die with the pod (a recreated pod has no plan until a hook adds one).
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ops import pebble

logger = logging.getLogger(__name__)

TICK = 0.2  # how often the monitor looks for a check that is due

# An http or tcp check, run inside the pod: Python is on every bench host, curl not always.
_HTTP = (
    "import sys, urllib.request\n"
    "headers = dict(h.split(': ', 1) for h in sys.argv[2:])\n"
    "req = urllib.request.Request(sys.argv[1], headers=headers)\n"
    "sys.exit(0 if 200 <= urllib.request.urlopen(req, timeout=30).status < 300 else 1)\n"
)
_TCP = "import socket, sys\nsocket.create_connection((sys.argv[1], int(sys.argv[2])), 30).close()\n"


def parse_duration(value: str | None, default: float) -> float:
    """A Pebble duration ("10s", "500ms", "1m") in seconds."""
    if not value:
        return default
    text = str(value)
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    if text.endswith("s"):
        return float(text[:-1])
    if text.endswith("m"):
        return float(text[:-1]) * 60
    return float(text)


@dataclass(frozen=True)
class CheckSpec:
    """A check as the plan defines it."""

    name: str
    level: str  # alive, ready or unset
    period: float
    timeout: float
    threshold: int
    argv: tuple[str, ...]  # what runs in the pod; exit 0 is a success

    @classmethod
    def of(cls, name: str, check: dict[str, Any]) -> CheckSpec:
        return cls(
            name=name,
            level=str(check.get("level") or "unset"),
            period=parse_duration(check.get("period"), 10.0),
            timeout=parse_duration(check.get("timeout"), 3.0),
            threshold=int(check.get("threshold") or 3),
            argv=_argv(check),
        )


def _argv(check: dict[str, Any]) -> tuple[str, ...]:
    if "exec" in check:
        return tuple(shlex.split(check["exec"]["command"]))
    if "http" in check:
        http = check["http"]
        headers = [f"{k}: {v}" for k, v in (http.get("headers") or {}).items()]
        return ("python3", "-c", _HTTP, http["url"], *headers)
    if "tcp" in check:
        tcp = check["tcp"]
        return ("python3", "-c", _TCP, tcp.get("host") or "localhost", str(tcp["port"]))
    raise ValueError(f"a check with neither exec, http nor tcp: {check}")


@dataclass
class CheckState:
    """Where one check stands: Pebble's counters, and when it runs next."""

    spec: CheckSpec
    status: str = "up"
    failures: int = 0
    successes: int = 0
    next_run: float = 0.0
    running: bool = False
    last_error: str = ""

    def record(self, ok: bool, error: str = "") -> str | None:
        """Count one run; returns "failed" or "recovered" when the status changes."""
        if ok:
            self.successes += 1
            self.failures = 0
            if self.status == "down":
                self.status = "up"
                return "recovered"
            return None
        self.failures += 1
        self.last_error = error
        if self.status == "up" and self.failures >= self.spec.threshold:
            self.status = "down"
            return "failed"
        return None


def plan_checks(layers: dict[str, Any]) -> dict[str, CheckSpec]:
    """The checks of the merged plan (layers in order; the charm's checks replace whole)."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers.values():
        raw = layer.to_dict() if isinstance(layer, pebble.Layer) else dict(layer)
        for name, check in (raw.get("checks") or {}).items():
            merged[name] = dict(check)
    return {name: CheckSpec.of(name, check) for name, check in merged.items()}


def sync(checks: dict[str, CheckState], wanted: dict[str, CheckSpec], now: float) -> None:
    """A hook changed the plan: new or changed checks start over, removed ones go."""
    for name in [n for n in checks if n not in wanted]:
        del checks[name]
    for name, spec in wanted.items():
        current = checks.get(name)
        if current is None or current.spec != spec:
            checks[name] = CheckState(spec, next_run=now + spec.period)


def is_ready(checks: dict[str, CheckState]) -> bool:
    """Pebble's /v1/health?level=ready: every ready and alive check up."""
    return all(c.status == "up" for c in checks.values() if c.spec.level in ("ready", "alive"))


def infos(checks: dict[str, CheckState]) -> list[Any]:
    """The checks as the charm's `container.get_checks()` shows them (Scenario's CheckInfo)."""
    from ops import testing

    return [
        testing.CheckInfo(
            name,
            level=None if c.spec.level == "unset" else c.spec.level,
            status=pebble.CheckStatus(c.status),
            successes=c.successes,
            failures=c.failures,
            threshold=c.spec.threshold,
        )
        for name, c in checks.items()
    ]


@dataclass
class Monitor:
    """One thread for a model: runs every due check of every running pod, each in a thread of
    its own (a check that hangs until its timeout delays no other)."""

    pods: Callable[[], list[Any]]  # the running (unit, pod) pairs, read under `lock`
    notify: Callable[[Any, str, str], None]  # (unit, "failed"|"recovered", check), under `lock`
    lock: Any
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="pebble-checks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(TICK):
            try:
                due = self._due(time.monotonic())
            except RuntimeError:  # a pod's checks changed under us (it was deleted): next tick
                continue
            for unit, pod, state in due:
                threading.Thread(
                    target=self._run, args=(unit, pod, state), name="pebble-check", daemon=True
                ).start()

    def _due(self, now: float) -> list[tuple[Any, Any, CheckState]]:
        with self.lock:
            due = [
                (unit, pod, state)
                for unit, pod in self.pods()
                for state in list(pod.checks.values())
                if not state.running and now >= state.next_run and pod.net is not None
            ]
            for _, _, state in due:
                state.running = True
            return due

    def _run(self, unit: Any, pod: Any, state: CheckState) -> None:
        ok, error = probe(pod, state.spec)
        with self.lock:
            state.running = False
            state.next_run = time.monotonic() + state.spec.period
            if pod.checks.get(state.spec.name) is not state:
                return  # the plan changed or the pod went while it ran
            change = state.record(ok, error)
            if change is not None:
                logger.info("%s: check %s %s (%s)", pod.name, state.spec.name, change, error)
                self.notify(unit, change, state.spec.name)


def probe(pod: Any, spec: CheckSpec) -> tuple[bool, str]:
    """Run the check once in the pod; (success, why not)."""
    try:
        done = subprocess.run(
            [*pod.launcher(), *spec.argv],
            capture_output=True,
            timeout=spec.timeout,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
            cwd="/",
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {spec.timeout:g}s"
    except AssertionError as gone:  # the pod stopped between the pick and the run
        return False, str(gone)
    if done.returncode == 0:
        return True, ""
    lines = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
    return False, lines[-1] if lines else f"exit {done.returncode}"
