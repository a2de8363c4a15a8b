"""The `etcd-client` relations in Juju: read what each client asks for, write what it gets.
Thin: what is served and why lives in clients.py.

Wire format (interface etcd_client v0, both sides in the application databags):
  requirer: prefix, secret-mtls (secret: mtls-cert), requested-secrets, provided-secrets
  provider: endpoints, uris, version, secret-user (secret: username), secret-tls (secret:
            tls-ca), and `status` ("waiting: ..." / "refused: ...") while not served.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import ops

import clients

logger = logging.getLogger(__name__)

RELATION = "etcd-client"
ANSWER_KEYS = ("endpoints", "uris", "version", "secret-user", "secret-tls", "status")


@dataclass(frozen=True)
class Served:
    endpoints: tuple[str, ...]
    version: str
    username: str
    tls_ca: str


class ClientRelations:
    def __init__(self, charm: ops.CharmBase, broken_id: int | None = None):
        self.charm = charm
        self.broken_id = broken_id  # the relation whose relation-broken is running

    def relations(self) -> list[ops.Relation]:
        return [
            r
            for r in self.charm.model.relations.get(RELATION, [])
            if r.id != self.broken_id and r.app is not None
        ]

    def requests(self) -> list[clients.Request]:
        return [self._request(r) for r in self.relations()]

    def _request(self, relation: ops.Relation) -> clients.Request:
        app = relation.app.name if relation.app else "?"
        try:
            data = relation.data[relation.app]  # type: ignore[index]
            prefix = data.get("prefix")
            uri = data.get("secret-mtls")
            plain = data.get("mtls-cert")  # a requirer without secrets support
        except ops.ModelError as error:
            return clients.Request(relation.id, app, None, None, f"unreadable data ({error})")
        cert: str | None = plain or None
        if uri:
            try:
                content = self.charm.model.get_secret(id=uri).get_content(refresh=True)
            except (ops.SecretNotFoundError, ops.ModelError) as error:
                logger.warning(
                    "client relation %s (%s): cannot read secret-mtls %s: %s",
                    relation.id,
                    app,
                    uri,
                    error,
                )
                return clients.Request(
                    relation.id,
                    app,
                    prefix,
                    None,
                    "cannot read the secret in secret-mtls (is it granted to this relation?)",
                )
            cert = content.get("mtls-cert") or None
            if cert is None:
                return clients.Request(
                    relation.id, app, prefix, None, "the secret in secret-mtls has no mtls-cert"
                )
        return clients.Request(relation.id, app, prefix, cert)

    def answer(self, relation: ops.Relation, served: Served | None, status: str | None) -> None:
        """Leader only. Served: endpoints, version and the two secrets; otherwise only the
        status, and no credentials left behind."""
        bag = relation.data[self.charm.app]
        wanted: dict[str, str] = {}
        if served is not None:
            user = self._secret(relation, "user", {"username": served.username})
            ca = self._secret(relation, "tls", {"tls-ca": served.tls_ca})
            endpoints = ",".join(served.endpoints)
            wanted = {
                "endpoints": endpoints,
                "uris": endpoints,
                "version": served.version,
                "secret-user": user,
                "secret-tls": ca,
            }
        else:
            wanted = {"status": status or "waiting"}
        for key in ANSWER_KEYS:
            value = wanted.get(key, "")
            if bag.get(key, "") != value:
                if value:
                    bag[key] = value
                else:
                    del bag[key]

    def _secret(self, relation: ops.Relation, kind: str, content: dict[str, str]) -> str:
        label = f"etcd-client-{relation.id}-{kind}"
        try:
            secret = self.charm.model.get_secret(label=label)
            if secret.peek_content() != content:
                secret.set_content(content)
        except ops.SecretNotFoundError:
            secret = self.charm.app.add_secret(
                content, label=label, description=f"etcd {kind} for client relation {relation.id}"
            )
            secret.grant(relation)
        # Looked up by label, ops does not know the id: Juju does.
        secret_id = secret.id or secret.get_info().id
        assert secret_id is not None
        return secret_id

    def drop_secrets(self, relation_id: int) -> None:
        """The relation is gone: so are the secrets made for it."""
        for kind in ("user", "tls"):
            try:
                self.charm.model.get_secret(
                    label=f"etcd-client-{relation_id}-{kind}"
                ).remove_all_revisions()
            except (ops.SecretNotFoundError, ops.ModelError):
                continue
