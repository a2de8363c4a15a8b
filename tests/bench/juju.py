"""A small Juju for the bench: one application of the etcd-k8s charm on a simulated Kubernetes.

Each unit's charm runs through `ops.testing` (`Context.run`) with a State rebuilt from this
model's truth (config, leadership, databags as Juju shares them) plus what the unit carries
between hooks (deferred events, stored state, its Pebble plan while its pod lives). Pebble itself
is real processes in the unit's pod (see pod.py, pebble.py).

Juju semantics modelled:
- the hook sequences of the guide, section 1 (deploy, add-unit, pod churn, and `juju refresh`:
  the StatefulSet's rolling update, each pod with its own image's binaries, refresh.py);
- peer relation: a unit sees a peer's databag once it has had relation-joined for it; a databag
  change queues relation-changed on the units that see the writer; app data only the leader
  writes;
- hook failures: the hook's databag writes are dropped and the hook is retried (side effects on
  real processes stay, as they would);
- deferred events re-run before the next event, by ops itself, since the unit carries them;
- secrets: a unit's own kept across hooks and pod churn; the application's (leader-made) seen by
  every unit; a secret granted over a relation seen by the other application;
- client applications (client_charm.py, one unit each) related on `etcd-client`: app databags
  both ways, relation-changed on the other side when one changes, relation-broken on removal.
- Pebble's health checks (health.py) at their period: pebble-check-failed / -recovered.
How hooks are scheduled (scheduler.py): serially, one hook at a time across the model in an
order a policy picks (the default; reproducible), or with BENCH_MODE=parallel as Juju does, each
unit's hooks in its own thread, all units at once (seeded by BENCH_SEED).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ops import testing

from tests.bench import health
from tests.bench import pebble as bench_pebble
from tests.bench import refresh as refresh_module
from tests.bench import scheduler as scheduler_module
from tests.bench.artifact import ArtifactCharm, preload
from tests.bench.binaries import bin_dir
from tests.bench.ca import Authority, Identity, Provider, requests_in
from tests.bench.client_charm import CONFIG as CLIENT_CONFIG
from tests.bench.client_charm import META as CLIENT_META
from tests.bench.client_charm import BenchClientCharm
from tests.bench.client_v1_charm import CONFIG as V1_CONFIG
from tests.bench.client_v1_charm import META as V1_META
from tests.bench.client_v1_charm import BenchV1ClientCharm
from tests.bench.cos import INTERFACES, CosRelation
from tests.bench.juju_hooks import (
    APP,
    CLIENT_RELATION,
    MODEL,
    PEER,
    PROVIDER,
    RELATION_ID,
    S3_RELATION,
    S3_RELATION_ID,
    TLS_RELATION_IDS,
    Event,
    attach,
    consumer_view,
    event_for,
    in_pod,
    state_for,
)
from tests.bench.network import Network
from tests.bench.pod import CONTAINER_PATHS, STORAGE_PATH, Pod
from tests.bench.refresh import Roll
from tests.bench.s3 import INTEGRATOR, S3Integrator

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
FIRST_CLIENT_RELATION_ID = 30

__all__ = ["APP", "CLIENT_RELATION", "MODEL", "PEER", "PROVIDER", "RELATION_ID", "Juju"]

# Hooks that report a state rather than a happening: Juju's uniter runs one for all the changes
# that came in before it ran (one relation-changed per remote unit, one config-changed, ...).
COALESCED = frozenset(
    {
        "relation-changed",
        "config-changed",
        "update-status",
        "secret-changed",
        "tls-changed",
        "client-changed",
        "s3-changed",
        "cos-changed",
    }
)


class HookQueue(deque):  # type: ignore[type-arg]
    """A unit's pending hooks; a state hook already pending is not queued twice."""

    def append(self, event: Event) -> None:
        if event[0] in COALESCED and event in self:
            return
        super().append(event)

    def extend(self, events: Iterable[Event]) -> None:
        for event in events:
            self.append(event)


def _load(name: str, root: Path = REPO) -> dict[str, Any]:
    return yaml.safe_load((root / name).read_text()) or {}


@dataclass(frozen=True)
class ActionResult:
    results: dict[str, Any]
    failure: str | None
    logs: list[str] = field(default_factory=list)  # event.log lines, as `juju run` shows them


