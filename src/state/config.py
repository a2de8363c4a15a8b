"""The operator's etcd knobs, checked: `load(charm)` turns Juju config into an `EtcdOptions`
through ops' own typed loading, or raises `InvalidConfig` whose message says which option
broke which rule (the running cluster is left as it is)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core import retention, schedule

if TYPE_CHECKING:
    import ops

MAX_ELECTION_TIMEOUT_MS = 50_000  # etcd refuses anything longer
MIB = 1024 * 1024
GIB = 1024 * MIB

_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$")
_WHOLE = re.compile(r"^[0-9]+$")
CHARM_ONLY = {"backup_schedule", "backup_retention"}


class InvalidConfig(ValueError):
    """A config value breaks a rule; the message names the option."""


class EtcdOptions(BaseModel):
    """The Juju config options, in etcd's own names."""

    # No aliases: ops' load_config turns option names' dashes into underscores and then passes
    # only names that match a field's alias-or-name, so a dashed alias would drop every option.
    model_config = ConfigDict(frozen=True, extra="ignore")

    heartbeat_interval: int = Field(100, ge=10, le=10_000)
    election_timeout: int = Field(1000, ge=50, le=MAX_ELECTION_TIMEOUT_MS)
    snapshot_count: int = Field(10_000, ge=1)
    quota_backend_bytes: int = Field(2 * GIB, ge=16 * MIB, le=8 * GIB)
    max_request_bytes: int = Field(int(1.5 * MIB), ge=1024)
    auto_compaction_mode: Literal["periodic", "revision"] = Field("periodic")
    auto_compaction_retention: str = Field("1h")
    log_level: Literal["debug", "info", "warn", "error"] = Field("info")
    # The charm's own, not etcd's: they change no member's config (not in the config digest).
    backup_schedule: str = Field("")
    backup_retention: str = Field(retention.DEFAULT)

    @field_validator("backup_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return schedule.check_schedule(value)

    @field_validator("backup_retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        return retention.check(value)

    def etcd_json(self) -> str:
        """The options etcd runs with, as JSON: what the config digest covers (a change of a
        backup option restarts no member)."""
        return self.model_dump_json(exclude=CHARM_ONLY)

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
        """From Juju's option names (dashed), without ops: for tests and tools. A hook goes
        through `load`; tests/unit/test_config.py::TestLoadThroughOps checks the two agree."""
        try:
            return cls.model_validate({key.replace("-", "_"): v for key, v in config.items()})
        except ValidationError as error:
            raise InvalidConfig(_describe(error)) from None


def load(charm: ops.CharmBase) -> EtcdOptions:
    """The charm's config as options, through `CharmBase.load_config` (aliases are the Juju
    option names); InvalidConfig names the option and the rule."""
    try:
        return charm.load_config(EtcdOptions)
    except ValidationError as error:
        raise InvalidConfig(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    """One line per broken rule, each naming the option as the operator typed it."""
    lines = []
    for item in error.errors():
        option = ".".join(str(part).replace("_", "-") for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{option}: {message}" if option else message)
    return "; ".join(lines)
