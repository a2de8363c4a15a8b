"""The `etcd-client` relations in Juju: read what each client asks for, write what it gets.
Thin: what is served and why lives in clients.py. Both protocols of interface etcd_client, told
apart by the requirer's app databag (`version: v1`, or none for v0), on the same endpoint.

v0 (charm-relation-interfaces etcd_client/v0, data_interfaces' EtcdRequires, our own library):
  requirer: prefix, secret-mtls (secret: mtls-cert), requested-secrets, provided-secrets
  provider: endpoints (host:port,...), version, secret-user (username, and uris when asked
            for), secret-tls (tls-ca, and tls when asked for); each field the requirer does not
            ask for as a secret and that may travel in clear goes in the databag (uris, tls);
            status: a JSON list of {code, message, resolution} while not served.
v1 (dpcharmlibs-interfaces' ResourceRequirerEventHandler, the `requests` contract):
  requirer: version "v1", requests: [{resource, request-id, salt, secret-mtls}, ...]
  provider: version "v1", requests: one response per request ({request-id, salt, resource},
            and once served endpoints, version, secret-user {username, uris}, secret-tls {tls,
            tls-ca}: one pair of secrets per request), data: {request-id: request, ..., and
            "status": the statuses the client saw before this change}, status: as in v0.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import ops

import literals as k
from core import clients

logger = logging.getLogger(__name__)

RELATION = k.CLIENT_RELATION
V0_KEYS = ("endpoints", "uris", "tls", "version", "secret-user", "secret-tls", "status")
V1_KEYS = ("version", "requests", "data", "status")
# data_interfaces' secret groups: a field asked for as a secret goes in its group's secret.
GROUPS = {"username": "user", "uris": "user", "tls": "tls", "tls-ca": "tls"}
ALWAYS_SECRET = ("username", "tls-ca")  # the interface's schema puts these in secrets always


@dataclass(frozen=True)
class Served:
    """What a served request gets."""

    endpoints: tuple[str, ...]  # the voters' client URLs
    version: str
    username: str
    tls_ca: str

    @property
    def host_ports(self) -> str:
        """`endpoints` as the interface's schema has them: host:port, comma-separated."""
        return ",".join(url.split("://", 1)[-1] for url in self.endpoints)

    @property
    def uris(self) -> str:
        return ",".join(self.endpoints)


Answer = Served | clients.Status


