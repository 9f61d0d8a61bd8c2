#!/bin/sh
# Compose smoke test: builds the project's image, brings docker-compose.yml up, and checks it works end to end.
#   1. `docker build` of the Dockerfile (tagged cms-cdr-platform:local, as compose names it)
#   2. `up` refuses to start with .env.example as it is (empty secrets: compose names the variable), and with a
#      "change-me" placeholder left in .env (config-check fails, its log names the variable)
#   3. with real secrets, `up`: every healthcheck healthy, migrate and config-check exit 0
#   4. a CDR POSTed to the published ingest port is read back through the published records API port
#   5. /metrics answers 404 on the published ingest and API ports; Prometheus (on the compose network) scrapes all
#      four services on their metrics ports (cdr-ingest:9100, policy-worker:9101, cms-actuator:9102,
#      records-api:9103): /api/v1/targets all up
#   6. every container rotates its logs, Redis runs with the maxmemory compose sets
#   7. `down -v`
# Grafana is left out: it has no Debian package to stand in for grafana/grafana-oss (its provisioning files are
# checked by the dashboard structure test instead).
#
# Needs a Docker engine and docker-compose (1.29 or `docker compose`), and the base images locally: where
# Docker Hub cannot be reached, build stand-ins first with tests/docker/build-standins.sh.
# Published ports are chosen free on 127.0.0.1, so it runs beside a local stack on 8444/8080/5432/6379.
# Not part of `npm test`. Usage: sh tests/docker/smoke.sh   (KEEP=1 leaves the stack up for a look)
set -eu

