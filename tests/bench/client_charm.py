"""A small client charm for the bench, written the way a client charm author would: it uses the
published library (lib/charms/etcd_k8s/v0/etcd_client.py) and nothing of etcd-k8s's own code.

Config: `prefix` (asked for), `cert` (the PEM of its client certificate; its key stays with the
test), `report` (a file where it writes what it got, as a real client would write its workload's
config). The tests read that report and connect with the library's helpers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import ops

from charms.etcd_k8s.v0.etcd_client import EtcdClientRequires

META: dict[str, Any] = {"requires": {"etcd": {"interface": "etcd_client", "limit": 1}}}
CONFIG: dict[str, Any] = {
    "options": {
        "prefix": {"type": "string", "default": ""},
        "cert": {"type": "string", "default": ""},
        "report": {"type": "string", "default": ""},
    }
}


class BenchClientCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.etcd = EtcdClientRequires(self, "etcd", prefix=str(self.config.get("prefix", "")))
        framework.observe(self.on.config_changed, self._on_cert)
        framework.observe(self.on.leader_elected, self._on_cert)
        framework.observe(self.etcd.on.changed, self._report)
        framework.observe(self.etcd.on.gone, self._report)

    def _on_cert(self, event: ops.EventBase) -> None:
        cert = str(self.config.get("cert", ""))
        if cert and self.unit.is_leader():
            self.etcd.set_certificate(cert)
        self._report(event)

    def _report(self, _: ops.EventBase) -> None:
        relation = self.model.get_relation("etcd")
        alive = relation is not None and not isinstance(_, ops.RelationBrokenEvent)
        connection = self.etcd.connection() if alive else None
        status = self.etcd.provider_status() if alive else None
        if connection is not None:
            self.unit.status = ops.ActiveStatus(f"etcd: connected as {connection.username}")
        elif status and status.startswith("refused"):
            self.unit.status = ops.BlockedStatus(f"etcd {status}")
        else:
            self.unit.status = ops.WaitingStatus(f"etcd: {status or 'not related'}")
        report = str(self.config.get("report", ""))
        if report:
            Path(report).write_text(
                json.dumps(
                    {
                        "connection": dataclasses.asdict(connection) if connection else None,
                        "status": status,
                    }
                )
            )
