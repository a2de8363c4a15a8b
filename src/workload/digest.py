"""A snapshot file's checks in one pass over its bytes: its sha256, and whether it ends with the
sha256 of everything before it (as `etcdctl snapshot save` leaves a file).

`follow` hashes the file while etcdctl is still writing it, so a snapshot costs one read of the
bytes, overlapped with the save, instead of two full reads after it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HASH_BYTES = 32  # etcd appends the sha256 of the db to a saved snapshot
CHUNK = 1 << 20
POLL = 0.002  # seconds between reads of a growing file that has nothing new yet


@dataclass(frozen=True)
class Digest:
    """What one pass over a file found."""

    size: int
    sha256: str  # of the whole file, as S3 and the sidecar record it
    embedded_ok: bool  # the last 32 bytes are the sha256 of the rest


class Digester:
    """Feeds chunks to one sha256, holding back the last 32 bytes seen: at the end the held
    digest is that of everything before them (etcd's appended hash), and adding them gives the
    whole file's."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._tail = b""
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if len(chunk) >= HASH_BYTES:
            self._hash.update(self._tail)
            self._hash.update(memoryview(chunk)[:-HASH_BYTES])
            self._tail = chunk[-HASH_BYTES:]
            return
        data = self._tail + chunk
        self._hash.update(data[:-HASH_BYTES] if len(data) > HASH_BYTES else b"")
        self._tail = data[-HASH_BYTES:]

    def finish(self) -> Digest:
        body = self._hash.copy().digest()
        whole = self._hash.copy()
        whole.update(self._tail)
        embedded = self.size > HASH_BYTES and self._tail == body
        return Digest(self.size, whole.hexdigest(), embedded)


def digest_file(path: Path) -> Digest:
    """Both checks of a file at rest, in one read."""
    digester = Digester()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digester.update(chunk)
    return digester.finish()


class Follower:
    """Hashes `<path>.part` (or `path`) while another process writes it, in a thread.

    etcdctl writes `<path>.part` and renames it to `path` once complete; the open handle keeps
    reading the same file across the rename. `result()` is called once the writer has exited:
    it reads what is left and returns the digest, or None when what was followed is not the
    file now at `path` (then the caller hashes `path` at rest).
    """

    def __init__(self, path: Path):
        self._path = path
        self._part = path.with_name(path.name + ".part")
        self._done = threading.Event()
        self._digester = Digester()
        self._inode: int | None = None
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="snapshot-digest", daemon=True)
        self._thread.start()

    def _open(self) -> int | None:
        while True:
            for candidate in (self._part, self._path):
                try:
                    return os.open(candidate, os.O_RDONLY)
                except FileNotFoundError:
                    continue
            if self._done.is_set():
                return None
            time.sleep(POLL)

    def _run(self) -> None:
        try:
            fd = self._open()
            if fd is None:
                return
            try:
                self._inode = os.fstat(fd).st_ino
                self._drain(fd)
            finally:
                os.close(fd)
        except OSError as error:
            self._error = error

    def _drain(self, fd: int) -> None:
        while True:
            finished = self._done.is_set()  # read before reading: nothing is written after it
            chunk = os.read(fd, CHUNK)
            if chunk:
                self._digester.update(chunk)
            elif finished:
                return
            else:
                time.sleep(POLL)

    def result(self) -> Digest | None:
        self._done.set()
        self._thread.join()
        if self._error is not None or self._inode is None:
            return None
        try:
            final = self._path.stat()
        except FileNotFoundError:
            return None
        if final.st_ino != self._inode or final.st_size != self._digester.size:
            return None
        return self._digester.finish()

    def stop(self) -> None:
        """Ends the thread when the save failed; nothing is returned."""
        self._done.set()
        self._thread.join()


def follow(path: Path) -> Follower:
    return Follower(path)
