"""Building what one hook of the bench sees and running it in its pod: the State a unit's hook
gets from the model (`state_for`), the ops.testing event for a queued bench event (`event_for`),
and the process-wide patches that make a hook feel at home in its pod."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import yaml
from ops import testing
from scenario import _runtime as scenario_runtime

from tests.bench import health
from tests.bench.cos import INTERFACES, REMOTE_APPS
from tests.bench.pod import CONTAINER_PATHS, STORAGE_PATH

if TYPE_CHECKING:
    from pathlib import Path

    from tests.bench.juju import Juju, Unit

APP = "etcd-k8s"
MODEL = "bench"
PEER = "etcd-peers"
RELATION_ID = 7
PROVIDER = "self-signed-certificates"
TLS_RELATION_IDS = {"peer-certificates": 20, "client-certificates": 21}
CLIENT_RELATION = "etcd-client"
S3_RELATION = "s3-credentials"
S3_RELATION_ID = 40

Event = tuple[str, ...]  # ("config-changed",), ("relation-changed", "etcd-k8s/1"), ...


def state_for(juju: Juju, unit: Unit) -> testing.State:
    """What the unit's hook sees, from the model's truth as it stands now."""
    relation = testing.PeerRelation(
        PEER,
        id=RELATION_ID,
        local_app_data=dict(juju.app_data),
        local_unit_data=dict(juju.databags[unit.name]),
        peers_data={
            juju.units[name].number: dict(juju.databags[name])
            for name in sorted(unit.sees)
            if name in juju.units
        },
    )
    container = testing.Container(
        "etcd",
        can_connect=unit.pod.net is not None,
        layers=unit.layers,
        check_infos=health.infos(unit.pod.checks),  # what its Pebble's checks say now
        mounts={
            "data": testing.Mount(location=STORAGE_PATH, source=unit.pod.storage_dir),
            **{
                p: testing.Mount(location=p, source=unit.pod.container_dir(p))
                for p in CONTAINER_PATHS
            },
        },
    )
    tls_relations = {
        testing.Relation(
            name,
            id=TLS_RELATION_IDS[name],
            interface="tls-certificates",
            remote_app_name=PROVIDER,
            remote_app_data=dict(juju.tls_relations[name]),
            remote_units_data={0: {}},
            local_unit_data=dict(unit.tls_bags.get(name, {})),
        )
        for name in juju.tls_relations
        if name in unit.tls_bags and name not in unit.tls_broken
    }
    client_relations = {
        testing.Relation(
            CLIENT_RELATION,
            id=app.relation_id,
            interface="etcd_client",
            remote_app_name=app.name,
            remote_app_data=dict(app.app_data),
            remote_units_data={0: {}},
            local_app_data=dict(juju.client_answers.get(app.relation_id, {})),
        )
        for app in juju.client_apps.values()
        if app.relation_id in unit.client_relations and app.relation_id not in unit.clients_broken
    }
    granted = [
        consumer_view(s)
        for app in juju.client_apps.values()
        if app.relation_id in unit.client_relations
        for s in app.secrets
    ]
    cos_relations = {
        testing.Relation(
            endpoint,
            id=juju.cos[endpoint].id,
            interface=INTERFACES[endpoint],
            remote_app_name=REMOTE_APPS[endpoint],
            remote_app_data=dict(juju.cos[endpoint].remote_app_data),
            remote_units_data={n: dict(d) for n, d in juju.cos[endpoint].remote_units.items()},
            local_app_data=dict(juju.cos[endpoint].app_data),
            local_unit_data=dict(juju.cos[endpoint].unit_data.get(unit.name, {})),
        )
        for endpoint in sorted(unit.cos)
    }
    s3_relations, s3_secrets = juju._s3_state()
    address = juju.network.pods[unit.pod_name].address if unit.pod.net else "192.0.2.1"
    return testing.State(
        leader=juju.leader == unit.name,
        config=dict(juju.config),
        relations={relation, *tls_relations, *client_relations, *cos_relations, *s3_relations},
        secrets=[*unit.secrets, *juju.app_secrets.values(), *granted, *s3_secrets],
        networks={
            testing.Network(PEER, bind_addresses=[testing.BindAddress([testing.Address(address)])])
        },
        containers={container},
        storages={testing.Storage("data", index=unit.number)},
        model=testing.Model(name=MODEL, uuid="00000000-0000-4000-8000-00000000beef"),
        deferred=unit.deferred,
        stored_states=unit.stored_states,
        # Juju keeps a status until a hook sets another one.
        **({"unit_status": unit.status} if unit.status is not None else {}),
        **(
            {"app_status": juju.app_status}
            if juju.app_status is not None and juju.leader == unit.name
            else {}
        ),
    )


def event_for(juju: Juju, unit: Unit, event: Event, state: testing.State) -> Any:
    """The ops.testing event for a queued bench event."""
    on = unit.ctx.on
    kind = event[0]
    relation = state.get_relation(RELATION_ID)
    container = state.get_container("etcd")
    simple: dict[str, Callable[[], Any]] = {
        "install": on.install,
        "start": on.start,
        "config-changed": on.config_changed,
        "upgrade-charm": on.upgrade_charm,
        "leader-elected": on.leader_elected,
        "update-status": on.update_status,
        "pebble-ready": lambda: on.pebble_ready(container),
        "storage-attached": lambda: on.storage_attached(next(iter(state.storages))),
        "relation-created": lambda: on.relation_created(relation),
        "storage-detaching": lambda: on.storage_detaching(next(iter(state.storages))),
        "stop": on.stop,
        "remove": on.remove,
    }
    if kind in simple:
        return simple[kind]()
    if kind in ("pebble-check-failed", "pebble-check-recovered"):
        info = container.get_check_info(event[1])
        if kind == "pebble-check-failed":
            return on.pebble_check_failed(container, info=info)
        return on.pebble_check_recovered(container, info=info)
    if kind.startswith("client-"):
        client_relation = state.get_relation(int(event[1]))
        if kind == "client-created":
            return on.relation_created(client_relation)
        if kind == "client-joined":
            return on.relation_joined(client_relation, remote_unit=0)
        if kind == "client-changed":
            return on.relation_changed(client_relation, remote_unit=0)
        if kind == "client-departed":
            return on.relation_departed(client_relation, remote_unit=0, departing_unit=0)
        if kind == "client-broken":
            return on.relation_broken(client_relation)
    if kind.startswith("cos-"):
        cos_relation = state.get_relation(juju.cos[event[1]].id)
        cos_remote = min(juju.cos[event[1]].remote_units, default=0)
        if kind == "cos-created":
            return on.relation_created(cos_relation)
        if kind == "cos-joined":
            return on.relation_joined(cos_relation, remote_unit=cos_remote)
        if kind == "cos-changed":
            return on.relation_changed(cos_relation, remote_unit=cos_remote)
        if kind == "cos-departed":
            return on.relation_departed(
                cos_relation, remote_unit=cos_remote, departing_unit=cos_remote
            )
        if kind == "cos-broken":
            return on.relation_broken(cos_relation)
    if kind.startswith("s3-"):
        s3_relation = state.get_relation(S3_RELATION_ID)
        if kind == "s3-created":
            return on.relation_created(s3_relation)
        if kind == "s3-joined":
            return on.relation_joined(s3_relation, remote_unit=0)
        return on.relation_changed(s3_relation, remote_unit=0)
    if kind == "secret-changed":
        secret = next(s for s in state.secrets if s.id == event[1])
        return on.secret_changed(secret)
    if kind.startswith("tls-"):
        tls_relation = state.get_relation(TLS_RELATION_IDS[event[1]])
        if kind == "tls-created":
            return on.relation_created(tls_relation)
        if kind == "tls-joined":
            return on.relation_joined(tls_relation, remote_unit=0)
        if kind == "tls-changed":
            return on.relation_changed(tls_relation, remote_unit=0)
        if kind == "tls-departed":
            return on.relation_departed(tls_relation, remote_unit=0, departing_unit=0)
        if kind == "tls-broken":
            return on.relation_broken(tls_relation)
    # An app databag change comes from the leader.
    source = event[1] if len(event) > 1 and event[1] else juju.leader
    remote = int(source.rsplit("/", 1)[1]) if source else None
    if kind == "relation-joined":
        return on.relation_joined(relation, remote_unit=remote)
    if kind == "relation-changed":
        return on.relation_changed(relation, remote_unit=remote)
    if kind == "relation-departed":
        departing = int(event[2].rsplit("/", 1)[1])
        return on.relation_departed(relation, remote_unit=remote, departing_unit=departing)
    raise ValueError(f"unknown event {event}")


# ---- internals ------------------------------------------------------------------------------


def consumer_view(secret: Any) -> Any:
    """A secret as the other application sees it once granted: the latest revision, no owner."""
    return testing.Secret(
        tracked_content=dict(secret.latest_content),
        latest_content=dict(secret.latest_content),
        id=secret.id,
        label=None,
    )


class _FastYaml:
    """Scenario writes the charm's metadata, config and actions out as YAML on every run; the
    pure-Python dumper made that a quarter of the bench's time. Same output, libyaml's speed."""

    def __getattr__(self, name: str) -> Any:
        return getattr(yaml, name)

    @staticmethod
    def safe_dump(data: Any, stream: Any = None, **kwargs: Any) -> Any:
        return yaml.dump(data, stream, Dumper=yaml.CSafeDumper, **kwargs)


if getattr(yaml, "__with_libyaml__", False):
    scenario_runtime.yaml = _FastYaml()  # type: ignore[assignment]

_POD = threading.local()  # the pod whose charm runs in this thread
_host_getfqdn = socket.getfqdn


def _pod_getfqdn(name: str = "") -> str:
    """socket.getfqdn as the charm container sees it: its own pod's name."""
    pod = getattr(_POD, "fqdn", None)
    return pod if pod and not name else _host_getfqdn(name)


