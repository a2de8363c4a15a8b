"""The leader's record of backups in the peer app databag (`backups`): the last success, the
window the last scheduled attempt served, the last failure and its reason. Garbage is logged
and read as no record, never trusted."""

from __future__ import annotations

import json
import logging
from collections.abc import MutableMapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

import literals as k
from core.schedule import BackupHistory

logger = logging.getLogger(__name__)


class BackupHistoryData(BaseModel):
    """The databag's JSON of a BackupHistory, checked."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    last_id: str = Field("", alias="last-id", max_length=64)
    last_at: str = Field("", alias="last-at", max_length=40)
    window: str = Field("", max_length=40)
    failed_at: str = Field("", alias="failed-at", max_length=40)
    failed_why: str = Field("", alias="failed-why", max_length=400)
    tries: int = Field(0, ge=0, le=1000)


def read_backups(databag: MutableMapping[str, str]) -> BackupHistory:
    raw = databag.get(k.APP_BACKUPS, "")
    if not raw:
        return BackupHistory()
    try:
        data = BackupHistoryData.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as error:
        logger.warning("ignoring garbage backups record in peer app data: %s", error)
        return BackupHistory()
    return BackupHistory(**data.model_dump())


def write_backups(databag: MutableMapping[str, str], history: BackupHistory) -> None:
    data = BackupHistoryData.model_validate(history.__dict__)
    databag[k.APP_BACKUPS] = json.dumps(data.model_dump(by_alias=True), sort_keys=True)
