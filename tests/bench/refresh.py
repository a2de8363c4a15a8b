"""`juju refresh` on the bench: the StatefulSet's rolling update, as Kubernetes runs it.

`juju refresh etcd-k8s --resource etcd-image=...` (or a new charm revision) changes the pod
template; the StatefulSet controller (RollingUpdate; podManagementPolicy Parallel changes
nothing here) then walks the pods from the highest ordinal down: a pod not on the new revision
is deleted (SIGTERM to its containers, no hook first: Pebble stops etcd with its kill-delay)
and recreated; the walk goes on only once the recreated pod is Ready, which Juju maps to
Pebble's `ready` checks. A pod on the new revision that is not Ready halts the walk too, so a
refused pod halts the roll; a new refresh back to the old revision recreates that pod first,
and leaves the pods already on it alone.

The recreated pod: same unit, same PVC, a new IP, an empty container (no process, no Pebble
plan), the charm directory (StoredState) gone; its hooks are upgrade-charm, config-changed,
start, pebble-ready (the guide, section 1); its binaries those of the new image.

Ready here means: the pod runs, its plan has a `ready` check, and that check has passed since
the pod was recreated. Pebble starts a check "up" before it ever ran; counting that as Ready
would let the roll race ahead of etcd, which the charm's plan must not rely on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.bench.binaries import bin_dir, source_dir

if TYPE_CHECKING:
    from tests.bench.juju import Juju, Unit


@dataclass
class PodStep:
    """One pod of the roll."""

    unit: str
    recreated: bool
    started: float  # time.monotonic() when the old pod got SIGTERM (or the wait began)
    ready_after: float | None = None  # seconds from `started` to Ready; None: never


@dataclass
class Roll:
    """What one refresh did."""

    image: str  # the etcd minor of the new image
    charm_revision: int
    steps: list[PodStep] = field(default_factory=list)
    halted_at: str | None = None  # the unit whose pod did not become Ready
    why: str = ""  # its status then
    seconds: float = 0.0

    @property
    def completed(self) -> bool:
        return self.halted_at is None


def revision(unit: Unit) -> tuple[str, int]:
    return unit.image, unit.charm_revision


def passed_ready(unit: Unit) -> bool:
    """Kubernetes' Ready, as the bench's refresh counts it (see the module's docstring)."""
    pod = unit.pod
    ready = [c for c in pod.checks.values() if c.spec.level == "ready"]
    return pod.ready and bool(ready) and all(c.successes > 0 for c in ready)


def refresh(juju: Juju, image: str | None, timeout: float) -> Roll:
    if image is not None:
        source_dir(image)  # ValueError naming the versions the machine has
        juju.version = image
    else:
        juju.charm_revision += 1
    target = (juju.version, juju.charm_revision)
    roll = Roll(image=juju.version, charm_revision=juju.charm_revision)
    began = time.monotonic()
    for unit in sorted(juju.units.values(), key=lambda u: u.number, reverse=True):
        step = PodStep(unit.name, recreated=revision(unit) != target, started=time.monotonic())
        roll.steps.append(step)
        if step.recreated:
            recreate(juju, unit)
        if not await_ready(juju, unit, timeout):
            roll.halted_at = unit.name
            roll.why = f"{unit.status.name}: {unit.status.message}" if unit.status else "no status"
            break
        step.ready_after = time.monotonic() - step.started
    roll.seconds = time.monotonic() - began
    juju.log.append(
        f"{time.strftime('%H:%M:%S')} refresh to etcd {roll.image} (charm r{roll.charm_revision}): "
        + (f"halted at {roll.halted_at} ({roll.why})" if roll.halted_at else "done")
        + f" in {roll.seconds:.1f}s"
    )
    return roll


def recreate(juju: Juju, unit: Unit) -> None:
    """The pod is deleted (SIGTERM, no hook) and recreated on the new revision."""
    with juju.lock:
        unit.queue.clear()  # the old pod's uniter is gone with it
    unit.pod.delete(grace=True)
    juju.network.remove_pod(unit.pod_name)
    unit.image, unit.charm_revision = juju.version, juju.charm_revision
    unit.pod.bin_dir = bin_dir(juju.version, juju.workdir)
    unit.pod.boot(juju.network.add_pod(unit.pod_name, juju._hostnames(unit)))
    with juju.lock:
        unit.stored_states = frozenset()
        unit.deferred = []
        unit.layers = {}
        unit.queue.clear()
        unit.queue.extend([("upgrade-charm",), ("config-changed",), ("start",), ("pebble-ready",)])
        juju.lock.notify_all()


def await_ready(juju: Juju, unit: Unit, timeout: float) -> bool:
    """Run what comes in until the pod is Ready. A pod whose unit settled Blocked with nothing
    queued stays unready (Kubernetes would wait forever): the roll halts at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        juju.settle()
        if passed_ready(unit):
            return True
        blocked = unit.status is not None and unit.status.name == "blocked"
        if blocked and not unit.queue and not any(u.queue for u in juju.units.values()):
            return False
        time.sleep(0.3)
    return False
