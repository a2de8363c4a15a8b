"""The COS relations, the only code touching their databags: `metrics-endpoint`
(prometheus_scrape v0, provider), `grafana-dashboard` (grafana_dashboard v0, provider) and
`logging` (loki_push_api v0, requirer, by Pebble log forwarding). The decisions are in
core/observability.py; cosl (JujuTopology, rules, LZMABase64) loads only once one is related.

Every unit publishes its own scrape address and forwards its own logs; the leader publishes the
application's scrape jobs, alert rules and dashboards.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import ops
import yaml

from core import observability as obs
from literals import (
    ALERT_RULES_DIR,
    DASHBOARD_RELATION,
    DASHBOARDS_DIR,
    LOGGING_RELATION,
    METRICS_RELATION,
    PEER_RELATION,
)
from workload.pebble import Workload

if TYPE_CHECKING:
    from cosl import JujuTopology

logger = logging.getLogger(__name__)


class Observability:
    """Publish to Prometheus and Grafana, forward logs to Loki; say what was refused."""

    def __init__(
        self, charm: ops.CharmBase, workload: Workload, domain: str, broken_id: int | None = None
    ):
        self.charm = charm
        self.workload = workload
        self.domain = domain
        self.broken_id = broken_id  # the relation going away in this hook, if any
        self._topology: JujuTopology | None = None

    def reconcile(self) -> list[obs.Refusal]:
        """One pass over the three endpoints; idempotent (an unchanged databag is not written)."""
        for relation in self._related(METRICS_RELATION):
            self._publish_metrics(relation)
        if self.charm.unit.is_leader():
            for relation in self._related(DASHBOARD_RELATION):
                self._publish_dashboards(relation)
        return self._forward_logs()

    # ---- Prometheus ---------------------------------------------------------------------------

    def _publish_metrics(self, relation: ops.Relation) -> None:
        app, model, unit = self.charm.app.name, self.charm.model.name, self.charm.unit.name
        _update(relation.data[self.charm.unit], obs.scrape_unit_data(unit, app, model, self.domain))
        if not self.charm.unit.is_leader():
            return
        peers = self.charm.model.get_relation(PEER_RELATION)
        units = [unit, *(u.name for u in (peers.units if peers else ()))]
        jobs = obs.scrape_jobs(units, app, model, self.domain)
        rules = self._alert_rules()
        data = obs.scrape_app_data(jobs, self._core_topology(), rules)
        _update(relation.data[self.charm.app], data)

    def _alert_rules(self) -> dict[str, Any]:
        from cosl.rules import Rules

        rules = Rules(query_type="promql", topology=self.topology)
        # Parsed here with libyaml: cosl's add_path reads with the pure-Python loader, 40 ms a
        # file, on every leader hook. Same groups, same topology prefix as add_path gives.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        for path in sorted(ALERT_RULES_DIR.glob("*.yaml")):
            data = yaml.load(path.read_text(), Loader=loader)  # noqa: S506  (a safe loader)
            rules.add(data, group_name_prefix=self.topology.identifier)
        found = rules.as_dict()
        for problem in obs.rule_problems(found):
            logger.error("alert rules in %s: %s", ALERT_RULES_DIR, problem)
        return found

    # ---- Grafana ------------------------------------------------------------------------------

    def _publish_dashboards(self, relation: ops.Relation) -> None:
        from cosl import LZMABase64

        dashboards = {
            path.stem: LZMABase64.compress(path.read_text())
            for path in sorted(DASHBOARDS_DIR.glob("*.json"))
        }
        # The dashboard brings its own Juju topology variables: none injected.
        data = obs.dashboards_data(self._core_topology(), dashboards, inject_dropdowns=False)
        _update(relation.data[self.charm.app], data)

    # ---- Loki ---------------------------------------------------------------------------------

    def _forward_logs(self) -> list[obs.Refusal]:
        """Log targets for every Loki unit of every logging relation; none once they are gone."""
        urls: dict[str, str] = {}
        refused: list[obs.Refusal] = []
        for relation in self._related(LOGGING_RELATION):
            bags = {unit.name: dict(relation.data[unit]) for unit in relation.units}
            found, bad = obs.loki_push_urls(LOGGING_RELATION, bags)
            urls.update(found)
            refused += bad
        for refusal in refused:
            logger.warning("decision: refuse %s (changes nothing)", refusal)
        if not self.workload.ready:
            return refused
        current = self.workload.log_targets()
        labels = self._core_topology().labels() if urls else {}
        layer = obs.log_targets_layer(urls, current, labels)
        if layer is not None:
            logger.info("decision: forward logs to %s", sorted(urls.values()) or "nowhere")
            self.workload.add_log_layer(layer)
        return refused

    # ---- helpers ------------------------------------------------------------------------------

    def _related(self, name: str) -> list[ops.Relation]:
        return [r for r in self.charm.model.relations.get(name, []) if r.id != self.broken_id]

    @property
    def topology(self) -> JujuTopology:
        if self._topology is None:
            from cosl import JujuTopology

            self._topology = JujuTopology.from_charm(self.charm)
        return self._topology

    def _core_topology(self) -> obs.Topology:
        t = self.topology
        return obs.Topology(t.model, t.model_uuid, t.application, t.unit or "", t.charm_name or "")


def _update(bag: ops.RelationDataContent, data: dict[str, str]) -> None:
    """Write only what changed: a relation-set wakes every unit on the other side."""
    for key, value in data.items():
        if bag.get(key) != value:
            bag[key] = value
