"""The peer relation's databags as typed models: what each unit says of itself, and what the
Juju leader says for the application. Data that does not parse is logged and treated as absent,
never trusted. Functions over plain mappings; state/peers.py is the one that holds the bags."""

from __future__ import annotations

import json
import logging
from collections.abc import MutableMapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

import literals as k
from core import model as m
from core.model import (
    EMPTY,
    LEARNER,
    NO_LEADER,
    SERVING,
    STOPPED,
    AppState,
    JoinTicket,
    RebuildRecord,
    RestoreRecord,
    UnitInfo,
)
from core.pem import bundle_of

logger = logging.getLogger(__name__)

_HEX_ID = r"^[0-9a-f]{1,16}$"


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {value!r}")
    return value


class UnitData(BaseModel):
    """A unit's peer databag, as the unit writes it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    member_name: str = Field(alias="member-name", pattern=r"^[a-z0-9][a-z0-9-]*$")
    peer_url: str = Field(alias="peer-url")
    client_url: str = Field(alias="client-url")
    member_id: str | None = Field(None, alias="member-id", pattern=_HEX_ID)
    config_digest: str | None = Field(None, alias="config-digest", pattern=r"^[0-9a-f]{16}$")
    waiting_for: str | None = Field(None, alias="waiting-for", max_length=200)
    member_state: Literal[SERVING, LEARNER, NO_LEADER, STOPPED, EMPTY] | None = Field(  # type: ignore[valid-type]
        None, alias="member-state"
    )

    _check_urls = field_validator("peer_url", "client_url")(_url)

    @field_validator("member_state", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return value or None


class RebuildData(BaseModel):
    """The `rebuild` record a unit leaves after rebuild-cluster."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    member_id: str = Field(alias="member-id", pattern=_HEX_ID)
    cluster_id: str = Field(alias="cluster-id", pattern=_HEX_ID)
    raft_index: int = Field(alias="raft-index", ge=0)
    dropped: list[Annotated[str, Field(pattern=_HEX_ID)]] = []


class TicketData(BaseModel):
    """The leader's join ticket for the one learner it added."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    member_name: str = Field(alias="member-name")
    member_id: str = Field(alias="member-id", pattern=_HEX_ID)
    peer_url: str = Field(alias="peer-url")
    initial_cluster: str = Field(alias="initial-cluster", min_length=3)

    _check_url = field_validator("peer_url")(_url)


class RestoreData(BaseModel):
    """The leader's record of the last whole-cluster restore."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    id: str = Field(pattern=r"^[0-9a-f]{8,32}$")
    snapshot: str = Field(min_length=1)
    superseded: str = Field(pattern=_HEX_ID)
    cluster_id: str = Field(alias="cluster-id", pattern=_HEX_ID)
    seed: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")


def read_unit(unit: str, databag: MutableMapping[str, str]) -> UnitInfo | None:
    if not databag.get(k.UNIT_MEMBER_NAME):
        return None  # the unit has not introduced itself yet
    try:
        data = UnitData.model_validate(dict(databag))
    except ValidationError as error:
        logger.warning("ignoring peer data of %s: %s", unit, _short(error))
        return None
    return UnitInfo(
        unit=unit,
        member_name=data.member_name,
        peer_url=data.peer_url,
        client_url=data.client_url,
        member_id=data.member_id,
        config_digest=data.config_digest,
        waiting_for=data.waiting_for or None,
        member_state=data.member_state,
        rebuild=_read_rebuild(unit, databag.get(k.UNIT_REBUILD, "")),
    )


def _read_rebuild(unit: str, raw: str) -> RebuildRecord | None:
    if not raw:
        return None
    try:
        data = RebuildData.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as error:
        logger.warning("ignoring garbage rebuild record of %s: %s", unit, _short(error))
        return None
    return RebuildRecord(data.member_id, data.cluster_id, data.raft_index, tuple(data.dropped))


def write_rebuild(databag: MutableMapping[str, str], record: RebuildRecord) -> None:
    """The unit that ran rebuild-cluster says so; its change wakes every peer."""
    data = RebuildData.model_validate(
        {
            "member-id": record.member_id,
            "cluster-id": record.cluster_id,
            "raft-index": record.raft_index,
            "dropped": list(record.dropped),
        }
    )
    databag[k.UNIT_REBUILD] = json.dumps(data.model_dump(by_alias=True), sort_keys=True)


def write_unit(databag: MutableMapping[str, str], info: UnitInfo) -> None:
    wanted = {
        k.UNIT_MEMBER_NAME: info.member_name,
        k.UNIT_PEER_URL: info.peer_url,
        k.UNIT_CLIENT_URL: info.client_url,
        k.UNIT_MEMBER_ID: info.member_id or "",
        k.UNIT_CONFIG_DIGEST: info.config_digest or "",
        k.UNIT_WAITING_FOR: info.waiting_for or "",
        k.UNIT_MEMBER_STATE: info.member_state or "",
    }
    for key, value in wanted.items():
        if databag.get(key, "") != value:
            databag[key] = value  # setting "" deletes the key in ops


