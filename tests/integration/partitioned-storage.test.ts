import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { parseCdrBatch } from '@cms/cdr';
import { loadConfig } from '@cms/config';
import {
  createDatabase,
  type Database,
  dropExpiredPartitions,
  ensureDatabase,
  ensurePartitions,
  listMonthPartitions,
  MIGRATIONS_FOLDER,
  pg,
  retentionHorizon,
  runMigrations,
} from '@cms/db';
import { createLogger, createMetricsRegistry } from '@cms/observability';
import { addCdrBatches, createCdrBatchesQueue, createRedisConnection } from '@cms/queue';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { buildPolicyWorker } from '../../services/policy-worker/src/app.ts';
import { recordsXml, type TestRecord } from '../helpers/cdr-xml.ts';
import { eventually, infraUrls, onTestFileEnd, testDatabase, testRedis, uniqueName } from '../helpers/infra.ts';
import { insertCmsWrites, insertRecords } from '../helpers/records-fixtures.ts';

const DAY_MS = 86_400_000;

function monthName(table: string, at: Date): string {
  return `${table}_p${at.getUTCFullYear()}${String(at.getUTCMonth() + 1).padStart(2, '0')}`;
}

function addMonths(at: Date, months: number): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + months, 15, 12));
}

async function partitionOf(db: Database, table: string, where: string, params: unknown[]): Promise<string[]> {
  const { rows } = await db.$client.query(`SELECT tableoid::regclass::text AS p FROM ${table} WHERE ${where} ORDER BY id`, params);
  return rows.map((r: { p: string }) => r.p);
}

async function exists(db: Database, name: string): Promise<boolean> {
  const { rows } = await db.$client.query('SELECT to_regclass($1) IS NOT NULL AS e', [name]);
  return rows[0].e;
}

