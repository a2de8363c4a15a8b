"""What etcd-k8s tells COS, decided over plain data: the Prometheus scrape jobs and metadata
(interface prometheus_scrape v0), the Grafana dashboards payload (grafana_dashboard v0), and
the Pebble log targets to each Loki unit (loki_push_api v0), with the checks on what a Loki
unit publishes. relations/observability.py reads and writes the databags; nothing here does."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from core.identity import DEFAULT_DOMAIN

# etcd's listen-metrics-urls: /metrics and /health in plain http, whatever the client TLS.
METRICS_PORT = 2381
METRICS_PATH = "/metrics"
SCRAPE_JOB = "etcd"
LOKI_TARGET_PREFIX = "loki-"  # every log target this charm adds; one per Loki unit


@dataclass(frozen=True)
class Topology:
    """Where a unit lives in Juju: what every metric, alert, dashboard and log line is labelled
    with, so that two etcd-k8s applications never mix in COS."""

    model: str
    model_uuid: str
    application: str
    unit: str
    charm_name: str

    def scrape_metadata(self) -> dict[str, str]:
        """`scrape_metadata` as prometheus_scrape v0 names its fields."""
        return {
            "model": self.model,
            "model_uuid": self.model_uuid,
            "application": self.application,
            "unit": self.unit,
            "charm_name": self.charm_name,
        }

    def dashboard_topology(self) -> dict[str, str]:
        """A dashboard template's `juju_topology` (grafana_dashboard v0)."""
        return {
            "model": self.model,
            "model_uuid": self.model_uuid,
            "application": self.application,
            "unit": self.unit,
        }

    def labels(self) -> dict[str, str]:
        """The `juju_*` labels COS puts on a unit's metrics; here on its log lines."""
        return {
            "juju_model": self.model,
            "juju_model_uuid": self.model_uuid,
            "juju_application": self.application,
            "juju_unit": self.unit,
            "juju_charm": self.charm_name,
        }


@dataclass(frozen=True)
class Refusal:
    """Relation data this charm will not act on: whose, which field, and why."""

    relation: str
    source: str  # the remote unit or application that wrote it
    field: str
    why: str

    def __str__(self) -> str:
        return f"{self.relation} {self.source} {self.field}: {self.why}"


# ---- Prometheus -------------------------------------------------------------------------------


def pod_fqdn(unit: str, app: str, model: str, domain: str = DEFAULT_DOMAIN) -> str:
    """A unit's pod DNS name under the headless service: stable across pod IP changes."""
    return f"{unit.replace('/', '-')}.{app}-endpoints.{model}.svc.{domain}"


def scrape_jobs(units: Sequence[str], app: str, model: str, domain: str) -> list[dict[str, Any]]:
    """One job, one target per unit by its pod DNS name on the metrics port, each labelled with
    its unit: Prometheus keeps `juju_unit` on an explicit target (it expands only `*`)."""
    configs = [
        {
            "targets": [f"{pod_fqdn(unit, app, model, domain)}:{METRICS_PORT}"],
            "labels": {"juju_unit": unit},
        }
        for unit in sorted(set(units), key=_unit_order)
    ]
    return [
        {
            "job_name": SCRAPE_JOB,
            "metrics_path": METRICS_PATH,
            "scheme": "http",
            "static_configs": configs,
        }
    ]


def scrape_unit_data(unit: str, app: str, model: str, domain: str) -> dict[str, str]:
    """What each unit says of itself on metrics-endpoint: no ingress or proxy, so no path."""
    return {
        "prometheus_scrape_unit_address": pod_fqdn(unit, app, model, domain),
        "prometheus_scrape_unit_name": unit,
        "prometheus_scrape_unit_path": "",
    }


def scrape_app_data(
    jobs: list[dict[str, Any]], topology: Topology, alert_rules: Mapping[str, Any]
) -> dict[str, str]:
    """The leader's application databag on metrics-endpoint, every value JSON."""
    return {
        "scrape_jobs": _dumps(jobs),
        "scrape_metadata": _dumps(topology.scrape_metadata()),
        "alert_rules": _dumps(alert_rules),
    }


def rule_problems(rules: Mapping[str, Any]) -> list[str]:
    """What prometheus_scrape v0 asks of each rule and a rule file here lacks: a name, an
    expression, a `for`, labels and annotations (summary and description, for the operator)."""
    problems = []
    groups = rules.get("groups")
    if not isinstance(groups, list) or not groups:
        return ["no rule groups"]
    for group in groups:
        if not isinstance(group, dict) or not group.get("name") or not group.get("rules"):
            problems.append(f"group {group!r}: needs a name and rules")
            continue
        for rule in group["rules"]:
            name = rule.get("alert") if isinstance(rule, dict) else None
            if not isinstance(rule, dict) or not name or not rule.get("expr"):
                problems.append(f"group {group['name']}: a rule needs `alert` and `expr`")
                continue
            missing = [k for k in ("for", "labels", "annotations") if k not in rule]
            notes = rule.get("annotations") or {}
            missing += [k for k in ("summary", "description") if k not in notes]
            if missing:
                problems.append(f"{name}: missing {', '.join(missing)}")
    return problems


