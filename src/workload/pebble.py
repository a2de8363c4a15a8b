"""The etcd workload container through Pebble: the layer (service and ready check), files,
exec. Thin on purpose: it decides nothing."""

from __future__ import annotations

import json
import logging
import re
from typing import Any, cast

import ops

from core.observability import LogTarget
from literals import (
    CLIENT_PORT,
    CONFIG_PATH,
    DATA_DIR,
    ETCD,
    ETCDCTL,
    HOLD_LAYER,
    KILL_DELAY,
    LOG_LAYER,
    MARKER_PATH,
    READY_CHECK,
    SERVICE,
)

logger = logging.getLogger(__name__)

READY_COMMAND = [
    ETCDCTL,
    f"--endpoints=http://localhost:{CLIENT_PORT}",
    "--command-timeout=3s",
    "endpoint",
    "health",
]


def ready_command(endpoint: str, cert_args: list[str]) -> list[str]:
    """The readiness check against this member's own client URL, as it serves it (https needs
    the pod's DNS name, which its certificate carries, and a client certificate)."""
    if not endpoint.startswith("https://"):
        return READY_COMMAND
    return [READY_COMMAND[0], f"--endpoints={endpoint}", *cert_args, *READY_COMMAND[2:]]


class Workload:
    """The workload container."""

    def __init__(self, container: ops.Container):
        self.container = container

    @property
    def ready(self) -> bool:
        return self.container.can_connect()

    def failing_checks(self) -> tuple[str, ...]:
        """The names of Pebble's health checks that are down now (none without Pebble)."""
        if not self.ready:
            return ()
        checks = self.container.get_checks()
        return tuple(n for n, c in checks.items() if c.status == ops.pebble.CheckStatus.DOWN)

    def run(
        self,
        argv: list[str],
        timeout: float,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> tuple[int, str, str]:
        """Run a command in the container: (exit code, stdout, stderr); never raises for it.
        `env` and `stdin` carry secrets: they reach the process, not its argv or any log."""
        try:
            process = self.container.exec(
                argv,
                timeout=timeout,
                working_dir="/",
                environment={"ETCDCTL_API": "3", **(env or {})},
                stdin=stdin,
            )
            out, err = process.wait_output()
            return 0, out or "", err or ""
        except ops.pebble.ExecError as error:
            return error.exit_code, str(error.stdout or ""), str(error.stderr or "")
        except (ops.pebble.ChangeError, ops.pebble.TimeoutError) as error:
            # Pebble's text spans lines ("cannot perform the following tasks:\n- ... (timed
            # out)"); one line, naming the command and its budget, is what an operator needs.
            text = error.err if isinstance(error, ops.pebble.ChangeError) else str(error)
            detail = " ".join(text.split())
            command = argv[0].rsplit("/", 1)[-1]
            return 124, "", f"Error: {command} did not finish within {timeout:g}s ({detail})"

    def etcd_release(self) -> str:
        """The image's etcd version, in full ("3.5.1")."""
        code, out, err = self.run([ETCD, "--version"], 10)
        match = re.search(r"etcd Version:\s*(\d+\.\d+\S*)", out)
        if code != 0 or not match:
            raise RuntimeError(f"cannot read the etcd version in the container: {err or out}")
        return match.group(1)

    def has_member_data(self) -> bool:
        return self.container.exists(f"{DATA_DIR}/member")

    def read_marker(self) -> dict[str, object] | None:
        if not self.container.exists(MARKER_PATH):
            return None
        try:
            data = json.loads(self.container.pull(MARKER_PATH).read())
        except ValueError:
            logger.warning("ignoring unreadable %s", MARKER_PATH)
            return None
        return data if isinstance(data, dict) else None

    def write_marker(self, marker: dict[str, object]) -> None:
        self.container.push(MARKER_PATH, json.dumps(marker, sort_keys=True), make_dirs=True)

    def clear_marker(self) -> None:
        if self.container.exists(MARKER_PATH):
            self.container.remove_path(MARKER_PATH)

    def wipe_data(self) -> None:
        """Stop etcd, then remove the member's data and its marker. Only for data the cluster
        no longer has. Stopped first: Pebble would otherwise restart a crashed etcd on the
        emptied directory, and its failed start would leave new data there."""
        self.stop()
        if self.container.exists(DATA_DIR):
            self.container.remove_path(DATA_DIR, recursive=True)
        if self.container.exists(MARKER_PATH):
            self.container.remove_path(MARKER_PATH)

    # ---- small files (certificates) -------------------------------------------------------------

    def read_file(self, path: str) -> str | None:
        if not self.container.exists(path):
            return None
        return self.container.pull(path).read()

    def write_file(self, path: str, text: str, private: bool = False) -> None:
        """Pebble writes through a temporary file and a rename: a reader never sees half."""
        if self.read_file(path) == text:
            return
        self.container.push(path, text, make_dirs=True, permissions=0o600 if private else 0o644)

    def remove_file(self, path: str) -> None:
        if self.container.exists(path):
            self.container.remove_path(path)

    def restart(self, check: list[str] | None = None) -> None:
        if check is not None:
            self.container.add_layer(SERVICE, self._layer(check), combine=True)
            self.container.replan()
        self.container.restart(SERVICE)

    def stop(self) -> None:
        """Stop etcd, also when it is between restarts (Pebble's backoff): a service left in
        backoff would start again over whatever the charm does to the data next."""
        services = self.container.get_services(SERVICE)
        if SERVICE in services and services[SERVICE].current != ops.pebble.ServiceStatus.INACTIVE:
            self.container.stop(SERVICE)

    def is_running(self) -> bool:
        services = self.container.get_services(SERVICE)
        return SERVICE in services and services[SERVICE].is_running()

    def config_text(self) -> str | None:
        if not self.container.exists(CONFIG_PATH):
            return None
        return self.container.pull(CONFIG_PATH).read()

    def write_config(self, text: str) -> None:
        self.container.push(CONFIG_PATH, text, make_dirs=True, permissions=0o600)

    def start(self, check: list[str] | None = None) -> None:
        """(Re)add the layer and replan: Pebble forgets the plan when the pod is recreated."""
        self.container.add_layer(SERVICE, self._layer(check or READY_COMMAND), combine=True)
        self.container.replan()
        if not self.is_running():
            self.container.start(SERVICE)

    def hold_unready(self, check: list[str]) -> None:
        """Put the ready check in the plan without etcd: Pebble's readiness with no `ready`
        check says ready, and a refused pod must stay unready to halt Kubernetes' roll. The
        check only, in a layer of its own: no service to start on a replan."""
        if READY_CHECK in self.container.get_plan().checks:
            return
        layer = self._layer(check)
        self.container.add_layer(HOLD_LAYER, {"checks": layer["checks"]}, combine=True)

    def start_temporary(self, name: str, command: str) -> None:
        """A service of its own for a one-off run (never started by a replan)."""
        layer: ops.pebble.LayerDict = {
            "summary": name,
            "services": {
                name: {
                    "override": "replace",
                    "summary": name,
                    "command": command,
                    "startup": "disabled",
                    "kill-delay": KILL_DELAY,
                }
            },
        }
        self.container.add_layer(name, layer, combine=True)
        self.container.start(name)

    def stop_temporary(self, name: str) -> None:
        if name in self.container.get_services(name):
            self.container.stop(name)

    def _layer(self, check: list[str]) -> ops.pebble.LayerDict:
        return {
            "summary": "etcd",
            "services": {
                SERVICE: {
                    "override": "replace",
                    "summary": "etcd member",
                    "command": f"{ETCD} --config-file {CONFIG_PATH}",
                    "startup": "enabled",
                    "kill-delay": KILL_DELAY,
                }
            },
            # Juju wires the pod's readiness to `ready` checks: a member is ready when it serves
            # a quorum read, which a learner or a member cut off from the leader does not. So a
            # rolling image update (`juju refresh`) moves on only after each pod is a healthy voter.
            "checks": {
                READY_CHECK: {
                    "override": "replace",
                    "level": "ready",
                    "period": "10s",
                    "timeout": "5s",
                    "threshold": 3,
                    "exec": {"command": " ".join(check)},
                }
            },
        }

    # ---- log forwarding (Loki) ------------------------------------------------------------------

    def log_targets(self) -> dict[str, LogTarget]:
        """The plan's log targets, as the decision reads them."""
        return {
            name: LogTarget(target.location or "", tuple(target.services), dict(target.labels))
            for name, target in self.container.get_plan().log_targets.items()
        }

    def add_log_layer(self, layer: dict[str, Any]) -> None:
        """Pebble applies log targets on add_layer; no service restarts for it."""
        self.container.add_layer(LOG_LAYER, cast("ops.pebble.LayerDict", layer), combine=True)