describe('partitioned storage', () => {
  let db: Database;
  let url: string;
  before(async () => {
    ({ db, url } = await testDatabase());
  });

  test('a new database has this month and the next two partitioned for every growing table', async () => {
    const now = new Date();
    for (const table of ['cdr_records', 'meeting_level_changes', 'cms_writes'] as const) {
      const names = (await listMonthPartitions(db, table)).map((p) => p.name);
      for (const ahead of [0, 1, 2]) assert.ok(names.includes(monthName(table, addMonths(now, ahead))), `${table}: ${names.join(', ')}`);
      assert.ok(await exists(db, `${table}_default`));
    }
  });

  test('partitions are created ahead of time, and rows of a month nobody created move from the default partition into it', async () => {
    const future = addMonths(new Date(), 30);
    const created = await ensurePartitions(db, { now: future, retentionDays: 400 });
    for (const table of ['cdr_records', 'meeting_level_changes', 'cms_writes'])
      for (const ahead of [0, 1, 2])
        assert.ok(created.some((c) => c.table === table && c.name === monthName(table, addMonths(future, ahead))));
    // Again: nothing more to create.
    assert.deepEqual(await ensurePartitions(db, { now: future, retentionDays: 400 }), []);

    const strayMonth = addMonths(new Date(), -5);
    const session = randomUUID();
    await insertRecords(db, [{ session, correlatorIndex: 0, type: 'callStart', time: strayMonth.toISOString(), callId: randomUUID() }]);
    assert.deepEqual(await partitionOf(db, 'cdr_records', 'session = $1', [session]), ['cdr_records_default']);
    const moved = await ensurePartitions(db, { retentionDays: 400 });
    assert.ok(moved.some((c) => c.name === monthName('cdr_records', strayMonth)));
    assert.deepEqual(await partitionOf(db, 'cdr_records', 'session = $1', [session]), [monthName('cdr_records', strayMonth)]);
  });

  test('retention drops whole expired partitions, only those, with a log line and a metric; stray expired rows of the default partition go too', async () => {
    const retentionDays = 400;
    const now = new Date();
    const horizon = retentionHorizon(now, retentionDays);
    const session = randomUUID();
    const expiredTimes = [new Date(horizon.getTime() - 100 * DAY_MS), new Date(horizon.getTime() - 40 * DAY_MS)];
    // The horizon's own month is kept whole, even its rows older than the horizon: only whole partitions go.
    const horizonMonthStart = new Date(Date.UTC(horizon.getUTCFullYear(), horizon.getUTCMonth(), 1));
    const keptTimes = [horizonMonthStart, new Date(horizon.getTime() + DAY_MS), new Date(horizon.getTime() + 60 * DAY_MS)];
    const times = [...expiredTimes, ...keptTimes];
    await insertRecords(
      db,
      times.map((t, i) => ({ session, correlatorIndex: i, type: 'callStart', time: t.toISOString(), callId: randomUUID() })),
    );
    // Partitions for every month above (created as the worker would have, back when those months were current).
    await ensurePartitions(db, { retentionDays: 10_000 });
    for (const t of times) assert.ok(await exists(db, monthName('cdr_records', t)));
    // A stray row of a month never created, long expired, and one far in the future: both in the default partition.
    const strayKey = randomUUID();
    await insertCmsWrites(db, [
      { node: strayKey, kind: 'callMessage', status: 'applied', at: '2001-02-03T04:05:06Z' },
      { node: strayKey, kind: 'callMessage', status: 'applied', at: '2199-02-03T04:05:06Z' },
    ]);

    const redis = await testRedis();
    const registry = createMetricsRegistry('policy-worker');
    const lines: string[] = [];
    const log = createLogger('policy-worker', 'info', {}, { write: (line: string) => void lines.push(line) });
    const config = loadConfig({
      env: {},
      overrides: { redis: { url: redis.url }, queue: { prefix: redis.prefix }, database: { url }, storage: { retentionDays } },
    });
    const worker = await buildPolicyWorker({ config, log, registry });
    onTestFileEnd(() => worker.close());

    const dropped = await eventually(
      async () => {
        const text = await registry.metrics();
        const match = /storage_partitions_dropped_total\{[^}]*table="cdr_records"[^}]*\} (\d+)/.exec(text);
        return match && Number(match[1]) >= expiredTimes.length ? Number(match[1]) : undefined;
      },
      { what: 'the worker to drop the expired partitions' },
    );
    assert.equal(dropped, new Set(expiredTimes.map((t) => monthName('cdr_records', t))).size);
    for (const t of expiredTimes) assert.equal(await exists(db, monthName('cdr_records', t)), false, monthName('cdr_records', t));
    for (const t of keptTimes) assert.ok(await exists(db, monthName('cdr_records', t)), monthName('cdr_records', t));
    const { rows: left } = await db.$client.query('SELECT time FROM cdr_records WHERE session = $1 ORDER BY correlator_index', [session]);
    assert.deepEqual(
      left.map((r: { time: Date }) => r.time.toISOString()),
      keptTimes.map((t) => t.toISOString()),
    );
    for (const t of expiredTimes)
      assert.ok(
        lines.some((l) => l.includes('expired partition dropped') && l.includes(monthName('cdr_records', t))),
        `a log line for ${monthName('cdr_records', t)}`,
      );
    const { rows: strays } = await db.$client.query('SELECT at FROM cms_writes WHERE node = $1', [strayKey]);
    assert.deepEqual(
      strays.map((r: { at: Date }) => r.at.toISOString()),
      ['2199-02-03T04:05:06.000Z'],
    );
    // A second pass finds nothing more to drop.
    assert.deepEqual((await dropExpiredPartitions(db, { retentionDays })).dropped, []);
  });

  test('every record exactly once across partitions: re-sent after its month partition was created and its row moved, and across months', async () => {
    const redis = await testRedis();
    const config = loadConfig({ env: {}, overrides: { redis: { url: redis.url }, queue: { prefix: redis.prefix }, database: { url } } });
    const worker = await buildPolicyWorker({ config, log: createLogger('policy-worker', 'silent') });
    const connection = createRedisConnection(redis.url, 'producer');
    const queue = createCdrBatchesQueue({ connection, prefix: redis.prefix });
    onTestFileEnd(async () => {
      await worker.close();
      await queue.close();
      connection.disconnect();
    });
    const session = randomUUID();
    const send = async (records: TestRecord[]) => {
      await addCdrBatches(queue, [
        { node: 'cms1', receivedAt: new Date().toISOString(), batch: parseCdrBatch(recordsXml({ session, records })) },
      ]);
    };
    const drained = () =>
      eventually(
        async () => {
          const c = await queue.getJobCounts('waiting', 'active', 'delayed');
          return (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0;
        },
        { what: 'the queue to drain' },
      );
    // Months: one nobody created yet (its rows reach the default partition), this month, next month, and one years ahead.
    const months = [addMonths(new Date(), -7), new Date(), addMonths(new Date(), 1), addMonths(new Date(), 60)];
    const records: TestRecord[] = months.flatMap((m, i) =>
      [0, 1, 2].map((j) => ({
        type: 'callStart',
        correlatorIndex: i * 3 + j,
        time: new Date(m.getTime() + j * 1000).toISOString().replace('.000Z', 'Z'),
        body: `<call id="${randomUUID()}"><name>m${i}</name></call>`,
      })),
    );
    const count = async () => {
      const { rows } = await db.$client.query(
        'SELECT correlator_index, count(*)::int AS n FROM cdr_records WHERE session = $1 GROUP BY 1 ORDER BY 1',
        [session],
      );
      return rows.map((r: { correlator_index: string; n: number }) => [Number(r.correlator_index), r.n]);
    };
    const once = records.map((r) => [r.correlatorIndex, 1]);

    await send(records.slice(0, 2));
    await drained();
    assert.deepEqual(await partitionOf(db, 'cdr_records', 'session = $1', [session]), ['cdr_records_default', 'cdr_records_default']);
    // The month's partition is created; its rows move out of the default partition. Then everything is re-sent, regrouped.
    await ensurePartitions(db, { retentionDays: 400 });
    assert.deepEqual(await partitionOf(db, 'cdr_records', 'session = $1', [session]), [
      monthName('cdr_records', months[0] as Date),
      monthName('cdr_records', months[0] as Date),
    ]);
    await send(records.slice(1, 8));
    await send([...records].reverse());
    await send(records.slice(0, 5));
    await drained();
    assert.deepEqual(await count(), once);
    // The months years ahead reached the default partition; once they get their partition, a re-send is still a duplicate.
    await ensurePartitions(db, { now: months[3], retentionDays: 400 });
    await send(records);
    await drained();
    assert.deepEqual(await count(), once);
    const partitions = new Set(await partitionOf(db, 'cdr_records', 'session = $1', [session]));
    assert.deepEqual([...partitions].sort(), months.map((m) => monthName('cdr_records', m)).sort());
  });
});

