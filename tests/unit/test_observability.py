"""COS: the decisions of core/observability.py over plain data, and the relation code
(relations/observability.py) through the charm with ops.testing: what lands in the
metrics-endpoint and grafana-dashboard databags, and the Pebble log targets for Loki."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from ops import testing

from charm import EtcdK8sCharm
from core import observability as obs
from literals import ALERT_RULES_DIR, DASHBOARDS_DIR

TOPOLOGY = obs.Topology("m", "00000000-0000-4000-8000-000000000001", "etcd", "etcd/0", "etcd-k8s")
PUSH = "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"


def endpoint(url: object) -> dict[str, str]:
    return {"endpoint": json.dumps({"url": url})}


# ---- core: Prometheus ---------------------------------------------------------------------------


def test_topology_in_each_interface_s_words() -> None:
    assert TOPOLOGY.scrape_metadata() == {
        "model": "m",
        "model_uuid": TOPOLOGY.model_uuid,
        "application": "etcd",
        "unit": "etcd/0",
        "charm_name": "etcd-k8s",
    }
    assert TOPOLOGY.dashboard_topology() == {
        "model": "m",
        "model_uuid": TOPOLOGY.model_uuid,
        "application": "etcd",
        "unit": "etcd/0",
    }
    assert TOPOLOGY.labels() == {
        "juju_model": "m",
        "juju_model_uuid": TOPOLOGY.model_uuid,
        "juju_application": "etcd",
        "juju_unit": "etcd/0",
        "juju_charm": "etcd-k8s",
    }


def test_scrape_jobs_name_every_unit_by_pod_dns_name_in_order() -> None:
    (job,) = obs.scrape_jobs(["etcd/10", "etcd/2", "etcd/0", "etcd/2"], "etcd", "m", "c.example")
    assert job["job_name"] == "etcd"
    assert (job["metrics_path"], job["scheme"]) == ("/metrics", "http")
    assert job["static_configs"] == [
        {"targets": [f"etcd-{n}.etcd-endpoints.m.svc.c.example:2381"], "labels": {"juju_unit": u}}
        for n, u in ((0, "etcd/0"), (2, "etcd/2"), (10, "etcd/10"))
    ]


def test_scrape_unit_data() -> None:
    assert obs.scrape_unit_data("etcd/3", "etcd", "m", "cluster.local") == {
        "prometheus_scrape_unit_address": "etcd-3.etcd-endpoints.m.svc.cluster.local",
        "prometheus_scrape_unit_name": "etcd/3",
        "prometheus_scrape_unit_path": "",
    }


def test_scrape_app_data_is_json_per_field() -> None:
    jobs = obs.scrape_jobs(["etcd/0"], "etcd", "m", "cluster.local")
    data = obs.scrape_app_data(jobs, TOPOLOGY, {"groups": []})
    assert {k: json.loads(v) for k, v in data.items()} == {
        "scrape_jobs": jobs,
        "scrape_metadata": TOPOLOGY.scrape_metadata(),
        "alert_rules": {"groups": []},
    }


GOOD_RULE = {
    "alert": "A",
    "expr": "up == 0",
    "for": "1m",
    "labels": {"severity": "warning"},
    "annotations": {"summary": "s", "description": "d"},
}


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ({}, "no rule groups"),
        ({"groups": []}, "no rule groups"),
        ({"groups": "x"}, "no rule groups"),
        ({"groups": [{"rules": [GOOD_RULE]}]}, "needs a name and rules"),
        ({"groups": [{"name": "g", "rules": []}]}, "needs a name and rules"),
        ({"groups": ["g"]}, "needs a name and rules"),
        ({"groups": [{"name": "g", "rules": [{"alert": "A"}]}]}, "needs `alert` and `expr`"),
        ({"groups": [{"name": "g", "rules": ["x"]}]}, "needs `alert` and `expr`"),
        (
            {"groups": [{"name": "g", "rules": [{**GOOD_RULE, "for": None} | {"for": "1m"}]}]},
            None,
        ),
        (
            {
                "groups": [
                    {"name": "g", "rules": [{k: v for k, v in GOOD_RULE.items() if k != "for"}]}
                ]
            },
            "A: missing for",
        ),
        (
            {"groups": [{"name": "g", "rules": [{**GOOD_RULE, "annotations": {"summary": "s"}}]}]},
            "A: missing description",
        ),
        (
            {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "x"}]}]},
            "A: missing for, labels, annotations, summary, description",
        ),
    ],
)
def test_rule_problems(rules: dict[str, Any], problem: str | None) -> None:
    found = obs.rule_problems(rules)
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and problem in found[0], found


def test_the_charm_s_rule_files_have_no_problem() -> None:
    groups = []
    for path in sorted(ALERT_RULES_DIR.glob("*.yaml")):
        groups += yaml.safe_load(path.read_text())["groups"]
    assert obs.rule_problems({"groups": groups}) == []
    assert sum(len(g["rules"]) for g in groups) >= 18


# ---- core: Grafana ------------------------------------------------------------------------------


def test_dashboards_data_follows_grafana_dashboard_v0() -> None:
    stored = json.loads(obs.dashboards_data(TOPOLOGY, {"etcd": "XQAA"})["dashboards"])
    assert stored["templates"] == {
        "file:etcd": {
            "charm": "etcd-k8s",
            "content": "XQAA",
            "juju_topology": TOPOLOGY.dashboard_topology(),
            "inject_dropdowns": True,
        }
    }
    assert len(stored["uuid"]) == 36


def test_dashboards_uuid_is_stable_and_moves_with_the_content() -> None:
    first = obs.dashboards_data(TOPOLOGY, {"etcd": "a"})
    assert obs.dashboards_data(TOPOLOGY, {"etcd": "a"}) == first
    moved = obs.dashboards_data(TOPOLOGY, {"etcd": "b"}, inject_dropdowns=False)
    assert json.loads(moved["dashboards"])["uuid"] != json.loads(first["dashboards"])["uuid"]
    assert json.loads(moved["dashboards"])["templates"]["file:etcd"]["inject_dropdowns"] is False


# ---- core: Loki ---------------------------------------------------------------------------------


def test_loki_push_urls_takes_each_unit_s_url() -> None:
    units = {"loki/1": endpoint(PUSH + "?1"), "loki/0": endpoint(PUSH), "loki/2": {}}
    urls, refused = obs.loki_push_urls("logging", units)
    assert urls == {"loki/0": PUSH, "loki/1": PUSH + "?1"}  # loki/2 has not said yet
    assert refused == []


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("{", "not JSON"),
        ('["http://x"]', 'not {"url": ...}'),
        (json.dumps({"uri": PUSH}), 'not {"url": ...}'),
        (json.dumps({"url": 42}), 'not {"url": ...}'),
        (json.dumps({"url": "not a url"}), "not an http(s) URL"),
        (json.dumps({"url": "ftp://loki/push"}), "not an http(s) URL"),
        (json.dumps({"url": "http:///loki/api/v1/push"}), "not an http(s) URL"),
        (json.dumps({"url": "http://loki:port/push"}), "not a URL"),
        (json.dumps({"url": "http://[::1/push"}), "not a URL"),
        (json.dumps({"url": "http://loki/a b"}), "not a URL"),
    ],
)
def test_loki_push_urls_refuses_garbage(raw: str, why: str) -> None:
    urls, refused = obs.loki_push_urls(
        "logging", {"loki/0": endpoint(PUSH), "loki/1": {"endpoint": raw}}
    )
    assert urls == {"loki/0": PUSH}
    assert refused == [obs.Refusal("logging", "loki/1", "endpoint", why)]
    assert str(refused[0]) == f"logging loki/1 endpoint: {why}"


@pytest.mark.parametrize(
    ("services", "forwards"),
    [
        ((), False),
        (("all",), True),
        (("-all",), False),
        (("all", "-all"), False),
        (("-all", "all"), True),
        (("etcd",), True),
        (("etcd", "-etcd"), False),
        (("all", "-etcd"), True),
    ],
)
def test_log_target_forwards_as_pebble_reads_services(
    services: tuple[str, ...], forwards: bool
) -> None:
    assert obs.LogTarget(PUSH, services, {}).forwards is forwards


LABELS = TOPOLOGY.labels()
ON = obs.LogTarget(PUSH, ("all",), LABELS)


def wanted(url: str = PUSH) -> dict[str, Any]:
    return {
        "override": "replace",
        "type": "loki",
        "location": url,
        "services": ["all"],
        "labels": LABELS,
    }


def test_log_targets_layer_adds_one_target_per_loki_unit() -> None:
    layer = obs.log_targets_layer({"loki/0": PUSH, "loki/1": PUSH + "1"}, {}, LABELS)
    assert layer == {
        "summary": "etcd logs to Loki",
        "log-targets": {"loki-loki-0": wanted(), "loki-loki-1": wanted(PUSH + "1")},
    }


def test_log_targets_layer_is_none_when_the_plan_already_forwards() -> None:
    assert obs.log_targets_layer({"loki/0": PUSH}, {"loki-loki-0": ON}, LABELS) is None
    assert obs.log_targets_layer({}, {}, {}) is None


@pytest.mark.parametrize(
    "current",
    [
        obs.LogTarget(PUSH + "old", ("all",), LABELS),  # the URL moved
        obs.LogTarget(PUSH, ("all",), {**LABELS, "juju_unit": "etcd/9"}),  # other labels
        obs.LogTarget(PUSH, ("all", "-all"), LABELS),  # switched off before
    ],
)
def test_log_targets_layer_replaces_a_target_that_differs(current: obs.LogTarget) -> None:
    layer = obs.log_targets_layer({"loki/0": PUSH}, {"loki-loki-0": current}, LABELS)
    assert layer is not None and layer["log-targets"] == {"loki-loki-0": wanted()}


def test_log_targets_layer_switches_off_what_is_no_longer_related() -> None:
    off = obs.LogTarget(PUSH, ("all", "-all"), LABELS)
    foreign = obs.LogTarget("http://elsewhere", ("all",), {})
    current = {"loki-loki-0": ON, "loki-loki-1": off, "someone-else": foreign}
    layer = obs.log_targets_layer({}, current, {})
    assert layer is not None
    assert layer["log-targets"] == {
        "loki-loki-0": {
            "override": "replace",
            "type": "loki",
            "location": PUSH,
            "services": ["-all"],
        }
    }


# ---- the relation code, through the charm -------------------------------------------------------


def cos_relation(endpoint_name: str, **kwargs: Any) -> testing.Relation:
    return testing.Relation(endpoint_name, remote_app_name="loki", **kwargs)


PEERS = testing.PeerRelation("etcd-peers", peers_data={1: {}, 2: {}})


def run(
    relation: testing.Relation,
    *,
    leader: bool = True,
    can_connect: bool = False,
    event: str = "changed",
    layers: dict[str, Any] | None = None,
    peers: bool = True,
    remote: int | None = None,
) -> tuple[testing.State, testing.Context[EtcdK8sCharm]]:
    ctx = testing.Context(EtcdK8sCharm)
    container = testing.Container("etcd", can_connect=can_connect, layers=layers or {})
    state = testing.State(
        leader=leader,
        relations={relation, *([PEERS] if peers else [])},
        containers={container},
        model=testing.Model(name="m", uuid=TOPOLOGY.model_uuid),
    )
    make = getattr(ctx.on, f"relation_{event}")
    trigger = make(relation, remote_unit=remote) if remote is not None else make(relation)
    return ctx.run(trigger, state), ctx


def test_leader_publishes_scrape_jobs_metadata_and_rules() -> None:
    relation = cos_relation("metrics-endpoint")
    out, _ = run(relation)
    bags = out.get_relation(relation.id)
    jobs = json.loads(bags.local_app_data["scrape_jobs"])
    assert [c["labels"]["juju_unit"] for c in jobs[0]["static_configs"]] == [
        "etcd-k8s/0",
        "etcd-k8s/1",
        "etcd-k8s/2",
    ]
    meta = json.loads(bags.local_app_data["scrape_metadata"])
    assert meta == {
        "model": "m",
        "model_uuid": TOPOLOGY.model_uuid,
        "application": "etcd-k8s",
        "unit": "etcd-k8s/0",
        "charm_name": "etcd-k8s",
    }
    rules = json.loads(bags.local_app_data["alert_rules"])
    assert obs.rule_problems(rules) == []
    every = [r for g in rules["groups"] for r in g["rules"]]
    assert len(every) >= 18
    for rule in every:  # the topology on every rule, as prometheus_scrape v0 asks
        assert rule["labels"]["juju_application"] == "etcd-k8s"
        assert rule["labels"]["juju_model_uuid"] == TOPOLOGY.model_uuid
    assert bags.local_unit_data["prometheus_scrape_unit_name"] == "etcd-k8s/0"
    assert bags.local_unit_data["prometheus_scrape_unit_address"] == (
        "etcd-k8s-0.etcd-k8s-endpoints.m.svc.cluster.local"
    )


def test_a_follower_publishes_only_its_own_address() -> None:
    relation = cos_relation("metrics-endpoint")
    out, _ = run(relation, leader=False)
    bags = out.get_relation(relation.id)
    assert bags.local_app_data == {}
    assert bags.local_unit_data["prometheus_scrape_unit_name"] == "etcd-k8s/0"


def test_leader_publishes_the_dashboard_lzma_base64() -> None:
    from cosl import LZMABase64

    relation = cos_relation("grafana-dashboard")
    out, _ = run(relation)
    stored = json.loads(out.get_relation(relation.id).local_app_data["dashboards"])
    template = stored["templates"]["file:etcd"]
    shipped = json.loads((DASHBOARDS_DIR / "etcd.json").read_text())
    assert json.loads(LZMABase64.decompress(template["content"])) == shipped
    assert template["juju_topology"]["application"] == "etcd-k8s"
    names = [v["name"] for v in shipped["templating"]["list"]]
    assert {"juju_model", "juju_model_uuid", "juju_application", "juju_unit"} <= set(names)
    follower, _ = run(relation, leader=False)
    assert follower.get_relation(relation.id).local_app_data == {}


def plan_targets(out: testing.State) -> dict[str, Any]:
    """The plan's log targets, the layers combined as Pebble combines them."""
    plan: dict[str, Any] = {}
    for layer in out.get_container("etcd").layers.values():
        for name, target in layer.log_targets.items():
            if target.override == "merge" and name in plan:
                plan[name]._merge(target)
            else:
                plan[name] = target
    return {name: target.to_dict() for name, target in plan.items()}