cd "$(dirname "$0")/../.."
if docker compose version >/dev/null 2>&1; then COMPOSE="docker compose"; else COMPOSE="docker-compose"; fi
PROJECT=cms-smoke-$$
WORK=$(mktemp -d)
start=$(date +%s)
step() { echo "[$(($(date +%s) - start)) s] $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
INGEST_PORT=$(free_port)
API_PORT=$(free_port)
PROM_PORT=$(free_port)
GRAFANA_PORT=$(free_port)
ports="INGEST_PUBLISH=127.0.0.1:$INGEST_PORT
API_PUBLISH=127.0.0.1:$API_PORT
PROMETHEUS_PUBLISH=127.0.0.1:$PROM_PORT
GRAFANA_PUBLISH=127.0.0.1:$GRAFANA_PORT"

# .env.example as it is (published ports aside).
{ grep -v '_PUBLISH=' .env.example; echo "$ports"; } >"$WORK/example.env"
INGEST_TOKEN=$(node -e "console.log(require('crypto').randomBytes(24).toString('hex'))")
API_TOKEN=$(node -e "console.log(require('crypto').randomBytes(24).toString('hex'))")
{
  grep -v -E '^(INGEST_TOKEN|API_TOKEN|POSTGRES_PASSWORD|GRAFANA_ADMIN_PASSWORD|[A-Z_]+_PUBLISH)=' .env.example
  echo "INGEST_TOKEN=$INGEST_TOKEN"
  echo "API_TOKEN=$API_TOKEN"
  echo "POSTGRES_PASSWORD=$(node -e "console.log(require('crypto').randomBytes(12).toString('hex'))")"
  echo "GRAFANA_ADMIN_PASSWORD=$(node -e "console.log(require('crypto').randomBytes(12).toString('hex'))")"
  echo "$ports"
} >"$WORK/smoke.env"
# An old .env still holding a change-me placeholder.
sed 's/^INGEST_TOKEN=.*/INGEST_TOKEN=change-me-to-a-long-random-string/' "$WORK/smoke.env" >"$WORK/placeholder.env"

compose() { # env-file args...
  env_file=$1
  shift
  $COMPOSE -p "$PROJECT" --env-file "$env_file" "$@"
}

cleanup() {
  status=$?
  if [ "$status" -ne 0 ]; then
    echo "--- container states and last log lines (failure) ---" >&2
    compose "$WORK/smoke.env" ps >&2 || true
    compose "$WORK/smoke.env" logs --no-color --tail=30 >&2 || true
  fi
  if [ "${KEEP:-}" = 1 ] && [ "$status" -eq 0 ]; then
    echo "left running: $COMPOSE -p $PROJECT --env-file $WORK/smoke.env down -v"
  else
    compose "$WORK/smoke.env" down -v --remove-orphans >/dev/null 2>&1 || true
    rm -rf "$WORK"
  fi
  step "done (exit $status)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for image in node:24-slim redis:7-alpine postgres:17-alpine prom/prometheus:v2.53.4; do
  docker image inspect "$image" >/dev/null 2>&1 || fail "image $image is not present locally (no registry here? run tests/docker/build-standins.sh)"
done

step "docker build (the project's Dockerfile)"
# --network host: `npm ci` in the build needs the npm registry, and the engine may run without a default bridge.
docker build --network host -q -t cms-cdr-platform:local . >/dev/null
step "image built"

SERVICES="config-check redis postgres migrate cdr-ingest policy-worker cms-actuator records-api prometheus"

step ".env.example as it is: up must refuse"
if compose "$WORK/example.env" up -d --no-build cdr-ingest >"$WORK/example.out" 2>&1; then
  fail "docker-compose up started with the empty secrets of .env.example"
fi
grep -q -E 'set (INGEST_TOKEN|API_TOKEN|POSTGRES_PASSWORD|GRAFANA_ADMIN_PASSWORD) in .env' "$WORK/example.out" ||
  { cat "$WORK/example.out" >&2; fail "compose did not name the missing secret"; }
[ -z "$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")" ] || fail "containers were created"
sed 's/.*\(set [A-Z_]* in .env.*\)/    up: \1/' "$WORK/example.out"
step "refused, naming the variable"

step "a change-me placeholder in .env: up must refuse"
# cdr-ingest alone is enough (it waits for config-check like every service) and keeps this step short.
if compose "$WORK/placeholder.env" up -d --no-build cdr-ingest >"$WORK/placeholder.out" 2>&1; then
  cat "$WORK/placeholder.out" >&2
  fail "docker-compose up started with a change-me placeholder secret"
fi
compose "$WORK/placeholder.env" logs --no-color config-check >"$WORK/placeholder.log" 2>&1 || true
grep -q 'INGEST_TOKEN is still a change-me placeholder' "$WORK/placeholder.log" ||
  { cat "$WORK/placeholder.out" "$WORK/placeholder.log" >&2; fail "config-check did not name INGEST_TOKEN"; }
grep -q -E 'API_TOKEN|POSTGRES_PASSWORD' "$WORK/placeholder.log" && fail "config-check named a secret that is set"
for c in $(compose "$WORK/placeholder.env" ps -q cdr-ingest); do
  [ "$(docker inspect -f '{{.State.Running}}' "$c")" = false ] || fail "cdr-ingest is running despite the placeholder"
done
grep -i -E 'error|exited' "$WORK/placeholder.out" | sed 's/^/    up: /'
grep 'config-check:' "$WORK/placeholder.log" | sed 's/^/    /'
compose "$WORK/placeholder.env" down -v >/dev/null 2>&1
step "refused, config-check naming the variable"

step "up (real secrets): $SERVICES"
compose "$WORK/smoke.env" up -d --no-build $SERVICES >"$WORK/up.out" 2>&1 || { cat "$WORK/up.out" >&2; fail "docker-compose up failed"; }

# Every container with a healthcheck healthy; the one-shot ones exited 0.
deadline=$(($(date +%s) + 300))
while :; do
  pending=""
  for svc in $SERVICES; do
    c=$(compose "$WORK/smoke.env" ps -q "$svc")
    [ -n "$c" ] || { pending="$pending $svc(no container)"; continue; }
    state=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c")
    case "$svc:$state" in
      config-check:"exited 0 " | migrate:"exited 0 ") ;;
      config-check:exited* | migrate:exited*) fail "$svc exited: $state" ;;
      *:"running 0 healthy") ;;
      *) pending="$pending $svc($state)" ;;
    esac
  done
  [ -z "$pending" ] && break
  [ "$(date +%s)" -lt "$deadline" ] || fail "not healthy within 300 s:$pending"
  sleep 2
done
step "all healthy"

