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

test('message writes leave the reserved place free, so an urgent caller need not wait for a full window to turn', async () => {
  const { url, prefix } = await testRedis();
  const redis = createRedisConnection(url, 'worker');
  onTestFileEnd(() => redis.disconnect());
  const key = `${prefix}:cms-write-gate:reserve`;
  // Three writes per window, one of them kept for urgent callers.
  const gate = new RequestGate(redis, key, { limit: 3, windowMs: 400 }, 0, 10_000, 1);
  const order: string[] = [];
  const take = (name: string, urgent: boolean) =>
    gate.acquireSlot({ urgent }).then(async (slot) => {
      order.push(name);
      await slot.answered();
    });
  await take('message-1', false);
  await take('message-2', false);
  // The window has one place left: the reserved one. A message write asking for it waits for the window to turn...
  const third = take('message-3', false);
  // ...while the operator's write, asking after it, gets the reserved place at once.
  await take('action', true);
  await third;
  assert.deepEqual(order, ['message-1', 'message-2', 'action', 'message-3']);
});

test('a gate cannot reserve every place of its ceiling for urgent callers', async () => {
  const { url, prefix } = await testRedis();
  const redis = createRedisConnection(url, 'worker');
  onTestFileEnd(() => redis.disconnect());
  assert.throws(
    () => new RequestGate(redis, `${prefix}:cms-write-gate:all`, { limit: 1, windowMs: 400 }, 0, 10_000, 1),
    /below the ceiling's limit/,
  );
});
