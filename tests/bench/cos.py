"""COS on the bench: the remote sides of `metrics-endpoint`, `grafana-dashboard` and `logging`
as data (a relation each, with what the remote application publishes), and a real Prometheus
server (Debian's) whose scrape config and rules are built from what etcd-k8s publishes, as the
Prometheus charm builds them. Loki is data only: the bench's Pebble forwards no logs, so the
tests check the log targets the charm puts in its Pebble plan."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

COS_RELATION_IDS = {"metrics-endpoint": 40, "grafana-dashboard": 41, "logging": 42}
INTERFACES = {
    "metrics-endpoint": "prometheus_scrape",
    "grafana-dashboard": "grafana_dashboard",
    "logging": "loki_push_api",
}
REMOTE_APPS = {"metrics-endpoint": "prometheus", "grafana-dashboard": "grafana", "logging": "loki"}


def loki_endpoint(unit: int = 0) -> dict[str, str]:
    """What a Loki unit publishes: its push URL."""
    url = f"http://loki-{unit}.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"
    return {"endpoint": json.dumps({"url": url})}


@dataclass
class CosRelation:
    """One COS relation: the remote application's data, and etcd-k8s's (app and per unit)."""

    endpoint: str
    remote_units: dict[int, dict[str, str]] = field(default_factory=lambda: {0: {}})
    remote_app_data: dict[str, str] = field(default_factory=dict)
    app_data: dict[str, str] = field(default_factory=dict)  # what the etcd-k8s leader wrote
    unit_data: dict[str, dict[str, str]] = field(default_factory=dict)  # per etcd-k8s unit

    @property
    def id(self) -> int:
        return COS_RELATION_IDS[self.endpoint]


# ---- Prometheus, as the Prometheus charm configures it ------------------------------------------


def scrape_configs(relation: CosRelation) -> list[dict[str, Any]]:
    """The provider's jobs, each target labelled with the Juju topology of `scrape_metadata`
    (explicit targets keep their own labels; `*` expands to every unit's address)."""
    meta = json.loads(relation.app_data["scrape_metadata"])
    topology = {
        "juju_model": meta["model"],
        "juju_model_uuid": meta["model_uuid"],
        "juju_application": meta["application"],
        "juju_charm": meta["charm_name"],
    }
    jobs = []
    for job in json.loads(relation.app_data["scrape_jobs"]):
        configs = []
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                if host == "*":
                    for unit, bag in sorted(relation.unit_data.items()):
                        address = bag["prometheus_scrape_unit_address"]
                        labels = {**topology, "juju_unit": unit, **static.get("labels", {})}
                        configs.append({"targets": [f"{address}:{port}"], "labels": labels})
                else:
                    configs.append(
                        {"targets": [target], "labels": {**topology, **static.get("labels", {})}}
                    )
        name = f"juju_{meta['model']}_{meta['model_uuid'][:7]}_{meta['application']}"
        jobs.append(
            {
                "job_name": f"{name}_{job.get('job_name', 'default')}",
                "metrics_path": job.get("metrics_path", "/metrics"),
                "scheme": job.get("scheme", "http"),
                "static_configs": configs,
            }
        )
    return jobs


class Prometheus:
    """A real Prometheus server in a pod of its own on the bench network: pod DNS names resolve
    there as in Kubernetes, and the host reaches its API at the pod's address."""

    def __init__(self, workdir: Path, network: Any, interval: str = "1s"):
        self.workdir = workdir / "prometheus"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.network = network
        self.interval = interval
        self.process: subprocess.Popen[bytes] | None = None
        self.net = network.add_pod("prometheus", ("prometheus.cos.svc.cluster.local",))

    @property
    def url(self) -> str:
        return f"http://{self.net.address}:9090"

    def configure(self, relation: CosRelation) -> None:
        rules = json.loads(relation.app_data["alert_rules"])
        (self.workdir / "rules.yml").write_text(yaml.safe_dump(rules))
        config = {
            "global": {
                "scrape_interval": self.interval,
                "scrape_timeout": self.interval,
                "evaluation_interval": self.interval,
            },
            "rule_files": [str(self.workdir / "rules.yml")],
            "scrape_configs": scrape_configs(relation),
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        if self.process is None:
            self._start()
        else:
            urllib.request.urlopen(urllib.request.Request(f"{self.url}/-/reload", method="POST"))

    def _start(self) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not installed: run tools/setup.sh"
        argv = [
            binary,
            f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address={self.net.address}:9090",
            "--web.enable-lifecycle",
        ]
        log = open(self.workdir / "prometheus.log", "ab")  # noqa: SIM115  (the process keeps it)
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.net.netns, *argv], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready: " + self.log()[-2000:])

    def log(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as answer:
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector `expr` gives now (an error answer raises: invalid PromQL)."""
        return list(self.api("query", query=expr)["result"])

    def targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets")["activeTargets"])

    def wait(self, what: str, check: Any, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus: {what} within {timeout}s")
            time.sleep(0.5)

    def close(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.network.remove_pod("prometheus")
