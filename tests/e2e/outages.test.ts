/**
 * Outages through real processes: all four services as separate processes, against a PostgreSQL and a Redis of
 * this file's own that the tests crash and start again, before and after the services start. Each test checks
 * the promise CMS relies on (every acknowledged record is stored exactly once) and that every service is still
 * running and ready afterwards.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { ensureDatabase, runMigrations } from '@cms/db';
import { Agent, request } from 'undici';
import { legUpdateBatches, recordsXml } from '../helpers/cdr-xml.ts';
import { eventually, onTestFileEnd } from '../helpers/infra.ts';
import { type PrivatePostgres, startPrivatePostgres } from '../helpers/private-postgres.ts';
import { type PrivateRedis, startPrivateRedis } from '../helpers/private-redis.ts';
import { type ServiceName, type Stack, startStack, storedRecords } from '../helpers/stack.ts';

const SERVICES: ServiceName[] = ['cdr-ingest', 'policy-worker', 'cms-actuator', 'records-api'];

const agent = new Agent({ connections: 8 });
onTestFileEnd(() => agent.close());

async function post(stack: Stack, body: string): Promise<{ status: number; retryAfter: string | undefined }> {
  const res = await request(`${stack.url('cdr-ingest')}/cdr/cms1?token=${stack.ingestToken}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'text/xml' },
    dispatcher: agent,
    headersTimeout: 10_000,
  });
  await res.body.dump();
  const retryAfter = res.headers['retry-after'];
  return { status: res.statusCode, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter };
}

/**
 * Posts every body as CMS does: a body that is not answered 200 is sent again (after the Retry-After it was given,
 * capped so the test stays short) until it is. Counts what was sent more than once, so a test can tell that
 * duplicates really reached the system and were stored once.
 */
async function postAsCms(stack: Stack, bodies: string[], progress = { resent: 0 }): Promise<{ resent: number }> {
  const concurrency = 4;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++] as string;
        for (let attempt = 0; ; attempt++) {
          const { status } = await post(stack, body).catch(() => ({ status: 0 }));
          if (status === 200) break;
          assert.ok(status === 503 || status === 0, `a POST during an outage is answered 503, not ${status}`);
          progress.resent++;
          assert.ok(attempt < 600, 'a batch was refused for too long');
          await new Promise((r) => setTimeout(r, 100)); // CMS's own pause before a re-send, shortened for the test
        }
      }
    }),
  );
  return progress;
}

/** `total` records of one session in batches of `perBatch`, each record a leg update of one of 20 calls. */
function batches(session: string, total: number, perBatch: number): string[] {
  return legUpdateBatches(session, total, perBatch, { legs: 100, calls: 20 }).map((records) => recordsXml({ session, records }));
}

/** Every service process is still the one started (none died) and answers /readyz 200. */
async function assertAllUpAndReady(stack: Stack): Promise<void> {
  for (const name of SERVICES) {
    const service = stack.services[name];
    assert.ok(service, `${name} was started`);
    assert.equal(service.process.exitCode, null, `${name} is still running:\n${service.output.join('').slice(-2000)}`);
    assert.equal(service.process.signalCode, null, `${name} is still running`);
  }
  await eventually(
    async () => {
      for (const name of SERVICES) if (!(await fetch(`${stack.url(name)}/readyz`)).ok) return false;
      return true;
    },
    { what: 'every service ready again', timeoutMs: 30_000, intervalMs: 200 },
  );
}

