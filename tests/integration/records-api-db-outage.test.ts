/**
 * While Postgres cannot serve, records-api answers 503 problem+json with Retry-After and a detail saying why
 * (never 500), and 200 again as soon as Postgres is back. Postgres is reached through a TCP proxy the test cuts
 * or points at small stand-ins that fail the way a real server does (hang up, never answer, answer 57P01/57P03),
 * so the shared server is never touched.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { createDatabase } from '@cms/db';
import type { FastifyInstance } from 'fastify';
import { eventually, onTestFileEnd, testDatabase } from '../helpers/infra.ts';
import { bearer, recordsApiConfig, startRecordsApi, TOKENS } from '../helpers/records-fixtures.ts';
import { hostPort, startTcpProxy } from '../helpers/tcp-proxy.ts';

const { url } = await testDatabase();
const target = hostPort(url, 5432);
const proxy = await startTcpProxy(target.host, target.port);
// Two connections, so a test can hold them all and see what a request does when the pool has none to give.
const db = createDatabase(proxy.url(url), { max: 2, applicationName: 'records-api-outage-test' });
onTestFileEnd(async () => {
  await db.$client.end();
  await proxy.close();
});
const app: FastifyInstance = await startRecordsApi(db, { config: recordsApiConfig(url) });

const ROUTES = [
  '/api/v1/records?limit=5',
  '/api/v1/records/1',
  '/api/v1/calls',
  '/api/v1/calls/some-call',
  '/api/v1/meetings',
  '/api/v1/meetings/some-key',
];

function get(path: string) {
  return app.inject({ method: 'GET', url: path, headers: bearer(TOKENS.viewer) });
}

async function assertUnavailable(path: string, reason: RegExp): Promise<void> {
  const res = await get(path);
  assert.equal(res.statusCode, 503, `${path}: ${res.body}`);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  assert.equal(res.headers['retry-after'], '5');
  const problem = res.json<{ status: number; title: string; detail: string }>();
  assert.equal(problem.status, 503);
  assert.equal(problem.title, 'Service Unavailable');
  assert.match(problem.detail, /^The database is unavailable \(/);
  assert.match(problem.detail, reason);
}

/** Every route answers 200 (or 404 for ids nobody recorded) once the proxy leads to Postgres again. */
async function assertBack(): Promise<void> {
  await eventually(async () => (await get('/api/v1/records?limit=5')).statusCode === 200, { what: 'records-api to answer 200 again' });
  for (const path of ROUTES) {
    const res = await get(path);
    assert.ok(res.statusCode === 200 || res.statusCode === 404, `${path} answered ${res.statusCode}: ${res.body}`);
  }
}

/**
 * The proxy dropped the pool's idle connections; once the pool has noticed, the next request opens a new one and
 * meets the failure under test (before, it may meet the cut itself, which the 'connection cut' test covers).
 */
async function poolEmptied(): Promise<void> {
  await eventually(() => db.$client.totalCount === 0, { what: 'the pool to drop its cut connections' });
}

/** A stand-in for Postgres on a port of its own; `onConnection` decides how it fails. */
async function standIn(onConnection: (socket: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {}).on('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A Postgres ErrorResponse message, as a server sends it before closing. */
function errorResponse(code: string, message: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${message}\0\0`, 'utf8');
  const head = Buffer.alloc(5);
  head.write('E', 0, 'latin1');
  head.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([head, fields]);
}

/** Points the proxy at a stand-in for the length of `body`, then back at Postgres (and checks it answers 200 again). */
async function withStandIn(onConnection: (socket: net.Socket) => void, body: () => Promise<void>): Promise<void> {
  const fake = await standIn(onConnection);
  proxy.retarget('127.0.0.1', fake.port);
  await poolEmptied();
  try {
    await body();
  } finally {
    proxy.retarget(target.host, target.port);
    await fake.close();
  }
  await assertBack();
}

test('every route answers 200 while Postgres answers', async () => {
  await assertBack();
});

test('Postgres unreachable (connection refused): 503 with Retry-After on every route, 200 again when it is back', async () => {
  await proxy.cut();
  await poolEmptied();
  try {
    for (const path of ROUTES) await assertUnavailable(path, /connection refused, ECONNREFUSED/);
  } finally {
    await proxy.restore();
  }
  await assertBack();
});

test('connection cut by the server: 503 naming the cut', async () => {
  await withStandIn(
    (socket) => socket.once('data', () => socket.destroy()),
    async () => {
      await assertUnavailable('/api/v1/records?limit=5', /connection was cut/);
    },
  );
});

test('Postgres shutting down (57P01) or starting up (57P03): 503 naming the SQLSTATE', async () => {
  for (const [code, text, reason] of [
    ['57P01', 'terminating connection due to administrator command', /57P01 admin_shutdown/],
    ['57P03', 'the database system is starting up', /57P03 cannot_connect_now/],
    ['08006', 'connection failure', /SQLSTATE 08006/],
  ] as const) {
    await withStandIn(
      (socket) => socket.once('data', () => socket.end(errorResponse(code, text))),
      async () => {
        await assertUnavailable('/api/v1/calls', reason);
      },
    );
  }
});

test('Postgres accepting connections but never answering: 503 after the connect timeout', async () => {
  await withStandIn(
    () => {},
    async () => {
      await assertUnavailable('/api/v1/meetings', /no connection within the connect timeout/);
    },
  );
});

test('every pooled connection busy past the connect timeout: 503 naming the pool', async () => {
  const held = [await db.$client.connect(), await db.$client.connect()];
  try {
    await assertUnavailable('/api/v1/records?limit=5', /every pooled connection is busy/);
  } finally {
    for (const client of held) client.release();
  }
  await assertBack();
});
