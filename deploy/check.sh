#!/usr/bin/env bash
# Checks ringside's monitoring files: the Prometheus alerting rules (`promtool check rules`), their
# unit tests (`promtool test rules`), and that the Grafana dashboard is valid JSON.
#
# promtool comes from PATH when it is there; otherwise it is taken out of Debian's `prometheus`
# package into a temporary folder (`apt-get download`, no install: installing would start a
# Prometheus server).
set -euo pipefail
cd "$(dirname "$0")"

promtool=$(command -v promtool || true)
if [[ -z "${promtool}" ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "${work}"' EXIT
  (
    cd "${work}"
    if ! apt-get download prometheus >/dev/null 2>&1; then
      apt-get update >/dev/null
      apt-get download prometheus >/dev/null
    fi
    dpkg-deb -x prometheus_*.deb root
  )
  promtool="${work}/root/usr/bin/promtool"
fi

echo "== promtool check rules deploy/prometheus/alerts.yml"
"${promtool}" check rules prometheus/alerts.yml
echo "== promtool test rules deploy/prometheus/alerts.test.yml"
(cd prometheus && "${promtool}" test rules alerts.test.yml)
echo "== deploy/grafana/ringside.json is JSON"
python3 -m json.tool grafana/ringside.json >/dev/null
echo "deploy: ok"
