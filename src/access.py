"""Who may do what in etcd: the root user, etcd auth on and off, and the client relations'
users and roles. Run by the Juju leader from the reconcile loop.

etcd auth is on exactly while client TLS is on. Without TLS, a password or token would cross
the network in clear text, and gRPC clients refuse to send credentials over plaintext; with
client TLS every client presents a certificate whose common name etcd takes as its user. So:
client TLS on everywhere -> auth on (root user, password from an app-owned Juju secret);
client TLS relation removed -> auth off first, then client TLS rolls off.

The root password lives only in that secret; etcdctl gets it through its environment (never
argv, never a log line) and new passwords go in on stdin.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

import ops

import clients
import membership as core
import recovery
import tls
from client_relations import Answer, ClientRelations, Served
from etcdctl import Etcdctl, EtcdctlError
from toolbox import ActionRefused

if TYPE_CHECKING:
    from reconciler import Reconciler

logger = logging.getLogger(__name__)

ROOT_SECRET_KEY = "root-secret"  # peer app data: the secret's id
ROOT_SECRET_LABEL = "etcd-root-password"
AUTH_KEY = "auth"  # peer app data: "on" once the leader enabled etcd auth
CLIENTS_KEY = "clients"  # peer app data: what is in etcd per client relation


def root_password(charm: ops.CharmBase, app_bag: ops.RelationDataContent) -> str | None:
    secret_id = app_bag.get(ROOT_SECRET_KEY)
    if not secret_id:
        return None
    try:
        return charm.model.get_secret(id=secret_id).get_content(refresh=True).get("password")
    except (ops.SecretNotFoundError, ops.ModelError) as error:
        logger.warning("cannot read the root password secret: %s", error)
        return None


def new_password() -> str:
    return secrets.token_urlsafe(24)


def ensure_root_secret(charm: ops.CharmBase, app_bag: ops.RelationDataContent) -> str:
    """Leader: the root password, made (and kept in an app-owned secret) on first use."""
    password = root_password(charm, app_bag)
    if password:
        return password
    password = new_password()
    secret = charm.app.add_secret(
        {"password": password},
        label=ROOT_SECRET_LABEL,
        description="etcd root user's password (juju run etcd-k8s/leader get-root-password)",
    )
    assert secret.id is not None
    app_bag[ROOT_SECRET_KEY] = secret.id
    return password


def enable_auth(client: Etcdctl, password: str) -> None:
    """Idempotent: root exists with this password and the root role, auth is on. Works on a
    cluster with auth off, and on one with auth already on and this password (a restore)."""
    try:
        client.user_add(clients.ROOT_USER, password)
    except EtcdctlError as error:
        if not error.already_exists:
            raise
        client.user_passwd(clients.ROOT_USER, password)
    client.user_grant_role(clients.ROOT_USER, "root")
    client.auth_enable()


def sweep_client_roles(client: Etcdctl, keep: frozenset[str] = frozenset()) -> list[str]:
    """Delete every client relation role (`etcd-client-*`) but `keep`, and the users that hold
    one: what a restored snapshot brings back of relations that are gone."""
    stale = sorted(
        r for r in client.role_names() if r.startswith(clients.ROLE_PREFIX) and r not in keep
    )
    if not stale:
        return []
    for user in client.user_names():
        if user != clients.ROOT_USER and set(client.user_roles(user)) & set(stale):
            logger.info("decision: client-revoke user=%s (no relation holds it)", user)
            client.user_delete(user)
    for role in stale:
        logger.info("decision: client-revoke role=%s (no relation holds it)", role)
        client.role_delete(role)
    return stale


class Access:
    def __init__(self, rec: Reconciler, relations: ClientRelations | None):
        self.rec = rec
        self.relations = relations
        self.decision: clients.Decision | None = None
        self.notes: list[str] = []  # for the app status
        self.refused: str | None = None  # the same, for refused client relations

    @property
    def waits(self) -> str | None:
        return "; ".join([*([self.refused] if self.refused else []), *self.notes]) or None

    @property
    def auth_on(self) -> bool:
        return self.rec.app_bag.get(AUTH_KEY) == "on"

    # ---- deciding (once per hook, before any TLS step: the clients' leaves are trusted) -----

    def decide(self, obs: core.Observation) -> None:
        if not obs.is_leader or self.relations is None:
            return
        reserved = frozenset({clients.ROOT_USER, *(u.member_name for u in obs.units)})
        client_tls = self.rec.tls.client.stage == "on" and self.auth_on
        requests = self.relations.requests()
        self.decision = clients.decide(requests, client_tls, reserved)
        apps = {r.key: r.app for r in requests}
        refused = []
        for key, why in sorted(self.decision.refusals.items()):
            if why.refused:
                logger.warning("client relation %s (%s): %s", key, apps[key], why.text())
                refused.append(f"{apps[key]} (relation {key})")
        self.refused = f"client relations refused: {', '.join(refused)}" if refused else None

    def extra_trust(self) -> tuple[str, ...]:
        if self.decision is None:
            return ()
        return tuple(g.cert_pem for g in self.decision.grants.values())

    # ---- auth on / off --------------------------------------------------------------------------

    def blocks_client_off(self, step: tls.RecordStep) -> bool:
        """Client TLS must not go off while auth is on: clients would be left with no way in."""
        return (
            isinstance(step, tls.NewRecord)
            and step.record.stage == "off"
            and self.rec.tls.client.stage == "on"
            and self.auth_on
        )

    def act_auth(self, obs: core.Observation) -> bool:
        if not obs.is_leader or obs.cluster is None or obs.app.cluster_id is None:
            return False
        record = self.rec.tls.client
        related = self.rec.offers.related.get(tls.CLIENT, False)
        should_on = related and record.stage == "on" and record.trusted == set(record.bundle_fps)
        should_off = not related or record.stage != "on"
        if (self.auth_on and not should_off) or (not self.auth_on and not should_on):
            return False
        if not recovery.has_quorum(obs.cluster):
            return False
        client = self.rec.voters_client(obs.cluster)
        try:
            if self.auth_on:
                logger.info("decision: auth-disable (client TLS goes off)")
                client.auth_disable()
                self.rec.app_bag[AUTH_KEY] = ""
            else:
                logger.info("decision: auth-enable (client TLS is on on every member)")
                password = ensure_root_secret(self.rec.charm, self.rec.app_bag)
                self.rec.remember_root(password)
                enable_auth(self.rec.client(client.endpoints), password)
                self.rec.app_bag[AUTH_KEY] = "on"
        except EtcdctlError as error:
            why = error.reason
            if error.auth_failed:
                why = (
                    "etcd's root password is not the one in the secret (a restore from a "
                    "snapshot taken before rotate-root-password?)"
                )
            logger.warning("etcd auth: %s", why)
            self.notes.append(f"etcd auth: {why}")
            return False
        self.decide(obs)  # clients are served only while auth is on
        return True

    # ---- client users and roles -----------------------------------------------------------------

    def act_clients(self, obs: core.Observation) -> bool:
        if self.decision is None or obs.cluster is None or not recovery.has_quorum(obs.cluster):
            return False
        raw = self.rec.app_bag.get(CLIENTS_KEY)
        applied = clients.read_applied(raw)
        changes = clients.plan(applied, self.decision.grants)
        if raw and not changes:
            return False
        client = self.rec.voters_client(obs.cluster)
        try:
            if not raw:  # never checked against etcd (a restore, say): drop what no relation holds
                sweep_client_roles(client, frozenset(g.role for g in self.decision.grants.values()))
            for change in changes:
                if isinstance(change, clients.Revoke):
                    _revoke(client, change)
                    applied.pop(change.key, None)
                    if change.key not in self.decision.refusals and self.relations:
                        self.relations.drop_secrets(change.key)
                else:
                    _grant(client, change.grant)
                    applied[change.grant.key] = clients.Applied.of(change.grant)
        except EtcdctlError as error:
            logger.warning("client users: %s", error.reason)
            self.notes.append(f"client users wait: {error.reason}")
            return False
        finally:
            self.rec.app_bag[CLIENTS_KEY] = clients.write_applied(applied)
        return True

    def answer(self, obs: core.Observation) -> None:
        """Leader: every client relation's databag says what it has (or why not)."""
        if self.decision is None or self.relations is None:
            return
        applied = clients.read_applied(self.rec.app_bag.get(CLIENTS_KEY))
        record = self.rec.tls.client
        endpoints = _endpoints(obs.cluster, frozenset(u.member_name for u in obs.units))
        answers: dict[str, Answer] = dict(self.decision.refusals)
        for key, grant in self.decision.grants.items():
            done = applied.get(key)
            if done is None or done != clients.Applied.of(grant):
                answers[key] = clients.status(4003)
            elif grant.cert_fp not in record.trusted:
                answers[key] = clients.status(4004)
            elif not endpoints:
                answers[key] = clients.status(4005)
            else:
                cas = "".join(clients.server_cas(record.bundle))
                answers[key] = Served(endpoints, self.rec.etcd_release(), grant.user, cas)
        for relation in self.relations.relations():
            self.relations.answer(relation, answers)


