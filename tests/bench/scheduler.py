"""Running the model's queued hooks: serially (one hook at a time across the model, the
interleaving chosen by a named policy; reproducible, for debugging) or in parallel, as Juju does.

Parallel mode (BENCH_MODE=parallel, seeded by BENCH_SEED): each unit's queue runs one hook at a
time, all units at once, each hook in a thread of its own. As in Juju:
- a hook sees the relation data as it stood when it started (its State is built then), and its
  own writes reach the others when it ends (committed then);
- leadership moves while hooks run: the old leader's running hook still believes it leads until
  it ends (its State said so), and `leader-elected` is queued on the new leader;
- deferred events and failed-hook retries work as in serial mode (same begin/finish).
The seed picks the order units start in and a small random delay before each hook, so a seed
repeats its interleaving as far as threads and real etcd allow. Every start and end is logged
in `Juju.interleaving`, which a failing test prints.

A hook is three steps: `begin` (under the model's lock: pop the event, snapshot the State),
`execute` (no lock: the charm runs against its pod), `finish` (under the lock: record, commit).
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops import testing

from tests.bench import threads
from tests.bench.juju_hooks import attach, in_pod

if TYPE_CHECKING:
    from tests.bench.juju import ClientApp, Juju, Unit

MAX_RETRIES = 5
MAX_DELAY = 0.25  # seconds; the most a parallel hook waits before it starts


@dataclass
class Hook:
    """One hook run: what it was given when it began, and how it ended."""

    unit: Unit
    event: tuple[str, ...]
    state: testing.State
    trigger: Any
    leader: bool  # what the hook believes for its whole run
    began: float
    out: testing.State | None = None
    error: BaseException | None = None


def begin(juju: Juju, unit: Unit) -> Hook | None:
    """Pop the unit's next event and snapshot what its hook sees. None: the event no longer
    applies (a check the plan dropped since it was queued) and is skipped."""
    event = unit.queue.popleft()
    state = juju._state_for(unit)
    if event[0].startswith("pebble-check-"):
        container = state.get_container("etcd")
        if event[1] not in {c.name for c in container.check_infos}:
            return None
    trigger = juju._event(unit, event, state)
    return Hook(unit, event, state, trigger, state.leader, time.monotonic())


def execute(juju: Juju, hook: Hook) -> None:
    unit = hook.unit
    attach(unit)
    unit.run_starts.append(time.time())
    try:
        pod = in_pod(juju.fqdn(unit), juju.resolve)
        with threads.hook_environment(), pod, juju._charm_code():
            hook.out = unit.ctx.run(hook.trigger, hook.state)
    except Exception as error:  # the hook failed: Juju drops its writes and retries it
        hook.error = error


def finish(juju: Juju, hook: Hook) -> None:
    unit, event = hook.unit, hook.event
    unit.runs += 1
    took = f"({time.monotonic() - hook.began:.2f}s)"
    if hook.error is not None or hook.out is None:
        unit.failures += 1
        cause = getattr(hook.error, "__cause__", None) or hook.error
        tb = cause.__traceback__ if cause is not None else None
        where = traceback.extract_tb(tb)[-1] if tb else None
        at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
        juju._record(unit, event, f"FAILED: {type(cause).__name__}{at}: {cause} {took}")
        if unit.failures <= MAX_RETRIES:
            unit.queue.appendleft(event)
        return
    juju._record(unit, event, f"{hook.out.unit_status} {took}")
    juju._commit(unit, hook.out, leader=hook.leader)
    if event[0] == "client-broken":
        unit.clients_broken.add(int(event[1]))
    if event[0] == "cos-broken":
        unit.cos.discard(event[1])
        if not any(event[1] in u.cos for u in juju.units.values()):
            del juju.cos[event[1]]
    if event[0] == "tls-broken":
        unit.tls_broken.add(event[1])
        if all(event[1] in u.tls_broken for u in juju.units.values()):
            del juju.tls_relations[event[1]]


def run_serially(juju: Juju, unit: Unit) -> None:
    with juju.lock:
        hook = begin(juju, unit)
    if hook is None:
        return
    execute(juju, hook)
    with juju.lock:
        finish(juju, hook)


def pick(juju: Juju) -> Unit | None:
    """Serial mode: which unit's hook runs next, by the model's named policy."""
    ready = [u for u in juju.units.values() if u.queue and u.name not in juju.paused]
    if not ready:
        return None
    if juju.scheduler == "reverse":
        return max(ready, key=lambda u: u.number)
    if juju.scheduler == "random":
        return juju.rng.choice(ready)
    if juju.scheduler == "leader-last":
        others = [u for u in ready if u.name != juju.leader]
        return min(others or ready, key=lambda u: u.number)
    return min(ready, key=lambda u: u.number)


def settle_serially(juju: Juju, max_runs: int, until: Callable[[], bool] | None) -> int:
    runs = 0
    while runs < max_runs:
        if until is not None and until():
            return runs
        with juju.lock:
            for gone in [u for u in juju.units.values() if u.leaving and not u.queue]:
                juju._finish_removal(gone)
            client = next((a for a in juju.client_apps.values() if a.queue), None)
            unit = pick(juju) if client is None else None
        if client is not None:
            run_client(juju, client)
            runs += 1
            continue
        if unit is None:
            if until is not None:
                raise RuntimeError("the model settled before the awaited condition held")
            return runs
        run_serially(juju, unit)
        runs += 1
    raise RuntimeError(f"the model did not settle in {max_runs} hooks")


def run_client(juju: Juju, app: ClientApp) -> None:
    with juju.lock:
        event = app.queue.popleft()
        if app.gone:
            return
        state, trigger = juju._client_hook(app, event)
    try:
        with threads.hook_environment():
            out = app.ctx.run(trigger, state)
    except Exception as error:
        cause = getattr(error, "__cause__", None) or error
        juju.log.append(f"{app.name}/0 {event[0]}: FAILED: {type(cause).__name__}: {cause}")
        return
    with juju.lock:
        juju._commit_client(app, event, out)


class Parallel:
    """Parallel mode's scheduler for one model (see the module docstring)."""

    def __init__(self, juju: Juju, seed: int):
        self.juju = juju
        self.seed = seed
        self.rng = random.Random(seed)
        self.running: dict[str, threading.Thread] = {}  # unit or client app name -> its hook
        self.crash: BaseException | None = None  # a bench error in a worker, raised here
        self.t0 = time.monotonic()
        threads.install()

    def note(self, line: str) -> None:
        self.juju.interleaving.append(f"+{time.monotonic() - self.t0:7.2f}s {line}")

    def settle(self, max_runs: int, until: Callable[[], bool] | None) -> int:
        juju, runs = self.juju, 0
        with juju.lock:
            while True:
                if self.crash is not None:
                    self._drain()
                    raise RuntimeError("a bench worker failed") from self.crash
                if until is not None and until():
                    self._drain()
                    return runs
                self._finish_removals()
                if runs >= max_runs:
                    self._drain()
                    raise RuntimeError(f"the model did not settle in {max_runs} hooks")
                runs += self._dispatch(max_runs - runs)
                if not self.running:
                    if until is not None:
                        raise RuntimeError("the model settled before the awaited condition held")
                    return runs
                juju.lock.wait(timeout=1.0)

    def _finish_removals(self) -> None:
        juju = self.juju
        for gone in [u for u in juju.units.values() if u.leaving and not u.queue]:
            if gone.name not in self.running:
                self.note(f"{gone.name} removed")
                juju._finish_removal(gone)

    def _dispatch(self, budget: int) -> int:
        """Start a hook on every idle unit (and client app) with one queued, in seeded order."""
        juju = self.juju
        idle_units = [
            u
            for u in juju.units.values()
            if u.queue and u.name not in self.running and u.name not in juju.paused
        ]
        idle_apps = [a for a in juju.client_apps.values() if a.queue and a.name not in self.running]
        ready: list[Any] = [*idle_units, *idle_apps]
        self.rng.shuffle(ready)
        started = 0
        for who in ready[:budget]:
            delay = self.rng.uniform(0, MAX_DELAY)
            if who in idle_apps:
                self._start(who.name, self._client_worker, who, delay)
            else:
                hook = begin(juju, who)
                if hook is None:
                    continue
                self.note(f"start {who.name} {' '.join(hook.event)} (leader={hook.leader})")
                self._start(who.name, self._worker, hook, delay)
            started += 1
        return started

    def _start(self, name: str, target: Callable[..., None], what: Any, delay: float) -> None:
        thread = threading.Thread(target=target, args=(what, delay), name=f"hook-{name}")
        self.running[name] = thread
        thread.start()

    def _worker(self, hook: Hook, delay: float) -> None:
        juju = self.juju
        try:
            time.sleep(delay)
            execute(juju, hook)
            with juju.lock:
                finish(juju, hook)
                outcome = "FAILED" if hook.error is not None else str(hook.unit.status)
                self.note(f"end   {hook.unit.name} {' '.join(hook.event)}: {outcome}")
        except BaseException as error:  # a bench bug, not a hook failure
            self.crash = error
        finally:
            with juju.lock:
                self.running.pop(hook.unit.name, None)
                juju.lock.notify_all()

    def _client_worker(self, app: ClientApp, delay: float) -> None:
        juju = self.juju
        try:
            time.sleep(delay)
            self.note(f"start {app.name}/0 {app.queue[0][0] if app.queue else '?'}")
            run_client(juju, app)
        except BaseException as error:
            self.crash = error
        finally:
            with juju.lock:
                self.note(f"end   {app.name}/0")
                self.running.pop(app.name, None)
                juju.lock.notify_all()

    def _drain(self) -> None:
        """Let the running hooks end (Juju cannot abort one); start no other."""
        while self.running:
            self.juju.lock.wait(timeout=1.0)
