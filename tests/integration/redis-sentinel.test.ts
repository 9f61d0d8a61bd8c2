/**
 * Redis Sentinel (redis.sentinels, redis.sentinelName): the services ask the sentinels for the master instead of
 * connecting to redis.url, and ask again after a failover. A private master, a replica and one sentinel (the
 * machine's redis-server in sentinel mode), so the master can be killed without touching the shared Redis.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { type Config, loadConfig } from '@cms/config';
import { createLogger } from '@cms/observability';
import { CDR_BATCHES_QUEUE, type CdrBatchesJob, createRedisConnection } from '@cms/queue';
import { Queue } from 'bullmq';
import { buildIngest } from '../../services/cdr-ingest/src/app.ts';
import { recordsXml, simpleCallRecords } from '../helpers/cdr-xml.ts';
import { eventually, onTestFileEnd, uniqueName } from '../helpers/infra.ts';
import { startPrivateRedis } from '../helpers/private-redis.ts';
import { freePort } from '../helpers/stack.ts';

const TOKEN = 'sentinel-test-token-0123456789';
const MASTER_NAME = 'cms-test';

/** One sentinel (redis-server --sentinel) watching `masterPort` as MASTER_NAME, quorum 1, down after 1 s. */
async function startSentinel(masterPort: number): Promise<number> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cms-test-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  // Sentinel rewrites its configuration file as it learns the replicas and the failovers.
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 1`,
      `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
      `sentinel failover-timeout ${MASTER_NAME} 10000`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  onTestFileEnd(async () => {
    child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  const probe = createRedisConnection(`redis://127.0.0.1:${port}`, 'producer');
  probe.on('error', () => {});
  try {
    await eventually(async () => ((await probe.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)) as string[])[1], {
      what: `the sentinel on port ${port}`,
      timeoutMs: 10_000,
    });
  } finally {
    probe.disconnect();
  }
  return port;
}

function sentinelConfig(sentinelPort: number, prefix: string): Config {
  return loadConfig({
    // As an operator sets it: the URL's host and port are not used (nothing listens on port 1).
    env: { REDIS_URL: 'redis://127.0.0.1:1', REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`, REDIS_SENTINEL_NAME: MASTER_NAME },
    overrides: { log: { level: 'silent' }, queue: { prefix }, ingest: { token: TOKEN } },
  });
}

describe('Redis Sentinel', () => {
  test('redis.sentinels and redis.sentinelName reach ioredis as its sentinel options; without them, the URL', () => {
    const config = loadConfig({
      env: { REDIS_SENTINELS: 'sentinel-a:26379, 10.0.0.2:26380', REDIS_SENTINEL_NAME: 'cms', REDIS_SENTINEL_PASSWORD: 's3cret' },
    });
    assert.deepEqual(config.redis.sentinels, [
      { host: 'sentinel-a', port: 26379 },
      { host: '10.0.0.2', port: 26380 },
    ]);
    const viaSentinel = createRedisConnection(config.redis, 'producer', { lazyConnect: true });
    try {
      assert.deepEqual(viaSentinel.options.sentinels, [
        { host: 'sentinel-a', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
      ]);
      assert.equal(viaSentinel.options.name, 'cms');
      assert.equal(viaSentinel.options.sentinelPassword, 's3cret');
    } finally {
      viaSentinel.disconnect();
    }
    const direct = createRedisConnection(loadConfig({ env: { REDIS_URL: 'redis://10.0.0.9:6390' } }).redis, 'worker', {
      lazyConnect: true,
    });
    try {
      assert.equal(direct.options.sentinels ?? null, null);
      assert.equal(direct.options.port, 6390);
    } finally {
      direct.disconnect();
    }
    assert.throws(() => loadConfig({ env: { REDIS_SENTINELS: 'no-port' } }), /host:port/);
  });

  test('cdr-ingest stores through the master Sentinel names, and after the master is killed, through the replica promoted', async () => {
    const master = await startPrivateRedis();
    const replica = await startPrivateRedis();
    const admin = createRedisConnection(replica.url, 'worker');
    onTestFileEnd(() => admin.disconnect());
    await admin.call('REPLICAOF', '127.0.0.1', String(master.port));
    await eventually(async () => (await admin.info('replication')).includes('master_link_status:up'), { what: 'the replica in sync' });
    const sentinelPort = await startSentinel(master.port);

    const prefix = uniqueName('sentinel');
    const service = await buildIngest({ config: sentinelConfig(sentinelPort, prefix), log: createLogger('cdr-ingest', 'silent') });
    await service.app.listen({ host: '127.0.0.1', port: 0 });
    onTestFileEnd(() => service.close());
    const base = `http://127.0.0.1:${(service.app.server.address() as AddressInfo).port}`;
    const post = async (session: string) => {
      const res = await fetch(`${base}/cdr/cms1?token=${TOKEN}`, {
        method: 'POST',
        headers: { 'content-type': 'text/xml' },
        body: recordsXml({ session, records: simpleCallRecords() }),
        signal: AbortSignal.timeout(10_000),
      });
      await res.arrayBuffer();
      return res.status;
    };
    /** Sessions of the batches waiting in the Redis at `url` (the CDR queue's jobs). */
    const storedSessions = async (url: string) => {
      const connection = createRedisConnection(url, 'worker');
      const queue = new Queue<CdrBatchesJob>(CDR_BATCHES_QUEUE, { connection, prefix });
      try {
        const jobs = await queue.getJobs(['waiting', 'active', 'delayed']);
        return new Set(jobs.flatMap((j) => j.data.batches).map((b) => b.batch.session));
      } finally {
        await queue.close();
        connection.disconnect();
      }
    };

    const before = randomUUID();
    await eventually(async () => (await post(before)) === 200, { what: 'a POST stored through the sentinel' });
    assert.ok((await storedSessions(master.url)).has(before), 'the batch is on the master the sentinel named');

    await master.kill();
    const after = randomUUID();
    // Ingest answers 503 (CMS re-sends) until the sentinel has promoted the replica and the connection found it.
    await eventually(async () => (await post(after)) === 200, {
      what: 'a POST stored after the failover',
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    const onReplica = await storedSessions(replica.url);
    assert.ok(onReplica.has(after), 'the batch after the failover is on the promoted replica');
    assert.ok(onReplica.has(before), 'the batch before it was replicated there');
    assert.match(await admin.info('replication'), /role:master/);
  });
});
