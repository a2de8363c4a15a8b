"""Requirer side of the `etcd_client` interface (v0): a client charm's way into etcd-k8s.

The client asks for a key prefix and hands over the certificate it will connect with; etcd-k8s
answers with endpoints, the etcd user (the certificate's CN) and the CA that signs its servers.
The client's private key never leaves the client charm: only the certificate is shared, in a
Juju secret granted to the relation. All fields live in the application databags.

Usage::

    from charms.etcd_k8s.v0.etcd_client import EtcdClientRequires

    class MyCharm(ops.CharmBase):
        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            self.etcd = EtcdClientRequires(self, "etcd", prefix="/my-app/")
            framework.observe(self.on.leader_elected, self._on_cert)  # and when the cert renews
            framework.observe(self.etcd.on.changed, self._on_etcd_changed)

        def _on_cert(self, _event: ops.EventBase):
            self.etcd.set_certificate(read_my_leaf_cert_pem())  # leader only

        def _on_etcd_changed(self, _event: ops.EventBase):
            conn = self.etcd.connection()  # None until served; see provider_status()
            if conn:  # the key stays with this charm; write conn.tls_ca to ca.pem
                client = conn.etcd3_client("/certs/cert.pem", "/certs/key.pem", "/certs/ca.pem")
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import ops

# The unique Charmhub library identifier, never change it
LIBID = "586270a3df6b48239cadad953f48eac8"

# Increment this major API version when introducing breaking changes
LIBAPI = 0

# Increment this PATCH version before using `charmcraft publish-lib` or reset
# to 0 if you are raising the major API version
LIBPATCH = 2

logger = logging.getLogger(__name__)

DEFAULT_CLIENT_PORT = 2379
REQUESTED_SECRETS = json.dumps(["username", "uris", "tls", "tls-ca"])
PROVIDED_SECRETS = json.dumps(["mtls-cert"])


def _secret_key(uri: str | None) -> str:
    """The secret's unique part, so `secret:x` and `secret://<model>/x` compare equal."""
    if not uri:
        return ""
    return uri.strip().rsplit("/", 1)[-1].removeprefix("secret:")


def _host_port(endpoint: str) -> tuple[str, int]:
    """Host and port of `https://host:port` or `host:port` (port defaults to 2379)."""
    split = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    if not split.hostname:
        raise ValueError(f"no host in etcd endpoint {endpoint!r}")
    return split.hostname, split.port or DEFAULT_CLIENT_PORT


def _urls(raw: str | None, scheme: str = "") -> tuple[str, ...]:
    """A comma list of client URLs (`uris`), or of host:port (`endpoints`) given a scheme."""
    items = (item.strip() for item in (raw or "").split(","))
    return tuple(f"{scheme}://{i}" if scheme and "://" not in i else i for i in items if i)


@dataclass(frozen=True)
class EtcdConnection:
    """Everything a client needs to connect, besides its own certificate and key files."""

    endpoints: tuple[str, ...]
    username: str
    tls_ca: str
    version: str
    prefix: str

    def etcdctl_args(self, cert_path: str, key_path: str, ca_path: str) -> list[str]:
        """etcdctl flags for this connection; `ca_path` should hold `tls_ca`."""
        return [
            f"--endpoints={','.join(self.endpoints)}",
            f"--cacert={ca_path}",
            f"--cert={cert_path}",
            f"--key={key_path}",
        ]

    def etcd3_client(
        self,
        cert_path: str,
        key_path: str,
        ca_path: str,
        endpoint: str | None = None,
        timeout: float = 10,
    ) -> Any:
        """An `etcd3.Etcd3Client` for one endpoint (the first by default).

        etcd3 is imported here so charms that only use etcdctl do not need it; its generated
        protobuf code needs the pure-Python protobuf implementation unless told otherwise.
        """
        host, port = _host_port(endpoint or self.endpoints[0])
        os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
        import etcd3

        return etcd3.client(
            host=host,
            port=port,
            ca_cert=ca_path,
            cert_cert=cert_path,
            cert_key=key_path,
            timeout=timeout,
        )


class EtcdClientChangedEvent(ops.RelationEvent):
    """The relation or one of the provider's secrets changed: re-read `connection()`."""


class EtcdClientGoneEvent(ops.RelationEvent):
    """The relation is going away: stop using its connection."""


class EtcdClientEvents(ops.ObjectEvents):
    """Events of `EtcdClientRequires`."""

    changed = ops.EventSource(EtcdClientChangedEvent)
    gone = ops.EventSource(EtcdClientGoneEvent)


