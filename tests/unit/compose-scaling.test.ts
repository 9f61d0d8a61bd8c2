/**
 * `docker compose up --scale` as docs/scaling.md says to use it: the scaled services have no container name and no
 * fixed host port (a second container could not take either), and the ingest-lb profile's HAProxy sends the receiver
 * port to every cdr-ingest replica that is ready.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

interface ComposeService {
  container_name?: string;
  ports?: string[];
  profiles?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
}

/** A port mapping whose host side is `variable`, 8444 when unset, as compose writes it. */
const published = (variable: string) => `\${${variable}:-8444}:8444`;
const file = (relative: string) => readFileSync(fileURLToPath(new URL(`../../${relative}`, import.meta.url)), 'utf8');
const services = (parse(file('docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> }).services;

test('policy-worker and cms-actuator scale as they are: no container name, no host port', () => {
  for (const name of ['policy-worker', 'cms-actuator']) {
    assert.equal(services[name]?.container_name, undefined, name);
    assert.equal(services[name]?.ports, undefined, name);
  }
});

test("cdr-ingest's host port comes from INGEST_PUBLISH, so replicas can each take a free one", () => {
  assert.equal(services['cdr-ingest']?.container_name, undefined);
  // INGEST_PUBLISH=127.0.0.1: (docs/scaling.md) makes it "127.0.0.1::8444": a free loopback port per replica.
  assert.deepEqual(services['cdr-ingest']?.ports, [published('INGEST_PUBLISH')]);
});

test('the ingest-lb profile publishes the receiver and balances over every ready cdr-ingest replica', () => {
  const lb = services['ingest-lb'];
  assert.ok(lb, 'an ingest-lb service');
  assert.deepEqual(lb.profiles, ['ingest-lb'], 'only with --profile ingest-lb: the default stack keeps one ingest');
  assert.deepEqual(lb.ports, [published('INGEST_LB_PUBLISH')]);
  assert.ok(lb.volumes?.includes('./ops/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro'));
  assert.equal(lb.depends_on?.['cdr-ingest']?.condition, 'service_healthy');
  const haproxy = file('ops/haproxy/haproxy.cfg');
  assert.match(haproxy, /^\s*bind :8444$/m);
  // One server slot per replica Docker's DNS names, re-resolved, and only ready ones get POSTs.
  assert.match(haproxy, /^\s*server-template ingest \d+ cdr-ingest:8444 check .*resolvers docker/m);
  assert.match(haproxy, /^\s*nameserver dns 127\.0\.0\.11:53$/m);
  assert.match(haproxy, /^\s*option httpchk GET \/readyz$/m);
  // CMS sends the ingest token in the query string: the log names the path only (%HP), never the URI (%HU, %r, httplog).
  assert.match(haproxy, /^\s*log-format .*%HP/m);
  assert.doesNotMatch(haproxy, /option httplog|%HU|%HQ|%r\b/);
});