# ---- Grafana ----------------------------------------------------------------------------------


def dashboards_data(
    topology: Topology, dashboards: Mapping[str, str], inject_dropdowns: bool = True
) -> dict[str, str]:
    """The leader's `dashboards` (grafana_dashboard v0): each dashboard file's content already
    LZMA+base64-encoded, keyed `file:<name>`. The uuid is derived, not random, so an unchanged
    dashboard rewrites the same bytes and wakes nobody."""
    import uuid  # only where a dashboard is sent: not on every hook's import

    templates = {
        f"file:{name}": {
            "charm": topology.charm_name,
            "content": content,
            "juju_topology": topology.dashboard_topology(),
            "inject_dropdowns": inject_dropdowns,
        }
        for name, content in sorted(dashboards.items())
    }
    seed = f"{topology.model_uuid}/{topology.application}/{_dumps(templates)}"
    stored = {"templates": templates, "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, seed))}
    return {"dashboards": _dumps(stored)}


# ---- Loki -------------------------------------------------------------------------------------


def loki_push_urls(
    relation: str, units_data: Mapping[str, Mapping[str, str]]
) -> tuple[dict[str, str], list[Refusal]]:
    """Each Loki unit's push URL from its `endpoint` ({"url": ...}); a unit that has not said
    yet is left out, one whose data is not a push URL is refused (and named)."""
    urls: dict[str, str] = {}
    refused: list[Refusal] = []
    for unit in sorted(units_data, key=_unit_order):
        raw = units_data[unit].get("endpoint")
        if raw is None:
            continue
        url, why = _push_url(raw)
        if url is None:
            refused.append(Refusal(relation, unit, "endpoint", why))
        else:
            urls[unit] = url
    return urls, refused


def _push_url(raw: str) -> tuple[str | None, str]:
    try:
        data = json.loads(raw)
    except ValueError:
        return None, "not JSON"
    url = data.get("url") if isinstance(data, dict) else None
    if not isinstance(url, str):
        return None, 'not {"url": ...}'
    try:
        parts = urlparse(url)
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError:
        return None, "not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, "not an http(s) URL"
    if any(c.isspace() for c in url):
        return None, "not a URL"
    return url, ""


@dataclass(frozen=True)
class LogTarget:
    """A Pebble log target as the plan has it (only what the decision needs)."""

    location: str
    services: tuple[str, ...]
    labels: Mapping[str, str]

    @property
    def forwards(self) -> bool:
        """Pebble's reading of `services`, left to right: does any service's log go out?"""
        on: set[str] = set()
        for name in self.services:
            if name == "all":
                on = {"all"}
            elif name == "-all":
                on = set()
            elif name.startswith("-"):
                on.discard(name[1:])
            else:
                on.add(name)
        return bool(on)


def target_name(loki_unit: str) -> str:
    return LOKI_TARGET_PREFIX + loki_unit.replace("/", "-")


def log_targets_layer(
    urls: Mapping[str, str], current: Mapping[str, LogTarget], labels: Mapping[str, str]
) -> dict[str, Any] | None:
    """The layer that makes the plan forward every service's logs to exactly these push URLs,
    or None when it already does. A target no longer wanted is switched off (`-all`): Pebble
    has no way to delete one from a layer."""
    wanted = {target_name(unit): url for unit, url in urls.items()}
    targets: dict[str, Any] = {}
    for name, url in sorted(wanted.items()):
        now = current.get(name)
        if now and now.forwards and now.location == url and dict(now.labels) == dict(labels):
            continue
        targets[name] = {
            "override": "replace",
            "type": "loki",
            "location": url,
            "services": ["all"],
            "labels": dict(labels),
        }
    for name, now in sorted(current.items()):
        if name.startswith(LOKI_TARGET_PREFIX) and name not in wanted and now.forwards:
            targets[name] = {
                "override": "replace",
                "type": "loki",
                "location": now.location,
                "services": ["-all"],
            }
    if not targets:
        return None
    return {"summary": "etcd logs to Loki", "log-targets": targets}


# ---- helpers ----------------------------------------------------------------------------------


def _unit_order(unit: str) -> tuple[str, int]:
    app, _, number = unit.rpartition("/")
    return (app, int(number)) if number.isdigit() else (unit, -1)


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True)
