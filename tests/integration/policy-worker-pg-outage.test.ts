/**
 * The policy worker as a real process against a PostgreSQL of the test's own, which the test crashes
 * (`pg_ctl stop -m immediate`) while the worker holds a connection in the middle of a transaction. The worker
 * must stay up, say what happened in JSON log lines, hold its batches (retrying with back-off) and, once Postgres
 * is back, store every batch exactly once and be ready again. Also: a shutdown during the outage, the pool every
 * service uses, and migrations, each through a crash.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseCdrBatch } from '@cms/cdr';
import { createDatabase, ensureDatabase, pg, runMigrations } from '@cms/db';
import { addCdrBatches, createCdrBatchesQueue, createRedisConnection } from '@cms/queue';
import { recordsXml, simpleCallRecords, type TestRecord } from '../helpers/cdr-xml.ts';
import { eventually, onTestFileEnd, testRedis } from '../helpers/infra.ts';
import { startPrivatePostgres } from '../helpers/private-postgres.ts';
import { freePort } from '../helpers/stack.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface WorkerProcess {
  child: ChildProcess;
  url: string;
  output: string[];
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  /** Rejects, with what the worker printed, as soon as the process exits. */
  died: Promise<never>;
}

async function startWorker(env: Record<string, string>): Promise<WorkerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['services/policy-worker/src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      POLICY_WORKER_HOST: '127.0.0.1',
      POLICY_WORKER_PORT: String(port),
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let died: (err: Error) => void = () => {};
  const worker: WorkerProcess = {
    child,
    url: `http://127.0.0.1:${port}`,
    output: [],
    exit: null,
    died: new Promise<never>((_, reject) => {
      died = reject;
    }),
  };
  worker.died.catch(() => {}); // only awaited while a step waits on the worker
  let pending = '';
  const collect = (chunk: Buffer) => {
    pending += String(chunk);
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    worker.output.push(...lines.filter((l) => l !== ''));
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      if (pending) worker.output.push(pending);
      worker.exit = { code, signal };
      died(new Error(`policy worker exited (${JSON.stringify(worker.exit)}); its output:\n${worker.output.join('\n')}`));
      resolve();
    }),
  );
  onTestFileEnd(async () => {
    if (worker.exit === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return worker;
}

/** `eventually`, except that it fails at once, with the worker's output, if the worker process dies meanwhile. */
function whileAlive<T>(worker: WorkerProcess, probe: () => Promise<T | false> | T | false, what: string, timeoutMs = 30_000): Promise<T> {
  return Promise.race([eventually(probe, { what, timeoutMs, intervalMs: 100 }), worker.died]);
}

async function readyz(worker: WorkerProcess): Promise<number> {
  try {
    return (await fetch(`${worker.url}/readyz`)).status;
  } catch {
    return 0;
  }
}

/** A private Postgres with a migrated database, a queue prefix of the test's own, and a way to send batches. */
async function setup() {
  const server = await startPrivatePostgres();
  const databaseUrl = new URL(server.url);
  databaseUrl.pathname = '/cms_outage';
  await ensureDatabase(databaseUrl.toString());
  await runMigrations(databaseUrl.toString());
  const redis = await testRedis();
  const connection = createRedisConnection(redis.url, 'producer');
  const queue = createCdrBatchesQueue({ connection, prefix: redis.prefix });
  onTestFileEnd(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    connection.disconnect();
  });
  const send = async (session: string, records: TestRecord[]) => {
    const batch = parseCdrBatch(recordsXml({ session, records }));
    await addCdrBatches(queue, [{ node: 'cms1', receivedAt: new Date().toISOString(), batch }]);
  };
  const env = { DATABASE_URL: databaseUrl.toString(), REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix };
  return { server, databaseUrl, queue, send, env };
}

test('the policy worker rides out a Postgres crash with a transaction open, then stores every batch exactly once', async () => {
  const { server, databaseUrl, queue, send, env } = await setup();
  const worker = await startWorker(env);
  await whileAlive(worker, async () => (await readyz(worker)) === 200, 'the policy worker to be ready');

  // Hold the advisory lock the worker takes per call leg, so its transaction for this batch stops half-way
  // with its connection checked out of the pool: the crash then hits a client in use, not an idle one.
  const ids = { call: randomUUID(), leg: randomUUID(), correlator: randomUUID() };
  const holder = new pg.Client({ connectionString: databaseUrl.toString() });
  holder.on('error', () => {}); // the crash ends this connection too
  await holder.connect();
  await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 7270))', [ids.leg]);

  const blockedSession = randomUUID();
  await send(blockedSession, simpleCallRecords(0, ids));
  await whileAlive(
    worker,
    async () => {
      const { rows } = await holder.query(
        `SELECT 1 FROM pg_stat_activity WHERE application_name = 'policy-worker' AND state = 'active' AND wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'`,
      );
      return rows.length > 0;
    },
    "the worker's transaction to wait on the leg lock",
  );
  const linesBefore = worker.output.length;

  await server.stop('immediate');
  // Batches that arrive while Postgres is down wait in the queue.
  const downSessions = [randomUUID(), randomUUID(), randomUUID()];
  for (const session of downSessions) await send(session, simpleCallRecords());

  // The worker notices, says so once, holds the batches (no job fails, no attempt is used up) and stays up, not ready.
  await whileAlive(
    worker,
    () => worker.output.slice(linesBefore).some((line) => line.includes('postgres unavailable: holding batches')),
    'the worker to log that Postgres is unavailable',
  );
  await whileAlive(worker, async () => (await readyz(worker)) === 503, '/readyz to say Postgres is down');

  await server.start();
  const check = new pg.Client({ connectionString: databaseUrl.toString() });
  await check.connect();
  onTestFileEnd(() => check.end());
  const expected = new Map<string, number>([[blockedSession, 5], ...downSessions.map((s) => [s, 5] as [string, number])]);
  // The back-off is capped exponential: after several failed attempts the next retry may be many seconds away.
  await whileAlive(
    worker,
    async () => {
      const { rows } = await check.query<{ session: string; n: number }>(
        'SELECT session, count(*)::int AS n FROM cdr_records WHERE session = ANY($1) GROUP BY session',
        [[...expected.keys()]],
      );
      return rows.length === expected.size && rows.every((r) => r.n === expected.get(r.session));
    },
    'every batch to be stored',
    90_000,
  );
  await whileAlive(
    worker,
    async () => {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
      return Object.values(counts).every((n) => n === 0);
    },
    'every job to complete',
  );
  // Exactly once: every record once, and the projections built once from them.
  const { rows: records } = await check.query<{ n: number; distinct: number }>(
    'SELECT count(*)::int AS n, count(DISTINCT (session, correlator_index))::int AS distinct FROM cdr_records',
  );
  assert.deepEqual(records[0], { n: 20, distinct: 20 });
  const { rows: legs } = await check.query<{ ended_at: string | null }>('SELECT ended_at FROM call_legs WHERE id = $1', [ids.leg]);
  assert.equal(legs.length, 1);
  assert.ok(legs[0]?.ended_at, 'the blocked batch was applied in full: its leg has ended');

  await whileAlive(worker, async () => (await readyz(worker)) === 200, 'the worker to be ready again');
  assert.equal(worker.exit, null);
  // Everything it said is a JSON log line: no stack trace of an unhandled 'error' event on stderr.
  const log = worker.output.map((line) => {
    let entry: { msg?: string } = {};
    assert.doesNotThrow(() => {
      entry = JSON.parse(line);
    }, `not a JSON log line: ${line}`);
    return entry;
  });
  const said = (text: string) => log.filter((entry) => entry.msg?.includes(text)).length;
  assert.ok(said('postgres connection lost') >= 1, 'the connection in use when Postgres crashed (and any idle one) is logged');
  assert.equal(said('postgres unavailable: holding batches'), 1, 'the outage is logged once, not once per batch and attempt');
  assert.equal(said('postgres answers again'), 1);
  assert.equal(said('batch not stored'), 0, 'no batch failed: they were held, not retried by the queue');
});

