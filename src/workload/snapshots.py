"""Snapshot files on the unit's `data` storage, in `backups/`.

The charm container sees the same volume as the workload (Juju mounts storage in both), so
hashing, free-space checks, listing and renames happen here with plain file calls; only etcd's
own tools run in the workload. Each snapshot `<name>.db` has a sidecar `<name>.json` with what
was verified when it was taken.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from core.actions import ActionRefused
from core.backups import human_bytes
from workload.digest import digest_file

logger = logging.getLogger(__name__)

BACKUPS_DIR = "backups"
INCOMING_DIR = f"{BACKUPS_DIR}/.incoming"  # half-written snapshots; never listed, always cleaned
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
SPACE_MARGIN = 64 * 1024 * 1024  # headroom left on the volume: etcd's WAL preallocates 64 MiB


class BadName(ActionRefused, ValueError):
    """A snapshot name that is no plain file name: the action fails with the rule."""


def check_name(name: str) -> str:
    """A snapshot name is a plain file name: no path separators, no `..`, no leading dot."""
    if not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise BadName(
            f"invalid snapshot name {name!r}: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..' or '/'"
        )
    return name.removesuffix(".db")


def space_needed(db_size: int) -> int:
    """Bytes to have free before writing a snapshot of a `db_size` database (or restoring it)."""
    return db_size + db_size // 10 + SPACE_MARGIN


@dataclass(frozen=True)
class SnapshotMeta:
    """What was verified of a snapshot when it was taken (its sidecar)."""

    name: str
    size: int
    sha256: str
    revision: int
    keys: int
    etcd_version: str
    member: str
    cluster_id: str
    created: str  # ISO 8601, UTC

    def as_results(self) -> dict[str, str]:
        return {k.replace("_", "-"): str(v) for k, v in asdict(self).items()}


def embedded_hash_ok(path: Path) -> bool:
    """True when the file ends with the sha256 of everything before it, as a saved etcd
    snapshot does. False for a truncated, corrupted or foreign file."""
    return digest_file(path).embedded_ok


def file_sha256(path: Path) -> str:
    return digest_file(path).sha256


_META = TypeAdapter(SnapshotMeta)


class Backups:
    """The backups folder, seen from the charm container at `storage_root`, and from the
    workload at `workload_root` (both the same volume)."""

    def __init__(self, storage_root: Path, workload_root: str):
        self.root = storage_root
        self.workload_root = workload_root

    @property
    def folder(self) -> Path:
        return self.root / BACKUPS_DIR

    def file(self, name: str) -> Path:
        return self.folder / f"{name}.db"

    def workload_file(self, name: str) -> str:
        return f"{self.workload_root}/{BACKUPS_DIR}/{name}.db"

    def incoming(self, name: str) -> Path:
        return self.root / INCOMING_DIR / f"{name}.db"

    def workload_incoming(self, name: str) -> str:
        return f"{self.workload_root}/{INCOMING_DIR}/{name}.db"

    def exists(self, name: str) -> bool:
        return self.file(name).exists() or self._meta_path(name).exists()

    def free_bytes(self) -> int:
        """Free space where snapshots are written (the storage, unless something is mounted
        on the backups folder itself)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(self.folder).free

    def prepare_incoming(self) -> None:
        """A fresh incoming folder: whatever a crashed save left there goes first."""
        shutil.rmtree(self.root / INCOMING_DIR, ignore_errors=True)
        (self.root / INCOMING_DIR).mkdir(parents=True)

    def incoming_in_use(self) -> bool:
        """A save is streaming in now (a snapshot or backup action on this unit)."""
        folder = self.root / INCOMING_DIR
        return folder.is_dir() and any(folder.iterdir())

    def discard_incoming(self) -> None:
        shutil.rmtree(self.root / INCOMING_DIR, ignore_errors=True)

    def publish(self, meta: SnapshotMeta) -> None:
        """Move a verified snapshot into the folder, sidecar first so no listed file lacks it."""
        sidecar = self._meta_path(meta.name)
        sidecar.write_text(json.dumps(asdict(meta), indent=1, sort_keys=True))
        try:
            os.replace(self.incoming(meta.name), self.file(meta.name))
        except OSError:
            sidecar.unlink(missing_ok=True)
            raise

    def _meta_path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def meta(self, name: str) -> SnapshotMeta | None:
        try:
            return _META.validate_python(json.loads(self._meta_path(name).read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, ValidationError) as error:
            logger.warning("ignoring unreadable sidecar of snapshot %s: %s", name, error)
            return None

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.db") if NAME_PATTERN.fullmatch(p.stem))

    def listing(self) -> list[tuple[str, int, SnapshotMeta | None]]:
        """(name, size on disk, sidecar), oldest first by creation time then name."""
        rows = [(n, self.file(n).stat().st_size, self.meta(n)) for n in self.names()]
        return sorted(rows, key=lambda r: (r[2].created if r[2] else "", r[0]))

    def remove(self, name: str) -> None:
        self.file(name).unlink(missing_ok=True)
        self._meta_path(name).unlink(missing_ok=True)

    def beyond_retention(self, keep: int) -> list[str]:
        """The snapshots to remove so that the newest `keep` remain."""
        names = [name for name, _, _ in self.listing()]
        return names[: max(0, len(names) - keep)]


def table(rows: list[tuple[str, int, SnapshotMeta | None]]) -> str:
    """A table that reads well in `juju run` output."""
    lines = [f"{'NAME':<32} {'SIZE':>10} {'REVISION':>10} {'KEYS':>8}  CREATED"]
    for name, size, meta in rows:
        revision = str(meta.revision) if meta else "?"
        keys = str(meta.keys) if meta else "?"
        created = meta.created if meta else "(no sidecar)"
        lines.append(f"{name:<32} {human_bytes(size):>10} {revision:>10} {keys:>8}  {created}")
    return "\n".join(lines)
