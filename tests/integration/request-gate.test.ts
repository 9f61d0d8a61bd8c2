import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRedisConnection } from '@cms/queue';
import { RequestGate } from '../../services/cms-actuator/src/request-gate.ts';
import { onTestFileEnd, testRedis } from '../helpers/infra.ts';

/** Resolves with `promise`, or rejects once `ms` have passed without it (a deadline, like `eventually`'s). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

test("an answered write counts the ceiling's own window from its answer, without the margin", async () => {
  const { url, prefix } = await testRedis();
  const redis = createRedisConnection(url, 'worker');
  onTestFileEnd(() => redis.disconnect());
  // One write per 300 ms, and a margin of a minute: a slot that still counted the margin after its answer could
  // not be free before the deadline below. CMS had handled the write by the time it answered, so the window from
  // the answer alone keeps two of its arrivals a window apart.
  const gate = new RequestGate(redis, `${prefix}:cms-write-gate:test`, { limit: 1, windowMs: 300 }, 60_000);
  const first = await gate.acquireSlot();
  await first.answered();

  const second = await within(gate.acquireSlot(), 15_000, 'the next write after the window from the answer');
  await second.answered();
  // The log holds the second write alone: the first left it a window after its answer.
  assert.equal(await redis.zcard(`${prefix}:cms-write-gate:test`), 1);
});