def _endpoints(view: core.ClusterView | None, staying: frozenset[str]) -> tuple[str, ...]:
    """The voters' client URLs: a learner serves no client requests, and a unit that has left
    the peer relation (scale down) is about to take its member away."""
    if view is None:
        return ()
    return tuple(
        sorted(m.client_urls[0] for m in view.voters if m.client_urls and m.name in staying)
    )


def _grant(client: Etcdctl, grant: clients.Grant) -> None:
    logger.info(
        "decision: client-grant request=%s app=%s user=%s prefix=%s",
        grant.key,
        grant.app,
        grant.user,
        grant.prefix,
    )
    for call in (
        lambda: client.role_add(grant.role),
        lambda: client.user_add(grant.user, None),
    ):
        try:
            call()
        except EtcdctlError as error:
            if not error.already_exists:
                raise
    client.role_grant_prefix(grant.role, grant.prefix)
    client.user_grant_role(grant.user, grant.role)


def _revoke(client: Etcdctl, change: clients.Revoke) -> None:
    logger.info(
        "decision: client-revoke request=%s user=%s prefix=%s",
        change.key,
        change.applied.user,
        change.applied.prefix,
    )
    for call in (
        lambda: client.user_delete(change.applied.user),
        lambda: client.role_delete(change.applied.role),
    ):
        try:
            call()
        except EtcdctlError as error:
            if not error.not_found:
                raise


