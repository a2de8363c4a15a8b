"""Who may do what in etcd, decided: etcd auth on or off, and the client relations' users and
roles. The leader's two passes after TLS (engine/access.py carries them out).

etcd auth is on exactly while client TLS is on. Without TLS, a password or token would cross
the network in clear text, and gRPC clients refuse to send credentials over plaintext; with
client TLS every client presents a certificate whose common name etcd takes as its user. So:
client TLS on everywhere -> auth on (root user, password from an app-owned Juju secret);
client TLS relation removed -> auth off first, then client TLS rolls off (core/tls.py holds
the client "off" step until then).
"""

from __future__ import annotations

from core.clients import parse_applied, plan
from core.model import CLIENT, Observation
from core.recovery import has_quorum
from core.steps import ApplyClients, DisableAuth, EnableAuth, Idle, SettleRootPassword


def next_auth_step(obs: Observation) -> EnableAuth | DisableAuth | SettleRootPassword | Idle:
    """Leader: auth follows client TLS, once every member serves it (on) or the relation is
    gone (off first). Needs quorum: the change is a raft write. A rotation cut short is
    settled first: every later step authenticates as root."""
    if not obs.is_leader or obs.cluster is None or obs.app.cluster_id is None:
        return Idle()
    if obs.root_in_doubt:
        return SettleRootPassword() if has_quorum(obs.cluster) else Idle()
    record = obs.app.tls.client
    related = CLIENT in obs.tls.related
    should_on = related and record.stage == "on" and record.trusted == set(record.bundle_fps)
    should_off = not related or record.stage != "on"
    if (obs.app.auth_on and not should_off) or (not obs.app.auth_on and not should_on):
        return Idle()
    if not has_quorum(obs.cluster):
        return Idle()
    return DisableAuth() if obs.app.auth_on else EnableAuth()


def next_clients_step(obs: Observation) -> ApplyClients | Idle:
    """Leader: etcd's client users and roles to what the relations are granted; when etcd was
    never checked against them (peer data `clients` absent: after a restore, say), roles no
    relation holds are swept as well (and when it is unreadable)."""
    state = obs.clients
    if state is None or obs.cluster is None or not has_quorum(obs.cluster):
        return Idle()
    applied = parse_applied(state.applied_raw)
    changes = tuple(plan(applied or {}, state.decision.grants))
    checked = applied is not None
    if checked and not changes:
        return Idle()
    keep = frozenset(g.role for g in state.decision.grants.values())
    return ApplyClients(changes, sweep=not checked, keep=keep)