describe('outages through real processes', () => {
  let postgres: PrivatePostgres;
  let databaseUrl: string;

  before(async () => {
    postgres = await startPrivatePostgres();
    const url = new URL(postgres.url);
    url.pathname = '/cms_outages';
    databaseUrl = url.toString();
    await ensureDatabase(databaseUrl);
    await runMigrations(databaseUrl);
  });

  test('PostgreSQL crashes and comes back under load: every acknowledged record stored once, every service up and ready', async () => {
    const stack = await startStack({ services: SERVICES, env: { DATABASE_URL: databaseUrl } });
    const session = randomUUID();
    const bodies = batches(session, 4_000, 10);
    // Acknowledgements need only Redis: all 400 POSTs are answered 200 while Postgres is down.
    const first = await postAsCms(stack, bodies.slice(0, 150));
    await eventually(async () => (await storedRecords(databaseUrl, session)).total > 0, { what: 'the first records stored' });
    await postgres.stop('immediate');
    const during = await postAsCms(stack, bodies.slice(150, 300));
    assert.equal(first.resent + during.resent, 0, 'ingest does not need PostgreSQL to acknowledge');
    await postgres.start();
    await postAsCms(stack, bodies.slice(300));
    await eventually(async () => (await storedRecords(databaseUrl, session)).total === 4_000, {
      what: 'all 4,000 records stored after the crash',
      timeoutMs: 90_000,
      intervalMs: 250,
    });
    assert.deepEqual(await storedRecords(databaseUrl, session), { total: 4_000, distinct: 4_000 });
    await assertAllUpAndReady(stack);
  });

  test('PostgreSQL down when the services start: they start, and store everything once it is up', async () => {
    await postgres.stop('fast');
    const stack = await startStack({ services: [], env: { DATABASE_URL: databaseUrl } });
    for (const name of SERVICES) await stack.start(name, {}, { waitFor: 'alive' });
    const session = randomUUID();
    const bodies = batches(session, 500, 10);
    assert.equal((await postAsCms(stack, bodies)).resent, 0, 'ingest acknowledges while PostgreSQL is down');
    await postgres.start();
    await eventually(async () => (await storedRecords(databaseUrl, session).catch(() => ({ total: -1 }))).total === 500, {
      what: 'the 500 records stored once PostgreSQL is up',
      timeoutMs: 60_000,
      intervalMs: 250,
    });
    assert.deepEqual(await storedRecords(databaseUrl, session), { total: 500, distinct: 500 });
    await assertAllUpAndReady(stack);
  });

  describe('with a Redis of its own', () => {
    let redis: PrivateRedis;
    before(async () => {
      redis = await startPrivateRedis({ aof: true, startNow: false });
    });

    test('Redis down when the services start: POSTs get 503 + Retry-After at once, then everything is stored once', async () => {
      const stack = await startStack({ services: [], env: { DATABASE_URL: databaseUrl, REDIS_URL: redis.url } });
      for (const name of SERVICES) await stack.start(name, {}, { waitFor: 'alive' });
      const session = randomUUID();
      const bodies = batches(session, 1_000, 10);

      const started = performance.now();
      const refused = await post(stack, bodies[0] as string);
      const answeredMs = performance.now() - started;
      assert.equal(refused.status, 503);
      assert.ok(Number(refused.retryAfter) >= 1, `Retry-After is a number of seconds (got ${refused.retryAfter})`);
      // The contract is "within a second"; the bound leaves room for a loaded test machine.
      assert.ok(answeredMs < 2_000, `503 answered in ${Math.round(answeredMs)} ms`);

      const progress = { resent: 0 };
      const posting = postAsCms(stack, bodies, progress);
      await eventually(() => progress.resent >= 4, { what: 'more POSTs refused while Redis is down' });
      await redis.start();
      const { resent } = await posting;
      assert.ok(resent > 0, 'batches were refused while Redis was down and sent again');
      await eventually(async () => (await storedRecords(databaseUrl, session)).total === 1_000, {
        what: 'all 1,000 records stored once Redis is up',
        timeoutMs: 60_000,
        intervalMs: 250,
      });
      assert.deepEqual(await storedRecords(databaseUrl, session), { total: 1_000, distinct: 1_000 });
      await assertAllUpAndReady(stack);
    });

    test('Redis stopped and started under load: refused batches are re-sent, every acknowledged record stored once', async () => {
      const stack = await startStack({ services: SERVICES, env: { DATABASE_URL: databaseUrl, REDIS_URL: redis.url } });
      const session = randomUUID();
      const bodies = batches(session, 3_000, 10);
      assert.equal((await postAsCms(stack, bodies.slice(0, 100))).resent, 0);
      await redis.stop();
      const progress = { resent: 0 };
      const posting = postAsCms(stack, bodies.slice(100), progress);
      await eventually(() => progress.resent >= 4, { what: 'POSTs refused while Redis is stopped' });
      await redis.start();
      await posting;
      await eventually(async () => (await storedRecords(databaseUrl, session)).total === 3_000, {
        what: 'all 3,000 records stored after Redis came back',
        timeoutMs: 60_000,
        intervalMs: 250,
      });
      assert.deepEqual(await storedRecords(databaseUrl, session), { total: 3_000, distinct: 3_000 });
      await assertAllUpAndReady(stack);
    });
  });
});
