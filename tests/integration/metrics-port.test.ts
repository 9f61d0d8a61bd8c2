/**
 * cdr-ingest's and records-api's main ports are published (to CMS, to users), so /metrics is not served there: it
 * answers 404 unless ingest.publicMetrics / api.publicMetrics asks for it, and Prometheus scrapes a port of its own
 * (ingest.metricsPort 9100, api.metricsPort 9103). /healthz and /readyz answer on both. Real Redis and Postgres,
 * and the services' own main.ts for the ports they listen on.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { loadConfig } from '@cms/config';
import { createLogger } from '@cms/observability';
import { buildRecordsApi } from '@cms/records-api';
import type { FastifyInstance } from 'fastify';
import { buildIngest } from '../../services/cdr-ingest/src/app.ts';
import { onTestFileEnd, testDatabase, testRedis } from '../helpers/infra.ts';
import { recordsApiConfig } from '../helpers/records-fixtures.ts';
import { startStack } from '../helpers/stack.ts';

const TOKEN = 'metrics-port-token-0123456789';

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

async function ingestPorts(ingest: Record<string, unknown> = {}) {
  const redis = await testRedis();
  const config = loadConfig({
    env: {},
    overrides: { redis: { url: redis.url }, queue: { prefix: redis.prefix }, ingest: { token: TOKEN, ...ingest } },
  });
  const service = await buildIngest({ config, log: createLogger('cdr-ingest', 'silent') });
  onTestFileEnd(() => service.close());
  return { main: await listen(service.app), metrics: await listen(service.metricsApp) };
}

async function recordsApiPorts(api: Record<string, unknown> = {}) {
  const { url, db } = await testDatabase();
  const config = recordsApiConfig(url, { token: 'metrics-port-api-token-0123456789', ...api });
  const service = await buildRecordsApi({ config, db, log: createLogger('records-api', 'silent') });
  onTestFileEnd(() => service.close());
  return { main: await listen(service.app), metrics: await listen(service.metricsApp) };
}

describe('metrics ports: configuration', () => {
  test('ingest.metricsPort defaults to 9100 and api.metricsPort to 9103; INGEST_METRICS_PORT and API_METRICS_PORT set them', () => {
    const defaults = loadConfig({ env: {} });
    assert.equal(defaults.ingest.metricsPort, 9100);
    assert.equal(defaults.api.metricsPort, 9103);
    assert.equal(defaults.ingest.publicMetrics, false);
    assert.equal(defaults.api.publicMetrics, false);
    const set = loadConfig({ env: { INGEST_METRICS_PORT: '19100', API_METRICS_PORT: '19103' } });
    assert.equal(set.ingest.metricsPort, 19100);
    assert.equal(set.api.metricsPort, 19103);
  });
});

describe('cdr-ingest', () => {
  test('/metrics answers 404 on the main port and 200 with the ingest metrics on the metrics port; health on both', async () => {
    const { main, metrics } = await ingestPorts();
    assert.equal((await get(`${main}/metrics`)).status, 404);
    const scraped = await get(`${metrics}/metrics`);
    assert.equal(scraped.status, 200);
    assert.match(scraped.body, /^cdr_ingest_max_backlog_batches\{service="cdr-ingest"\} 200000$/m);
    assert.match(scraped.body, /^service_ready\{service="cdr-ingest"\} 1$/m);
    for (const base of [main, metrics]) {
      assert.equal((await get(`${base}/healthz`)).status, 200, `${base}/healthz`);
      assert.equal((await get(`${base}/readyz`)).status, 200, `${base}/readyz`);
    }
    // The metrics port takes no CDRs: it is for Prometheus only.
    const res = await fetch(`${metrics}/cdr/cms1?token=${TOKEN}`, { method: 'POST', body: '<records/>' });
    await res.arrayBuffer();
    assert.equal(res.status, 404);
  });

  test('ingest.publicMetrics: true serves /metrics on the main port too', async () => {
    const { main } = await ingestPorts({ publicMetrics: true });
    const scraped = await get(`${main}/metrics`);
    assert.equal(scraped.status, 200);
    assert.match(scraped.body, /^cdr_ingest_max_backlog_batches\{service="cdr-ingest"\} 200000$/m);
  });
});

describe('records-api', () => {
  test('/metrics answers 404 on the main port and 200 with the records-api metrics on the metrics port; health on both', async () => {
    const { main, metrics } = await recordsApiPorts();
    assert.equal((await get(`${main}/metrics`)).status, 404);
    const scraped = await get(`${metrics}/metrics`);
    assert.equal(scraped.status, 200);
    assert.match(scraped.body, /^meetings_active\{level="1",service="records-api"\} 0$/m);
    assert.match(scraped.body, /^service_ready\{service="records-api"\} 1$/m);
    for (const base of [main, metrics]) {
      assert.equal((await get(`${base}/healthz`)).status, 200, `${base}/healthz`);
      assert.equal((await get(`${base}/readyz`)).status, 200, `${base}/readyz`);
    }
    // The API itself is not on the metrics port.
    assert.equal((await get(`${metrics}/api/v1/records`)).status, 404);
  });

  test('api.publicMetrics: true serves /metrics on the main port too', async () => {
    const { main } = await recordsApiPorts({ publicMetrics: true });
    const scraped = await get(`${main}/metrics`);
    assert.equal(scraped.status, 200);
    assert.match(scraped.body, /^meetings_active\{level="1",service="records-api"\} 0$/m);
  });
});

describe('the service processes', () => {
  test('cdr-ingest and records-api listen on INGEST_METRICS_PORT and API_METRICS_PORT, and give no /metrics on their main ports', async () => {
    const stack = await startStack({ services: ['cdr-ingest', 'records-api'] });
    for (const name of ['cdr-ingest', 'records-api'] as const) {
      assert.notEqual(stack.metricsUrl(name), stack.url(name));
      assert.equal((await get(`${stack.url(name)}/metrics`)).status, 404, `${name} main port`);
      const scraped = await get(`${stack.metricsUrl(name)}/metrics`);
      assert.equal(scraped.status, 200, `${name} metrics port`);
      assert.match(scraped.body, new RegExp(`^service_ready\\{service="${name}"\\} 1$`, 'm'));
    }
  });
});