def read_app(databag: MutableMapping[str, str]) -> AppState:
    return AppState(
        cluster_token=databag.get(k.APP_CLUSTER_TOKEN) or None,
        bootstrap_member=databag.get(k.APP_BOOTSTRAP_MEMBER) or None,
        cluster_id=databag.get(k.APP_CLUSTER_ID) or None,
        join=_read_ticket(databag.get(k.APP_JOIN, "")),
        restart_turn=databag.get(k.APP_RESTART_TURN) or None,
        restore=_read_restore(databag.get(k.APP_RESTORE, "")),
        tls=read_tls(databag),
        auth_on=databag.get(k.APP_AUTH) == "on",
    )


def _read_restore(raw: str) -> RestoreRecord | None:
    if not raw:
        return None
    try:
        data = RestoreData.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as error:
        logger.warning("ignoring garbage restore record in peer app data: %s", _short(error))
        return None
    return RestoreRecord(
        id=data.id,
        snapshot=data.snapshot,
        superseded=data.superseded,
        cluster_id=data.cluster_id,
        seed=data.seed,
    )


def write_restore(databag: MutableMapping[str, str], record: RestoreRecord) -> None:
    data = RestoreData.model_validate(
        {
            "id": record.id,
            "snapshot": record.snapshot,
            "superseded": record.superseded,
            "cluster-id": record.cluster_id,
            "seed": record.seed,
        }
    )
    databag[k.APP_RESTORE] = json.dumps(data.model_dump(by_alias=True), sort_keys=True)


def _read_ticket(raw: str) -> JoinTicket | None:
    if not raw:
        return None
    try:
        data = TicketData.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as error:
        logger.warning("ignoring garbage join ticket in peer app data: %s", _short(error))
        return None
    return JoinTicket(
        member_name=data.member_name,
        member_id=data.member_id,
        peer_url=data.peer_url,
        initial_cluster=data.initial_cluster,
    )


def write_ticket(databag: MutableMapping[str, str], ticket: JoinTicket | None) -> None:
    if ticket is None:
        databag[k.APP_JOIN] = ""
        return
    data = TicketData.model_validate(
        {
            "member-name": ticket.member_name,
            "member-id": ticket.member_id,
            "peer-url": ticket.peer_url,
            "initial-cluster": ticket.initial_cluster,
        }
    )
    databag[k.APP_JOIN] = json.dumps(data.model_dump(by_alias=True), sort_keys=True)


def _short(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    return str(error)


# ---- TLS -----------------------------------------------------------------------------------------

_FP = r"^[0-9a-f]{16}$"
_PEM = r"^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n?$"


class TlsRecordData(BaseModel):
    """One TLS kind's application record (peer app data)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    stage: Literal["off", "trust", "on"] = "off"
    bundle: list[Annotated[str, Field(pattern=_PEM)]] = []
    trusted: list[Annotated[str, Field(pattern=_FP)]] = []


class UnitTlsData(BaseModel):
    """What a unit says of its certificate for one TLS kind."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    in_use_ca: str | None = Field(None, alias="in-use-ca", pattern=_FP)
    cas: list[Annotated[str, Field(pattern=_PEM)]] = []


def read_tls(databag: MutableMapping[str, str]) -> m.Settings:
    """Both kinds' application TLS records; garbage reads as plaintext, logged."""
    records = {}
    for kind in m.KINDS:
        raw = databag.get(k.APP_TLS.format(kind=kind), "")
        records[kind] = m.TlsRecord()
        if not raw:
            continue
        try:
            data = TlsRecordData.model_validate(json.loads(raw))
        except (ValueError, ValidationError) as error:
            logger.warning("ignoring garbage %s-tls in peer app data: %s", kind, _short(error))
            continue
        stage = "on" if kind == m.CLIENT and data.stage == "trust" else data.stage
        records[kind] = m.TlsRecord(stage, bundle_of(data.bundle), frozenset(data.trusted))
    return m.Settings(peer=records[m.PEER], client=records[m.CLIENT])


def write_tls(databag: MutableMapping[str, str], kind: str, record: m.TlsRecord) -> None:
    if record == m.TlsRecord():
        databag[k.APP_TLS.format(kind=kind)] = ""
        return
    data = TlsRecordData(
        stage=record.stage, bundle=list(record.bundle), trusted=sorted(record.trusted)
    )
    databag[k.APP_TLS.format(kind=kind)] = json.dumps(data.model_dump(), sort_keys=True)


def read_unit_tls(unit: str, databag: MutableMapping[str, str], kind: str) -> m.UnitTls | None:
    raw = databag.get(k.UNIT_TLS.format(kind=kind), "")
    if not raw:
        return None
    try:
        data = UnitTlsData.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as error:
        logger.warning("ignoring garbage %s-tls in peer data of %s: %s", kind, unit, _short(error))
        return None
    return m.UnitTls(in_use_ca=data.in_use_ca, cas=bundle_of(data.cas))


def write_unit_tls(databag: MutableMapping[str, str], kind: str, info: m.UnitTls) -> None:
    text = ""
    if info != m.UnitTls():
        data = UnitTlsData.model_validate({"in-use-ca": info.in_use_ca, "cas": list(info.cas)})
        text = json.dumps(data.model_dump(by_alias=True), sort_keys=True)
    if databag.get(k.UNIT_TLS.format(kind=kind), "") != text:
        databag[k.UNIT_TLS.format(kind=kind)] = text
