"""The operator's etcd knobs: validation with messages that name the option, and rendering.

`EtcdOptions.from_charm_config` turns Juju config into a checked model or raises
`InvalidConfig` whose message says which option broke which rule. `render_config` fills
`templates/etcd.conf.yml.j2`, keeping it aware of the etcd version that will read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
MAX_ELECTION_TIMEOUT_MS = 50_000  # etcd refuses anything longer
MIB = 1024 * 1024
GIB = 1024 * MIB

_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$")
_WHOLE = re.compile(r"^[0-9]+$")


class InvalidConfig(ValueError):
    """A config value breaks a rule; the message names the option."""


class EtcdOptions(BaseModel):
    """The Juju config options, in etcd's own names."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    heartbeat_interval: int = Field(100, alias="heartbeat-interval", ge=10, le=10_000)
    election_timeout: int = Field(1000, alias="election-timeout", ge=50, le=MAX_ELECTION_TIMEOUT_MS)
    snapshot_count: int = Field(10_000, alias="snapshot-count", ge=1)
    quota_backend_bytes: int = Field(2 * GIB, alias="quota-backend-bytes", ge=16 * MIB, le=8 * GIB)
    max_request_bytes: int = Field(int(1.5 * MIB), alias="max-request-bytes", ge=1024)
    auto_compaction_mode: Literal["periodic", "revision"] = Field(
        "periodic", alias="auto-compaction-mode"
    )
    auto_compaction_retention: str = Field("1h", alias="auto-compaction-retention")
    log_level: Literal["debug", "info", "warn", "error"] = Field("info", alias="log-level")

    @field_validator("auto_compaction_retention")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()  # etcd itself refuses surrounding blanks

    @model_validator(mode="after")
    def _cross_checks(self) -> EtcdOptions:
        if self.election_timeout < 5 * self.heartbeat_interval:
            raise ValueError(
                f"election-timeout ({self.election_timeout} ms) must be at least 5 x "
                f"heartbeat-interval ({self.heartbeat_interval} ms); 10 x is recommended"
            )
        if self.max_request_bytes >= self.quota_backend_bytes:
            raise ValueError(
                f"max-request-bytes ({self.max_request_bytes}) must be smaller than "
                f"quota-backend-bytes ({self.quota_backend_bytes})"
            )
        retention = self.auto_compaction_retention
        if self.auto_compaction_mode == "revision":
            if not _WHOLE.match(retention):
                raise ValueError(
                    f"auto-compaction-retention ({retention!r}) must be a whole number of "
                    "revisions when auto-compaction-mode is 'revision'"
                )
        elif not (_WHOLE.match(retention) or _DURATION.match(retention)):
            raise ValueError(
                f"auto-compaction-retention ({retention!r}) must be a duration such as '1h' or "
                "'30m', or a whole number of hours, when auto-compaction-mode is 'periodic'"
            )
        return self

    @classmethod
    def from_charm_config(cls, config: dict[str, object]) -> EtcdOptions:
        try:
            return cls.model_validate(config)
        except ValidationError as error:
            raise InvalidConfig(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    """One line per broken rule, each naming the option as the operator typed it."""
    lines = []
    for item in error.errors():
        option = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{option}: {message}" if option else message)
    return "; ".join(lines)


@dataclass(frozen=True)
class TlsConfig:
    """Which transports use TLS, and where the files are (in the container)."""

    peer: bool = False
    client: bool = False
    peer_cert: str = ""
    peer_key: str = ""
    peer_ca: str = ""
    client_cert: str = ""
    client_key: str = ""
    client_ca: str = ""


@dataclass(frozen=True)
class MemberConfig:
    """Where this member lives and how it starts: everything the options do not cover."""

    name: str
    data_dir: str
    peer_url: str
    client_url: str
    initial_cluster: str
    initial_cluster_state: Literal["new", "existing"]
    initial_cluster_token: str
    etcd_version: tuple[int, int] = (3, 5)
    force_new_cluster: bool = False
    tls: TlsConfig = TlsConfig()

    @property
    def peer_scheme(self) -> str:
        return self.peer_url.split("://", 1)[0]

    @property
    def client_scheme(self) -> str:
        return self.client_url.split("://", 1)[0]


def render_config(member: MemberConfig, options: EtcdOptions) -> str:
    import jinja2  # only where a member is (re)started

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    template = env.get_template("etcd.conf.yml.j2")
    return template.render(member=member, options=options, version=member.etcd_version)
