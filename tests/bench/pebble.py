"""Route ops.testing's mock Pebble to a bench Pod: exec runs the real command in the pod, and
service start/stop/replan run real processes. A Context without a pod keeps the stock mock, so
plain Scenario unit tests in the same process are unaffected."""

from __future__ import annotations

import datetime
import io
from typing import Any

from ops import pebble
from scenario import mocking

from tests.bench.health import parse_duration
from tests.bench.pod import Pod

_Mock = mocking._MockPebbleClient
_original: dict[str, Any] = {}


def _pod(client: Any) -> Pod | None:
    return getattr(client._context, "bench_pod", None)


def _parse_duration(value: str | None) -> float:
    return parse_duration(value, 5.0)  # Pebble's default kill-delay


def _services(client: Any) -> dict[str, tuple[str, float, bool]]:
    rendered = client._render_services()
    return {
        name: (svc.command, _parse_duration(svc.kill_delay), svc.startup == "enabled")
        for name, svc in rendered.items()
    }


# What Pebble's change says when an exec outlives its timeout (it kills the process).
_TIMED_OUT = 'cannot perform the following tasks:\n- Execute command "{}" (timed out)'


def _timed_out_change() -> pebble.Change:
    now = datetime.datetime.now(datetime.timezone.utc)
    task = pebble.Task(
        id=pebble.TaskID("1"),
        kind="exec",
        summary="Execute command",
        status="Error",
        log=["timed out"],
        progress=pebble.TaskProgress(label="", done=1, total=1),
        spawn_time=now,
        ready_time=now,
    )
    return pebble.Change(
        id=pebble.ChangeID("1"),
        kind="exec",
        summary="Execute command",
        status="Error",
        tasks=[task],
        ready=True,
        err="timed out",
        spawn_time=now,
        ready_time=now,
    )


class _RealExecProcess:
    """What `container.exec` returns: the command has already run to completion."""

    def __init__(self, command: list[str], code: int, out: bytes, err: bytes, encoding: str | None):
        self._command = command
        self._code = code
        # (stdout, stderr): text with an encoding (ops' default), else bytes; never mixed.
        self._output: tuple[str, str] | tuple[bytes, bytes]
        self.stdout: io.StringIO | io.BytesIO
        self.stderr: io.StringIO | io.BytesIO
        if encoding:
            text = out.decode(), err.decode()
            self._output = text
            self.stdout, self.stderr = io.StringIO(text[0]), io.StringIO(text[1])
        else:
            self._output = out, err
            self.stdout, self.stderr = io.BytesIO(out), io.BytesIO(err)
        self.stdin = None

    def wait_output(self) -> tuple[Any, Any]:
        self._raise()
        return self._output

    def wait(self) -> None:
        self._raise()

    def _raise(self) -> None:
        if self._code == -1:
            raise pebble.ChangeError(_TIMED_OUT.format(self._command[0]), _timed_out_change())
        if self._code != 0:
            raise pebble.ExecError(self._command, self._code, *self._output)


def _exec(self: Any, command: list[str], **kwargs: Any) -> Any:
    pod = _pod(self)
    if pod is None:
        return _original["exec"](self, command, **kwargs)
    self._check_connection()
    stdin = kwargs.get("stdin")
    if isinstance(stdin, str):
        stdin = stdin.encode()
    code, out, err = pod.exec(
        list(command), kwargs.get("environment") or {}, kwargs.get("timeout"), stdin
    )
    return _RealExecProcess(list(command), code, out, err, kwargs.get("encoding", "utf-8"))


def _replan(self: Any, timeout: float = 30.0, delay: float = 0.1) -> None:
    _original["replan_services"](self, timeout=timeout, delay=delay)
    pod = _pod(self)
    if pod is not None:
        pod.replan(_services(self))


def _start(self: Any, services: list[str], timeout: float = 30.0, delay: float = 0.1) -> Any:
    change = _original["start_services"](self, services, timeout=timeout, delay=delay)
    pod = _pod(self)
    if pod is not None:
        known = _services(self)
        for name in services:
            command, kill_delay, _ = known[name]
            pod.start(name, command, kill_delay)
    return change


def _stop(self: Any, services: list[str], timeout: float = 30.0, delay: float = 0.1) -> Any:
    change = _original["stop_services"](self, services, timeout=timeout, delay=delay)
    pod = _pod(self)
    if pod is not None:
        for name in services:
            pod.stop(name)
    return change


def _restart(self: Any, services: list[str], timeout: float = 30.0, delay: float = 0.1) -> Any:
    change = _original["restart_services"](self, services, timeout=timeout, delay=delay)
    pod = _pod(self)
    if pod is not None:
        known = _services(self)
        for name in services:
            command, kill_delay, _ = known[name]
            pod.stop(name)
            pod.start(name, command, kill_delay)
    return change


def _get_services(self: Any, names: list[str] | None = None) -> list[pebble.ServiceInfo]:
    infos = _original["get_services"](self, names)
    pod = _pod(self)
    if pod is None:
        return infos
    real = []
    for info in infos:
        service = pod.services.get(info.name)
        if service is None or not service.wanted:
            current = pebble.ServiceStatus.INACTIVE
        elif service.alive:
            current = pebble.ServiceStatus.ACTIVE
        else:
            current = pebble.ServiceStatus.ERROR  # Pebble waits out its backoff, then restarts
        real.append(pebble.ServiceInfo(info.name, startup=info.startup, current=current))
    return real


_PATCHES = {
    "exec": _exec,
    "replan_services": _replan,
    "start_services": _start,
    "stop_services": _stop,
    "restart_services": _restart,
    "get_services": _get_services,
}


def install() -> None:
    """Patch the mock Pebble client once per process."""
    if _original:
        return
    for name, patch in _PATCHES.items():
        _original[name] = getattr(_Mock, name)
        setattr(_Mock, name, patch)
