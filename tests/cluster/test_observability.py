"""COS on real etcd: a real Prometheus server (Debian's) scrapes what the charm publishes on
`metrics-endpoint`, its scrape config and rules built from that relation data as the Prometheus
charm builds them (tests/bench/cos.py), with short scrape and evaluation intervals. Every pod's
target is up with client TLS on and off; a crashing member drives `up == 0` and the
members-down expression; a NOSPACE alarm at a small quota drives the quota and alarm
expressions; a healthy cluster has no alert expression true; every dashboard panel's query is
valid PromQL with data. Loki: the bench's Pebble forwards no logs, so the test checks the log
targets the charm puts in its Pebble plan against the push URL the bench's Loki published."""

from __future__ import annotations

import json
import re
import subprocess
import time
from typing import Any

import pytest
from ops import pebble

from tests.bench.binaries import etcdctl
from tests.bench.checks import client, tls_args
from tests.bench.cos import Prometheus, loki_endpoint
from tests.bench.juju import Juju

MIB = 1024 * 1024
PEER, CLIENT = "peer-certificates", "client-certificates"


def alert_exprs(j: Juju) -> dict[str, str]:
    rules = json.loads(j.cos["metrics-endpoint"].app_data["alert_rules"])
    return {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}


def start_prometheus(j: Juju) -> Prometheus:
    prometheus = Prometheus(j.workdir, j.network)
    prometheus.configure(j.cos["metrics-endpoint"])
    return prometheus


def assert_every_target_up(j: Juju, prometheus: Prometheus) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        found = prometheus.targets()
        ok = len(found) == len(j.units) and all(t["health"] == "up" for t in found)
        return found if ok else None

    targets = prometheus.wait("every pod's target up", all_up)
    assert {t["labels"]["juju_unit"] for t in targets} == set(j.units)
    for t in targets:  # by pod DNS name, on the plain-http metrics port
        unit = j.units[t["labels"]["juju_unit"]]
        assert t["scrapeUrl"] == f"http://{j.fqdn(unit)}:2381/metrics"
        assert t["labels"]["juju_application"] == "etcd-k8s"
        assert t["labels"]["juju_charm"] == "etcd-k8s"


def log_targets(j: Juju, name: str) -> dict[str, pebble.LogTarget]:
    """The unit's Pebble plan's log targets, its layers combined as Pebble combines them."""
    plan: dict[str, pebble.LogTarget] = {}
    for layer in j.units[name].layers.values():
        for target_name, target in pebble.Layer(layer.to_dict()).log_targets.items():
            if target.override == "merge" and target_name in plan:
                plan[target_name]._merge(target)
            else:
                plan[target_name] = target
    return plan


def panel_queries(j: Juju) -> list[tuple[str, str]]:
    from cosl import LZMABase64

    stored = json.loads(j.cos["grafana-dashboard"].app_data["dashboards"])
    (template,) = stored["templates"].values()
    dashboard = json.loads(LZMABase64.decompress(template["content"]))
    queries = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = re.sub(r"\$juju_\w+", ".*", target["expr"])
            queries.append((panel["title"], expr.replace("$__rate_interval", "1m")))
    return queries