describe('migration 0008', () => {
  test('moves existing rows of the growing tables into their month partitions, keeping their ids and the id sequence', async () => {
    const { postgresUrl } = await infraUrls();
    const target = new URL(postgresUrl);
    target.pathname = `/${uniqueName('cms_test')}`;
    await ensureDatabase(target.toString());
    const folder = mkdtempSync(join(tmpdir(), 'migrations-'));
    onTestFileEnd(async () => {
      rmSync(folder, { recursive: true, force: true });
      const admin = new pg.Client({ connectionString: postgresUrl });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(target.pathname.slice(1))} WITH (FORCE)`);
      await admin.end();
    });
    // The database as 0007 left it, with rows in it.
    cpSync(MIGRATIONS_FOLDER, folder, { recursive: true });
    const journalPath = join(folder, 'meta', '_journal.json');
    const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: { tag: string }[] };
    journal.entries = journal.entries.filter((e) => e.tag < '0008');
    writeFileSync(journalPath, JSON.stringify(journal));
    const client = new pg.Client({ connectionString: target.toString() });
    await client.connect();
    try {
      await migrate(drizzle(client), { migrationsFolder: folder });
      await client.query(
        `INSERT INTO cdr_records (session, correlator_index, record_index, type, time, call_id, raw) VALUES
         ('s1', 0, 1, 'callStart', '2025-01-05T00:00:00Z', 'c1', '{"@type":"callStart"}'),
         ('s1', 1, 2, 'callEnd', '2025-03-05T00:00:00Z', 'c1', '{"@type":"callEnd"}')`,
      );
      await client.query(`INSERT INTO meeting_level_changes (meeting_key, at, new_level) VALUES ('m1', '2025-02-01T00:00:00Z', 2)`);
      await client.query(
        `INSERT INTO cms_writes (node, kind, status, at) VALUES ('cms1', 'callMessage', 'applied', '2025-02-01T00:00:00Z')`,
      );

      await runMigrations(target.toString());

      const { rows: records } = await client.query('SELECT id::int, tableoid::regclass::text AS p, type FROM cdr_records ORDER BY id');
      assert.deepEqual(records, [
        { id: 1, p: 'cdr_records_p202501', type: 'callStart' },
        { id: 2, p: 'cdr_records_p202503', type: 'callEnd' },
      ]);
      const { rows: changes } = await client.query('SELECT tableoid::regclass::text AS p FROM meeting_level_changes');
      assert.deepEqual(changes, [{ p: 'meeting_level_changes_p202502' }]);
      const { rows: writes } = await client.query('SELECT tableoid::regclass::text AS p FROM cms_writes');
      assert.deepEqual(writes, [{ p: 'cms_writes_p202502' }]);
      // New rows continue the sequence, and the exactly-once key still refuses a duplicate.
      const { rows: next } = await client.query(
        `INSERT INTO cdr_records (session, correlator_index, record_index, type, time, raw)
         VALUES ('s1', 2, 3, 'callStart', now(), '{}'), ('s1', 1, 2, 'callEnd', '2025-03-05T00:00:00Z', '{}')
         ON CONFLICT (session, correlator_index, time) DO NOTHING RETURNING id::int`,
      );
      assert.deepEqual(next, [{ id: 3 }]);
      const migrated = createDatabase(target.toString(), { max: 1 });
      try {
        assert.ok((await listMonthPartitions(migrated, 'cdr_records')).length >= 5);
      } finally {
        await migrated.$client.end();
      }
    } finally {
      await client.end();
    }
  });
});
