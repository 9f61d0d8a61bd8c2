import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '@cms/config';
import { createLogger } from '@cms/observability';
import { apiTokens, buildRecordsApi, installAuth, requireRole } from '@cms/records-api';
import { testDatabase } from '../helpers/infra.ts';
import { API_TOKENS, bearer, recordsApiConfig, startRecordsApi, TOKENS } from '../helpers/records-fixtures.ts';

const { url, db } = await testDatabase();
const config = recordsApiConfig(url);

// Log lines are captured (and kept off stdout) to check what the service writes about tokens.
const logLines: string[] = [];
const log = createLogger('records-api', 'info', {
  hooks: {
    streamWrite: (line: string) => {
      logLines.push(line);
      return '';
    },
  },
});
const app = await startRecordsApi(db, { config, log });

// Routes that need more than viewer, as call control will; registered the way later routes will use the exports.
const tokens = apiTokens(config.api);
await app.register(
  async (scope) => {
    installAuth(scope, tokens);
    scope.get('/operator-only', { preHandler: requireRole('operator') }, async () => ({ ok: true }));
    scope.get('/admin-only', { preHandler: requireRole('admin') }, async () => ({ ok: true }));
  },
  { prefix: '/api/v1/test' },
);

async function get(path: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'GET', url: path, headers });
}

describe('authentication', () => {
  test('no Authorization header answers 401 problem+json with WWW-Authenticate: Bearer', async () => {
    const res = await get('/api/v1/records');
    assert.equal(res.statusCode, 401);
    assert.match(String(res.headers['www-authenticate']), /^Bearer\b/);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    assert.equal(res.json<{ status: number }>().status, 401);
  });

  test('an unknown token answers 401 with WWW-Authenticate naming invalid_token', async () => {
    const res = await get('/api/v1/calls', bearer('wrong-token-0123456789abcdef'));
    assert.equal(res.statusCode, 401);
    assert.match(String(res.headers['www-authenticate']), /^Bearer .*error="invalid_token"/);
  });

  test('a known token sent with another scheme answers 401', async () => {
    const res = await get('/api/v1/records', { authorization: `Basic ${Buffer.from(`admin:${TOKENS.admin}`).toString('base64')}` });
    assert.equal(res.statusCode, 401);
  });

  for (const [name, token] of [
    ['viewer', TOKENS.viewer],
    ['operator', TOKENS.operator],
    ['named admin', TOKENS.namedAdmin],
    ['API_TOKEN admin', TOKENS.admin],
  ] as const) {
    test(`the ${name} token reads records and calls`, async () => {
      assert.equal((await get('/api/v1/records', bearer(token))).statusCode, 200);
      assert.equal((await get('/api/v1/records/1', bearer(token))).statusCode, 200);
      assert.equal((await get('/api/v1/calls', bearer(token))).statusCode, 200);
    });
  }

  test('health and readiness need no token; /metrics is not served on the API port', async () => {
    assert.equal((await get('/healthz')).statusCode, 200);
    assert.equal((await get('/readyz')).statusCode, 200);
    // 404, not 401: Prometheus scrapes api.metricsPort, and a token would not make /metrics appear here.
    assert.equal((await get('/metrics')).statusCode, 404);
  });
});

describe('roles', () => {
  test('a viewer token on an operator route answers 403 problem+json naming the role needed', async () => {
    const res = await get('/api/v1/test/operator-only', bearer(TOKENS.viewer));
    assert.equal(res.statusCode, 403);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    assert.match(res.json<{ detail: string }>().detail, /needs the operator role.*"dashboard" has the viewer role/);
  });

  test('operator and admin tokens pass an operator route', async () => {
    for (const token of [TOKENS.operator, TOKENS.namedAdmin, TOKENS.admin]) {
      assert.equal((await get('/api/v1/test/operator-only', bearer(token))).statusCode, 200);
    }
  });

  test('an operator token on an admin route answers 403', async () => {
    assert.equal((await get('/api/v1/test/admin-only', bearer(TOKENS.operator))).statusCode, 403);
    assert.equal((await get('/api/v1/test/admin-only', bearer(TOKENS.admin))).statusCode, 200);
  });
});

describe('token configuration', () => {
  test('API_TOKEN from the environment alone is accepted as an admin token', async () => {
    const envConfig = loadConfig({ env: { API_TOKEN: 'env-admin-token-0123456789' }, overrides: { database: { url } } });
    const envApp = await startRecordsApi(db, { config: envConfig });
    assert.equal((await envApp.inject({ url: '/api/v1/records', headers: bearer('env-admin-token-0123456789') })).statusCode, 200);
    assert.equal((await envApp.inject({ url: '/api/v1/records', headers: bearer(TOKENS.viewer) })).statusCode, 401);
  });

  test('named tokens alone, without API_TOKEN, are enough to start', async () => {
    const namedApp = await startRecordsApi(db, { config: recordsApiConfig(url, { tokens: API_TOKENS }) });
    assert.equal((await namedApp.inject({ url: '/api/v1/records', headers: bearer(TOKENS.viewer) })).statusCode, 200);
  });

  test('start-up fails with a ConfigError naming api.token when no token is configured', async () => {
    const noTokens = loadConfig({ env: {}, overrides: { database: { url } } });
    await assert.rejects(
      buildRecordsApi({ config: noTokens, db, log: createLogger('records-api', 'silent') }),
      (err: unknown) => err instanceof ConfigError && err.key === 'api.token' && /API_TOKEN/.test(err.message),
    );
  });
});

describe('logging', () => {
  test('request log lines name the token, never the token itself', async () => {
    const from = logLines.length;
    await get('/api/v1/records?limit=1', bearer(TOKENS.viewer));
    await get('/api/v1/records?limit=1', bearer('wrong-token-0123456789abcdef'));
    const lines = logLines.slice(from);
    const completed = lines.filter((line) => line.includes('"msg":"request completed"'));
    assert.equal(completed.length, 2);
    assert.match(completed[0] as string, /"tokenName":"dashboard"/);
    const written = lines.join('');
    for (const secret of [TOKENS.viewer, 'wrong-token-0123456789abcdef']) assert.ok(!written.includes(secret), `log contains ${secret}`);
  });
});