@dataclass
class Unit:
    number: int
    pod: Pod
    ctx: testing.Context[Any]
    queue: HookQueue = field(default_factory=HookQueue)
    sees: set[str] = field(default_factory=set)  # peers this unit has had relation-joined for
    deferred: list[Any] = field(default_factory=list)
    stored_states: frozenset[Any] = frozenset()
    layers: dict[str, Any] = field(default_factory=dict)
    status: Any = None
    leaving: bool = False
    runs: int = 0
    run_starts: list[float] = field(default_factory=list)  # wall clock, for benchmarks
    failures: int = 0
    history: list[str] = field(default_factory=list)
    secrets: list[Any] = field(default_factory=list)  # Juju keeps them across pod churn
    tls_bags: dict[str, dict[str, str]] = field(default_factory=dict)  # relation -> unit databag
    tls_broken: set[str] = field(default_factory=set)  # relations this unit saw broken
    client_relations: set[int] = field(default_factory=set)  # etcd-client relations it joined
    clients_broken: set[int] = field(default_factory=set)
    cos: set[str] = field(default_factory=set)  # COS endpoints it has joined (and not broken)
    image: str = ""  # the etcd minor of its pod's image (refresh.py rolls it)
    charm_revision: int = 0  # the charm revision its pod runs

    @property
    def name(self) -> str:
        return f"{APP}/{self.number}"

    @property
    def pod_name(self) -> str:
        return f"{APP}-{self.number}"


@dataclass
class ClientApp:
    """A client application of one unit (its leader), related to etcd-k8s on etcd-client."""

    name: str
    relation_id: int
    ctx: testing.Context[Any]
    config: dict[str, Any]
    queue: HookQueue = field(default_factory=HookQueue)
    app_data: dict[str, str] = field(default_factory=dict)
    unit_data: dict[str, str] = field(default_factory=dict)  # data_interfaces keeps diffs there
    secrets: list[Any] = field(default_factory=list)  # its own (the mtls-cert one)
    stored_states: frozenset[Any] = frozenset()
    status: Any = None
    gone: bool = False  # the relation was removed

    @property
    def report(self) -> dict[str, Any]:
        path = Path(self.config["report"])
        return json.loads(path.read_text()) if path.exists() else {}