def test_logging_adds_a_target_per_loki_unit_and_names_garbage() -> None:
    relation = cos_relation(
        "logging",
        remote_units_data={0: endpoint(PUSH), 1: endpoint("not a url")},
    )
    out, _ = run(relation, can_connect=True, peers=False, remote=0)
    targets = plan_targets(out)
    assert set(targets) == {"loki-loki-0"}
    assert targets["loki-loki-0"]["location"] == PUSH
    assert targets["loki-loki-0"]["services"] == ["all"]
    assert targets["loki-loki-0"]["labels"]["juju_unit"] == "etcd-k8s/0"
    assert out.unit_status.message == (
        "waiting for the peer relation; "
        "COS relation data refused: logging loki/1 endpoint: not an http(s) URL"
    )


def test_logging_broken_switches_the_targets_off() -> None:
    relation = cos_relation("logging", remote_units_data={0: endpoint(PUSH)})
    first, _ = run(relation, can_connect=True, peers=False)
    layers = dict(first.get_container("etcd").layers)
    out, _ = run(relation, can_connect=True, peers=False, event="broken", layers=layers)
    assert plan_targets(out)["loki-loki-0"]["services"] == ["-all"]
    assert "refused" not in out.unit_status.message


def test_install_opens_the_metrics_port_beside_the_client_port() -> None:
    ctx = testing.Context(EtcdK8sCharm)
    state = testing.State(containers={testing.Container("etcd", can_connect=False)})
    out = ctx.run(ctx.on.install(), state)
    assert {p.port for p in out.opened_ports} == {2379, 2381}
