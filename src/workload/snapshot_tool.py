"""Offline snapshot tooling in the workload container: `etcdutl` from 3.5 on, `etcdctl` on 3.4
(3.6 removed `etcdctl snapshot status/restore`). Both take a file and need no running member."""

from __future__ import annotations

import json
from dataclasses import dataclass

from literals import ETCDCTL, ETCDUTL
from workload.etcdctl import EtcdctlError, Runner


@dataclass(frozen=True)
class SnapshotStatus:
    """What `snapshot status` says of a snapshot file."""

    hash: int  # etcd's own hash of the db contents (not the file's sha256)
    revision: int
    total_keys: int
    total_size: int


class SnapshotTool:
    """etcdutl (or etcdctl on 3.4) snapshot status and restore, against files."""

    def __init__(self, run: Runner, version: tuple[int, int]):
        self._run = run
        self._binary = ETCDUTL if version >= (3, 5) else ETCDCTL

    @property
    def binary(self) -> str:
        return self._binary.rsplit("/", 1)[-1]

    def _call(self, args: list[str], timeout: float) -> str:
        code, out, err = self._run([self._binary, *args], timeout)
        if code != 0:
            raise EtcdctlError(args, code, err, out)
        return out

    def status(self, path: str, timeout: float = 120.0) -> SnapshotStatus:
        """Reads the whole db; a torn or foreign file fails here (or crashes the tool, which
        reads as a failure all the same)."""
        data = json.loads(self._call(["snapshot", "status", "-w", "json", path], timeout))
        return SnapshotStatus(
            hash=int(data["hash"]),
            revision=int(data["revision"]),
            total_keys=int(data["totalKey"]),
            total_size=int(data["totalSize"]),
        )

    def restore(
        self,
        path: str,
        data_dir: str,
        name: str,
        initial_cluster: str,
        peer_url: str,
        token: str,
        timeout: float = 600.0,
    ) -> None:
        """A fresh member data dir from the snapshot, under a new cluster id. Checks the sha256
        the snapshot carries and refuses a file whose contents do not match it."""
        self._call(
            [
                "snapshot",
                "restore",
                path,
                f"--data-dir={data_dir}",
                f"--name={name}",
                f"--initial-cluster={initial_cluster}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster-token={token}",
            ],
            timeout,
        )