@dataclass
class Juju:
    """The model. Create with `Juju.start(version)`, always `close()` (or use `with`)."""

    version: str
    workdir: Path
    network: Network
    charm_type: type
    config: dict[str, Any] = field(default_factory=dict)
    units: dict[str, Unit] = field(default_factory=dict)
    databags: dict[str, dict[str, str]] = field(default_factory=dict)
    app_data: dict[str, str] = field(default_factory=dict)
    leader: str | None = None
    app_status: Any = None
    scheduler: str = "ordered"  # ordered | reverse | random | leader-last
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    log: list[str] = field(default_factory=list)
    # BENCH_KEEP=1 keeps the work directory (pods' etcd logs, data) for a post-mortem.
    keep: bool = field(default_factory=lambda: bool(os.environ.get("BENCH_KEEP")))
    removed: list[Unit] = field(default_factory=list)
    provider: Provider = field(default_factory=Provider)
    tls_relations: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> provider app
    juju_logs: list[str] = field(default_factory=list)  # every charm log line, for secret checks
    client_identity: Identity | None = None  # set by TLS tests: the host's checks speak https
    app_secrets: dict[str, Any] = field(default_factory=dict)  # etcd-k8s's own, by id
    client_apps: dict[str, ClientApp] = field(default_factory=dict)
    client_answers: dict[int, dict[str, str]] = field(default_factory=dict)  # etcd-k8s's side
    paused: set[str] = field(default_factory=set)  # units whose agent reaches no controller
    domain: str = "cluster.local"  # the Kubernetes cluster's DNS domain
    artifact: ArtifactCharm | None = None  # the charm as packed, instead of the working tree
    s3: S3Integrator | None = None  # s3-integrator, related on s3-credentials
    s3_request: dict[str, str] = field(default_factory=dict)  # etcd-k8s's app data there
    s3_offer: dict[str, str] = field(default_factory=dict)  # s3-integrator's app data
    s3_secret: dict[str, str] | None = None  # the content of its secret-extra secret
    s3_secret_revision: int = 0
    # The model's lock (and its wake-up for the parallel scheduler): held while a hook begins
    # or ends, and while Pebble's checks report; never while a charm runs.
    lock: threading.Condition = field(default_factory=threading.Condition)
    parallel: scheduler_module.Parallel | None = None  # BENCH_MODE=parallel
    interleaving: list[str] = field(default_factory=list)  # parallel mode: who ran what, when
    checks: health.Monitor | None = None
    cos: dict[str, CosRelation] = field(default_factory=dict)  # COS relations, by endpoint
    charm_revision: int = 0  # bumped by a charm-only refresh

    # ---- setup ----------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        version: str,
        scheduler: str = "ordered",
        seed: int | None = None,
        domain: str = "cluster.local",
        charm_dir: Path | str | None = None,
        mode: str | None = None,
    ) -> Juju:
        """`charm_dir` (default: $ETCD_K8S_CHARM_DIR, when set): an unpacked .charm whose
        code, templates and yaml the units run (see ArtifactCharm); else the working tree.
        `mode` (default $BENCH_MODE, else serial): serial or parallel; `seed` (default
        $BENCH_SEED, else 0) seeds the serial random policy and the parallel scheduler."""
        mode = mode or os.environ.get("BENCH_MODE") or "serial"
        if mode not in ("serial", "parallel"):
            raise ValueError(f"BENCH_MODE is serial or parallel, not {mode!r}")
        if seed is None:
            seed = int(os.environ.get("BENCH_SEED") or 0)
        charm_dir = charm_dir or os.environ.get("ETCD_K8S_CHARM_DIR") or None
        artifact = ArtifactCharm.load(Path(charm_dir)) if charm_dir else None
        if artifact is None:
            from charm import EtcdK8sCharm  # the charm under test, from src/

            charm_type: type = EtcdK8sCharm
        else:
            charm_type = artifact.charm_type
            logger.info("bench: the charm from %s", artifact.root)
        bench_pebble.install()
        workdir = Path(tempfile.mkdtemp(prefix=f"etcd-bench-{version}-"))
        network = Network()
        network.setup()
        for path in (STORAGE_PATH, *CONTAINER_PATHS):
            Path(path).mkdir(parents=True, exist_ok=True)  # mount points in the pods
        model = cls(
            version=version,
            workdir=workdir,
            network=network,
            charm_type=charm_type,
            scheduler=scheduler,
            rng=random.Random(seed),
            domain=domain,
            artifact=artifact,
        )
        if mode == "parallel":
            if artifact is None:
                preload(REPO / "src")
            model.parallel = scheduler_module.Parallel(model, seed)
        model.checks = health.Monitor(model._running_pods, model._check_changed, model.lock)
        model.checks.start()
        return model

    def close(self) -> None:
        if self.checks is not None:
            self.checks.stop()
        for unit in self.units.values():
            unit.pod.delete(grace=False)
        self.network.teardown()
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Juju:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- operations a Juju user performs --------------------------------------------------------

    def deploy(self, units: int, leader: int | None = None) -> None:
        """`juju deploy etcd-k8s -n N`: Juju picks a leader (not necessarily /0)."""
        new = [self._new_unit() for _ in range(units)]
        self._elect(new[leader if leader is not None else self.rng.randrange(units)], quiet=True)
        for unit in new:
            self._queue_deploy(unit)
        self._queue_joins(new)

    def add_unit(self, count: int = 1) -> list[Unit]:
        new = [self._new_unit() for _ in range(count)]
        for unit in new:
            self._queue_deploy(unit)
        self._queue_joins(new)
        for unit in new:
            for relation in self.tls_relations:
                self._queue_tls_join(unit, relation)
            for app in self.client_apps.values():
                if not app.gone:
                    self._queue_client_join(unit, app.relation_id)
            if self.s3 is not None:
                unit.queue.extend([("s3-created",), ("s3-joined",), ("s3-changed",)])
        return new

    def move_leader(self, to: str) -> None:
        """Juju leadership moves (the old leader's lease lapsed)."""
        self._elect(self.units[to])

    def churn(self, names: Iterable[str], lose_storage: bool = False) -> None:
        """Pods deleted and recreated by Kubernetes: same unit and PVC, new IP, empty container,
        StoredState and Pebble plan gone.
        Hooks: upgrade-charm, config-changed, start, pebble-ready."""
        chosen = [self.units[n] for n in names]
        # Kubernetes deletes the pods at once; each stops its services within its grace period.
        stoppers = [threading.Thread(target=u.pod.delete) for u in chosen]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        for unit in chosen:
            self.network.remove_pod(unit.pod_name)
            if lose_storage:
                unit.pod.lose_storage()
        for unit in chosen:
            unit.pod.boot(self.network.add_pod(unit.pod_name, self._hostnames(unit)))
            unit.stored_states = frozenset()
            unit.deferred = []
            unit.layers = {}
            unit.queue.clear()
            unit.queue.extend(
                [("upgrade-charm",), ("config-changed",), ("start",), ("pebble-ready",)]
            )

    def refresh(self, image: str | None = None, timeout: float = 180.0) -> Roll:
        """`juju refresh etcd-k8s --resource etcd-image=<etcd image>` (`image`: "3.4" or
        "3.5"), or with no image a new charm revision: the StatefulSet rolls the pods, highest
        ordinal first, each once the previous is Ready (refresh.py). Returns what it did; a
        pod that never becomes Ready (`timeout` s, or Blocked) halts the roll there."""
        return refresh_module.refresh(self, image, timeout)

    def remove_unit(self, count: int = 1, force: bool = False) -> list[str]:
        """`juju scale-application` down: the highest ordinals go. Their hooks run in their
        still-running pods: storage-detaching, relation-departed (for each peer, departing unit
        itself), stop, remove; then the pod is deleted. The others get relation-departed.
        `force`: the unit goes without running a hook (`remove-unit --force`, a dead node)."""
        leaving = sorted(self.units.values(), key=lambda u: u.number)[-count:]
        for unit in leaving:
            unit.leaving = True
            if force:
                unit.queue.clear()
                continue
            unit.queue.append(("storage-detaching",))
            for peer in sorted(unit.sees):
                unit.queue.append(("relation-departed", peer, unit.name))
            unit.queue.extend([("stop",), ("remove",)])
        for unit in leaving:
            for other in self.units.values():
                if other.leaving or unit.name not in other.sees:
                    continue
                other.sees.discard(unit.name)
                other.queue.append(("relation-departed", unit.name, unit.name))
        return [u.name for u in leaving]

    def lose_storage(self, name: str) -> None:
        """The unit's PVC is lost: its pod comes back (churn) with an empty volume."""
        self.churn([name], lose_storage=True)

    def kill9(self, name: str) -> None:
        """etcd crashes; Pebble restarts it (with its backoff). No hook runs."""
        self.units[name].pod.kill9("etcd")

    def run_action(self, name: str, action: str, /, **params: Any) -> ActionResult:
        """`juju run <unit> <action> key=value ...`: runs now, between hooks, as Juju does.
        A failed action still keeps what it wrote to databags (it is not a hook error)."""
        unit = self.units[name]
        with self.lock:
            state = self._state_for(unit)
        attach(unit)
        started = time.monotonic()
        out: testing.State | None
        try:
            with in_pod(self.fqdn(unit), self.resolve), self._charm_code():
                out = unit.ctx.run(unit.ctx.on.action(action, params=params), state)
            result = ActionResult(
                dict(unit.ctx.action_results or {}), None, list(unit.ctx.action_logs)
            )
        except testing.ActionFailed as failed:
            out = failed.state
            result = ActionResult({}, failed.message, list(unit.ctx.action_logs))
        outcome = f"failed: {result.failure}" if result.failure else f"results {result.results}"
        self._record(unit, ("action", action), f"{outcome} ({time.monotonic() - started:.2f}s)")
        if out is not None:
            with self.lock:
                self._commit(unit, out, leader=state.leader)
        return result

    def relate_certificates(self, relation: str) -> None:
        """`juju integrate etcd-k8s:<relation> self-signed-certificates`."""
        assert relation in TLS_RELATION_IDS and relation not in self.tls_relations
        self.tls_relations[relation] = {}
        for unit in self.units.values():
            self._queue_tls_join(unit, relation)

    def remove_certificates(self, relation: str) -> None:
        """`juju remove-relation`: relation-departed then relation-broken on every unit."""
        for unit in self.units.values():
            unit.queue.append(("tls-departed", relation))
            unit.queue.append(("tls-broken", relation))

    def renew_certificates(self) -> None:
        """The provider re-issues every certificate with its CA (a renewal)."""
        self.provider.renew_all()
        self._answer_csrs(force=True)

    def rotate_ca_authority(self, name: str) -> Authority:
        """The provider gets a new CA and re-issues every certificate with it."""
        authority = self.provider.rotate_ca(name)
        self._answer_csrs(force=True)
        return authority

    def _queue_tls_join(self, unit: Unit, relation: str) -> None:
        unit.tls_broken.discard(relation)
        unit.tls_bags.setdefault(relation, {})
        unit.queue.extend(
            [("tls-created", relation), ("tls-joined", relation), ("tls-changed", relation)]
        )

    def _answer_csrs(self, force: bool = False) -> None:
        """The provider answers the CSRs in every unit's databag; a change of its app data
        queues relation-changed on the units of that relation."""
        for relation in self.tls_relations:
            requests = [
                csr
                for unit in self.units.values()
                if relation not in unit.tls_broken
                for csr in requests_in(unit.tls_bags.get(relation, {}))
            ]
            answer = self.provider.answer(requests)
            if answer == self.tls_relations[relation] and not force:
                continue
            self.tls_relations[relation] = answer
            for unit in self.units.values():
                if relation in unit.tls_bags and relation not in unit.tls_broken:
                    unit.queue.append(("tls-changed", relation))

    # ---- s3-integrator ------------------------------------------------------------------------

    def relate_s3(self, integrator: S3Integrator) -> None:
        """`juju integrate etcd-k8s:s3-credentials s3-integrator`."""
        assert self.s3 is None
        self.s3 = integrator
        self.s3_request = {}
        self._answer_s3()
        for unit in self.units.values():
            unit.queue.extend([("s3-created",), ("s3-joined",), ("s3-changed",)])

    def remove_s3(self) -> None:
        """`juju remove-relation etcd-k8s s3-integrator`: the relation, its data and the grant
        of its secret go; the units see it gone from their next hook (the bench runs no
        relation-broken for it). Safe from another thread while an action runs."""
        with self.lock:
            self.s3, self.s3_offer, self.s3_request, self.s3_secret = None, {}, {}, None
            for unit in self.units.values():
                unit.queue.append(("update-status",))

    def configure_s3(self, **config: str) -> None:
        """`juju config s3-integrator ...`: its whole config becomes `config`."""
        assert self.s3 is not None
        self.s3.config = dict(config)
        self._answer_s3()

    def _answer_s3(self) -> None:
        """s3-integrator publishes what it has; a change queues relation-changed (or
        secret-changed for new keys) on every etcd-k8s unit."""
        if self.s3 is None:
            return
        bag, content = self.s3.answer(self.s3_request)
        if content != self.s3_secret and content is not None:
            if self.s3_secret is not None:
                for unit in self.units.values():
                    unit.queue.append(("secret-changed", self.s3.secret_id))
            self.s3_secret = content
            self.s3_secret_revision += 1
        if bag != self.s3_offer:
            self.s3_offer = bag
            for unit in self.units.values():
                unit.queue.append(("s3-changed",))

    # ---- COS (see cos.py) -----------------------------------------------------------------------

    def relate_cos(
        self, endpoint: str, remote_units: dict[int, dict[str, str]] | None = None
    ) -> None:
        """`juju integrate etcd-k8s:<endpoint> <prometheus|grafana|loki>`."""
        assert endpoint in INTERFACES and endpoint not in self.cos
        self.cos[endpoint] = CosRelation(endpoint, remote_units=remote_units or {0: {}})
        for unit in self.units.values():
            self._queue_cos_join(unit, endpoint)

    def set_cos_remote(self, endpoint: str, unit: int, data: dict[str, str]) -> None:
        """A remote unit's databag changes: relation-changed on every etcd-k8s unit."""
        self.cos[endpoint].remote_units[unit] = dict(data)
        for each in self.units.values():
            if endpoint in each.cos:
                each.queue.append(("cos-changed", endpoint))

    def remove_cos(self, endpoint: str) -> None:
        for unit in self.units.values():
            if endpoint in unit.cos:
                unit.queue.extend([("cos-departed", endpoint), ("cos-broken", endpoint)])

    def _queue_cos_join(self, unit: Unit, endpoint: str) -> None:
        unit.cos.add(endpoint)
        unit.queue.extend((f"cos-{kind}", endpoint) for kind in ("created", "joined", "changed"))

    # ---- client applications --------------------------------------------------------------------

    def relate_client(self, name: str, prefix: str, cert_pem: str, report: Path) -> ClientApp:
        """`juju deploy bench-client <name>; juju integrate <name> etcd-k8s:etcd-client`."""
        config = {"prefix": prefix, "cert": cert_pem, "report": str(report)}
        return self._relate(name, BenchClientCharm, CLIENT_META, CLIENT_CONFIG, config)

    def relate_v1_client(
        self, name: str, requests: list[tuple[str, str]], report: Path
    ) -> ClientApp:
        """A client of the v1 protocol (dpcharmlibs-interfaces), one request per (prefix,
        certificate PEM)."""
        wanted = json.dumps([{"prefix": p, "cert": c} for p, c in requests])
        config = {"requests": wanted, "report": str(report)}
        return self._relate(name, BenchV1ClientCharm, V1_META, V1_CONFIG, config)

    def _relate(
        self,
        name: str,
        charm: type,
        meta: dict[str, Any],
        options: dict[str, Any],
        config: dict[str, Any],
    ) -> ClientApp:
        rid = FIRST_CLIENT_RELATION_ID + len(self.client_apps)
        ctx: testing.Context[Any] = testing.Context(
            charm, meta={"name": name, **meta}, config=options, app_name=name, unit_id=0
        )
        app = ClientApp(name, rid, ctx, config)
        app.queue.extend(
            [
                ("install",),
                ("leader-elected",),
                ("config-changed",),
                ("relation-created",),
                ("relation-joined",),
                ("relation-changed",),
            ]
        )
        self.client_apps[name] = app
        for unit in self.units.values():
            self._queue_client_join(unit, rid)
        return app

    def remove_client(self, name: str) -> None:
        """`juju remove-relation`: relation-departed and -broken on both sides."""
        app = self.client_apps[name]
        app.queue.append(("relation-broken",))
        for unit in self.units.values():
            if app.relation_id in unit.client_relations:
                rid = str(app.relation_id)
                unit.queue.extend([("client-departed", rid), ("client-broken", rid)])

    def set_client_certificate(self, name: str, cert_pem: str) -> None:
        app = self.client_apps[name]
        app.config["cert"] = cert_pem
        app.queue.append(("config-changed",))

    def _queue_client_join(self, unit: Unit, rid: int) -> None:
        unit.client_relations.add(rid)
        unit.queue.extend((f"client-{kind}", str(rid)) for kind in ("created", "joined", "changed"))

    def _client_hook(self, app: ClientApp, event: Event) -> tuple[testing.State, Any]:
        """What the client application's hook sees, and its event."""
        relation = testing.Relation(
            "etcd",
            id=app.relation_id,
            interface="etcd_client",
            remote_app_name=APP,
            local_app_data=dict(app.app_data),
            local_unit_data=dict(app.unit_data),
            remote_app_data=dict(self.client_answers.get(app.relation_id, {})),
            remote_units_data={0: {}},
        )
        granted = [
            consumer_view(s)
            for s in self.app_secrets.values()
            if (s.label or "").startswith(f"etcd-client-{app.relation_id}-")
        ]
        state = testing.State(
            leader=True,
            config=dict(app.config),
            relations={relation} if not app.gone else set(),
            secrets=[*app.secrets, *granted],
            stored_states=app.stored_states,
            **({"unit_status": app.status} if app.status is not None else {}),
        )
        on = app.ctx.on
        triggers: dict[str, Callable[[], Any]] = {
            "install": on.install,
            "leader-elected": on.leader_elected,
            "config-changed": on.config_changed,
            "relation-created": lambda: on.relation_created(relation),
            "relation-joined": lambda: on.relation_joined(relation, remote_unit=0),
            "relation-changed": lambda: on.relation_changed(relation, remote_unit=0),
            "relation-broken": lambda: on.relation_broken(relation),
        }
        return state, triggers[event[0]]()

    def _commit_client(self, app: ClientApp, event: Event, out: testing.State) -> None:
        self.log.append(f"{time.strftime('%H:%M:%S')} {app.name}/0 {event[0]}: {out.unit_status}")
        app.stored_states = out.stored_states
        app.status = out.unit_status
        before = {s.id: s.latest_content for s in app.secrets}
        app.secrets = [s for s in out.secrets if s.owner is not None]
        changed_secrets = [
            s.id for s in app.secrets if s.id in before and before[s.id] != s.latest_content
        ]
        if event[0] == "relation-broken":
            app.gone = True
            return
        new: dict[str, str] = dict(out.get_relation(app.relation_id).local_app_data)
        app.unit_data = dict(out.get_relation(app.relation_id).local_unit_data)
        rid = str(app.relation_id)
        for unit in self.units.values():
            if app.relation_id not in unit.client_relations:
                continue
            if new != app.app_data:
                unit.queue.append(("client-changed", rid))
            for secret_id in changed_secrets:
                unit.queue.append(("secret-changed", secret_id))
        app.app_data = new

    def set_config(self, **values: Any) -> None:
        self.config.update(values)
        for unit in self.units.values():
            unit.queue.append(("config-changed",))

    def update_status(self) -> None:
        for unit in self.units.values():
            unit.queue.append(("update-status",))

    # ---- running hooks --------------------------------------------------------------------------

    def pause(self, name: str) -> None:
        """The unit's agent loses the controller: its hooks queue up and do not run."""
        self.paused.add(name)

    def resume(self, name: str) -> None:
        self.paused.discard(name)

    def run_hooks(self, name: str, *events: Event) -> None:
        """Queue `events` on one unit and run its queue alone (others' hooks are late)."""
        unit = self.units[name]
        unit.queue.extend(events)
        while unit.queue:
            scheduler_module.run_serially(self, unit)

    def settle(self, max_runs: int = 500, until: Callable[[], bool] | None = None) -> int:
        """Run queued hooks until none is left (or `until()` holds). Returns hooks run."""
        if self.parallel is not None:
            return self.parallel.settle(max_runs, until)
        return scheduler_module.settle_serially(self, max_runs, until)

    def failures(self) -> list[str]:
        return [line for line in self.log if "FAILED" in line]

    def _record(self, unit: Unit, event: Event, outcome: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {unit.name} {' '.join(event)}: {outcome}"
        self.log.append(line)
        unit.history.append(line)
        logger.info("%s", line)
        for record in unit.ctx.juju_log:
            self.juju_logs.append(record.message)
            if "non-empty filesystem" in record.message:
                continue  # scenario's note on the container dir; the bench mounts what persists
            if "decision:" in record.message or record.level in ("WARNING", "ERROR"):
                self.log.append(f"  {unit.name} {record.message}")
                logger.info("  %s %s", unit.name, record.message)
        unit.ctx.juju_log.clear()

    def _commit(self, unit: Unit, out: testing.State, leader: bool) -> None:
        """A hook ended: its writes reach the model (`leader`: what the hook believed)."""
        peer_relation = out.get_relation(RELATION_ID)
        new_bag: dict[str, str] = dict(peer_relation.local_unit_data)
        if new_bag != self.databags[unit.name]:
            self.databags[unit.name] = new_bag
            for other in self.units.values():
                if unit.name in other.sees:
                    other.queue.append(("relation-changed", unit.name))
        if leader:
            new_app: dict[str, str] = dict(peer_relation.local_app_data)
            if new_app != self.app_data:
                self.app_data = new_app
                for other in self.units.values():
                    if other is not unit and other.sees:
                        other.queue.append(("relation-changed", ""))
            self.app_status = out.app_status
            self._commit_client_answers(out)
            if self.s3 is not None:
                try:
                    request = dict(out.get_relation(S3_RELATION_ID).local_app_data)
                except (KeyError, ValueError):
                    request = self.s3_request
                if request != self.s3_request:
                    self.s3_request = request
                    self._answer_s3()
        unit.deferred = list(out.deferred)
        unit.stored_states = out.stored_states
        # Juju keeps a unit's own secrets; the application's are the leader's to change.
        unit.secrets = [s for s in out.secrets if s.owner == "unit"]
        answer = False
        for relation, relation_id in TLS_RELATION_IDS.items():
            if relation not in unit.tls_bags or relation in unit.tls_broken:
                continue
            try:
                bag: dict[str, str] = dict(out.get_relation(relation_id).local_unit_data)
            except (KeyError, ValueError):
                continue
            if bag != unit.tls_bags[relation]:
                unit.tls_bags[relation] = bag
                answer = True
        if answer:
            self._answer_csrs()
        for endpoint in unit.cos:
            cos = self.cos[endpoint]
            bags = out.get_relation(cos.id)
            cos.unit_data[unit.name] = dict(bags.local_unit_data)
            if leader:
                cos.app_data = dict(bags.local_app_data)
        container = out.get_container("etcd")
        unit.layers = dict(container.layers)
        health.sync(unit.pod.checks, health.plan_checks(unit.layers), time.monotonic())
        unit.status = out.unit_status

    def _commit_client_answers(self, out: testing.State) -> None:
        """The leader's writes to the client relations and to the application's secrets."""
        before = {sid: s.latest_content for sid, s in self.app_secrets.items()}
        self.app_secrets = {s.id: s for s in out.secrets if s.owner == "app"}
        for app in self.client_apps.values():
            if app.gone:
                continue
            try:
                new: dict[str, str] = dict(out.get_relation(app.relation_id).local_app_data)
            except (KeyError, ValueError):
                continue
            secret_moved = any(
                (s.label or "").startswith(f"etcd-client-{app.relation_id}-")
                and before.get(sid) != s.latest_content
                for sid, s in self.app_secrets.items()
            )
            if new != self.client_answers.get(app.relation_id, {}) or secret_moved:
                self.client_answers[app.relation_id] = new
                app.queue.append(("relation-changed",))

    # ---- building what a hook sees (juju_hooks.py) ----------------------------------------------

    def _state_for(self, unit: Unit) -> testing.State:
        return state_for(self, unit)

    def _s3_state(self) -> tuple[list[Any], list[Any]]:
        if self.s3 is None:
            return [], []
        relation = testing.Relation(
            S3_RELATION,
            id=S3_RELATION_ID,
            interface="s3",
            remote_app_name=INTEGRATOR,
            remote_app_data=dict(self.s3_offer),
            remote_units_data={0: {}},
            local_app_data=dict(self.s3_request),
        )
        secrets = []
        if self.s3_secret is not None:  # granted to the relation: every unit reads it
            secrets.append(
                testing.Secret(
                    tracked_content=dict(self.s3_secret),
                    latest_content=dict(self.s3_secret),
                    id=self.s3.secret_id,
                    label=None,
                )
            )
        return [relation], secrets

    def _event(self, unit: Unit, event: Event, state: testing.State) -> Any:
        return event_for(self, unit, event, state)

    # ---- Pebble's checks (health.py) ------------------------------------------------------------

    def _check_changed(self, unit: Unit, change: str, check: str) -> None:
        """A check went down or came back: Juju runs pebble-check-<change> on that unit."""
        if self.units.get(unit.name) is unit:
            unit.queue.append((f"pebble-check-{change}", check))
            self.lock.notify_all()

    def _running_pods(self) -> list[tuple[Unit, Pod]]:
        return [(u, u.pod) for u in self.units.values() if u.pod.net is not None]

    # ---- internals ------------------------------------------------------------------------------

    def _finish_removal(self, unit: Unit) -> None:
        """The departed unit's pod is deleted; its PVC stays (Kubernetes keeps it)."""
        unit.pod.delete(grace=True)
        self.network.remove_pod(unit.pod_name)
        del self.units[unit.name]
        del self.databags[unit.name]
        for cos in self.cos.values():
            cos.unit_data.pop(unit.name, None)
        for other in self.units.values():
            other.sees.discard(unit.name)
        self.removed.append(unit)
        if self.leader == unit.name:
            self.leader = None
            if self.units:
                self._elect(min(self.units.values(), key=lambda u: u.number))

    def _charm_code(self) -> contextlib.AbstractContextManager[None]:
        """While an etcd-k8s hook runs: the artifact's modules, when the bench runs one."""
        return self.artifact.active() if self.artifact else contextlib.nullcontext()

    @property
    def charm_root(self) -> Path:
        """Where the charm's metadata/config/actions yaml come from."""
        return self.artifact.root if self.artifact else REPO

    def _hostnames(self, unit: Unit) -> tuple[str, ...]:
        return (self.fqdn(unit),)

    def resolve(self, name: str) -> str | None:
        """The cluster's DNS, as a charm container asks it: a live pod's address by name."""
        return self.network.resolve(name)

    def fqdn(self, unit: Unit) -> str:
        """The pod's name as its containers see it (Kubernetes writes it in /etc/hosts)."""
        return f"{unit.pod_name}.{APP}-endpoints.{MODEL}.svc.{self.domain}"

    def _new_unit(self) -> Unit:
        used = {u.number for u in self.units.values()}
        number = min(n for n in range(len(used) + 1) if n not in used)
        pod = Pod(
            name=f"{APP}-{number}",
            root=self.workdir / f"unit-{number}",
            bin_dir=bin_dir(self.version, self.workdir),
        )
        ctx: testing.Context[Any] = testing.Context(
            self.charm_type,
            meta=_load("metadata.yaml", self.charm_root),
            config=_load("config.yaml", self.charm_root),
            actions=_load("actions.yaml", self.charm_root),
            app_name=APP,
            unit_id=number,
        )
        unit = Unit(
            number=number, pod=pod, ctx=ctx, image=self.version, charm_revision=self.charm_revision
        )
        self.units[unit.name] = unit
        self.databags[unit.name] = {}
        pod.boot(self.network.add_pod(unit.pod_name, self._hostnames(unit)))
        return unit

    def _queue_deploy(self, unit: Unit) -> None:
        events: list[Event] = [("install",), ("relation-created",)]
        if self.leader == unit.name:
            events.append(("leader-elected",))
        events += [("config-changed",), ("start",), ("pebble-ready",), ("storage-attached",)]
        unit.queue.extend(events)
        for endpoint in self.cos:
            self._queue_cos_join(unit, endpoint)

    def _queue_joins(self, new: list[Unit]) -> None:
        """relation-joined then -changed, both ways, between each new unit and every other."""
        for unit in new:
            for other in self.units.values():
                if other is unit or unit.name in other.sees:
                    continue
                for a, b in ((other, unit), (unit, other)):
                    a.sees.add(b.name)
                    a.queue.extend([("relation-joined", b.name), ("relation-changed", b.name)])

    def _elect(self, unit: Unit, quiet: bool = False) -> None:
        """Leadership moves now; a hook already running keeps the view it began with."""
        with self.lock:
            self.leader = unit.name
            if not quiet:
                unit.queue.append(("leader-elected",))
                self.lock.notify_all()

    # ---- what the tests read --------------------------------------------------------------------

    def address(self, name: str) -> str:
        net = self.network.pods[self.units[name].pod_name]
        return net.address

    def client_endpoints(self, scheme: str | None = None) -> list[str]:
        """Every live pod's client URL; https when the tests hold a client identity."""
        scheme = scheme or ("https" if self.client_identity else "http")
        return [f"{scheme}://{self.address(n)}:2379" for n in self.units if self.units[n].pod.net]

    def resume_provider(self) -> None:
        self.provider.paused = False
        self._answer_csrs()
