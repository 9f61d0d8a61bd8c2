#!/bin/sh
# The compose smoke test as CI runs it (.ci/run, after npm test): installs what it needs from Debian's packages,
# starts a Docker engine of its own when none answers, builds the stand-in images (kept between runs in the
# engine's data root and in /var/tmp/cms-standins, so a second run on the same machine takes about 3 minutes instead
# of about 15), runs tests/docker/smoke.sh, and stops the engine it started.
#
# The engine runs as this workplace allows it: no iptables, no default bridge, the vfs storage driver (slow, but it
# needs nothing from the kernel beyond what a container sandbox has).
set -eu
cd "$(dirname "$0")/../.."

start=$(date +%s)
note() { echo "[docker $(($(date +%s) - start)) s] $*"; }

missing=""
command -v dockerd >/dev/null || missing="$missing docker.io"
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing="$missing docker-compose"
command -v debootstrap >/dev/null || missing="$missing debootstrap"
if [ -n "$missing" ]; then
  note "installing$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

started=""
if ! docker info >/dev/null 2>&1; then
  note "starting dockerd"
  mkdir -p /var/lib/docker-standins
  dockerd --iptables=false --bridge=none --storage-driver=vfs --data-root /var/lib/docker-standins \
    -H unix:///var/run/docker.sock >/var/log/dockerd-ci.log 2>&1 &
  started=$!
  i=0
  until docker info >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 120 ] || ! kill -0 "$started" 2>/dev/null; then
      tail -20 /var/log/dockerd-ci.log >&2
      echo "the Docker engine did not start" >&2
      exit 1
    fi
    sleep 0.5
  done
fi
stop_engine() {
  if [ -n "$started" ]; then
    kill "$started" 2>/dev/null || true
    wait "$started" 2>/dev/null || true
  fi
}
trap stop_engine EXIT

note "stand-in images"
sh tests/docker/build-standins.sh
note "smoke run"
sh tests/docker/smoke.sh
note "passed"