def rotate_root_password(rec: Reconciler) -> dict[str, str]:
    """New root password: set in etcd first (authenticated with the old one), then in the
    secret; if the secret cannot take it, etcd gets the old one back."""
    old = root_password(rec.charm, rec.app_bag)
    if old is None or rec.app_bag.get(AUTH_KEY) != "on":
        raise ActionRefused(
            "etcd auth is off (it is on while client TLS is on): no root password to rotate"
        )
    view = rec.live_view()
    if view is None or not recovery.has_quorum(view):
        raise ActionRefused("no quorum: a password change needs a healthy cluster")
    new = new_password()
    rec.voters_client(view).user_passwd(clients.ROOT_USER, new)
    try:
        secret = rec.charm.model.get_secret(id=rec.app_bag[ROOT_SECRET_KEY])
        secret.set_content({"password": new})
    except (ops.SecretNotFoundError, ops.ModelError):
        rec.remember_root(new)
        rec.voters_client(view).user_passwd(clients.ROOT_USER, old)
        raise
    logger.info("decision: root password rotated")
    return {"result": "root password rotated; read it with get-root-password"}


def show_root_password(rec: Reconciler) -> dict[str, str]:
    password = root_password(rec.charm, rec.app_bag)
    if password is None:
        raise ActionRefused(
            "no root password yet: etcd auth is turned on (and root made) once client TLS is on"
        )
    return {"username": clients.ROOT_USER, "password": password}