test('stopped (SIGTERM) while Postgres is down, the worker exits at once and its held batch waits in the queue', async () => {
  const { server, databaseUrl, queue, send, env } = await setup();
  const first = await startWorker(env);
  await whileAlive(first, async () => (await readyz(first)) === 200, 'the policy worker to be ready');
  await server.stop('immediate');
  const session = randomUUID();
  await send(session, simpleCallRecords());
  await whileAlive(
    first,
    () => first.output.some((line) => line.includes('postgres unavailable: holding batches')),
    'the batch to be held',
  );

  first.child.kill('SIGTERM');
  await eventually(() => first.exit ?? undefined, { what: 'the worker to exit', timeoutMs: 20_000 });
  // 0, not the exit code of the 25 s shutdown deadline: holding the batch did not hold up the shutdown.
  assert.deepEqual(first.exit, { code: 0, signal: null });
  const counts = await queue.getJobCounts('wait', 'delayed', 'active', 'failed', 'completed');
  assert.equal((counts.wait ?? 0) + (counts.delayed ?? 0), 1, `the batch is back in the queue: ${JSON.stringify(counts)}`);

  await server.start();
  const second = await startWorker(env);
  const check = new pg.Client({ connectionString: databaseUrl.toString() });
  await check.connect();
  onTestFileEnd(() => check.end());
  await whileAlive(
    second,
    async () => (await check.query('SELECT 1 FROM cdr_records WHERE session = $1', [session])).rowCount === 5,
    'the batch to be stored by the next worker',
    90_000,
  );
});

