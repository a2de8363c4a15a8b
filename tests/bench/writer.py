"""An independent client writing continuously through whatever the bench does to the cluster,
so that "no acknowledged write lost" is measured, not assumed.

Bounded: it stops on `stop()` or after `max_seconds`, whichever comes first, and only ever
talks to the bench pods' addresses.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
import etcd3  # noqa: E402

from tests.bench.ca import Identity  # noqa: E402
from tests.bench.juju import Juju  # noqa: E402

PREFIX = "/writer/"


@dataclass
class WriteReport:
    attempted: int
    acknowledged: int
    failed: int
    retries: int
    lost: int
    longest_stall: float  # seconds between two acknowledged writes, at the worst
    lost_keys: list[str] = field(default_factory=list)


class Writer:
    """Writes one key after another. Like etcd's own clients it fails over: a write that an
    endpoint refuses (or that times out) is retried on the next member until `deadline`; it
    counts as failed only if no member acknowledged it in time. A retried put of the same key
    and value is harmless, so nothing is double-counted as acknowledged."""

    def __init__(
        self,
        bench: Juju,
        interval: float = 0.01,
        max_seconds: float = 600.0,
        deadline: float = 5.0,
    ):
        self.bench = bench
        self.interval = interval
        self.max_seconds = max_seconds
        self.deadline = deadline
        self.retries = 0  # attempts on another member after one refused or timed out
        self.identities: list[Identity] = []  # TLS client identities to try besides plaintext
        self.acked: list[str] = []
        self.attempted = 0
        self.failed = 0
        self.longest_stall = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="etcd3-writer", daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _endpoints(self) -> list[str]:
        return [net.address for net in list(self.bench.network.pods.values())]

    def _targets(self) -> list[tuple[str, Identity | None]]:
        """Each member in plaintext and with each TLS identity the test gave: while a cluster
        rolls between the two, a member serves one or the other."""
        ways: list[Identity | None] = [None, *self.identities]
        return [(address, way) for address in self._endpoints() for way in ways]

    def _connect(self, target: tuple[str, Identity | None], timeout: float) -> etcd3.Etcd3Client:
        host, ident = target
        if ident is None:
            return etcd3.client(host=host, timeout=timeout)
        return etcd3.client(
            host=host,
            timeout=timeout,
            ca_cert=str(ident.ca),
            cert_key=str(ident.key),
            cert_cert=str(ident.cert),
        )

    def _run(self) -> None:
        started = last_ack = time.monotonic()
        self._client: etcd3.Etcd3Client | None = None
        self._turn = 0
        while not self._stop.is_set() and time.monotonic() - started < self.max_seconds:
            key = f"{PREFIX}{self.attempted:08d}"
            self.attempted += 1
            if not self._put(key):
                self.failed += 1
                continue
            now = time.monotonic()
            self.longest_stall = max(self.longest_stall, now - last_ack)
            last_ack = now
            self.acked.append(key)
            time.sleep(self.interval)
        if self._client is not None:
            self._client.close()

    def _put(self, key: str) -> bool:
        give_up = time.monotonic() + self.deadline
        first = True
        while time.monotonic() < give_up and not self._stop.is_set():
            if not first:
                self.retries += 1
            first = False
            try:
                if self._client is None:
                    targets = self._targets()
                    self._client = self._connect(targets[self._turn % len(targets)], 1)
                self._client.put(key, "x")
                return True
            except Exception:  # refused, unavailable, timed out: the next member
                self._turn += 1
                if self._client is not None:
                    self._client.close()
                self._client = None
                time.sleep(0.02)
        return False

    def report(self) -> WriteReport:
        """Read every acknowledged key back (linearizable read through any live member)."""
        found: set[str] = set()
        for target in self._targets():
            try:
                client = self._connect(target, 10)
                found = {meta.key.decode() for _, meta in client.get_prefix(PREFIX, keys_only=True)}
                client.close()
                break
            except Exception:
                continue
        lost = [k for k in self.acked if k not in found]
        return WriteReport(
            attempted=self.attempted,
            acknowledged=len(self.acked),
            failed=self.failed,
            retries=self.retries,
            lost=len(lost),
            longest_stall=self.longest_stall,
            lost_keys=lost[:10],
        )
