"""The workload adapter's exec: a command that outlives its timeout reads as a failed call
with the reason, as Pebble reports it (the bench raises what Pebble raises)."""

from __future__ import annotations

from typing import Any

from tests.bench.pebble import _RealExecProcess
from workload.pebble import Workload


class _Container:
    def __init__(self, process: _RealExecProcess):
        self.process = process
        self.calls: list[dict[str, Any]] = []

    def exec(self, argv: list[str], **kwargs: Any) -> _RealExecProcess:
        self.calls.append({"argv": argv, **kwargs})
        return self.process


def test_a_timed_out_exec_is_a_failure_with_its_reason() -> None:
    timed_out = _RealExecProcess(["/usr/local/bin/etcdctl", "get", "x"], -1, b"", b"", "utf-8")
    workload = Workload(_Container(timed_out))  # type: ignore[arg-type]
    code, out, err = workload.run(["/usr/local/bin/etcdctl", "get", "x"], timeout=1)
    assert code == 124 and out == ""
    assert "timed out" in err and err.startswith("Error: ")
    # What the action or status shows: one line, the command and its budget.
    from workload.etcdctl_errors import EtcdctlError

    reason = EtcdctlError(["etcdctl"], code, err).reason
    assert reason.startswith("etcdctl did not finish within 1s (") and "timed out" in reason


def test_a_failed_exec_keeps_its_output_and_code() -> None:
    failed = _RealExecProcess(["etcdctl"], 1, b"partial", b"Error: nope", "utf-8")
    assert Workload(_Container(failed)).run(["etcdctl"], timeout=1) == (  # type: ignore[arg-type]
        1,
        "partial",
        "Error: nope",
    )


def test_secrets_go_in_the_environment_and_on_stdin_never_argv() -> None:
    ok = _RealExecProcess(["etcdctl"], 0, b"fine", b"", "utf-8")
    container = _Container(ok)
    Workload(container).run(  # type: ignore[arg-type]
        ["etcdctl", "user", "passwd", "root"], 5, env={"ETCDCTL_PASSWORD": "s3cret"}, stdin="new\n"
    )
    (call,) = container.calls
    assert "s3cret" not in " ".join(call["argv"]) and "new" not in " ".join(call["argv"])
    assert call["environment"]["ETCDCTL_PASSWORD"] == "s3cret" and call["stdin"] == "new\n"
