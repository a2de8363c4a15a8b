"""A pod of the bench: real directories for the container and its storage, real processes for
its Pebble services and execs, all inside the pod's network namespace with the container's
paths bind-mounted where the charm expects them.

What survives what, as on Kubernetes:
- the storage directory (the PVC) outlives the pod; only a lost-PVC fault removes it;
- the container directory (/etc/etcd here) and the Pebble plan die with the pod.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.health import CheckState, is_ready
from tests.bench.network import PodNet

logger = logging.getLogger(__name__)

STORAGE_PATH = "/var/lib/etcd"  # where metadata.yaml mounts the `data` storage
CONTAINER_PATHS = ("/etc/etcd",)  # the container's own files the charm writes
BIN_PATH = "/usr/local/bin"  # where the official image keeps etcd, etcdctl, etcdutl


@dataclass
class ExecRecord:
    argv: list[str]
    started: float
    ended: float
    exit_code: int


@dataclass
class Service:
    name: str
    command: str
    kill_delay: float
    wanted: bool = False
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    next_try: float = 0.0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Pod:
    """One pod: its namespace, its directories, its processes."""

    name: str  # the pod name, e.g. etcd-k8s-0
    root: Path  # the bench directory of this unit
    bin_dir: Path  # the etcd binaries of the version under test
    net: PodNet | None = None
    services: dict[str, Service] = field(default_factory=dict)
    execs: list[ExecRecord] = field(default_factory=list)
    # Execs whose answer is lost: (words the argv holds, how many more times).
    lost_answers: list[list[Any]] = field(default_factory=list)
    checks: dict[str, CheckState] = field(default_factory=dict)  # its Pebble's health checks
    # Faults run just before an exec whose argv holds all the words (once each).
    before_execs: list[tuple[tuple[str, ...], Any]] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def storage_dir(self) -> Path:
        return self.root / "storage"

    def container_dir(self, path: str) -> Path:
        return self.root / "container" / path.strip("/").replace("/", "_")

    @property
    def ready(self) -> bool:
        """Kubernetes' readiness: the pod runs and Pebble's `ready` checks are up."""
        return self.net is not None and is_ready(self.checks)

    @property
    def log_path(self) -> Path:
        return self.root / "etcd.log"

    # ---- lifecycle ----

    def boot(self, net: PodNet) -> None:
        """The pod is (re)created: fresh container directories, the storage as it was."""
        self.net = net
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        for path in CONTAINER_PATHS:
            shutil.rmtree(self.container_dir(path), ignore_errors=True)
            self.container_dir(path).mkdir(parents=True)
        self.services.clear()
        self.checks.clear()  # the plan died with the old pod
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._supervise, name=f"pebble-{self.name}", daemon=True
        )
        self._thread.start()

    def delete(self, grace: bool = True) -> None:
        """The pod goes: Pebble stops its services (SIGTERM, then SIGKILL after kill-delay)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for service in list(self.services.values()):
            self._terminate(service, graceful=grace)
        self.services.clear()
        self.checks.clear()
        self.net = None

    def lose_storage(self) -> None:
        shutil.rmtree(self.storage_dir, ignore_errors=True)
        self.storage_dir.mkdir(parents=True)

    # ---- running things in the pod ----

    def launcher(self) -> list[str]:
        """argv prefix: enter the pod's netns, mount the container's paths, then exec."""
        assert self.net is not None, f"pod {self.name} is not running"
        mounts = [(self.storage_dir, STORAGE_PATH), (self.bin_dir, BIN_PATH)]
        mounts += [(self.container_dir(p), p) for p in CONTAINER_PATHS]
        # --rbind: what a test mounts inside the storage (a small tmpfs: a full disk) shows.
        script = " && ".join(
            f"mount --rbind {shlex.quote(str(src))} {shlex.quote(dst)}" for src, dst in mounts
        )
        return ["ip", "netns", "exec", self.net.netns, "sh", "-c", f'{script} && exec "$@"', "pod"]

    def exec(
        self, argv: list[str], env: dict[str, str], timeout: float | None, stdin: bytes | None
    ) -> tuple[int, bytes, bytes]:
        for fault in list(self.before_execs):
            if all(word in argv for word in fault[0]):
                self.before_execs.remove(fault)
                fault[1]()
        started = time.time()
        full_env = {"PATH": f"{BIN_PATH}:/usr/bin:/bin", **env}
        try:
            proc = subprocess.run(
                [*self.launcher(), *argv],
                env=full_env,
                input=stdin,
                capture_output=True,
                timeout=timeout,
                cwd="/",
            )
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as expired:
            code, out, err = -1, expired.stdout or b"", b"timed out"
            # Pebble says only "timed out"; the bench's log keeps what the command printed.
            logger.warning(
                "%s: %s timed out after %.1fs; stderr: %s",
                self.name,
                " ".join(argv),
                time.time() - started,
                (expired.stderr or b"")[-2000:].decode(errors="replace"),
            )
        if self._answer_lost(argv):
            code, out, err = -1, b"", b"timed out"
        self.execs.append(ExecRecord(argv, started, time.time(), code))
        return code, out, err

    def lose_answers(self, *words: str, times: int = 1) -> None:
        """The next `times` execs whose argv holds every one of `words` run to the end, but
        Pebble reports them timed out: what a loaded node does to a change it applied."""
        self.lost_answers.append([words, times])

    def _answer_lost(self, argv: list[str]) -> bool:
        for fault in self.lost_answers:
            words, left = fault
            if left > 0 and all(w in argv for w in words):
                fault[1] = left - 1
                return True
        return False

    # ---- the Pebble service manager ----

    def replan(self, services: dict[str, tuple[str, float, bool]]) -> None:
        """services: name -> (command, kill-delay, startup enabled). Pebble's replan semantics:
        start enabled services, restart running ones whose command changed."""
        with self._lock:
            for name, (command, kill_delay, enabled) in services.items():
                current = self.services.get(name)
                if current is not None and current.command != command and current.alive:
                    self._terminate(current, graceful=True)
                    current.command = command
                    current.kill_delay = kill_delay
                    self._spawn(current)
                    continue
                if current is None:
                    current = self.services[name] = Service(name, command, kill_delay)
                current.command, current.kill_delay = command, kill_delay
                if enabled and not current.alive:
                    self._spawn(current)

    def start(self, name: str, command: str, kill_delay: float) -> None:
        with self._lock:
            service = self.services.setdefault(name, Service(name, command, kill_delay))
            service.command, service.kill_delay = command, kill_delay
            if not service.alive:
                self._spawn(service)

    def stop(self, name: str) -> None:
        with self._lock:
            service = self.services.get(name)
            if service is not None:
                self._terminate(service, graceful=True)

    def is_active(self, name: str) -> bool:
        with self._lock:
            service = self.services.get(name)
            return service is not None and service.wanted

    def pid(self, name: str) -> int | None:
        service = self.services.get(name)
        return service.process.pid if service and service.alive and service.process else None

    def kill9(self, name: str) -> None:
        """A crash: the process dies; Pebble restarts it (on-failure: restart, with backoff)."""
        pid = self.pid(name)
        if pid:
            os.kill(pid, signal.SIGKILL)

    def _spawn(self, service: Service) -> None:
        with open(self.log_path, "ab") as handle:
            handle.write(f"\n=== {time.strftime('%H:%M:%S')} start: {service.command}\n".encode())
            handle.flush()
            service.process = subprocess.Popen(
                [*self.launcher(), *shlex.split(service.command)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                env={"PATH": f"{BIN_PATH}:/usr/bin:/bin"},
                cwd="/",
                start_new_session=True,
            )
        service.wanted = True
        service.started_at = time.time()

    def _terminate(self, service: Service, graceful: bool) -> None:
        service.wanted = False
        process = service.process
        if process is None or process.poll() is not None:
            return
        if graceful:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=service.kill_delay)
                return
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s: %s ignored SIGTERM for %ss; SIGKILL",
                    self.name,
                    service.name,
                    service.kill_delay,
                )
        process.kill()
        process.wait()

    def _supervise(self) -> None:
        """Restart services that died while wanted, with Pebble's backoff (0.5 s doubling)."""
        while not self._stop.wait(0.2):
            with self._lock:
                for service in self.services.values():
                    if not service.wanted or service.alive:
                        continue
                    now = time.time()
                    if service.next_try == 0.0:
                        delay = min(30.0, 0.5 * 2 ** min(service.restarts, 6))
                        service.next_try = now + delay
                    elif now >= service.next_try:
                        service.restarts += 1
                        service.next_try = 0.0
                        self._spawn(service)
