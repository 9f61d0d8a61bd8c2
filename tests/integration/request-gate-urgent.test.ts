/**
 * The write gate's urgent callers (an operator's action): the next free place under the ceiling is theirs, however
 * many message writes were already waiting for it. (The ceiling itself: cms-actuator-pacing and request-gate tests.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRedisConnection } from '@cms/queue';
import { RequestGate } from '../../services/cms-actuator/src/request-gate.ts';
import { onTestFileEnd, testRedis } from '../helpers/infra.ts';

test('an urgent caller takes the next free place before callers that waited longer, and leaves no reservation', async () => {
  const { url, prefix } = await testRedis();
  const redis = createRedisConnection(url, 'worker');
  onTestFileEnd(() => redis.disconnect());
  const key = `${prefix}:cms-write-gate:urgent`;
  // One write per 400 ms window: the window is full before anyone below asks.
  const gate = new RequestGate(redis, key, { limit: 1, windowMs: 400 }, 0);
  await gate.acquire();

  const order: string[] = [];
  const take = (name: string, urgent: boolean) =>
    gate.acquireSlot({ urgent }).then(async (slot) => {
      order.push(name);
      await slot.answered();
    });
  // Three message writes ask first (one connection keeps the order of the gate's scripts), the operator's write after them.
  const waiting = [take('message-1', false), take('message-2', false), take('message-3', false)];
  const urgent = take('action', true);
  await Promise.all([...waiting, urgent]);

  assert.equal(order[0], 'action', `the operator's write went first: ${order.join(', ')}`);
  // Nothing stays reserved once the urgent write has gone (else message writes would be held back for ever).
  assert.equal(await redis.zcard(`${key}:urgent`), 0);
});
