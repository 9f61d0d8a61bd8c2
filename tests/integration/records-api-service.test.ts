import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createDatabase } from '@cms/db';
import { createLogger } from '@cms/observability';
import { buildRecordsApi } from '@cms/records-api';
import { testDatabase } from '../helpers/infra.ts';
import { bearer, recordsApiConfig, startRecordsApi, TOKENS } from '../helpers/records-fixtures.ts';

const { url, db } = await testDatabase();
const app = await startRecordsApi(db, { config: recordsApiConfig(url) });

interface OpenApi {
  openapi: string;
  paths: Record<string, Record<string, { security?: unknown; parameters?: { name: string; in: string }[] }>>;
  components: { securitySchemes: Record<string, { type: string; scheme: string }> };
}

test('/docs/json is an OpenAPI document listing the API routes with bearer security', async () => {
  const res = await app.inject({ method: 'GET', url: '/docs/json' });
  assert.equal(res.statusCode, 200);
  const doc = res.json<OpenApi>();
  assert.match(doc.openapi, /^3\./);
  for (const path of ['/api/v1/records', '/api/v1/records/{page}', '/api/v1/calls', '/api/v1/calls/{id}']) {
    assert.deepEqual(doc.paths[path]?.get?.security, [{ bearerAuth: [] }], path);
  }
  assert.deepEqual(doc.components.securitySchemes.bearerAuth, {
    type: 'http',
    scheme: 'bearer',
    description: 'API_TOKEN (role admin) or a named token from api.tokens (role viewer, operator or admin).',
  });
  const recordParameters = doc.paths['/api/v1/records']?.get?.parameters?.map((p) => p.name) ?? [];
  for (const name of ['limit', 'order', 'cursor', 'type', 'callId', 'callLegId', 'callCorrelator', 'session', 'node', 'from', 'to']) {
    assert.ok(recordParameters.includes(name), `records parameter ${name}`);
  }
});

test('/docs serves the Swagger UI without a token', async () => {
  const res = await app.inject({ method: 'GET', url: '/docs' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/html/);
});

test('/readyz answers 200 when Postgres answers', async () => {
  const res = await app.inject({ method: 'GET', url: '/readyz' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'ready', checks: [{ name: 'postgres', ok: true }] });
});

test('/readyz answers 503 naming postgres when the database is unreachable', async () => {
  // Nothing listens on port 1: the connection is refused at once.
  const unreachable = createDatabase('postgres://postgres@127.0.0.1:1/nowhere');
  const down = await startRecordsApi(unreachable, { config: recordsApiConfig(url) });
  try {
    const res = await down.inject({ method: 'GET', url: '/readyz' });
    assert.equal(res.statusCode, 503);
    const body = res.json<{ checks: { name: string; ok: boolean }[] }>();
    assert.deepEqual(
      body.checks.map((c) => [c.name, c.ok]),
      [['postgres', false]],
    );
  } finally {
    await unreachable.$client.end();
  }
});

test('/healthz answers 200', async () => {
  const res = await app.inject({ method: 'GET', url: '/healthz' });
  assert.equal(res.statusCode, 200);
});

test('/metrics (on the metrics port) reports request durations by route pattern and status', async () => {
  const service = await buildRecordsApi({ config: recordsApiConfig(url), db, log: createLogger('records-api', 'silent') });
  after(() => service.close());
  await service.app.inject({ method: 'GET', url: '/api/v1/calls/some-call-id', headers: bearer(TOKENS.viewer) });
  const res = await service.metricsApp.inject({ method: 'GET', url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(res.body, /http_request_duration_seconds_count\{[^}]*route="\/api\/v1\/calls\/:id"[^}]*status_code="404"[^}]*\} 1/);
  assert.ok(!res.body.includes('some-call-id'), 'raw URLs are not labels');
});