def test_prometheus_scrapes_alerts_and_dashboard(bench: Juju) -> None:
    j = bench
    j.config["quota-backend-bytes"] = 16 * MIB  # the smallest quota: NOSPACE comes quickly
    j.deploy(3)
    j.relate_cos("metrics-endpoint")
    j.relate_cos("grafana-dashboard")
    j.settle()
    assert not j.failures()
    metrics = j.cos["metrics-endpoint"]
    for name, unit in j.units.items():
        assert metrics.unit_data[name]["prometheus_scrape_unit_address"] == j.fqdn(unit)
        assert metrics.unit_data[name]["prometheus_scrape_unit_name"] == name
    assert json.loads(metrics.app_data["scrape_metadata"])["application"] == "etcd-k8s"
    prometheus = start_prometheus(j)
    try:
        assert_every_target_up(j, prometheus)
        exprs = alert_exprs(j)
        assert len(exprs) >= 18
        # The server loaded every rule the charm sent, and evaluates each without error.
        loaded = prometheus.wait(
            "every rule evaluated",
            lambda: (
                (r := [x for g in prometheus.api("rules")["groups"] for x in g["rules"]])
                and all(x.get("lastEvaluation", "").startswith("2") for x in r)
                and r
            ),
        )
        assert sorted(x["name"] for x in loaded) == sorted(exprs)
        assert [x["name"] for x in loaded if x["health"] != "ok"] == []

        # Healthy: after some evaluations, no alert's expression is true.
        time.sleep(5)
        for alert, expr in exprs.items():
            assert prometheus.query(expr) == [], alert

        # The dashboard: every panel query is valid PromQL and returns data.
        queries = panel_queries(j)
        assert len(queries) >= 13
        for title, expr in queries:
            assert prometheus.query(expr), f"panel {title!r}: no data for {expr}"

        # A member that keeps crashing (kill -9, Pebble restarts it): up == 0, members down.
        victim = sorted(j.units)[-1]

        def victim_down() -> bool:
            j.kill9(victim)
            down = prometheus.query(f'up{{juju_unit="{victim}"}} == 0')
            return bool(down) and bool(prometheus.query(exprs["EtcdMembersDown"]))

        prometheus.wait("the crashing member's up == 0 and members-down true", victim_down, 60)
        prometheus.wait(
            "the member back up",
            lambda: prometheus.query(f'up{{juju_unit="{victim}"}} == 1'),
            90,
        )

        # NOSPACE at the 16 MiB quota: the quota and alarm expressions come true.
        etcd = client(j)
        value = b"x" * (MIB - 4096)
        with pytest.raises(Exception, match="space"):  # noqa: B017  (etcd3's error type varies)
            for number in range(64):
                etcd.put(f"/fill/{number}", value)
        alarms = subprocess.run(
            [etcdctl(j.version), f"--endpoints={j.client_endpoints()[0]}", *tls_args(j)]
            + ["alarm", "list"],
            capture_output=True,
            text=True,
        )
        assert "NOSPACE" in alarms.stdout, alarms
        for alert in ("EtcdNoSpaceAlarm", "EtcdDatabaseQuotaLowSpace", "EtcdDatabaseNearQuota"):
            prometheus.wait(
                f"{alert}'s expression true", lambda a=alert: prometheus.query(exprs[a])
            )
    finally:
        prometheus.close()


def test_tls_scrapes_and_log_targets(bench: Juju) -> None:
    j = bench
    j.deploy(3)
    j.relate_certificates(PEER)
    j.relate_certificates(CLIENT)
    j.relate_cos("metrics-endpoint")
    j.relate_cos("logging", {0: loki_endpoint(0)})
    j.settle()
    assert not j.failures()
    # Client TLS is on: every member serves its client URL in https (and wants a certificate).
    assert all(j.databags[name]["client-url"].startswith("https://") for name in j.units)
    prometheus = start_prometheus(j)
    try:
        assert_every_target_up(j, prometheus)  # plain http 2381 while 2379 wants certificates
    finally:
        prometheus.close()

    url = json.loads(loki_endpoint(0)["endpoint"])["url"]
    for name in j.units:
        targets = log_targets(j, name)
        assert set(targets) == {"loki-loki-0"}
        target = targets["loki-loki-0"]
        assert (target.type, target.location, target.services) == ("loki", url, ["all"])
        assert target.labels["juju_unit"] == name
        assert target.labels["juju_application"] == "etcd-k8s"

    # Garbage from a second Loki unit: refused, named in the status, nothing changed.
    j.set_cos_remote("logging", 1, {"endpoint": json.dumps({"url": "not a url"})})
    j.settle()
    for name, unit in j.units.items():
        assert "COS relation data refused: logging loki/1 endpoint" in unit.status.message
        assert set(log_targets(j, name)) == {"loki-loki-0"}
        assert log_targets(j, name)["loki-loki-0"].services == ["all"]

    # The relation goes: every unit's target stops forwarding (Pebble cannot delete one).
    j.remove_cos("logging")
    j.settle()
    assert not j.failures()
    for name, unit in j.units.items():
        assert log_targets(j, name)["loki-loki-0"].services == ["-all"]
        assert "COS relation data refused" not in unit.status.message
