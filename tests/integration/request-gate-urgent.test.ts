/**
 * The write gate's urgent callers (an operator's action): the next free place under the ceiling is theirs, however
 * many message writes were already waiting for it, and the ceiling is the same for everyone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRedisConnection } from '@cms/queue';
import { RequestGate } from '../../services/cms-actuator/src/request-gate.ts';
import { onTestFileEnd, testRedis } from '../helpers/infra.ts';

test('an urgent caller takes the next free place before callers that waited longer, and the ceiling holds', async () => {
  const { url, prefix } = await testRedis();
  const redis = createRedisConnection(url, 'worker');
  onTestFileEnd(() => redis.disconnect());
  const key = `${prefix}:cms-write-gate:urgent`;
  // One write per 400 ms window: the window is full before anyone below asks.
  const gate = new RequestGate(redis, key, { limit: 1, windowMs: 400 }, 0);
  await gate.acquire();

  const order: string[] = [];
  const sentAt: number[] = [];
  const take = (name: string, urgent: boolean) =>
    gate.acquireSlot({ urgent }).then(async (slot) => {
      order.push(name);
      sentAt.push(Date.now());
      await slot.answered();
    });
  // Three message writes ask first (one connection keeps the order of the gate's scripts), the operator's write after them.
  const waiting = [take('message-1', false), take('message-2', false), take('message-3', false)];
  const urgent = take('action', true);
  await Promise.all([...waiting, urgent]);

  assert.equal(order[0], 'action', `the operator's write went first: ${order.join(', ')}`);
  // The ceiling: one send per 400 ms, the urgent one included (judged on the callers' clock, with 50 ms for the
  // answers' own round trips: the gate counts each window from the answer).
  for (let i = 1; i < sentAt.length; i++) assert.ok((sentAt[i] as number) - (sentAt[i - 1] as number) >= 350, `sends ${sentAt.join(', ')}`);
});
