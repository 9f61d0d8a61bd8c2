/**
 * A group commit that Postgres aborts for a deadlock is run again at once, not after the job's back-off (a second or
 * more, during which the meetings' level decisions wait). The deadlock is a real one on the meetings' advisory locks:
 * this test holds the lock the worker's transaction takes last, and once the worker waits for it, asks for one the
 * worker holds; Postgres aborts the worker's transaction (its deadlock check runs first: this session's is a minute).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCdrBatch } from '@cms/cdr';
import { loadConfig } from '@cms/config';
import { cdrRecords, pg } from '@cms/db';
import { createLogger } from '@cms/observability';
import { addCdrBatches, createCdrBatchesQueue, createRedisConnection } from '@cms/queue';
import { eq, sql } from 'drizzle-orm';
import { buildPolicyWorker } from '../../services/policy-worker/src/app.ts';
import { recordsXml } from '../helpers/cdr-xml.ts';
import { eventually, onTestFileEnd, testDatabase, testRedis } from '../helpers/infra.ts';

test('a group commit aborted by a deadlock is stored at once, without failing its job', async () => {
  const { url, db } = await testDatabase();
  const redis = await testRedis();
  const config = loadConfig({
    env: {},
    overrides: { log: { level: 'silent' }, redis: { url: redis.url }, queue: { prefix: redis.prefix }, database: { url } },
  });
  const worker = await buildPolicyWorker({ config, db, log: createLogger('deadlock-test', 'silent') });
  const connection = createRedisConnection(redis.url, 'producer');
  const queue = createCdrBatchesQueue({ connection, prefix: redis.prefix });
  const holder = new pg.Client({ connectionString: url });
  await holder.connect();
  onTestFileEnd(async () => {
    await holder.end();
    await worker.close();
    await queue.close();
    connection.disconnect();
  });

  // Two calls of two meetings: the worker's transaction locks their keys (call ids, callCorrelators) in hash order, so
  // it waits for the last one while it holds one of the others.
  const session = 'deadlock-session';
  const keys = ['dl-call-1', 'dl-call-2', 'dl-meeting-1', 'dl-meeting-2'];
  const { rows: byHash } = await holder.query<{ k: string }>(
    `SELECT h::text AS k FROM (SELECT hashtextextended('meeting:' || key, 7271) AS h FROM unnest($1::text[]) AS key) AS hashes ORDER BY h`,
    [keys],
  );
  const last = byHash.at(-1)?.k as string;
  await holder.query('BEGIN');
  await holder.query(`SET LOCAL deadlock_timeout = '60s'`);
  await holder.query('SELECT pg_advisory_xact_lock($1::bigint)', [last]);

  const records = [1, 2].map((n, i) => ({
    type: 'callStart',
    correlatorIndex: i,
    body: `<call id="dl-call-${n}"><name>Deadlock ${n}</name><callType>coSpace</callType><callCorrelator>dl-meeting-${n}</callCorrelator></call>`,
  }));
  const job = await addCdrBatches(queue, [
    { node: 'cms1', receivedAt: new Date().toISOString(), batch: parseCdrBatch(recordsXml({ session, records })) },
  ]);

  // The worker waits for the held lock, holding others of its meetings' locks...
  const held = await eventually(
    async () => {
      const { rows } = await holder.query<{ k: string; granted: boolean }>(
        `SELECT ((classid::bigint << 32) | objid::bigint)::text AS k, granted FROM pg_locks
          WHERE locktype = 'advisory' AND objsubid = 1 AND pid <> pg_backend_pid()
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      const heldByWorker = rows.filter((r) => r.granted).map((r) => r.k);
      return rows.some((r) => !r.granted) && heldByWorker.length > 0 && heldByWorker;
    },
    { what: "the worker's transaction waiting for the held lock while holding another" },
  );
  // ...and this session asks for one of those: a cycle, which the worker's session finds and ends by aborting itself.
  await holder.query('SELECT pg_advisory_xact_lock($1::bigint)', [held[0]]);
  await holder.query('COMMIT');

  const stored = async () =>
    (await db.select({ n: sql<number>`count(*)::int` }).from(cdrRecords).where(eq(cdrRecords.session, session)))[0]?.n ?? 0;
  await eventually(async () => (await stored()) === 2, { what: 'both records stored', timeoutMs: 20_000 });
  const { body } = await worker.app.inject({ method: 'GET', url: '/metrics' });
  assert.match(body, /^cdr_batch_failures_total\{[^}]*\} 0$/m, 'the job never failed an attempt');
  assert.equal(await queue.getJob(job.id as string), undefined, 'the job completed (removed on complete)');
});
