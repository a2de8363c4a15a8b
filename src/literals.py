"""Every name the charm shares with Juju, Pebble and etcd, in one place: ports, paths, the
container, service and relation names, and every databag key and secret label."""

from __future__ import annotations

from pathlib import Path

from core.identity import CLIENT_PORT, PEER_PORT  # noqa: F401  (re-exported)
from core.observability import METRICS_PORT  # noqa: F401  (re-exported)

# ---- Juju -------------------------------------------------------------------------------------
CONTAINER = "etcd"
PEER_RELATION = "etcd-peers"
CLIENT_RELATION = "etcd-client"
CERTIFICATES_RELATIONS = {"peer": "peer-certificates", "client": "client-certificates"}
STORAGE = "data"
S3_RELATION = "s3-credentials"
# COS: scraped by Prometheus, dashboards to Grafana, logs pushed to Loki (all optional).
METRICS_RELATION = "metrics-endpoint"
DASHBOARD_RELATION = "grafana-dashboard"
LOGGING_RELATION = "logging"
OBSERVABILITY_RELATIONS = (METRICS_RELATION, DASHBOARD_RELATION, LOGGING_RELATION)

# ---- the workload container -------------------------------------------------------------------
SERVICE = "etcd"
ETCD = "/usr/local/bin/etcd"
ETCDCTL = "/usr/local/bin/etcdctl"
ETCDUTL = "/usr/local/bin/etcdutl"
STORAGE_ROOT = "/var/lib/etcd"  # the `data` storage mount
DATA_DIR = f"{STORAGE_ROOT}/data"
MARKER_PATH = f"{STORAGE_ROOT}/etcd-k8s-member.json"  # which member and cluster the data is of
CONFIG_PATH = "/etc/etcd/etcd.conf.yml"
TLS_DIR = f"{STORAGE_ROOT}/tls"
READY_CHECK = "etcd-healthy-voter"
# etcd, asked to stop while leader, first tries to hand leadership over and can hang with no
# peer reachable: Pebble sends SIGKILL after this long. Below Kubernetes' 30 s grace period.
KILL_DELAY = "20s"
LOG_LAYER = "logging"  # the Pebble layer holding the Loki log targets
HOLD_LAYER = "refresh-hold"  # a refused pod's plan: the ready check alone, which fails
DIGEST_PREFIX = "# options-digest: "  # the first line of the config file names its digest

# ---- the s3 relation (interface s3, v1 and v0; app databags) ---------------------------------
S3_SECRET_EXTRA = "secret-extra"  # v1: the id of the provider's secret with the keys
S3_REQUESTED_SECRETS = "requested-secrets"
S3_LIB_VERSION = "lib-version"
# In the bucket, under the application's prefix, while one unit takes a backup (one at a time).
# Its name ends in the manifests' suffix so that no listing takes it for a backup.
S3_LOCK_OBJECT = "backup-in-progress.json"
# Tests only: an ISO 8601 time the charm takes as "now" (tests/bench sets it; Juju never does).
CLOCK_ENV = "ETCD_K8S_TEST_NOW"

# ---- peer unit databag (what each unit says of itself) ----------------------------------------
UNIT_MEMBER_NAME = "member-name"
UNIT_PEER_URL = "peer-url"
UNIT_CLIENT_URL = "client-url"
UNIT_MEMBER_ID = "member-id"
UNIT_CONFIG_DIGEST = "config-digest"
UNIT_WAITING_FOR = "waiting-for"
UNIT_MEMBER_STATE = "member-state"
UNIT_REBUILD = "rebuild"
UNIT_TLS = "{kind}-tls"  # the unit's certificate in use and on offer, per TLS kind

# ---- peer app databag (the Juju leader's) -----------------------------------------------------
APP_CLUSTER_TOKEN = "cluster-token"
APP_BOOTSTRAP_MEMBER = "bootstrap-member"
APP_CLUSTER_ID = "cluster-id"
APP_JOIN = "join"
APP_RESTART_TURN = "restart-turn"
APP_RESTORE = "restore"
APP_TLS = "{kind}-tls"  # the application's TLS record, per kind
APP_AUTH = "auth"  # "on" once the leader enabled etcd auth
APP_CLIENTS = "clients"  # what is in etcd per client request
APP_ROOT_SECRET = "root-secret"  # the id of the root password's secret
APP_BACKUPS = "backups"  # the last backup, the last scheduled window, the last failure

# ---- secrets ----------------------------------------------------------------------------------
ROOT_SECRET_LABEL = "etcd-root-password"
CLIENT_SECRET_LABEL = "etcd-client-{relation}-{kind}"  # {relation}: "30" or "30-<request id>"

# ---- COS relations (interfaces prometheus_scrape, grafana_dashboard, loki_push_api v0) -------
SCRAPE_JOBS = "scrape_jobs"
SCRAPE_METADATA = "scrape_metadata"
ALERT_RULES = "alert_rules"
SCRAPE_UNIT_ADDRESS = "prometheus_scrape_unit_address"
SCRAPE_UNIT_NAME = "prometheus_scrape_unit_name"
SCRAPE_UNIT_PATH = "prometheus_scrape_unit_path"
DASHBOARDS = "dashboards"
LOKI_ENDPOINT = "endpoint"  # each Loki unit's: {"url": ".../loki/api/v1/push"}
# What the charm sends COS, in the charm's tree (packed with src/).
ALERT_RULES_DIR = Path(__file__).resolve().parent / "alert_rules"
DASHBOARDS_DIR = Path(__file__).resolve().parent / "grafana_dashboards"
