/**
 * Ingest while Redis is away: a POST that cannot be stored is answered 503 with Retry-After at once (CMS keeps the
 * records and re-sends), whether Redis was down when ingest started or went away later; each refusal is logged and
 * counted; once Redis is back the re-sent batch is stored exactly once.
 *
 * Uses a private redis-server (tests/helpers/private-redis.ts) so it can be down, killed or frozen without
 * touching the shared one.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { type Config, loadConfig } from '@cms/config';
import { createLogger } from '@cms/observability';
import { CDR_BATCHES_QUEUE, type CdrBatchesJob, createRedisConnection } from '@cms/queue';
import { Queue } from 'bullmq';
import { buildIngest } from '../../services/cdr-ingest/src/app.ts';
import { recordsXml, simpleCallRecords } from '../helpers/cdr-xml.ts';
import { eventually, onTestFileEnd, uniqueName } from '../helpers/infra.ts';
import { type PrivateRedis, startPrivateRedis } from '../helpers/private-redis.ts';

const TOKEN = 'ingest-outage-token-0123456789';
/**
 * The contract is an answer within a second. The bound is 2 s because the machine running the suite is shared and
 * loaded; what it guards against is the old behaviour, a POST that got no answer until Redis came back.
 */
const ANSWER_BOUND_MS = 2000;

async function startIngest(redis: { url: string }) {
  const prefix = uniqueName('outage');
  const config: Config = loadConfig({
    env: {},
    overrides: { redis: { url: redis.url }, queue: { prefix }, ingest: { token: TOKEN } },
  });
  const lines: string[] = [];
  const log = createLogger(
    'cdr-ingest',
    'info',
    {},
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  );
  const service = await buildIngest({ config, log });
  await service.app.listen({ host: '127.0.0.1', port: 0 });
  await service.metricsApp.listen({ host: '127.0.0.1', port: 0 });
  onTestFileEnd(() => service.close());
  const base = `http://127.0.0.1:${(service.app.server.address() as AddressInfo).port}`;
  // Prometheus scrapes the metrics port; the main port (published for CMS) does not serve /metrics.
  const metricsBase = `http://127.0.0.1:${(service.metricsApp.server.address() as AddressInfo).port}`;
  return { service, prefix, lines, base, metricsBase };
}

/** A real HTTP POST, as CMS sends it; gives up after 10 s so a hang fails the test instead of stalling it. */
async function post(base: string, body: string) {
  const started = performance.now();
  const res = await fetch(`${base}/cdr/cms1?token=${TOKEN}`, {
    method: 'POST',
    headers: { 'content-type': 'text/xml' },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), text, ms: performance.now() - started };
}

/** Waits for cdr_ingest_posts_refused_total{reason} to reach `expected` (it is counted once the answer has gone out). */
async function assertRefusedCount(metricsBase: string, reason: string, expected: number): Promise<void> {
  let seen = 0;
  await eventually(
    async () => {
      const text = await (await fetch(`${metricsBase}/metrics`)).text();
      const match = text.match(new RegExp(`^cdr_ingest_posts_refused_total\\{reason="${reason}"[^}]*\\} (\\d+)`, 'm'));
      seen = match ? Number(match[1]) : 0;
      return seen === expected;
    },
    { what: `${expected} refusals counted as ${reason} (last seen ${seen})`, timeoutMs: 5000 },
  );
}

/** Batches of `session` stored in the private Redis (waiting jobs of the CDR queue). */
async function storedCopies(redis: PrivateRedis, prefix: string, session: string): Promise<number> {
  const connection = createRedisConnection(redis.url, 'worker');
  const queue = new Queue<CdrBatchesJob>(CDR_BATCHES_QUEUE, { connection, prefix });
  try {
    const jobs = await queue.getJobs(['waiting', 'active', 'delayed']);
    return jobs.flatMap((j) => j.data.batches).filter((b) => b.batch.session === session).length;
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/**
 * A proxy to Redis that can freeze: connections stay open but nothing is passed on, as when Redis hangs or the
 * network drops packets without resetting anything.
 */
async function freezableProxy(port: number) {
  let frozen = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (d) => {
      if (!frozen) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!frozen) client.write(d);
    });
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFileEnd(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    freeze() {
      frozen = true;
    },
    /** Unfreezes by dropping the stuck connections; clients reconnect. */
    thaw() {
      frozen = false;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
  };
}

function assertRefusedAtOnce(res: Awaited<ReturnType<typeof post>>) {
  assert.equal(res.status, 503, res.text);
  assert.equal(res.retryAfter, '5');
  assert.match(JSON.parse(res.text).detail, /Redis/);
  assert.ok(res.ms < ANSWER_BOUND_MS, `answered after ${Math.round(res.ms)} ms`);
}

describe('cdr-ingest with Redis down at start-up', () => {
  test('answers 503 + Retry-After at once, logs and counts it, then stores the re-sent batch once Redis is up', async () => {
    const redis = await startPrivateRedis({ startNow: false });
    const ingest = await startIngest(redis);
    const session = randomUUID();
    const body = recordsXml({ session, records: simpleCallRecords() });

    const first = await post(ingest.base, body);
    assertRefusedAtOnce(first);
    // CMS re-sends: still refused at once, never queued for later.
    assertRefusedAtOnce(await post(ingest.base, body));
    await assertRefusedCount(ingest.metricsBase, 'redis_unavailable', 2);
    const logged = ingest.lines.map((l) => JSON.parse(l)).filter((l) => l.msg?.includes('could not store'));
    assert.equal(logged.length, 2, 'one line per refused POST');
    assert.equal(logged[0].reason, 'redis_unavailable');

    await redis.start();
    await eventually(async () => (await post(ingest.base, body)).status === 200, { what: 'ingest to accept once Redis is up' });
    assert.equal(await storedCopies(redis, ingest.prefix, session), 1, 'the batch is stored once, refused attempts are not');
  });
});

describe('cdr-ingest when Redis goes away after start-up', () => {
  test('answers 503 at once while Redis is killed, and 200 again once it is back', async () => {
    const redis = await startPrivateRedis();
    const ingest = await startIngest(redis);
    assert.equal((await post(ingest.base, recordsXml({ session: randomUUID(), records: simpleCallRecords() }))).status, 200);

    await redis.kill();
    const session = randomUUID();
    const body = recordsXml({ session, records: simpleCallRecords() });
    assertRefusedAtOnce(await post(ingest.base, body));
    await assertRefusedCount(ingest.metricsBase, 'redis_unavailable', 1);

    await redis.start();
    await eventually(async () => (await post(ingest.base, body)).status === 200, { what: 'ingest to accept once Redis is back' });
    assert.equal(await storedCopies(redis, ingest.prefix, session), 1);
  });

  test('answers 503 at once while Redis is frozen (connected but not answering)', async () => {
    const redis = await startPrivateRedis();
    const proxy = await freezableProxy(redis.port);
    const ingest = await startIngest(proxy);
    assert.equal((await post(ingest.base, recordsXml({ session: randomUUID(), records: simpleCallRecords() }))).status, 200);

    proxy.freeze();
    try {
      assertRefusedAtOnce(await post(ingest.base, recordsXml({ session: randomUUID(), records: simpleCallRecords() })));
    } finally {
      proxy.thaw();
    }
    await eventually(
      async () => (await post(ingest.base, recordsXml({ session: randomUUID(), records: simpleCallRecords() }))).status === 200,
      {
        what: 'ingest to accept once Redis answers again',
      },
    );
  });
});