test('a createDatabase pool (every service uses one) survives a Postgres crash with clients checked out and idle, and reconnects', async () => {
  const server = await startPrivatePostgres();
  const lost: string[] = [];
  const db = createDatabase(server.url, { max: 4, applicationName: 'pool-test', onConnectionLost: (err) => lost.push(err.message) });
  onTestFileEnd(() => db.$client.end());
  const pool = db.$client;
  // Two connections: one checked out (as during a transaction), one idle in the pool.
  const [inUse, idle] = [await pool.connect(), await pool.connect()];
  idle.release();
  try {
    const inFlight = inUse.query('SELECT pg_sleep(60)').then(
      () => 'answered',
      (err: Error) => err.message,
    );
    await eventually(() => pool.idleCount === 1 && pool.totalCount === 2, { what: 'one idle and one checked-out connection' });

    await server.stop('immediate');
    // The query in flight fails (its caller decides what to do); the process lives on and each loss is told once.
    assert.match(await inFlight, /terminat|connection/i);
    await eventually(() => lost.length === 2, { what: 'both lost connections to be reported' });
  } finally {
    // Given back even when the test fails: pool.end() waits for every checked-out client.
    inUse.release();
  }
  await assert.rejects(pool.query('SELECT 1'), /ECONNREFUSED|connect/);

  await server.start();
  const { rows } = await pool.query<{ n: number }>('SELECT 1 AS n');
  assert.deepEqual(rows, [{ n: 1 }]);
  assert.equal(lost.length, 2);
});

test('migrations interrupted by a Postgres crash fail with an error instead of killing the process', async () => {
  const server = await startPrivatePostgres();
  // Another process is migrating: ours waits on the migration lock with its connection open when Postgres crashes.
  const other = new pg.Client({ connectionString: server.url });
  other.on('error', () => {});
  await other.connect();
  await other.query('SELECT pg_advisory_lock(727001)');
  const migrating = runMigrations(server.url).then(
    () => 'migrated',
    (err: Error) => err.message,
  );
  await eventually(
    async () =>
      (await other.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'cms-cdr-migrate' AND wait_event_type = 'Lock'`))
        .rowCount === 1,
    { what: 'the migration to wait on its lock' },
  );
  await server.stop('immediate');
  assert.match(await migrating, /terminat|connection/i);
});
