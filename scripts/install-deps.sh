#!/usr/bin/env bash
# Installs what llm-proxy needs on Debian 12 with the Swift toolchain, skipping what is already there.
#   scripts/install-deps.sh run    build and run dependencies only
#   scripts/install-deps.sh test   also the servers and tools the tests start (Redis, PostgreSQL 15,
#                                  nginx, wrk, Prometheus' promtool, buildah, debootstrap) and a Python venv with SecantusDB
#                                  (MongoDB-compatible test server), the official openai/anthropic SDKs and schemathesis
set -euo pipefail
mode=${1:-run}
cd "$(dirname "$0")/.."

command -v swift >/dev/null || { echo "install-deps: the Swift toolchain (swift) is not on PATH" >&2; exit 1; }

run_pkgs=(libhiredis-dev libpq-dev libmongoc-dev libbson-dev libsqlite3-dev libcurl4-openssl-dev libssl-dev ca-certificates pkg-config)
test_pkgs=(redis-server redis-tools postgresql-15 nginx-light wrk python3-venv curl iproute2 procps prometheus docker-compose binutils buildah debootstrap)
pkgs=("${run_pkgs[@]}")
[ "$mode" = test ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$mode" = test ]; then
  venv=.venv
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import secantus, openai, anthropic, schemathesis' 2>/dev/null; then
    echo "install-deps: creating $venv (secantusdb, openai, anthropic, schemathesis)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'secantusdb==0.7.0b3' openai anthropic schemathesis >/dev/null
  fi
fi
