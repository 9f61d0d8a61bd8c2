/**
 * testRedis() hands out a queue prefix and removes its keys when the test file ends, so `npm test` leaves Redis as
 * it found it. The cleanup runs after a file's last test, so only another process can watch it: this file runs
 * itself as a child (REDIS_CLEANUP_CHILD_OUT set), which leaves BullMQ and plain keys behind and reports its prefix;
 * the parent then looks for them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CDR_BATCHES_QUEUE, createRedisConnection } from '@cms/queue';
import { Queue } from 'bullmq';
import { deleteRedisKeys, infraUrls, onTestFileEnd, testRedis } from '../helpers/infra.ts';

const childOut = process.env.REDIS_CLEANUP_CHILD_OUT;

async function countKeys(url: string, prefix: string): Promise<number> {
  const redis = createRedisConnection(url, 'producer', { enableOfflineQueue: true });
  try {
    let cursor = '0';
    let count = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      count += keys.length;
      cursor = next;
    } while (cursor !== '0');
    return count;
  } finally {
    redis.disconnect();
  }
}

if (childOut) {
  test('(child) leaves keys under its prefix for the file-end cleanup', async () => {
    const { url, prefix } = await testRedis();
    // What the services leave: a BullMQ queue with a waiting job, a sub-prefix's queue, and a plain key.
    const connection = createRedisConnection(url, 'producer', { enableOfflineQueue: true });
    onTestFileEnd(() => connection.disconnect());
    for (const queuePrefix of [prefix, `${prefix}-1`]) {
      const queue = new Queue(CDR_BATCHES_QUEUE, { connection, prefix: queuePrefix });
      await queue.add('batch', { n: 1 });
      await queue.close();
    }
    await connection.set(`${prefix}:cms-placement:some-call`, '{}');
    // Registered last, so run first: a cleanup that never finishes (a service whose close waits for a server that
    // is gone) must not keep the key deletion from running.
    if (process.env.REDIS_CLEANUP_CHILD_HANG) onTestFileEnd(() => new Promise<void>(() => {}));
    writeFileSync(childOut, JSON.stringify({ prefix, keys: await countKeys(url, prefix) }));
  });
} else {
  /** Runs this file as a child test file and checks that none of the keys it left under its prefix remain. */
  async function childLeavesNoKeys(extraEnv: Record<string, string>): Promise<void> {
    const { redisUrl, postgresUrl } = await infraUrls();
    const dir = mkdtempSync(join(tmpdir(), 'redis-cleanup-'));
    const out = join(dir, 'child.json');
    let prefix: string | undefined;
    try {
      // Without the runner's NODE_TEST_CONTEXT the child is a test file of its own, with its own file end.
      const { NODE_TEST_CONTEXT: _, ...env } = process.env;
      await promisify(execFile)(process.execPath, [import.meta.filename], {
        env: { ...env, REDIS_URL: redisUrl, DATABASE_URL: postgresUrl, REDIS_CLEANUP_CHILD_OUT: out, ...extraEnv },
        timeout: 30_000,
      }).catch((err: Error) => {
        // A child that hangs is killed: its keys are then judged like those of any other child.
        process.stderr.write(`child test file: ${err.message.split('\n')[0]}\n`);
      });
      const child = JSON.parse(readFileSync(out, 'utf8')) as { prefix: string; keys: number };
      prefix = child.prefix;
      // Queue meta, job hash, wait list and id counter for each of the two prefixes, and the plain key.
      assert.ok(child.keys >= 7, `the child made keys to clean up (${child.keys})`);
      assert.equal(await countKeys(redisUrl, prefix), 0, `keys under ${prefix} left after the child's file ended`);
    } finally {
      // Whatever happened, this test leaves nothing behind itself.
      if (prefix) await deleteRedisKeys(redisUrl, prefix);
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test('the keys of a testRedis() prefix are deleted when its test file ends', async () => {
    await childLeavesNoKeys({});
  });

  test('they are deleted even when a cleanup before theirs never finishes', async () => {
    await childLeavesNoKeys({ REDIS_CLEANUP_CHILD_HANG: '1', TEST_CLEANUP_TIMEOUT_MS: '1000' });
  });
}
