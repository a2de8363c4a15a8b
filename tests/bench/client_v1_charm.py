"""A client charm of the v1 etcd_client protocol, written with a library nobody here wrote:
dpcharmlibs-interfaces' `ResourceRequirerEventHandler` (PyPI), the way charmed-etcd-operator's
test requirer uses it. One relation, several requests (a prefix and a certificate each).

Config: `requests` (JSON list of {"prefix", "cert"}), `report` (a file where it writes what the
library handed it: each response with its secrets read, and every status event)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import ops

with warnings.catch_warnings():  # pydantic notes on the library's own models
    warnings.simplefilter("ignore")
    from dpcharmlibs.interfaces import (
        RequirerCommonModel,
        ResourceProviderModel,
        ResourceRequirerEventHandler,
    )

META: dict[str, Any] = {"requires": {"etcd": {"interface": "etcd_client", "limit": 1}}}
CONFIG: dict[str, Any] = {
    "options": {
        "requests": {"type": "string", "default": "[]"},
        "report": {"type": "string", "default": ""},
    }
}


class BenchV1ClientCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        wanted = json.loads(str(self.config.get("requests") or "[]"))
        requests = [RequirerCommonModel(resource=r["prefix"], mtls_cert=r["cert"]) for r in wanted]
        self.etcd = ResourceRequirerEventHandler(self, "etcd", requests, ResourceProviderModel)
        for event in (
            self.etcd.on.resource_created,
            self.etcd.on.endpoints_changed,
            self.etcd.on.authentication_updated,
        ):
            framework.observe(event, self._on_response)
        framework.observe(self.etcd.on.status_raised, self._on_status)
        framework.observe(self.etcd.on.status_resolved, self._on_status)

    def _on_response(self, event: Any) -> None:
        response = event.response
        report = self._read()
        report["responses"][response.resource] = {
            "event": type(event).__name__,
            "username": response.username,
            "uris": response.uris,
            "endpoints": response.endpoints,
            "tls-ca": response.tls_ca,
            "version": response.version,
        }
        self._write(report)
        self.unit.status = ops.ActiveStatus(f"etcd: {len(report['responses'])} served")

    def _on_status(self, event: Any) -> None:
        report = self._read()
        report["statuses"].append({"event": type(event).__name__, **event.status.model_dump()})
        self._write(report)

    def _read(self) -> dict[str, Any]:
        path = Path(str(self.config.get("report") or ""))
        if path.is_file():
            return json.loads(path.read_text())
        return {"responses": {}, "statuses": []}

    def _write(self, report: dict[str, Any]) -> None:
        if self.config.get("report"):
            Path(str(self.config["report"])).write_text(json.dumps(report))
