/**
 * A 200 to CMS is a promise: CMS drops the records it was acknowledged for. This checks that the promise survives
 * Redis being killed (kill -9) and restarted from its data directory, with Redis persisting as docker-compose.yml
 * runs it (the AOF settings are read from there, so the test follows the deployment).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '@cms/config';
import { CDR_BATCHES_QUEUE, type CdrBatchesJob, createRedisConnection } from '@cms/queue';
import { Queue } from 'bullmq';
import { parse as parseYaml } from 'yaml';
import { buildIngest, type IngestService } from '../../services/cdr-ingest/src/app.ts';
import { recordsXml, simpleCallRecords } from '../helpers/cdr-xml.ts';
import { eventually } from '../helpers/infra.ts';
import { freePort } from '../helpers/stack.ts';

const TOKEN = 'durability-test-ingest-token-0123456789';
const PREFIX = 'durability';

/** The persistence flags of the redis service in docker-compose.yml (--appendonly, --appendfsync, ...). */
function composeRedisPersistence(): string[] {
  const compose = parseYaml(readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8')) as {
    services: { redis?: { command?: unknown } };
  };
  const args = compose.services.redis?.command;
  assert.ok(Array.isArray(args) && args[0] === 'redis-server', 'docker-compose.yml runs redis-server with a command line');
  const flags: string[] = [];
  for (let i = 1; i < args.length; i += 2) {
    if (['--appendonly', '--appendfsync', '--save'].includes(args[i] as string)) flags.push(args[i] as string, args[i + 1] as string);
  }
  return flags;
}

const persistence = composeRedisPersistence();
const dir = mkdtempSync(join(tmpdir(), 'cms-redis-aof-'));
const port = await freePort();
const url = `redis://127.0.0.1:${port}`;
let redis: ChildProcess | undefined;

/** A private redis-server on `port`, persisting to `dir` as compose does (never the machine's shared Redis). */
async function startRedis(): Promise<ChildProcess> {
  // No RDB snapshots unless compose asks for them: whatever survives must have come from the AOF.
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...persistence], {
    stdio: 'ignore',
  });
  const client = createRedisConnection(url, 'worker');
  client.on('error', () => undefined);
  try {
    await eventually(async () => (await client.ping().catch(() => '')) === 'PONG', { what: 'private redis-server up' });
    // After a restart Redis answers LOADING until the AOF is replayed; INFO says when it is done.
    await eventually(async () => /loading:0/.test(await client.info('persistence').catch(() => '')), { what: 'AOF loaded' });
  } finally {
    client.disconnect();
  }
  return child;
}

async function kill9(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** Sessions of every batch held in the queue (the ingest's group commit puts several batches in one job). */
async function queuedSessions(): Promise<Set<string>> {
  const connection = createRedisConnection(url, 'producer');
  const queue = new Queue<CdrBatchesJob>(CDR_BATCHES_QUEUE, { connection, prefix: PREFIX });
  try {
    const jobs = await queue.getJobs(['waiting', 'prioritized', 'delayed', 'active']);
    return new Set(jobs.flatMap((job) => job.data.batches.map((b) => b.batch.session)));
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

async function post(ingest: IngestService, session: string): Promise<number> {
  const res = await ingest.app.inject({
    method: 'POST',
    url: `/cdr/cms1?token=${TOKEN}`,
    payload: recordsXml({ session, records: simpleCallRecords() }),
    headers: { 'content-type': 'text/xml' },
  });
  return res.statusCode;
}

after(async () => {
  if (redis && redis.exitCode === null && redis.signalCode === null) await kill9(redis);
  rmSync(dir, { recursive: true, force: true });
});

test('every batch acknowledged with 200 is still queued after Redis is killed (kill -9) and restarted from its AOF', async () => {
  assert.deepEqual(persistence.slice(0, 2), ['--appendonly', 'yes'], 'compose runs Redis with an append-only file');
  redis = await startRedis();
  const config = loadConfig({
    env: {},
    overrides: { log: { level: 'silent' }, redis: { url }, queue: { prefix: PREFIX }, ingest: { token: TOKEN } },
  });
  const ingest = await buildIngest({ config });
  const acknowledged: string[] = [];
  try {
    // Concurrent POSTs, as several Call Bridges send them: they share group-committed jobs.
    const sessions = Array.from({ length: 60 }, () => randomUUID());
    const statuses = await Promise.all(sessions.map((s) => post(ingest, s)));
    assert.deepEqual(new Set(statuses), new Set([200]));
    acknowledged.push(...sessions);

    // Redis stops answering (a stall): the ingest must not say 200 for what Redis has not taken.
    redis.kill('SIGSTOP');
    const stalled = randomUUID();
    const stalledStatus = await post(ingest, stalled);
    assert.notEqual(stalledStatus, 200, 'a batch Redis never took is not acknowledged');

    // appendfsync everysec: Redis promises the disk copy within about a second of the write. Waiting it out is
    // the behaviour under test, not a stand-in for synchronisation.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await kill9(redis);
  } finally {
    await ingest.close();
  }

  redis = await startRedis();
  const queued = await queuedSessions();
  const lost = acknowledged.filter((s) => !queued.has(s));
  assert.deepEqual(lost, [], `${lost.length} of ${acknowledged.length} acknowledged batches lost`);
});