# A CDR through the published ingest port, read back through the published API port.
SESSION=$(node -e "console.log(require('crypto').randomUUID())")
sed "s/a865433a-4926-4549-a701-9bb5b93c75e6/$SESSION/" tests/fixtures/cdr/cisco-flow-1.xml >"$WORK/cdr.xml"
code=$(curl -s -o "$WORK/post.out" -w '%{http_code}' -H 'Content-Type: application/xml' --data-binary "@$WORK/cdr.xml" \
  "http://127.0.0.1:$INGEST_PORT/cdr/cms-1?token=$INGEST_TOKEN")
[ "$code" = 200 ] || { cat "$WORK/post.out" >&2; fail "POST /cdr/cms-1 answered $code"; }
deadline=$(($(date +%s) + 60))
until curl -sf -H "Authorization: Bearer $API_TOKEN" "http://127.0.0.1:$API_PORT/api/v1/records?session=$SESSION" >"$WORK/records.json" &&
  node -e "const r=JSON.parse(require('fs').readFileSync(process.argv[1],'utf8')).records; process.exit(r.length===1&&r[0].type==='callLegStart'&&r[0].callLeg.remoteParty==='sipclient1@example.com'?0:1)" "$WORK/records.json"; do
  [ "$(date +%s)" -lt "$deadline" ] || { cat "$WORK/records.json" >&2; fail "the posted CDR did not come back from the records API within 60 s"; }
  sleep 1
done
step "CDR posted on :$INGEST_PORT read back from :$API_PORT"

# The published ports do not give out the metrics; Prometheus scrapes the four services' metrics ports over the
# compose network.
for port in "$INGEST_PORT" "$API_PORT"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/metrics")
  [ "$code" = 404 ] || fail "/metrics on the published port $port answered $code, expected 404"
done
step "/metrics answers 404 on the published ports :$INGEST_PORT and :$API_PORT"
deadline=$(($(date +%s) + 120))
until curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/targets" >"$WORK/targets.json" &&
  node -e "
    const t = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')).data.activeTargets;
    // Each job finds its service's replicas through Docker's DNS (dns_sd_configs): targets are <address>:<metrics port>.
    const want = [['cdr-ingest', 9100], ['policy-worker', 9101], ['cms-actuator', 9102], ['records-api', 9103]];
    const ours = (x, [job, port]) => x.labels.job === job && x.scrapeUrl.endsWith(':' + port + '/metrics');
    const up = want.filter((w) => t.some((x) => ours(x, w) && x.health === 'up'));
    const others = t.filter((x) => !want.some((w) => ours(x, w)) && x.health !== 'up' && x.labels.job !== 'cms-sim');
    process.exit(up.length === want.length && others.length === 0 ? 0 : 1);
  " "$WORK/targets.json"; do
  [ "$(date +%s)" -lt "$deadline" ] || { cat "$WORK/targets.json" >&2; fail "Prometheus targets not all up within 120 s"; }
  sleep 2
done
node -e "for (const x of JSON.parse(require('fs').readFileSync(process.argv[1],'utf8')).data.activeTargets) console.log('    ' + x.labels.job + ' ' + x.scrapeUrl + ' ' + x.health)" "$WORK/targets.json"
step "Prometheus targets up"

# Log rotation on every container; Redis's maxmemory as configured.
for svc in $SERVICES; do
  c=$(compose "$WORK/smoke.env" ps -q "$svc")
  log=$(docker inspect -f '{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config "max-size"}} {{index .HostConfig.LogConfig.Config "max-file"}}' "$c")
  [ "$log" = "json-file 10m 5" ] || fail "$svc logs without rotation: $log"
done
maxmemory=$(compose "$WORK/smoke.env" exec -T redis redis-cli config get maxmemory | tail -1 | tr -d '\r')
[ "$maxmemory" = 1073741824 ] || fail "Redis maxmemory is $maxmemory, expected 1gb"
step "log rotation on every container, Redis maxmemory 1gb"

[ "${KEEP:-}" = 1 ] && exit 0
compose "$WORK/smoke.env" down -v >/dev/null 2>&1
left="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT")"
[ -z "$left" ] || fail "down -v left containers, volumes or networks of $PROJECT behind"
step "down -v: no container, volume or network left"
