"""Who a unit is to etcd: its member name and URLs, and the digest of the config it runs."""

from __future__ import annotations

import hashlib

from core.model import Settings, UnitInfo

CLIENT_PORT = 2379
PEER_PORT = 2380
DEFAULT_DOMAIN = "cluster.local"


def identity(
    app: str,
    unit: str,
    model: str,
    member_id: str | None = None,
    peer_scheme: str = "http",
    client_scheme: str = "http",
    domain: str = DEFAULT_DOMAIN,
) -> UnitInfo:
    """A unit's member name and URLs: the pod's stable DNS name, never its IP."""
    member_name = unit.replace("/", "-")
    host = f"{member_name}.{app}-endpoints.{model}.svc.{domain}"
    return UnitInfo(
        unit=unit,
        member_name=member_name,
        peer_url=f"{peer_scheme}://{host}:{PEER_PORT}",
        client_url=f"{client_scheme}://{host}:{CLIENT_PORT}",
        member_id=member_id,
    )


def config_digest(options_json: str, settings: Settings | None = None) -> str:
    """What a member's config is made of, short: a change means a rolling restart. Plaintext
    gives the digest of the options alone, as before TLS existed (so a refresh of the charm
    restarts nothing)."""
    text = options_json + (settings.digest_part() if settings else "")
    return hashlib.sha256(text.encode()).hexdigest()[:16]
