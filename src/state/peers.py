"""The peer relation, held in one place: what this unit says of itself, what the other units
say, and what the Juju leader says for the application. Every read and write of its databags
goes through `PeerData`; the keys are in literals.py, the models in peer_models.py."""

from __future__ import annotations

import ops

import literals as k
from core.clients import Applied, write_applied
from core.model import (
    KINDS,
    AppState,
    JoinTicket,
    RebuildRecord,
    RestoreRecord,
    TlsRecord,
    UnitInfo,
    UnitTls,
)
from core.schedule import BackupHistory
from state import backup_models as bm
from state import peer_models as pm


class PeerData:
    """The `etcd-peers` relation as this unit sees it during one hook."""

    def __init__(self, unit: ops.Unit, app: ops.Application, relation: ops.Relation):
        self.unit = unit
        self.relation = relation
        self._mine = relation.data[unit]
        self._app = relation.data[app]

    # ---- reading ----------------------------------------------------------------------------

    def app(self) -> AppState:
        return pm.read_app(self._app)

    def published(self) -> UnitInfo | None:
        """What this unit last said of itself."""
        return pm.read_unit(self.unit.name, self._mine)

    def peers(self) -> tuple[UnitInfo, ...]:
        """The other units that have introduced themselves, in unit order."""
        found = (pm.read_unit(u.name, self.relation.data[u]) for u in self.relation.units)
        return tuple(sorted((u for u in found if u), key=lambda u: u.number))

    def present(self) -> frozenset[str]:
        """Member names of every unit Juju has on the relation, this one included, whether or
        not it has written its databag yet: the truth about which units exist."""
        names = {u.name.replace("/", "-") for u in self.relation.units}
        return frozenset({*names, self.unit.name.replace("/", "-")})

    def unit_tls(self) -> dict[str, dict[str, UnitTls | None]]:
        """Every unit's published TLS data, per kind (this unit's included)."""
        bags = {u.name: self.relation.data[u] for u in self.relation.units}
        bags[self.unit.name] = self._mine
        return {
            name: {kind: pm.read_unit_tls(name, bag, kind) for kind in KINDS}
            for name, bag in bags.items()
        }

    def root_secret_id(self) -> str | None:
        return self._app.get(k.APP_ROOT_SECRET) or None

    def backups(self) -> BackupHistory:
        return bm.read_backups(self._app)

    def clients_raw(self) -> str | None:
        return self._app.get(k.APP_CLIENTS) or None

    # ---- this unit --------------------------------------------------------------------------

    def publish(self, info: UnitInfo) -> None:
        pm.write_unit(self._mine, info)

    def publish_tls(self, kind: str, info: UnitTls) -> None:
        pm.write_unit_tls(self._mine, kind, info)

    def record_rebuild(self, record: RebuildRecord) -> None:
        """A change in this databag wakes every peer: they find themselves gone and rejoin."""
        pm.write_rebuild(self._mine, record)

    # ---- the leader's -----------------------------------------------------------------------

    def plan_bootstrap(self, member: str, token: str) -> None:
        self._app.update({k.APP_BOOTSTRAP_MEMBER: member, k.APP_CLUSTER_TOKEN: token})

    def record_cluster(self, cluster_id: str) -> None:
        self._app[k.APP_CLUSTER_ID] = cluster_id

    def publish_ticket(self, ticket: JoinTicket | None) -> None:
        pm.write_ticket(self._app, ticket)

    def grant_turn(self, unit: str) -> None:
        self._app[k.APP_RESTART_TURN] = unit

    def release_turn(self) -> None:
        self._app[k.APP_RESTART_TURN] = ""

    def write_tls(self, kind: str, record: TlsRecord) -> None:
        pm.write_tls(self._app, kind, record)

    def set_auth(self, on: bool) -> None:
        self._app[k.APP_AUTH] = "on" if on else ""

    def write_clients(self, applied: dict[str, Applied]) -> None:
        self._app[k.APP_CLIENTS] = write_applied(applied)

    def record_backups(self, history: BackupHistory) -> None:
        bm.write_backups(self._app, history)

    def set_root_secret(self, secret_id: str) -> None:
        self._app[k.APP_ROOT_SECRET] = secret_id

    def record_restore(self, record: RestoreRecord, token: str, auth_on: bool) -> None:
        """The cluster was restored: its new id and token, the seed as the bootstrap member,
        no join or turn in flight, auth as restored_access left it, client grants to be
        applied again (and checked: `clients` absent), and the record the others act on."""
        self._app.update(
            {
                k.APP_CLUSTER_ID: record.cluster_id,
                k.APP_CLUSTER_TOKEN: token,
                k.APP_BOOTSTRAP_MEMBER: record.seed,
                k.APP_JOIN: "",
                k.APP_RESTART_TURN: "",
                k.APP_AUTH: "on" if auth_on else "",
                k.APP_CLIENTS: "",
            }
        )
        pm.write_restore(self._app, record)
