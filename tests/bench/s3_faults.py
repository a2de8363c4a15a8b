"""Faults around the bench's S3 server: credentials a provider issues per relation and revokes
when the relation goes (SeaweedFS's dynamic identities, changed with `weed shell`
s3.configure, take effect within a fraction of a second; the static ones of `-s3.config` never
change), and a TCP proxy in front of the server that runs a fault once a given number of
request bytes went through (mid-upload, at a known point).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.bench.s3 import WEED, SeaweedS3

ACTIONS = "Admin,Read,List,Tagging,Write"


def _shell(server: SeaweedS3, command: str) -> None:
    argv = [
        str(WEED),
        "shell",
        f"-master=127.0.0.1:{server.ports['master']}",
        f"-filer=127.0.0.1:{server.ports['filer']}",
    ]
    out = subprocess.run(argv, input=command.encode(), capture_output=True, timeout=60)
    if out.returncode != 0 or b"error" in out.stderr.lower():
        raise RuntimeError(f"weed shell {command.split()[0]}: {out.stderr.decode()[-500:]}")


def add_user(server: SeaweedS3, name: str, access_key: str, secret_key: str) -> None:
    """A revocable identity (as a provider issues one per relation)."""
    _shell(
        server,
        f"s3.configure -user={name} -access_key={access_key} -secret_key={secret_key} "
        f"-actions={ACTIONS} -apply",
    )


def remove_user(server: SeaweedS3, name: str) -> None:
    """Revoke it: every later request signed with its keys is refused (InvalidAccessKeyId)."""
    _shell(server, f"s3.configure -user={name} -delete -apply")


@dataclass
class Proxy:
    """127.0.0.1:<port> forwarding to the S3 server. `arm(after, fault)`: once `after` request
    bytes went through, every connection stops while `fault` runs, then carries on."""

    target: int
    sock: socket.socket = field(default_factory=socket.socket)
    sent: int = 0
    _armed: tuple[int, Callable[[], None]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    fired: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Proxy:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True, name="s3-proxy").start()
        return self

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def arm(self, after: int, fault: Callable[[], None]) -> None:
        with self._lock:
            self.sent, self._armed = 0, (after, fault)
            self.fired.clear()

    def close(self) -> None:
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for a, b, count in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(a, b, count), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        try:
            while data := src.recv(65536):
                if count:
                    with self._lock:  # a fault in progress holds every request stream
                        self.sent += len(data)
                        if self._armed and self.sent >= self._armed[0]:
                            fault, self._armed = self._armed[1], None
                            fault()
                            self.fired.set()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