_host_getaddrinfo = socket.getaddrinfo


def _pod_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    """The cluster's DNS as the charm container sees it: the pods' names resolve (the charm
    asks the members' metrics listeners for the cluster version by name)."""
    resolve = getattr(_POD, "resolve", None)
    address = resolve(host) if resolve and isinstance(host, str) else None
    return _host_getaddrinfo(address or host, *args, **kwargs)


@contextlib.contextmanager
def in_pod(fqdn: str, resolve: Callable[[str], str | None] | None = None) -> Iterator[None]:
    socket.getfqdn = _pod_getfqdn
    socket.getaddrinfo = _pod_getaddrinfo
    _POD.fqdn = fqdn
    _POD.resolve = resolve
    try:
        yield
    finally:
        _POD.fqdn = None
        _POD.resolve = None


def attach(unit: Unit) -> None:
    """Point the unit's Context at its pod: Pebble calls go to the pod's processes, and the
    `data` storage, as the charm container sees it, is the pod's storage directory (Juju mounts
    storage in the charm container too)."""
    pod = unit.pod
    unit.ctx.bench_pod = pod  # type: ignore[attr-defined]

    def storage_root(name: str, index: int) -> Path:
        return pod.storage_dir

    unit.ctx._get_storage_root = storage_root  # type: ignore[method-assign]