class ClientRelations:
    """The `etcd-client` relations: the only code reading and writing their databags."""

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
        return [request for r in self.relations() for request in self._requests(r)]

    @staticmethod
    def is_v1(relation: ops.Relation) -> bool:
        try:
            return relation.data[relation.app].get("version") == "v1"  # type: ignore[index]
        except ops.ModelError:
            return False

    def _requests(self, relation: ops.Relation) -> list[clients.Request]:
        app = relation.app.name if relation.app else "?"
        try:
            data = dict(relation.data[relation.app])  # type: ignore[index]
        except ops.ModelError as error:
            return [clients.Request(relation.id, app, None, None, f"unreadable data ({error})")]
        if data.get("version") != "v1":
            return [self._v0_request(relation, app, data)]
        try:
            entries = json.loads(data.get("requests") or "[]")
            assert isinstance(entries, list) and all(isinstance(e, dict) for e in entries)
        except (ValueError, AssertionError):
            logger.warning("client relation %s (%s): garbage v1 requests", relation.id, app)
            return [clients.Request(relation.id, app, None, None, "`requests` is not a JSON list")]
        return [self._v1_request(relation, app, entry) for entry in entries]

    def _v0_request(
        self, relation: ops.Relation, app: str, data: Mapping[str, str]
    ) -> clients.Request:
        prefix = data.get("prefix")
        cert, problem = self._certificate(relation, app, data.get("secret-mtls"), data)
        return clients.Request(relation.id, app, prefix, cert, problem)

    def _v1_request(
        self, relation: ops.Relation, app: str, entry: Mapping[str, object]
    ) -> clients.Request:
        request_id, salt = entry.get("request-id"), entry.get("salt")
        prefix = entry.get("resource", entry.get("prefix"))
        if not (isinstance(request_id, str) and request_id and isinstance(salt, str)):
            return clients.Request(relation.id, app, None, None, "a request without request-id")
        if entry.get("mtls-cert") and not entry.get("secret-mtls"):
            why = "the certificate came encrypted (a cross-model relation): not supported yet"
            return clients.Request(relation.id, app, None, None, why, request_id, salt)
        uri = entry.get("secret-mtls")
        cert, problem = self._certificate(relation, app, uri if isinstance(uri, str) else None)
        return clients.Request(
            relation.id,
            app,
            prefix if isinstance(prefix, str) else None,
            cert,
            problem,
            request_id,
            salt,
        )

    def _certificate(
        self,
        relation: ops.Relation,
        app: str,
        uri: str | None,
        plain: Mapping[str, str] | None = None,
    ) -> tuple[str | None, str | None]:
        """(certificate, problem): from the secret in secret-mtls, else (a requirer without
        secrets, v0) the databag's mtls-cert; (None, None) while there is none."""
        if not uri:
            return ((plain or {}).get("mtls-cert") or None), None
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
            return None, "cannot read the secret in secret-mtls (is it granted to this relation?)"
        cert = content.get("mtls-cert") or None
        return cert, None if cert else "the secret in secret-mtls has no mtls-cert"

    # ---- answers ---------------------------------------------------------------------------

    def answer(self, relation: ops.Relation, answers: Mapping[str, Answer]) -> None:
        """Leader only. `answers`: request key -> what it gets (Served, or why not)."""
        if self.is_v1(relation):
            self._answer_v1(relation, answers)
        else:
            self._answer_v0(relation, answers.get(str(relation.id)))

    def _answer_v0(self, relation: ops.Relation, answer: Answer | None) -> None:
        bag = relation.data[self.charm.app]
        wanted: dict[str, str] = {}
        if isinstance(answer, Served):
            asked = _requested_secrets(relation)
            values = {
                "username": answer.username,
                "uris": answer.uris,
                "tls": "true",
                "tls-ca": answer.tls_ca,
            }
            hidden: dict[str, dict[str, str]] = {"user": {}, "tls": {}}
            for field, value in values.items():
                if field in ALWAYS_SECRET or field in asked:
                    hidden[GROUPS[field]][field] = value
                else:
                    wanted[field] = value
            wanted["secret-user"] = self._secret(relation, "user", hidden["user"])
            wanted["secret-tls"] = self._secret(relation, "tls", hidden["tls"])
            wanted.update(endpoints=answer.host_ports, version=answer.version)
        else:
            why = answer or clients.status(4003)
            wanted["status"] = json.dumps([why.as_dict()])
        _write(bag, V0_KEYS, wanted)

    def _answer_v1(self, relation: ops.Relation, answers: Mapping[str, Answer]) -> None:
        bag = relation.data[self.charm.app]
        responses: list[dict[str, str]] = []
        data: dict[str, object] = {}
        statuses: dict[int, dict[str, object]] = {}
        for request in self._requests(relation):
            if request.request_id is None:
                continue
            echo = {"resource": request.prefix or "", "request-id": request.request_id}
            echo["salt"] = request.salt or ""
            data[request.request_id] = echo
            answer = answers.get(request.key) or clients.status(4003)
            if isinstance(answer, Served):
                responses.append({**echo, **self._v1_served(relation, request.request_id, answer)})
                continue
            responses.append(echo)
            said = statuses.setdefault(answer.code, answer.as_dict())
            if said["message"] != answer.message:  # two requests, one code: say both
                said["message"] = f"{said['message']}; {answer.message}"
        status = json.dumps([statuses[code] for code in sorted(statuses)]) if statuses else ""
        # The v1 requirer tells raised from resolved by the provider's own data["status"]: the
        # statuses before this write (the same as now, unless this write changes them).
        data["status"] = _status_map(bag.get("status", ""))
        _write(
            bag,
            V1_KEYS,
            {
                "version": "v1",
                "requests": json.dumps(responses, sort_keys=True),
                "data": json.dumps(data, sort_keys=True),
                "status": status,
            },
        )

    def _v1_served(self, relation: ops.Relation, request_id: str, served: Served) -> dict[str, str]:
        user = {"username": served.username, "uris": served.uris}
        tls = {"tls": "true", "tls-ca": served.tls_ca}
        return {
            "endpoints": served.host_ports,
            "version": served.version,
            "secret-user": self._secret(relation, "user", user, request_id),
            "secret-tls": self._secret(relation, "tls", tls, request_id),
        }

    def _secret(
        self,
        relation: ops.Relation,
        kind: str,
        content: dict[str, str],
        request_id: str | None = None,
    ) -> str:
        label = _label(relation.id, kind, request_id)
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

    def drop_secrets(self, key: str) -> None:
        """A request is gone (its relation, or the request within it): so are its secrets."""
        relation_id, _, request_id = key.partition("/")
        for kind in ("user", "tls"):
            try:
                label = _label(int(relation_id), kind, request_id or None)
                self.charm.model.get_secret(label=label).remove_all_revisions()
            except (ops.SecretNotFoundError, ops.ModelError):
                continue


def _label(relation_id: int, kind: str, request_id: str | None) -> str:
    relation = f"{relation_id}-{request_id}" if request_id else str(relation_id)
    return k.CLIENT_SECRET_LABEL.format(relation=relation, kind=kind)


def _requested_secrets(relation: ops.Relation) -> frozenset[str]:
    try:
        raw = relation.data[relation.app].get("requested-secrets", "")  # type: ignore[index]
        asked = json.loads(raw) if raw else []
    except (ops.ModelError, ValueError):
        return frozenset()
    if not isinstance(asked, list):
        return frozenset()
    return frozenset(a for a in asked if isinstance(a, str))


def _status_map(raw: str) -> dict[str, object]:
    """The status list as data_interfaces v1 keeps it in `data`: {"<code>": status}."""
    try:
        entries = json.loads(raw) if raw else []
    except ValueError:
        return {}
    return {str(e["code"]): e for e in entries if isinstance(e, dict) and "code" in e}


def _write(bag: ops.RelationDataContent, keys: tuple[str, ...], wanted: Mapping[str, str]) -> None:
    """Only the keys that differ, and the ones no longer meant deleted (no needless wake-up)."""
    for key in keys:
        value = wanted.get(key, "")
        if bag.get(key, "") != value:
            if value:
                bag[key] = value
            else:
                del bag[key]