class EtcdClientRequires(ops.Object):
    """The client charm's end of an `etcd_client` relation."""

    on = EtcdClientEvents()
    _stored = ops.StoredState()

    def __init__(self, charm: ops.CharmBase, relation_name: str = "etcd", prefix: str = ""):
        super().__init__(charm, relation_name)
        self.charm = charm
        self.relation_name = relation_name
        self.prefix = prefix
        # The unit's own copy of the certificate, so relations created later get it unasked.
        self._stored.set_default(cert_pem="")
        events = charm.on[relation_name]
        for event in (events.relation_created, events.relation_joined, events.relation_changed):
            self.framework.observe(event, self._on_relation_event)
        self.framework.observe(events.relation_broken, self._on_relation_broken)
        self.framework.observe(charm.on.secret_changed, self._on_secret_changed)

    def set_certificate(self, cert_pem: str) -> None:
        """Hand the client's leaf certificate (PEM) to etcd-k8s on every relation.

        Only the leader can own and grant the application secret that carries it, so call this
        on the leader (and again on leader-elected and whenever the certificate is renewed).
        """
        if not self.model.unit.is_leader():
            raise RuntimeError(
                "EtcdClientRequires.set_certificate: only the leader unit can publish the "
                "client certificate; call it when self.unit.is_leader()"
            )
        self._stored.cert_pem = cert_pem
        for relation in self.model.relations[self.relation_name]:
            self._publish_certificate(relation, cert_pem)

    def connection(self, relation: ops.Relation | None = None) -> EtcdConnection | None:
        """The connection etcd-k8s serves on `relation`, or None while it does not (yet).

        Without `relation`, the one relation of `relation_name` is used (ops raises
        TooManyRelatedAppsError if there are several: pass one).
        """
        relation = relation if relation is not None else self._relation()
        if relation is None or self.provider_status(relation):
            return None
        data = relation.data[relation.app]
        endpoints = _urls(self._read_secret(data.get("secret-user"), "uris") or data.get("uris"))
        if not endpoints:  # a provider before LIBPATCH 2's time: host:port only
            endpoints = _urls(data.get("endpoints"), scheme="https")
        if not endpoints:
            return None
        username = self._read_secret(data.get("secret-user"), "username")
        tls_ca = self._read_secret(data.get("secret-tls"), "tls-ca")
        if not username or not tls_ca:
            return None
        return EtcdConnection(
            endpoints=endpoints,
            username=username,
            tls_ca=tls_ca,
            version=data.get("version", ""),
            prefix=self.prefix,
        )

    def provider_status(self, relation: ops.Relation | None = None) -> str | None:
        """Why etcd-k8s does not serve the request (`waiting: ...`/`refused: ...`), or None.
        The gravest of `provider_statuses()`, in one line."""
        statuses = self.provider_statuses(relation)
        if not statuses:
            return None
        worst = max(statuses, key=lambda s: s["code"])
        kind = "refused" if worst["code"] >= 5000 else "waiting"
        return f"{kind}: {worst['message']}"

    def provider_statuses(self, relation: ops.Relation | None = None) -> list[dict[str, Any]]:
        """The provider's statuses for this relation: `{code, message, resolution}` each; code
        4xxx waits (it resolves by itself), 5xxx is refused (change the request)."""
        relation = relation if relation is not None else self._relation()
        if relation is None:
            return []
        raw = relation.data[relation.app].get("status", "").strip()
        if not raw:
            return []
        try:
            parsed = json.loads(raw)
        except ValueError:  # etcd-k8s before LIBPATCH 2 wrote one line of text
            refused = raw.startswith("refused")
            message = raw.split(":", 1)[-1].strip()
            return [{"code": 5000 if refused else 4000, "message": message, "resolution": ""}]
        if not isinstance(parsed, list):
            return []
        return [s for s in parsed if isinstance(s, dict) and isinstance(s.get("code"), int)]

    def _on_relation_event(self, event: ops.RelationEvent) -> None:
        if self.model.unit.is_leader():
            self._write(
                event.relation,
                {
                    "prefix": self.prefix,
                    "requested-secrets": REQUESTED_SECRETS,
                    "provided-secrets": PROVIDED_SECRETS,
                },
            )
            if self._stored.cert_pem:
                self._publish_certificate(event.relation, self._stored.cert_pem)
        self.on.changed.emit(event.relation, app=event.relation.app)

    def _on_relation_broken(self, event: ops.RelationBrokenEvent) -> None:
        if self.model.unit.is_leader():
            # The certificate secret was made for this relation only: don't leave it behind.
            try:
                self.model.get_secret(label=self._cert_label(event.relation)).remove_all_revisions()
            except (ops.SecretNotFoundError, ops.ModelError) as e:
                logger.debug("no certificate secret to remove for %s: %s", event.relation, e)
        self.on.gone.emit(event.relation, app=event.relation.app)

    def _on_secret_changed(self, event: ops.SecretChangedEvent) -> None:
        """The provider rotated the user or the CA: tell the charm, for the relation it is on."""
        changed = _secret_key(event.secret.id)
        if not changed:
            return
        for relation in self.model.relations[self.relation_name]:
            data = relation.data[relation.app]
            provider_secrets = {data.get("secret-user"), data.get("secret-tls")}
            if changed in {_secret_key(uri) for uri in provider_secrets}:
                self.on.changed.emit(relation, app=relation.app)

    def _publish_certificate(self, relation: ops.Relation, cert_pem: str) -> None:
        """Create (and grant) or update this relation's certificate secret; no-op if unchanged."""
        content = {"mtls-cert": cert_pem}
        label = self._cert_label(relation)
        try:
            secret = self.model.get_secret(label=label)
        except ops.SecretNotFoundError:
            secret = self.model.app.add_secret(content, label=label)
            secret.grant(relation)
        else:
            if secret.get_content(refresh=True) != content:
                secret.set_content(content)
        # Looked up by label, ops does not know the URI: ask Juju.
        uri = secret.id or secret.get_info().id
        self._write(relation, {"secret-mtls": uri})

    def _relation(self) -> ops.Relation | None:
        return self.model.get_relation(self.relation_name)

    def _cert_label(self, relation: ops.Relation) -> str:
        return f"{self.relation_name}-{relation.id}-mtls"

    def _read_secret(self, uri: str | None, field: str) -> str:
        """A field of a provider secret, or "" when it is absent or not (yet) readable."""
        if not uri:
            return ""
        try:
            return self.model.get_secret(id=uri).get_content(refresh=True).get(field, "")
        except (ops.SecretNotFoundError, ops.ModelError) as e:
            logger.debug("cannot read secret %s (%s) yet: %s", uri, field, e)
            return ""

    def _write(self, relation: ops.Relation, values: dict[str, str]) -> None:
        """Write only the keys that differ, so no relation-changed is triggered needlessly."""
        data = relation.data[self.model.app]
        for key, value in values.items():
            if data.get(key, "") != value:
                data[key] = value
