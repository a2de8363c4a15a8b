"""A TCP gate in front of a server (the bench's S3): it forwards every connection, and
`hold()` stops the bytes on every connection, open or opened later, until `release()`. A
test holds one unit's upload in flight, however fast the store is, while the other units reach
the same store through a second gate: a link that stalls for one pod and not another."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class _Pair:
    """One client connection and its upstream, and whether bytes may flow on it."""

    down: socket.socket
    up: socket.socket
    flowing: threading.Event = field(default_factory=threading.Event)


class Gate:
    """127.0.0.1:<port> forwarding to `target`."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.pairs: list[_Pair] = []
        self.lock = threading.Lock()
        self.closed = False
        self.holding = False
        threading.Thread(target=self._accept, daemon=True, name="gate-accept").start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(self.target, timeout=10)
            except OSError:
                down.close()
                continue
            up.settimeout(None)
            pair = _Pair(down, up)
            with self.lock:
                if not self.holding:
                    pair.flowing.set()
                self.pairs.append(pair)
            for src, dst in ((down, up), (up, down)):
                threading.Thread(target=self._pump, args=(pair, src, dst), daemon=True).start()

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                pair.flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (pair.down, pair.up):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self.lock:
                if pair in self.pairs:
                    self.pairs.remove(pair)

    def hold(self) -> int:
        """Stop every connection; returns how many are open now."""
        with self.lock:
            self.holding = True
            for pair in self.pairs:
                pair.flowing.clear()
            return len(self.pairs)

    def release(self) -> None:
        with self.lock:
            self.holding = False
            for pair in self.pairs:
                pair.flowing.set()

    def close(self) -> None:
        self.closed = True
        self.release()
        self.listener.close()
        with self.lock:
            for pair in self.pairs:
                for sock in (pair.down, pair.up):
                    sock.close()
